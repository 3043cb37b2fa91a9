"""MiniLMEmbeddings(precision=...) with the real model: what ``auto`` picks and reports, the
chosen variant's quality against fp32 on real papers, and which variants may share a store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import langchain_stepback_profile.embeddings as embeddings_module
from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory, StoreError
from langchain_stepback_profile.embeddings import DEFAULT_EMBEDDING_ID, INT8_EMBEDDING_ID
from langchain_stepback_profile.precision import MIN_COSINE, MIN_TOP10_OVERLAP, vector_quality
from tests.unit_tests.test_memory import PAPERS

pytestmark = pytest.mark.slow


def real_texts(questions: list[dict], queries: int, papers: int) -> tuple[list[str], list[str]]:
    """Real LaMP-5-like abstracts (the queries) and their users' earlier papers (title +
    abstract, as HistoryItem.text)."""
    abstracts = [q["input"].split(": ", 1)[-1] for q in questions[:queries]]
    docs: dict[str, str] = {}
    for q in questions:
        for p in q["profile"]:
            if p.get("title") and p.get("abstract"):
                docs.setdefault(p["id"], f"{p['title']}\n{p['abstract']}")
        if len(docs) >= papers:
            break
    return abstracts, list(docs.values())[:papers]


@pytest.fixture(scope="module")
def fp32() -> MiniLMEmbeddings:
    return MiniLMEmbeddings(precision="fp32")


def test_auto_measures_once_reports_and_logs_its_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STEPBACK_PROFILE_CACHE", str(tmp_path))
    monkeypatch.setattr(embeddings_module, "_logged", set())
    caplog.set_level(logging.INFO, logger=embeddings_module.__name__)
    first = MiniLMEmbeddings()
    assert first.variant in ("fp32", "bf16", "int8", "onnx")
    choice = first.precision_choice
    assert choice is not None and not choice.cached and choice.variant == first.variant
    assert {c.variant for c in choice.checks} >= {"int8"}  # int8 is always measured
    assert (tmp_path / "embedding-precision.json").exists()
    second = MiniLMEmbeddings()
    assert second.variant == first.variant
    assert second.precision_choice is not None and second.precision_choice.cached
    runs = [r for r in caplog.records if "precision='auto' runs" in r.getMessage()]
    assert len(runs) == 1 and first.variant in runs[0].getMessage()
    assert MiniLMEmbeddings(precision="fp32").precision_choice is None


def test_the_variant_auto_runs_holds_the_bar_on_real_papers(
    embeddings: MiniLMEmbeddings, fp32: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    queries, docs = real_texts(lamp5_questions, 30, 200)
    quality = vector_quality(
        fp32.encode(queries), fp32.encode(docs), embeddings.encode(queries), embeddings.encode(docs)
    )
    assert quality.cosine_min >= MIN_COSINE, (embeddings.variant, quality)
    assert quality.top10_overlap_mean >= MIN_TOP10_OVERLAP, (embeddings.variant, quality)


def test_bf16_holds_the_bar_so_it_shares_fp32s_store(
    tmp_path: Path, fp32: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    bf16 = MiniLMEmbeddings(precision="bf16")
    queries, docs = real_texts(lamp5_questions, 8, 40)
    quality = vector_quality(
        fp32.encode(queries), fp32.encode(docs), bf16.encode(queries), bf16.encode(docs)
    )
    assert quality.holds(), quality
    with ProfileMemory(tmp_path / "store", embeddings=fp32) as memory:
        memory.add("alice", PAPERS)
        before = [r.item.id for r in memory.search("alice", "translation", k=3)]
    with ProfileMemory(tmp_path / "store", embeddings=bf16) as memory:
        assert [r.item.id for r in memory.search("alice", "translation", k=3)] == before


def test_int8_vectors_are_beyond_the_bar_and_get_their_own_store(
    tmp_path: Path, fp32: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    int8 = MiniLMEmbeddings(precision="int8")
    assert int8.variant == "int8"
    queries, docs = real_texts(lamp5_questions, 10, 60)
    quality = vector_quality(
        fp32.encode(queries), fp32.encode(docs), int8.encode(queries), int8.encode(docs)
    )
    assert not quality.holds(), quality  # measured: why int8 has its own embedding id
    with ProfileMemory(tmp_path / "store", embeddings=fp32) as memory:
        memory.add("alice", PAPERS)
    with pytest.raises(StoreError) as err:
        ProfileMemory(tmp_path / "store", embeddings=int8)
    assert INT8_EMBEDDING_ID in str(err.value) and DEFAULT_EMBEDDING_ID in str(err.value)
    with ProfileMemory(tmp_path / "int8-store", embeddings=int8) as memory:
        memory.add("alice", PAPERS)
        assert memory.search("alice", "neural machine translation", k=1)[0].item.id == "p1"


def test_onnx_is_fp32_through_onnx_runtime_exported_once_and_shares_fp32s_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fp32: MiniLMEmbeddings,
    lamp5_questions: list[dict],
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("STEPBACK_PROFILE_CACHE", str(tmp_path / "cache"))
    onnx = MiniLMEmbeddings(precision="onnx")
    assert onnx.variant == "onnx" and onnx.embedding_id == DEFAULT_EMBEDDING_ID
    (export,) = (tmp_path / "cache" / "onnx").glob("*.onnx")  # made from the shipped weights
    made = export.stat().st_mtime_ns
    queries, docs = real_texts(lamp5_questions, 10, 60)
    quality = vector_quality(
        fp32.encode(queries), fp32.encode(docs), onnx.encode(queries), onnx.encode(docs)
    )
    assert quality.holds(), quality
    assert quality.cosine_min >= 0.9999, quality  # the same fp32 arithmetic
    assert onnx.encode([]).shape == (0, 384) and len(onnx.embed_query("x")) == 384
    again = MiniLMEmbeddings(precision="onnx")
    assert again.variant == "onnx"
    assert [p.stat().st_mtime_ns for p in export.parent.glob("*.onnx")] == [made]  # reused
    with ProfileMemory(tmp_path / "store", embeddings=fp32) as memory:
        memory.add("alice", PAPERS)
        before = [r.item.id for r in memory.search("alice", "translation", k=3)]
    with ProfileMemory(tmp_path / "store", embeddings=onnx) as memory:
        assert [r.item.id for r in memory.search("alice", "translation", k=3)] == before
        memory.add("bob", PAPERS[:2])  # one store takes both
