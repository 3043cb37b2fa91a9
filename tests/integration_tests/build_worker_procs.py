"""Worker processes of the shared-build tests: each opens its own ProfileMemory on the test's
PostgreSQL database and its own ChatOpenAI client of the fixed-latency chat server
(``bench/_chat_server.py``), whose log records every call with the worker's pid.

Children come from a forkserver that imported this module once. Each worker reports
(``results``) once it is ready, waits for ``go``, then starts or joins the build and works on
it; it puts its own report (users built, by mode) on ``results`` at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_openai import ChatOpenAI

from langchain_stepback_profile import ProfileMemory

BENCH = Path(__file__).resolve().parents[2] / "bench"
DIM = 16


def chat_server() -> Any:
    """The ``bench/_chat_server.py`` module (the benchmarks share it)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import _chat_server

    return _chat_server


def open_memory(url: str) -> ProfileMemory:
    return ProfileMemory(url, embeddings=DeterministicFakeEmbedding(size=DIM))


def chat_model(base_url: str) -> ChatOpenAI:
    """A client that names its process in every request (``X-Worker-Pid``)."""
    return ChatOpenAI(
        model="stub",
        base_url=base_url,
        api_key="not-needed",  # type: ignore[arg-type]
        default_headers={"X-Worker-Pid": str(os.getpid())},
        max_retries=0,
    )


def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def worker(
    url: str,
    base_url: str,
    job: str,
    concurrency: int,
    go: Any,
    results: Any,
) -> None:
    """One worker process: ready, wait for ``go``, start or join ``job``, work on it."""
    memory = open_memory(url)
    llm = chat_model(base_url)
    results.put({"pid": os.getpid(), "ready": True})
    if not go.wait(120):
        raise SystemExit("the test never said go")
    build = memory.enqueue_build(job=job, strategy="llm")
    report = memory.run_build_worker(build, llm, max_concurrency=concurrency, poll=0.1)
    results.put(
        {
            "pid": os.getpid(),
            "started": build.started,
            "users": build.users,
            "built": {u: b.mode for u, b in report.builds.items()},
            "failed": report.failures,
        }
    )
    memory.close()


def seed(url: str, users: list[str], items: int = 2) -> None:
    """``users`` with ``items`` short items each, tagged for the chat server's log."""
    tag = chat_server().tag
    with open_memory(url) as memory:
        memory.add_histories(
            {
                u: [{"id": f"{u}-{k}", "text": f"{tag(u)} note {k} of {u}"} for k in range(items)]
                for u in users
            }
        )


def calls_per_user(log: Path) -> dict[str, int]:
    """How many answered chat calls named each user (hung calls not counted)."""
    counts: dict[str, int] = {}
    for record in chat_server().read_log(log):
        if record["event"] == "call":
            for user in record["users"]:
                counts[user] = counts.get(user, 0) + 1
    return counts


def dump(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True)
