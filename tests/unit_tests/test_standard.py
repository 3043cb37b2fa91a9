"""LangChain's standard unit tests for the package's chat models, embeddings and agent tools.

None of these loads a model: LocalChatModel and MiniLMEmbeddings load theirs on first use,
LlamaIndexChatModel wraps an ``OpenAILike`` LLM that is never called, and the tools are only
built and inspected. The standard integration tests, which do call the models, are in
``tests/integration_tests/test_standard_*.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests, ToolsUnitTests
from llama_index.llms.openai_like import OpenAILike

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory
from langchain_stepback_profile.agents import UserContext, create_profile_tools
from langchain_stepback_profile.llms import LocalChatModel
from llamaindex_integration import LlamaIndexChatModel

# --------------------------------------------------------------------- chat models


class TestLocalChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The embedded model has no provider and so no API key (the unit suite adds one to
        # temperature, max_tokens, timeout, stop and max_retries, which it takes and honours).
        params = super().standard_chat_model_params
        del params["api_key"]
        return params

    @property
    def supports_model_override(self) -> bool:
        return False  # one GGUF per instance: there is no per-call ``model=``


def _openai_like() -> OpenAILike:
    """A real LlamaIndex LLM for an OpenAI-compatible server; built, never called."""
    return OpenAILike(
        model="SmolLM2-135M-Instruct",
        api_base="http://127.0.0.1:9/v1",
        api_key="none",
        is_chat_model=True,
        context_window=2048,
    )


class TestLlamaIndexChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[LlamaIndexChatModel]:
        return LlamaIndexChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"llm": _openai_like()}

    @property
    def supports_model_override(self) -> bool:
        return False  # whether ``model=`` reaches the request depends on the LlamaIndex LLM


def test_llamaindex_chat_model_applies_the_standard_settings_to_a_copy_of_the_llm() -> None:
    llm = _openai_like()
    chat = LlamaIndexChatModel(llm=llm, temperature=0, max_tokens=100, timeout=7, max_retries=2)
    assert (chat.llm.temperature, chat.llm.max_tokens) == (0, 100)
    assert (chat.llm.timeout, chat.llm.max_retries) == (7, 2)
    assert (llm.temperature, llm.max_tokens, llm.timeout) == (0.1, None, 60.0)  # untouched
    assert LlamaIndexChatModel(llm=llm).llm is llm  # nothing to apply: the same LLM


def test_llamaindex_chat_model_refuses_a_setting_the_llm_does_not_have() -> None:
    from llama_index.core.llms import MockLLM
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="MockLLM has no temperature, timeout"):
        LlamaIndexChatModel(llm=MockLLM(), temperature=0, timeout=5)
    assert LlamaIndexChatModel(llm=MockLLM(), max_tokens=3).llm.max_tokens == 3


def test_local_chat_model_standard_settings_are_validated() -> None:
    from pydantic import ValidationError

    model = LocalChatModel(timeout=30, max_retries=1, streaming=True)
    assert (model.timeout, model.max_retries, model.streaming) == (30, 1, True)
    with pytest.raises(ValidationError):
        LocalChatModel(timeout=0)
    with pytest.raises(ValidationError):
        LocalChatModel(max_retries=-1)
    with pytest.raises(ValidationError, match="api_key"):
        LocalChatModel(api_key="sk-unused")  # a typo or a key would be silently dropped


def test_ls_params_follow_the_call() -> None:
    model = LocalChatModel(max_tokens=10, stop=["END"])
    params = model._get_ls_params()
    assert params["ls_provider"] == "llama-cpp"
    assert params["ls_model_name"] == "SmolLM2-135M-Instruct.Q4_1"
    assert (params["ls_max_tokens"], params["ls_stop"]) == (10, ["END"])
    params = model._get_ls_params(stop=["STOP"], max_tokens=3, temperature=0.5)
    assert (params["ls_max_tokens"], params["ls_stop"], params["ls_temperature"]) == (
        3,
        ["STOP"],
        0.5,
    )


# --------------------------------------------------------------------- embeddings


class TestMiniLMEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MiniLMEmbeddings]:
        return MiniLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"batch_size": 16}


# --------------------------------------------------------------------- agent tools

_STATE: dict[str, Any] = {}


def _tool(name: str) -> BaseTool:
    """One of the profile tools over an empty store (its embedder is never loaded here)."""
    if "memory" not in _STATE:
        folder = Path(tempfile.mkdtemp(prefix="stepback-tools-"))
        _STATE.update(folder=folder, memory=ProfileMemory(folder / "store"))
        _STATE["tools"] = {t.name: t for t in create_profile_tools(_STATE["memory"])}
    return _STATE["tools"][name]


@pytest.fixture(scope="module", autouse=True)
def _store_lifetime() -> Iterator[None]:
    yield
    memory = _STATE.pop("memory", None)
    if memory is not None:
        memory.close()
        shutil.rmtree(_STATE.pop("folder"), ignore_errors=True)
    _STATE.clear()


def tool_runtime(user_id: str = "alice") -> ToolRuntime:
    """What an agent's ToolNode injects into the ``runtime`` argument for ``user_id``'s run."""
    return ToolRuntime(
        state={"messages": []},
        context=UserContext(user_id),
        config={},
        stream_writer=lambda _: None,
        tool_call_id="call-1",
        store=None,
    )


class TestSearchUserHistoryTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("search_user_history")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "machine translation", "runtime": tool_runtime()}


class TestReadUserProfileTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("read_user_profile")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"runtime": tool_runtime()}


class TestRememberAboutUserTool(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("remember_about_user")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "Prefers short titles.", "runtime": tool_runtime()}
