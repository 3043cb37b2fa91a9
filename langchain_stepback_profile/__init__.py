"""Step-Back Profiling for LangChain: distilled user profiles plus FAISS retrieval over history.

Example:
    ```python
    from langchain_stepback_profile import ProfileMemory, StepBackProfileRetriever
    memory = ProfileMemory("./profiles")
    memory.add("alice", [{"title": "Neural MT", "abstract": "We study..."}])
    memory.refresh(llm=chat_model)
    StepBackProfileRetriever(memory=memory, user_ids=["alice"]).invoke("translation")
    ```
"""

import importlib
from typing import TYPE_CHECKING, Any

from langchain_stepback_profile.errors import (
    ContextOverflowError,
    DataFormatError,
    DuplicateItemError,
    InvalidArgumentError,
    InvalidItemError,
    MissingExtraError,
    ProfileBuildError,
    ProfileGenerationError,
    ProfileVersionConflictError,
    StepBackProfileError,
    StoreError,
    UnknownUserError,
)

if TYPE_CHECKING:
    from langchain_stepback_profile.chains import build_messages, create_personalized_chain
    from langchain_stepback_profile.distill import PROMPT_VERSION, ProfileBuild, StepBackProfiler
    from langchain_stepback_profile.embeddings import MiniLMEmbeddings
    from langchain_stepback_profile.history import HistoryItem, to_history_item
    from langchain_stepback_profile.index import HistoryIndex
    from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, SearchResult
    from langchain_stepback_profile.profile import ProfileDraft, UserProfile, WritingStyle
    from langchain_stepback_profile.retriever import StepBackProfileRetriever
    from langchain_stepback_profile.store import ProfileStore, SQLiteProfileStore
    from langchain_stepback_profile.tasks import TASKS, TaskSpec, get_task

_LAZY: dict[str, str] = {
    "build_messages": "chains",
    "create_personalized_chain": "chains",
    "PROMPT_VERSION": "distill",
    "ProfileBuild": "distill",
    "StepBackProfiler": "distill",
    "MiniLMEmbeddings": "embeddings",
    "HistoryItem": "history",
    "to_history_item": "history",
    "HistoryIndex": "index",
    "ProfileMemory": "memory",
    "RefreshReport": "memory",
    "SearchResult": "memory",
    "ProfileDraft": "profile",
    "UserProfile": "profile",
    "WritingStyle": "profile",
    "StepBackProfileRetriever": "retriever",
    "ProfileStore": "store",
    "SQLiteProfileStore": "store",
    "TASKS": "tasks",
    "TaskSpec": "tasks",
    "get_task": "tasks",
}
"""Every other public name and the module that defines it, imported on first use: importing
the package (or its command line) loads no model, FAISS or LangChain machinery until needed."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "PROMPT_VERSION",
    "TASKS",
    "ContextOverflowError",
    "DataFormatError",
    "DuplicateItemError",
    "HistoryIndex",
    "HistoryItem",
    "InvalidArgumentError",
    "InvalidItemError",
    "MiniLMEmbeddings",
    "MissingExtraError",
    "ProfileBuild",
    "ProfileBuildError",
    "ProfileDraft",
    "ProfileGenerationError",
    "ProfileMemory",
    "ProfileStore",
    "ProfileVersionConflictError",
    "RefreshReport",
    "SQLiteProfileStore",
    "SearchResult",
    "StepBackProfileError",
    "StepBackProfileRetriever",
    "StepBackProfiler",
    "StoreError",
    "TaskSpec",
    "UnknownUserError",
    "UserProfile",
    "WritingStyle",
    "build_messages",
    "create_personalized_chain",
    "get_task",
    "to_history_item",
]
