"""Chat models that run inside the process, with no server and no network.

Example:
    >>> from langchain_stepback_profile.llms import default_chat_model
    >>> llm = default_chat_model()
    >>> llm.model_name
    'SmolLM2-135M-Instruct.Q4_1'
"""

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from langchain_stepback_profile.llms.local import (
    DEFAULT_GGUF,
    LocalChatModel,
    ModelFileNotFoundError,
    default_chat_model,
    default_model_path,
)


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
    "ModelFileNotFoundError",
    "default_chat_model",
    "default_model_path",
    "with_max_tokens",
]
