"""Counting LLM calls and tokens through LangChain callbacks.

Example:
    >>> from langchain_core.language_models import GenericFakeChatModel
    >>> counter = LLMUsage()
    >>> _ = GenericFakeChatModel(messages=iter(["hi"])).invoke("x", config={"callbacks": [counter]})
    >>> counter.calls
    1
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult


class LLMUsage(BaseCallbackHandler):
    """Counts model calls and the tokens they report (0 when a model reports none)."""

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self._lock = threading.Lock()

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls += 1

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls += len(prompts)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        inputs = outputs = 0
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                if usage:
                    inputs += usage.get("input_tokens", 0)
                    outputs += usage.get("output_tokens", 0)
        with self._lock:
            self.input_tokens += inputs
            self.output_tokens += outputs

    def as_dict(self) -> dict[str, int]:
        return {
            "llm_calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
