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

from langchain_stepback_profile.chains import build_messages, create_personalized_chain
from langchain_stepback_profile.distill import PROMPT_VERSION, ProfileBuild, StepBackProfiler
from langchain_stepback_profile.embeddings import MiniLMEmbeddings
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
from langchain_stepback_profile.history import HistoryItem, to_history_item
from langchain_stepback_profile.index import HistoryIndex
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, SearchResult
from langchain_stepback_profile.profile import ProfileDraft, UserProfile, WritingStyle
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from langchain_stepback_profile.store import ProfileStore, SQLiteProfileStore
from langchain_stepback_profile.tasks import TASKS, TaskSpec, get_task

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
