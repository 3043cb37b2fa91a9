"""How many CPU threads the in-process models use.

Example:
    >>> default_threads() >= 1
    True
"""

from __future__ import annotations

import os


def default_threads() -> int:
    """Half the CPUs this process may use, at least 1, at most 4.

    Both in-process models (llama.cpp and torch for MiniLM) slow down badly when their threads
    compete with other work for the CPUs. Measured on 2 busy CPUs: llama.cpp generated 23
    tokens/s with 2 threads and 51 with 1 (bench/local_llm_speed.py); MiniLM embedded 100
    short phrases in 1.3 s with 2 torch threads and 0.19 s with 1.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available // 2))
