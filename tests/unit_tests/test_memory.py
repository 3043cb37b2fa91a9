"""ProfileMemory on real FAISS files and a real SQLite store: what it refuses, and what it does
without embedding anything. The operations that embed text, with the real MiniLM model, are in
tests/integration_tests/test_memory_minilm.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

import langchain_stepback_profile.memory as memory_module
from langchain_stepback_profile import (
    DuplicateItemError,
    InvalidArgumentError,
    MiniLMEmbeddings,
    ProfileMemory,
    StoreError,
    UnknownUserError,
)

PAPERS = [
    {"id": "p1", "title": "Neural Machine Translation", "abstract": "We translate with attention."},
    {"id": "p2", "title": "Protein Folding at Scale", "abstract": "We predict protein structure."},
    {"id": "p3", "title": "Deep RL for Text Games", "abstract": "Agents play text adventures."},
    {"id": "p4", "title": "Sarcasm in Tweets", "abstract": "We detect sarcasm on Twitter."},
    {"id": "p5", "title": "Galaxy Redshift Surveys", "abstract": "We map distant galaxies."},
]


class TinyEmbeddings(Embeddings):
    """A deterministic hashing embedder (another model, for mixing tests)."""

    def __init__(self, dim: int, name: str) -> None:
        self.dim = dim
        self.embedding_id = name

    def _vector(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=self.dim).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document text ProfileMemory sends to the embedding model, in order."""
    texts: list[str] = []
    real = memory_module.encode_texts

    def spy(embeddings: Embeddings, batch: list[str], show_progress: bool = False) -> np.ndarray:
        texts.extend(batch)
        return real(embeddings, batch, show_progress)

    monkeypatch.setattr(memory_module, "encode_texts", spy)
    return texts


@pytest.fixture
def reopen(embeddings: MiniLMEmbeddings) -> Callable[..., ProfileMemory]:
    """Open (another) ProfileMemory; closed at the end of the test."""
    opened: list[ProfileMemory] = []

    def _open(path: Path, emb: Embeddings | None = None) -> ProfileMemory:
        mem = ProfileMemory(path, embeddings=emb or embeddings)
        opened.append(mem)
        return mem

    yield _open
    for mem in opened:
        mem.close()


def test_add_nothing(memory: ProfileMemory, embedded: list[str]) -> None:
    assert memory.add("alice", []) == []
    assert memory.users() == []
    assert embedded == []


def test_clash_inside_one_batch_stores_nothing(memory: ProfileMemory, embedded: list[str]) -> None:
    batch = [PAPERS[0], {"id": "dup", "text": "one"}, PAPERS[1], {"id": "dup", "text": "two"}]
    with pytest.raises(DuplicateItemError, match="'dup'"):
        memory.add("alice", batch)
    assert memory.users() == []
    assert embedded == []
    with pytest.raises(UnknownUserError):
        memory.items("alice")


@pytest.mark.parametrize("user_id", ["", "   ", None, 5, ["alice"]])
def test_invalid_user_id_is_refused(memory: ProfileMemory, user_id: object) -> None:
    with pytest.raises(InvalidArgumentError, match="user id must be a non-empty string"):
        memory.add(user_id, ["x"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        memory.search(user_id, "x")  # type: ignore[arg-type]
    assert memory.users() == []


def test_other_embeddings_work_in_their_own_store(tmp_path: Path) -> None:
    with ProfileMemory(tmp_path / "tiny", embeddings=TinyEmbeddings(8, "tiny-8")) as mem:
        mem.add("alice", ["a", "b", "c"])
        assert mem.search("alice", "b", k=1)[0].item.text == "b"


def test_non_store_folder_is_refused(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StoreError) as err:
        ProfileMemory(folder, embeddings=embeddings)
    assert "not a stepback-profile store" in str(err.value)
    assert "new or empty folder" in str(err.value)
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]  # untouched


def test_file_path_is_refused(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(StoreError, match="is a file, not a store folder"):
        ProfileMemory(path, embeddings=embeddings)
    assert path.read_text() == "hello"


def test_corrupt_database_file_is_refused(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "store.sqlite3").write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        ProfileMemory(folder, embeddings=embeddings)


def test_empty_folder_and_new_nested_path_are_accepted(
    tmp_path: Path, reopen: Callable[..., ProfileMemory]
) -> None:
    (tmp_path / "empty").mkdir()
    assert reopen(tmp_path / "empty").users() == []
    assert reopen(tmp_path / "a" / "b" / "c").users() == []
