"""HistoryIndex on real MiniLM vectors (the other index tests use synthetic vectors:
tests/unit_tests/test_index.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_stepback_profile import HistoryIndex, MiniLMEmbeddings

pytestmark = pytest.mark.slow


def test_real_minilm_vectors(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    texts = ["neural machine translation", "protein folding", "football world cup final"]
    real = HistoryIndex(tmp_path / "real", dim=embeddings.dimension)
    real.add("alice", [1, 2, 3], embeddings.encode(texts))
    hits = real.search("alice", embeddings.encode(["translating text with neural networks"])[0], 3)
    assert hits[0][0] == 1
    assert -1.0 <= hits[-1][1] <= hits[0][1] <= 1.0 + 1e-5
