"""The public names of each package, pinned: adding or removing one is a deliberate change."""

from __future__ import annotations

import importlib

import pytest

EXPECTED_ALL = {
    "langchain_stepback_profile": [
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
        "PROMPT_VERSION",
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
        "TASKS",
        "TaskSpec",
        "UnknownUserError",
        "UserProfile",
        "WritingStyle",
        "build_messages",
        "create_personalized_chain",
        "get_task",
        "to_history_item",
    ],
    "langchain_stepback_profile.agents": [
        "StepBackProfileMiddleware",
        "UserContext",
        "create_profile_tools",
        "run_users",
    ],
    "langchain_stepback_profile.llms": [
        "DEFAULT_GGUF",
        "LocalChatModel",
        "LocalModelTimeoutError",
        "ModelFileNotFoundError",
        "default_chat_model",
        "default_model_path",
        "with_max_tokens",
    ],
    "llamaindex_integration": [
        "LangChainLLM",
        "LlamaIndexChatModel",
        "StepBackProfileLlamaIndexRetriever",
        "StepBackProfileMemoryBlock",
        "document_to_node",
    ],
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED_ALL))
def test_all_imports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == EXPECTED_ALL[module_name]
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"
    for name in module.__all__:
        assert getattr(module, name) is not None, name
