"""Chat models that run inside the process, with no server and no network.

Example:
    >>> from langchain_stepback_profile.llms import default_chat_model
    >>> llm = default_chat_model()
    >>> llm.model_name
    'SmolLM2-135M-Instruct.Q4_1'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from langchain_stepback_profile.extras import require_extra

if TYPE_CHECKING:
    from langchain_stepback_profile.llms.local import (
        DEFAULT_GGUF,
        LocalChatModel,
        LocalModelTimeoutError,
        ModelFileNotFoundError,
        default_chat_model,
        default_model_path,
    )

_LOCAL_NAMES = frozenset(
    {
        "DEFAULT_GGUF",
        "LocalChatModel",
        "LocalModelTimeoutError",
        "ModelFileNotFoundError",
        "default_chat_model",
        "default_model_path",
    }
)
"""The names of :mod:`.local`, which imports llama.cpp."""


def __getattr__(name: str) -> Any:
    """The embedded model's names, imported on first use: llama.cpp is loaded only by code
    that runs the embedded model, and without the ``[local]`` extra the error names the fix."""
    if name not in _LOCAL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_extra(
        "local",
        "llama_cpp",
        feature=f"the embedded chat model ({name})",
        alternative="pass any LangChain chat model (llm=...) instead",
    )
    value = getattr(importlib.import_module(f"{__name__}.local"), name)
    globals()[name] = value
    return value


def with_max_tokens(llm: BaseChatModel, max_tokens: int) -> Runnable:
    """The model with its answer length capped, when it takes a ``max_tokens`` setting
    (the embedded model, ChatOpenAI and most served models); else the model unchanged."""
    fields = getattr(type(llm), "model_fields", {})
    for name in ("max_tokens", "max_completion_tokens"):
        if name in fields:
            return llm.bind(**{name: max_tokens})
    return llm


__all__ = [
    "DEFAULT_GGUF",
    "LocalChatModel",
    "LocalModelTimeoutError",
    "ModelFileNotFoundError",
    "default_chat_model",
    "default_model_path",
    "with_max_tokens",
]
