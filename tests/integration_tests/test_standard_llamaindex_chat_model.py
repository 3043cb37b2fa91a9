"""LangChain's standard integration tests for LlamaIndexChatModel around a real LlamaIndex LLM:
``OpenAILike`` talking to llama-cpp-python's OpenAI-compatible server, which serves the
embedded SmolLM2-135M-Instruct GGUF on 127.0.0.1 (the ``openai_server`` fixture), so the
suite runs offline.

The adapter is text in, text out: it has no tool calling and no structured output of its own
(those tests skip themselves), and LlamaIndex's text messages carry no images or audio.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from llama_index.llms.openai_like import OpenAILike

from llamaindex_integration import LlamaIndexChatModel

pytestmark = pytest.mark.slow

_SERVER: dict[str, str] = {}


class TestLlamaIndexChatModelIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, openai_server: str) -> None:
        _SERVER["url"] = openai_server

    @property
    def chat_model_class(self) -> type[LlamaIndexChatModel]:
        return LlamaIndexChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        llm = OpenAILike(
            model="SmolLM2-135M-Instruct",
            api_base=_SERVER["url"],
            api_key="none",
            is_chat_model=True,
            context_window=2048,
        )
        return {"llm": llm, "temperature": 0, "max_tokens": 48, "timeout": 300}

    @property
    def supports_model_override(self) -> bool:
        return False  # whether ``model=`` reaches the request depends on the LlamaIndex LLM

    @pytest.mark.xfail(
        reason="llama-cpp-python's server reports no token usage in streamed responses (not "
        "even with stream_options include_usage), so a stream through it has none to pass on; "
        "streamed usage from servers that report it is tested in test_llm_adapters.py"
    )
    def test_usage_metadata_streaming(self, model: BaseChatModel) -> None:
        super().test_usage_metadata_streaming(model)
