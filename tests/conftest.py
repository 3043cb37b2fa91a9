"""Shared fixtures: one real MiniLM embedder per test session, fresh stores per test, data paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def embeddings() -> MiniLMEmbeddings:
    """The real default embedder, loaded once."""
    return MiniLMEmbeddings()


@pytest.fixture
def memory(tmp_path: Path, embeddings: MiniLMEmbeddings) -> Iterator[ProfileMemory]:
    """An empty store in a temporary folder, with real embeddings, FAISS and SQLite."""
    with ProfileMemory(tmp_path / "store", embeddings=embeddings) as mem:
        yield mem


@pytest.fixture(scope="session")
def lamp5_questions() -> list[dict]:
    """The LaMP-5-like queries from ../shared/data (each with the user's earlier papers)."""
    path = DATA / "LaMP_5_like" / "questions.json"
    if not path.exists():
        pytest.fail(f"evaluation data missing: {path} (../shared/data must sit beside the project)")
    return json.loads(path.read_text())
