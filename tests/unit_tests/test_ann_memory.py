"""ProfileMemory's index option: the kind is chosen, remembered by the store, and every
storage guarantee (removal, persistence, seal, repair from the database) holds for HNSW too."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile import InvalidArgumentError, ProfileMemory, StoreError

DIM = 16
ITEMS = [{"id": f"i{n}", "text": f"item {n} about topic {n % 7}"} for n in range(40)]


def open_memory(path: Path, **options: object) -> ProfileMemory:
    return ProfileMemory(
        path,
        embeddings=DeterministicFakeEmbedding(size=DIM),
        profile_strategy="extractive",
        **options,
    )


def kind_of(memory: ProfileMemory, user_id: str) -> str:
    assert memory._index is not None
    return memory._index.kind_of(user_id)


def test_the_store_remembers_the_index_kind(tmp_path: Path) -> None:
    with open_memory(tmp_path / "s", index="hnsw") as memory:
        memory.add("alice", ITEMS[:10])
        assert kind_of(memory, "alice") == "hnsw"
    with open_memory(tmp_path / "s") as memory:  # reopened without the option
        assert memory.store.get_meta("index_kind") == "hnsw"
        memory.add("bob", ITEMS[:3])
        assert kind_of(memory, "bob") == "hnsw"
        assert [h.item.id for h in memory.search("alice", ITEMS[4]["text"], k=1)] == ["i4"]
    with open_memory(tmp_path / "s", index="flat") as memory:  # a new choice is remembered
        memory.add("alice", ITEMS[10:12])
        assert kind_of(memory, "alice") == "flat"  # converted at its next write
        assert kind_of(memory, "bob") == "hnsw"  # the others at theirs
    with open_memory(tmp_path / "s") as memory:
        assert memory.store.get_meta("index_kind") == "flat"
        assert len(memory.items("alice")) == 12


def test_auto_is_the_default_and_goes_hnsw_past_the_threshold(tmp_path: Path) -> None:
    with open_memory(tmp_path / "s") as memory:
        memory.add("alice", ITEMS[:5])
        assert kind_of(memory, "alice") == "flat"
        assert memory.store.get_meta("index_kind") in (None, "auto")
        assert memory._index is not None
        memory._index.hnsw_above = 20
        memory.add("alice", ITEMS[5:25])
        assert kind_of(memory, "alice") == "hnsw"
        assert [h.item.id for h in memory.search("alice", ITEMS[21]["text"], k=1)] == ["i21"]


@pytest.mark.parametrize("bad", ["ivf", "Flat", ""])
def test_an_unknown_index_kind_is_refused_before_anything_is_written(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="index must be one of 'auto', 'flat', 'hnsw'"):
        open_memory(tmp_path / "s", index=bad)
    assert not (tmp_path / "s").exists()
    with pytest.raises(InvalidArgumentError, match="ef_search must be a positive integer"):
        open_memory(tmp_path / "s", ef_search=0)


def test_ef_search_reaches_the_index(tmp_path: Path) -> None:
    with open_memory(tmp_path / "s", index="hnsw", ef_search=200) as memory:
        memory.add("alice", ITEMS[:3])
        assert memory._index is not None and memory._index.ef_search == 200


def test_a_damaged_stored_index_kind_is_a_store_error(tmp_path: Path) -> None:
    with open_memory(tmp_path / "s") as memory:
        memory.store.set_meta("index_kind", "bogus")
    with pytest.raises(StoreError, match="unknown index kind 'bogus'"):
        open_memory(tmp_path / "s")


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_removed_items_never_come_back(tmp_path: Path, kind: str) -> None:
    with open_memory(tmp_path / "s", index=kind) as memory:
        memory.add("alice", ITEMS)
        assert memory.remove("alice", ["i3", "i4"]) == 2
        for probe in ("i3", "i4"):
            hits = memory.search("alice", ITEMS[int(probe[1:])]["text"], k=10)
            assert len(hits) == 10 and not {h.item.id for h in hits} & {"i3", "i4"}
        assert kind_of(memory, "alice") == kind
    with open_memory(tmp_path / "s") as memory:
        hits = memory.search("alice", ITEMS[3]["text"], k=40)
        assert sorted(h.item.id for h in hits) == sorted(
            f"i{n}" for n in range(40) if n not in (3, 4)
        )
        assert memory.check_integrity() == {"alice": "ok"}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("damage", ["flipped byte", "deleted", "other user's file"])
def test_a_damaged_index_is_repaired_from_the_database(
    tmp_path: Path, kind: str, damage: str
) -> None:
    with open_memory(tmp_path / "s", index=kind) as memory:
        memory.add("alice", ITEMS[:30])
        memory.add("bob", ITEMS[30:])
        assert memory._index is not None
        path, other = memory._index.path("alice"), memory._index.path("bob")
    data = path.read_bytes()
    if damage == "flipped byte":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(other.read_bytes())  # sealed, but bob's vectors
    with open_memory(tmp_path / "s") as memory:
        assert memory.check_integrity() == {"alice": "repaired", "bob": "ok"}
        assert kind_of(memory, "alice") == kind
        assert [h.item.id for h in memory.search("alice", ITEMS[7]["text"], k=1)] == ["i7"]
        assert {h.item.id for h in memory.search("alice", ITEMS[35]["text"], k=30)} == {
            f"i{n}" for n in range(30)
        }
    with open_memory(tmp_path / "s") as memory:  # the repair was saved
        assert memory.check_integrity() == {"alice": "ok", "bob": "ok"}
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])


def test_forget_removes_the_hnsw_index_file(tmp_path: Path) -> None:
    with open_memory(tmp_path / "s", index="hnsw") as memory:
        memory.add("alice", ITEMS)
        assert memory._index is not None
        path = memory._index.path("alice")
        assert path.exists()
        memory.forget("alice")
        assert not path.exists()
        assert memory._index.count("alice") == 0
