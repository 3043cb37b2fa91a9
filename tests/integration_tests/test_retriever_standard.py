"""LangChain's standard retriever tests for StepBackProfileRetriever.

The standard k tests expect exactly k documents, so the retriever is built with
``include_profiles=False`` for one user whose history has more than k items. The store is
a real ProfileMemory (default MiniLM embeddings, FAISS, SQLite) in a temporary folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_stepback_profile import ProfileMemory, StepBackProfileRetriever

_HISTORY = [
    {"id": "p1", "title": "Neural Machine Translation", "abstract": "Translation with attention."},
    {"id": "p2", "title": "Back-Translation at Scale", "abstract": "Synthetic parallel data."},
    {"id": "p3", "title": "Parsing Tweets", "abstract": "A dependency parser for tweets."},
    {"id": "p4", "title": "Evaluating MT", "abstract": "BLEU against human judgements."},
    {"id": "p5", "title": "Cross-lingual Embeddings", "abstract": "Aligning word vectors."},
    {"id": "p6", "title": "Dialogue Systems", "abstract": "Task-oriented dialogue agents."},
]

_STATE: dict[str, Any] = {}


def _memory() -> ProfileMemory:
    """One store for the whole module, created on first use."""
    if "memory" not in _STATE:
        folder = Path(tempfile.mkdtemp(prefix="stepback-standard-"))
        memory = ProfileMemory(folder / "store")  # the default, real embeddings
        memory.add("alice", _HISTORY)
        _STATE.update(memory=memory, folder=folder)
    return _STATE["memory"]


@pytest.fixture(scope="module", autouse=True)
def _store_lifetime() -> Iterator[None]:
    yield
    memory = _STATE.pop("memory", None)
    if memory is not None:
        memory.close()
        shutil.rmtree(_STATE.pop("folder"), ignore_errors=True)


class TestStepBackProfileRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[StepBackProfileRetriever]:
        return StepBackProfileRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "memory": _memory(),
            "user_ids": ["alice"],
            "include_profiles": False,
            "k": 4,
        }

    @property
    def retriever_query_example(self) -> str:
        return "machine translation with synthetic data"
