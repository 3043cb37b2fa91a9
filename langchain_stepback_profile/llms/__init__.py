"""Chat models that run inside the process, with no server and no network.

Example:
    >>> from langchain_stepback_profile.llms import default_chat_model
    >>> llm = default_chat_model()
    >>> llm.model_name
    'SmolLM2-135M-Instruct.Q4_1'
"""

from langchain_stepback_profile.llms.local import (
    DEFAULT_GGUF,
    LocalChatModel,
    ModelFileNotFoundError,
    default_chat_model,
    default_model_path,
)

__all__ = [
    "DEFAULT_GGUF",
    "LocalChatModel",
    "ModelFileNotFoundError",
    "default_chat_model",
    "default_model_path",
]
