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

from typing import TYPE_CHECKING

from langchain_stepback_profile.errors import (
    BuildJobError,
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
from langchain_stepback_profile.lazy import lazy_names

if TYPE_CHECKING:
    from langchain_stepback_profile.build_jobs import BuildJob
    from langchain_stepback_profile.chains import build_messages, create_personalized_chain
    from langchain_stepback_profile.distill import PROMPT_VERSION, ProfileBuild, StepBackProfiler
    from langchain_stepback_profile.embeddings import MiniLMEmbeddings
    from langchain_stepback_profile.history import HistoryItem, to_history_item
    from langchain_stepback_profile.index import HistoryIndex
    from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, SearchResult
    from langchain_stepback_profile.profile import ProfileDraft, UserProfile, WritingStyle
    from langchain_stepback_profile.retriever import StepBackProfileRetriever
    from langchain_stepback_profile.store import ProfileStore, SQLiteProfileStore
    from langchain_stepback_profile.style_gists import StyleGists
    from langchain_stepback_profile.tasks import TASKS, TaskSpec, get_task

_LAZY: dict[str, str] = {
    "BuildJob": "build_jobs",
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
    "StyleGists": "style_gists",
    "TASKS": "tasks",
    "TaskSpec": "tasks",
    "get_task": "tasks",
}
"""Every other public name and the module that defines it, imported on first use: importing
the package (or its command line) loads no model, FAISS or LangChain machinery until needed."""


__all__ = [
    "PROMPT_VERSION",
    "TASKS",
    "BuildJob",
    "BuildJobError",
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
    "StyleGists",
    "TaskSpec",
    "UnknownUserError",
    "UserProfile",
    "WritingStyle",
    "build_messages",
    "create_personalized_chain",
    "get_task",
    "to_history_item",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
