"""HistoryIndex on real FAISS files: cosine search, persistence, per-user files, damage handling.

Every test that takes the ``index`` fixture runs for both index kinds (flat and HNSW).
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from langchain_stepback_profile import HistoryIndex, InvalidArgumentError, StoreError
from langchain_stepback_profile.index import (
    REBUILD_DEAD_SHARE,
    atomic_write_bytes,
    index_kind,
    seal,
    user_key,
)

DIM = 8


def unit(*rows: list[float]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def random_unit(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=["flat", "hnsw"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(tmp_path: Path, kind: str) -> HistoryIndex:
    return HistoryIndex(tmp_path / "indexes", dim=DIM, kind=kind)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".faiss"))


# ---------------------------------------------------------------- add / search
def test_search_returns_cosine_scores_best_first(index: HistoryIndex) -> None:
    vectors = unit([1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0])
    index.add("alice", [10, 20, 30], vectors)
    hits = index.search("alice", unit([1, 0, 0, 0, 0, 0, 0, 0])[0], k=3)
    assert [vid for vid, _ in hits] == [10, 20, 30]
    assert [score for _, score in hits] == pytest.approx([1.0, np.sqrt(0.5), 0.0], abs=1e-6)


def test_scores_equal_dot_products_of_unit_vectors(index: HistoryIndex) -> None:
    vectors = random_unit(50)
    index.add("alice", list(range(100, 150)), vectors)
    query = random_unit(1, seed=1)[0]
    hits = index.search("alice", query, k=10)
    expected = vectors @ query
    order = np.argsort(-expected)[:10]
    assert [vid for vid, _ in hits] == [100 + int(i) for i in order]
    assert [s for _, s in hits] == pytest.approx(expected[order].tolist(), abs=1e-5)
    assert all(a >= b for (_, a), (_, b) in itertools.pairwise(hits))


def test_k_larger_than_size_returns_everything(index: HistoryIndex) -> None:
    index.add("alice", [1, 2], random_unit(2))
    hits = index.search("alice", random_unit(1, seed=3)[0], k=50)
    assert sorted(vid for vid, _ in hits) == [1, 2]


def test_search_unknown_or_empty_user(index: HistoryIndex) -> None:
    assert index.search("nobody", random_unit(1)[0], k=5) == []
    assert index.count("nobody") == 0
    assert index.ids("nobody").tolist() == []
    assert not index.path("nobody").exists()  # reading never creates files


def test_users_are_separate(index: HistoryIndex) -> None:
    same = random_unit(3)
    index.add("alice", [1, 2, 3], same)
    index.add("bob", [4, 5, 6], same)
    for query in random_unit(20, seed=9):
        assert {vid for vid, _ in index.search("alice", query, k=10)} == {1, 2, 3}
        assert {vid for vid, _ in index.search("bob", query, k=10)} == {4, 5, 6}


def test_add_checks_shape(index: HistoryIndex) -> None:
    with pytest.raises(StoreError, match="dimension 8"):
        index.add("alice", [1], random_unit(1, dim=4))
    with pytest.raises(StoreError):
        index.add("alice", [1], random_unit(1)[0])  # 1-D
    assert index.count("alice") == 0


def test_remove(index: HistoryIndex) -> None:
    index.add("alice", [1, 2, 3], random_unit(3))
    assert index.remove("alice", [2, 99]) == 1
    assert sorted(index.ids("alice").tolist()) == [1, 3]
    assert {vid for vid, _ in index.search("alice", random_unit(1, 5)[0], k=10)} == {1, 3}
    assert index.remove("alice", []) == 0
    assert index.remove("nobody", [1]) == 0


# ---------------------------------------------------------------- persistence
def test_save_and_reload_equals_before(index: HistoryIndex, tmp_path: Path) -> None:
    vectors = random_unit(30)
    vids = list(range(1000, 1030))
    index.add("alice", vids, vectors)
    index.remove("alice", [1005])
    index.save("alice")
    queries = random_unit(5, seed=4)
    before = [index.search("alice", q, k=7) for q in queries]

    reloaded = HistoryIndex(tmp_path / "indexes", dim=DIM)
    assert reloaded.count("alice") == 29
    assert sorted(reloaded.ids("alice").tolist()) == sorted(set(vids) - {1005})
    assert [reloaded.search("alice", q, k=7) for q in queries] == before
    assert leftovers(tmp_path / "indexes") == []


def test_unsaved_changes_are_not_on_disk(index: HistoryIndex, tmp_path: Path) -> None:
    index.add("alice", [1], random_unit(1))
    index.save("alice")
    index.add("alice", [2], random_unit(1, seed=2))
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count("alice") == 1


def test_delete(index: HistoryIndex, tmp_path: Path) -> None:
    index.add("alice", [1], random_unit(1))
    index.add("bob", [2], random_unit(1))
    index.save("alice")
    index.save("bob")
    assert index.delete("alice") is True
    assert not index.path("alice").exists()
    assert index.count("alice") == 0  # gone from memory too
    assert index.delete("alice") is False
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count("bob") == 1


# ---------------------------------------------------------------- file names
@pytest.mark.parametrize(
    "user_id", ["../../etc/passwd", "a/b", "/abs/path", "..", "C:\\x", "x\x00y", "ü👍", " "]
)
def test_user_files_are_named_by_hash(index: HistoryIndex, tmp_path: Path, user_id: str) -> None:
    path = index.path(user_id)
    assert path.parent == index.folder
    assert path.name == f"{user_key(user_id)}.faiss"
    assert len(user_key(user_id)) == 40 and all(c in "0123456789abcdef" for c in user_key(user_id))
    index.add(user_id, [1], random_unit(1))
    index.save(user_id)
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert everything == [path]
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count(user_id) == 1


def test_distinct_users_get_distinct_files(index: HistoryIndex) -> None:
    names = {index.path(u).name for u in ["alice", "Alice", "alice ", "a/b", "a_b", "a\\b"]}
    assert len(names) == 6


# ---------------------------------------------------------------- damaged files
@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_unreadable_file_is_treated_as_empty(
    index: HistoryIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    index.add("alice", [1, 2], random_unit(2))
    index.save("alice")
    path = index.path("alice")
    good = path.read_bytes()
    path.write_bytes(
        {"garbage": os.urandom(4096), "empty": b"", "truncated": good[: len(good) // 3]}[damage]
    )
    fresh = HistoryIndex(tmp_path / "indexes", dim=DIM)
    with caplog.at_level(logging.WARNING, logger="langchain_stepback_profile.index"):
        assert fresh.count("alice") == 0
    assert any(
        "unreadable" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records
    )
    # it can be rebuilt and saved over the damaged file
    fresh.add("alice", [1], random_unit(1))
    fresh.save("alice")
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count("alice") == 1


def test_wrong_dimension_file_raises_store_error(index: HistoryIndex, tmp_path: Path) -> None:
    index.add("alice", [1], random_unit(1))
    index.save("alice")
    other = HistoryIndex(tmp_path / "indexes", dim=16)
    with pytest.raises(StoreError) as err:
        other.count("alice")
    message = str(err.value)
    assert "dimension 8" in message and "dimension 16" in message
    assert "another embedding model" in message
    assert index.path("alice").exists()  # not deleted or overwritten


@pytest.mark.parametrize("foreign", ["IndexFlatIP", "IndexFlatL2", "IndexIDMap"])
def test_foreign_index_file_raises_store_error(index: HistoryIndex, foreign: str) -> None:
    if foreign == "IndexIDMap":
        other = faiss.IndexIDMap(faiss.IndexFlatIP(DIM))
        other.add_with_ids(random_unit(2), np.array([1, 2], dtype=np.int64))
    else:
        other = getattr(faiss, foreign)(DIM)
        other.add(random_unit(2))
    index.path("alice").write_bytes(seal(faiss.serialize_index(other).tobytes()))
    with pytest.raises(
        StoreError, match=f"holds a {foreign} .*expected IndexIDMap2 of dimension 8"
    ):
        index.search("alice", random_unit(1)[0], k=1)


@pytest.mark.parametrize(
    "damage",
    ["unsealed", "flipped byte", "truncated", "zero bytes", "trailer only", "appended"],
)
def test_an_index_file_failing_its_checksum_is_never_loaded(
    index: HistoryIndex, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index.add("alice", [1, 2, 3], random_unit(3))
    index.save("alice")
    sealed = index.path("alice").read_bytes()
    raw = sealed[: -len(seal(b"")) or None]
    damaged = {
        "unsealed": raw,  # a file of an older version, or written by other software
        "flipped byte": sealed[:40] + bytes([sealed[40] ^ 0x10]) + sealed[41:],
        "truncated": sealed[: len(sealed) // 2],
        "zero bytes": b"",
        "trailer only": seal(b""),
        "appended": sealed + b"x",
    }[damage]
    index.path("alice").write_bytes(damaged)
    fresh = HistoryIndex(index.folder, DIM)
    assert fresh.count("alice") == 0  # empty: the memory rebuilds it from the store
    assert "checksum" in caplog.text or "unreadable" in caplog.text


# ---------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_save_keeps_old_file(
    index: HistoryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    index.add("alice", [1, 2], random_unit(2))
    index.save("alice")
    old = index.path("alice").read_bytes()
    index.add("alice", [3], random_unit(1, seed=7))

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        index.save("alice")
    monkeypatch.undo()

    assert index.path("alice").read_bytes() == old
    assert leftovers(tmp_path / "indexes") == []
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count("alice") == 2
    index.save("alice")  # works again once the disk is fine
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).count("alice") == 3


def test_failed_first_save_leaves_nothing(
    index: HistoryIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.add("alice", [1], random_unit(1))

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        index.save("alice")
    monkeypatch.undo()
    assert list((tmp_path / "indexes").iterdir()) == []


# ---------------------------------------------------------------- index kinds
def clustered_unit(n: int, seed: int, dim: int = 32, centers: int = 40) -> np.ndarray:
    """Unit vectors in clusters on a 12-dimensional subspace plus a little noise: low intrinsic
    dimension, like text embeddings (random Gaussian vectors are HNSW's worst case)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(12, dim))  # the same space for every seed
    middle = np.random.default_rng(98).normal(size=(centers, 12))
    latent = middle[rng.integers(0, centers, size=n)] + 0.5 * rng.normal(size=(n, 12))
    vectors = (latent @ basis + 0.15 * rng.normal(size=(n, dim))).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_file_keeps_the_kind(index: HistoryIndex, tmp_path: Path, kind: str) -> None:
    index.add("alice", [1, 2, 3], random_unit(3))
    assert index.kind_of("alice") == kind
    index.save("alice")
    for other in ("auto", "flat", "hnsw"):  # the file says what it is; a write may change it
        reloaded = HistoryIndex(tmp_path / "indexes", dim=DIM, kind=other)
        assert reloaded.kind_of("alice") == kind


def test_auto_switches_to_hnsw_past_the_threshold_and_back(tmp_path: Path) -> None:
    index = HistoryIndex(tmp_path / "indexes", dim=DIM, kind="auto", hnsw_above=100)
    vectors = random_unit(160, seed=2)
    index.add("alice", list(range(100)), vectors[:100])
    assert index.kind_of("alice") == "flat"
    index.add("alice", [100, 101], vectors[100:102])
    assert index.kind_of("alice") == "hnsw"
    assert sorted(index.ids("alice").tolist()) == list(range(102))
    assert index.search("alice", vectors[7], k=1)[0][0] == 7
    index.save("alice")
    assert HistoryIndex(tmp_path / "indexes", dim=DIM).kind_of("alice") == "hnsw"
    # above half the threshold it stays HNSW (no flapping); a rebuild below it goes flat
    index.remove("alice", list(range(40)))
    assert index.kind_of("alice") == "hnsw" and index.count("alice") == 62
    index.remove("alice", list(range(40, 60)))
    assert index.kind_of("alice") == "flat" and index.count("alice") == 42
    assert sorted(index.ids("alice").tolist()) == list(range(60, 102))
    # a first add past the threshold builds HNSW at once
    index.add("bob", list(range(160)), vectors)
    assert index.kind_of("bob") == "hnsw" and index.count("bob") == 160


def test_forced_kind_converts_an_index_of_the_other_kind_at_the_next_add(tmp_path: Path) -> None:
    flat = HistoryIndex(tmp_path / "indexes", dim=DIM, kind="flat")
    flat.add("alice", [1, 2], random_unit(2))
    flat.save("alice")
    hnsw = HistoryIndex(tmp_path / "indexes", dim=DIM, kind="hnsw")
    assert hnsw.kind_of("alice") == "flat"
    hnsw.add("alice", [3], random_unit(1, seed=3))
    assert hnsw.kind_of("alice") == "hnsw"
    assert sorted(hnsw.ids("alice").tolist()) == [1, 2, 3]


def test_hnsw_removal_leaves_tombstones_that_are_never_served(tmp_path: Path) -> None:
    index = HistoryIndex(tmp_path / "indexes", dim=32, kind="hnsw")
    vectors = clustered_unit(1000, seed=5)
    index.add("alice", list(range(1000)), vectors)
    removed = list(range(0, 100, 2))  # 5%: below the rebuild share
    assert index.remove("alice", [*removed, 5000]) == len(removed)
    raw = index.get("alice")
    assert raw.ntotal == 1000  # tombstones, not a rebuild
    assert index.count("alice") == 950
    assert sorted(index.ids("alice").tolist()) == sorted(set(range(1000)) - set(removed))
    index.save("alice")
    for source in (index, HistoryIndex(tmp_path / "indexes", dim=32)):  # in memory and on file
        for vid in removed:  # the removed vector itself as the query: it is never served
            hits = source.search("alice", vectors[vid], k=10)
            assert len(hits) == 10 and not {v for v, _ in hits} & set(removed)
        assert source.count("alice") == 950
    data = index.path("alice").read_bytes()
    assert not any(vectors[vid].tobytes() in data for vid in removed)  # gone, not hidden
    assert vectors[1].tobytes() in data
    assert index.remove("alice", removed) == 0  # removing again removes nothing


def test_removed_vectors_are_not_in_the_saved_file(index: HistoryIndex) -> None:
    vectors = random_unit(40, seed=8)
    index.add("alice", list(range(40)), vectors)
    index.remove("alice", [3, 4])
    index.save("alice")
    data = index.path("alice").read_bytes()
    assert vectors[3].tobytes() not in data and vectors[4].tobytes() not in data
    assert vectors[5].tobytes() in data


def test_hnsw_is_rebuilt_once_tombstones_pass_their_share(tmp_path: Path) -> None:
    index = HistoryIndex(tmp_path / "indexes", dim=32, kind="hnsw")
    vectors = clustered_unit(500, seed=6)
    index.add("alice", list(range(500)), vectors)
    step = int(REBUILD_DEAD_SHARE * 500) // 2
    index.remove("alice", list(range(step)))
    assert index.get("alice").ntotal == 500
    index.remove("alice", list(range(step, 3 * step)))  # past the share: rebuilt
    assert index.get("alice").ntotal == index.count("alice") == 500 - 3 * step
    assert index_kind(index.get("alice")) == "hnsw"
    assert sorted(index.ids("alice").tolist()) == list(range(3 * step, 500))
    assert index.search("alice", vectors[400], k=1)[0][0] == 400


def test_repeated_ids_in_hnsw_go_with_every_copy(tmp_path: Path) -> None:
    index = HistoryIndex(tmp_path / "indexes", dim=DIM, kind="hnsw")
    index.add("alice", list(range(20)), random_unit(20))
    index.add("alice", [3], random_unit(1, seed=4))  # what the memory's repair undoes
    assert sorted(index.ids("alice").tolist()).count(3) == 2
    assert index.remove("alice", [3]) == 2
    assert 3 not in index.ids("alice").tolist()


def recall_at(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def test_hnsw_recall_against_flat(tmp_path: Path) -> None:
    dim, n, k = 32, 4000, 10
    vectors = clustered_unit(n, seed=11, dim=dim)
    queries = clustered_unit(200, seed=12, dim=dim)
    flat = HistoryIndex(tmp_path / "flat", dim=dim, kind="flat")
    hnsw = HistoryIndex(tmp_path / "hnsw", dim=dim, kind="hnsw")
    for index in (flat, hnsw):
        index.add("alice", list(range(n)), vectors)

    def top(index: HistoryIndex) -> list[list[int]]:
        return [[v for v, _ in index.search("alice", q, k)] for q in queries]

    assert recall_at(top(hnsw), top(flat)) >= 0.95
    removed = list(range(0, n, 7))  # about 14% tombstones
    for index in (flat, hnsw):
        index.remove("alice", removed)
    assert hnsw.get("alice").ntotal == n
    assert recall_at(top(hnsw), top(flat)) >= 0.95
    truth = top(flat)
    hnsw.ef_search = 256  # a settable trade-off: more candidates, better recall, slower
    high = recall_at(top(hnsw), truth)
    hnsw.ef_search = 1  # raised to k
    assert recall_at(top(hnsw), truth) < high and high >= 0.99


@pytest.mark.parametrize("bad", ["ivf", "HNSW", "", None, 3])
def test_an_unknown_kind_is_refused_naming_the_choices(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="'auto', 'flat', 'hnsw'"):
        HistoryIndex(tmp_path, dim=DIM, kind=bad)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "64"])
def test_a_bad_ef_search_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="ef_search"):
        HistoryIndex(tmp_path, dim=DIM, ef_search=bad)


@pytest.mark.parametrize("inner", ["IndexFlatL2", "IndexHNSWFlat L2"])
def test_an_id_map_over_a_foreign_index_raises_store_error(index: HistoryIndex, inner: str) -> None:
    sub = faiss.IndexFlatL2(DIM) if inner == "IndexFlatL2" else faiss.IndexHNSWFlat(DIM, 8)
    other = faiss.IndexIDMap2(sub)
    other.add_with_ids(random_unit(2), np.array([1, 2], dtype=np.int64))
    index.path("alice").write_bytes(seal(faiss.serialize_index(other).tobytes()))
    with pytest.raises(StoreError, match="expected IndexFlatIP or IndexHNSWFlat of inner product"):
        index.search("alice", random_unit(1)[0], k=1)
