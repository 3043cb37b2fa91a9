"""Fixtures of the LlamaIndex face: a small real LaMP-5-like slice in real stores, and
llama-cpp-python's OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory
from tests.llamaindex_tests.helpers import fill, slice_of


@pytest.fixture(scope="session")
def lamp_slice(lamp5_questions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return slice_of(lamp5_questions)


@pytest.fixture(scope="module")
def lamp_memory(
    tmp_path_factory: pytest.TempPathFactory,
    embeddings: MiniLMEmbeddings,
    lamp_slice: dict[str, dict[str, Any]],
) -> Iterator[ProfileMemory]:
    """A store shared by a module's read-only tests."""
    path: Path = tmp_path_factory.mktemp("lamp") / "store"
    with ProfileMemory(path, embeddings=embeddings, task="scholarly_title") as memory:
        yield fill(memory, lamp_slice)


@pytest.fixture
def profiles(
    tmp_path: Path, embeddings: MiniLMEmbeddings, lamp_slice: dict[str, dict[str, Any]]
) -> Iterator[ProfileMemory]:
    """A fresh store of the slice for a test that writes to it."""
    with ProfileMemory(tmp_path / "store", embeddings=embeddings, task="scholarly_title") as memory:
        yield fill(memory, lamp_slice)


@pytest.fixture(scope="session")
def server_url(openai_server: str) -> str:
    """The shared llama-cpp-python OpenAI-compatible server (see tests/conftest.py)."""
    return openai_server
