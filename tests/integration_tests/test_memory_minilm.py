"""ProfileMemory with real MiniLM embeddings, real FAISS files and a real SQLite store: the
operations that embed text (adding, searching, rebuilding, isolation between users).

The tests of ProfileMemory that embed nothing are in tests/unit_tests/test_memory.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from langchain_stepback_profile import (
    DuplicateItemError,
    HistoryIndex,
    HistoryItem,
    InvalidArgumentError,
    InvalidItemError,
    ProfileDraft,
    ProfileMemory,
    StoreError,
    UnknownUserError,
)
from langchain_stepback_profile.history import history_hash
from langchain_stepback_profile.index import user_key
from tests.unit_tests import test_memory as unit
from tests.unit_tests.test_memory import PAPERS, TinyEmbeddings

pytestmark = pytest.mark.slow

embedded = unit.embedded  # fixtures shared with the unit tests of ProfileMemory
reopen = unit.reopen


def index_file(memory: ProfileMemory, user_id: str) -> Path:
    return memory.path / "indexes" / f"{user_key(user_id)}.faiss"


def ids_of(results) -> list[str]:
    return [r.item.id for r in results]


# ---------------------------------------------------------------- add
def test_add_returns_ids_in_order(memory: ProfileMemory) -> None:
    ids = memory.add("alice", [*PAPERS[:2], "a plain note", HistoryItem(id="h1", text="typed")])
    assert ids[:2] == ["p1", "p2"]
    assert ids[2] == memory.items("alice")[2].id and len(ids[2]) == 16
    assert ids[3] == "h1"
    assert [i.id for i in memory.items("alice")] == ids
    assert memory.users() == ["alice"]


def test_add_single_item(memory: ProfileMemory) -> None:
    assert memory.add("alice", PAPERS[0]) == ["p1"]
    assert len(memory.add("alice", "one string, not its characters")) == 1
    assert len(memory.items("alice")) == 2


def test_same_item_is_not_embedded_twice(
    memory: ProfileMemory, embedded: list[str], reopen: Callable[..., ProfileMemory]
) -> None:
    first = memory.add("alice", PAPERS[:3])
    assert len(embedded) == 3
    # same id + same text
    assert memory.add("alice", PAPERS[:3]) == first
    # same content under a new id -> the stored id, no new row
    renamed = {**PAPERS[0], "id": "other-id"}
    assert memory.add("alice", [renamed]) == ["p1"]
    assert len(embedded) == 3
    assert len(memory.items("alice")) == 3
    # and across a reopen (the store, not a cache, knows what is embedded)
    memory.close()
    again = reopen(memory.path)
    assert again.add("alice", [*PAPERS[:3], renamed]) == [*first, "p1"]
    assert len(embedded) == 3


def test_duplicates_inside_one_batch_are_embedded_once(
    memory: ProfileMemory, embedded: list[str]
) -> None:
    ids = memory.add(
        "alice",
        ["same words", "same words", {"id": "x", "text": "same words"}, PAPERS[0], PAPERS[0]],
    )
    assert ids[0] == ids[1] == ids[2]
    assert ids[3:] == ["p1", "p1"]
    assert len(embedded) == 2
    assert len(memory.items("alice")) == 2


def test_same_text_for_two_users_is_stored_for_each(memory: ProfileMemory) -> None:
    memory.add("alice", [{"id": "p1", "text": "shared text"}])
    memory.add("bob", [{"id": "p1", "text": "shared text"}])
    assert memory.search("alice", "shared text", k=5)[0].user_id == "alice"
    assert memory.search("bob", "shared text", k=5)[0].user_id == "bob"


def test_duplicate_id_with_other_text_is_refused(
    memory: ProfileMemory, embedded: list[str]
) -> None:
    memory.add("alice", PAPERS[:2])
    before = memory.items("alice")
    embedded.clear()
    batch = [PAPERS[2], {"id": "p1", "text": "different text"}, PAPERS[3]]
    with pytest.raises(DuplicateItemError) as err:
        memory.add("alice", batch)
    message = str(err.value)
    assert "'p1'" in message and "'alice'" in message
    assert "new id" in message and "memory.remove" in message  # how to fix it
    assert memory.items("alice") == before  # nothing of the batch was stored
    assert embedded == []  # refused before any embedding work
    assert ids_of(memory.search("alice", "text adventure games", k=10)) != []
    assert {r.item.id for r in memory.search("alice", "sarcasm", k=10)} == {"p1", "p2"}


def test_invalid_item_stores_nothing_and_names_position(memory: ProfileMemory) -> None:
    memory.add("alice", ["kept"])
    with pytest.raises(InvalidItemError, match=r"^item 2: "):
        memory.add("alice", ["new one", PAPERS[0], {"text": "   "}])
    assert [i.text for i in memory.items("alice")] == ["kept"]


def test_add_histories_several_users_in_one_call(
    memory: ProfileMemory, embedded: list[str]
) -> None:
    ids = memory.add_histories(
        {"alice": PAPERS[:2], "bob": PAPERS[2:4], "carol": "just one note"}, show_progress=False
    )
    assert ids["alice"] == ["p1", "p2"] and ids["bob"] == ["p3", "p4"]
    assert len(ids["carol"]) == 1
    assert memory.users() == ["alice", "bob", "carol"]
    assert len(embedded) == 5  # one shared batch
    assert set(ids_of(memory.search("bob", "protein", k=10))) == {"p3", "p4"}
    assert ids_of(memory.search("carol", "note", k=10)) == ids["carol"]


def test_add_histories_is_all_or_nothing(memory: ProfileMemory) -> None:
    memory.add("bob", [{"id": "b1", "text": "bob's"}])
    with pytest.raises(DuplicateItemError):
        memory.add_histories({"alice": PAPERS[:2], "bob": [{"id": "b1", "text": "changed"}]})
    assert memory.users() == ["bob"]


# ---------------------------------------------------------------- search
def test_search_own_items_best_first(memory: ProfileMemory) -> None:
    memory.add("alice", PAPERS)
    results = memory.search("alice", "attention models that translate languages", k=3)
    assert len(results) == 3
    assert results[0].item.id == "p1"
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 + 1e-5 for s in scores)
    assert all(r.user_id == "alice" for r in results)


def test_exact_text_scores_one(memory: ProfileMemory) -> None:
    memory.add("alice", ["the quick brown fox", "an unrelated sentence about taxes"])
    best = memory.search("alice", "the quick brown fox", k=1)
    assert len(best) == 1
    assert best[0].item.text == "the quick brown fox"
    assert best[0].score == pytest.approx(1.0, abs=1e-4)


def test_k_is_respected(memory: ProfileMemory) -> None:
    memory.add("alice", PAPERS)
    assert len(memory.search("alice", "research", k=1)) == 1
    assert len(memory.search("alice", "research", k=4)) == 4
    assert len(memory.search("alice", "research", k=100)) == 5
    assert len(memory.search("alice", "research", k=np.int64(2))) == 2
    assert len(memory.search("alice", "research")) == 4  # default


@pytest.mark.parametrize("k", [0, -1, 1.5, 2.0, "3", None, True])
def test_bad_k_is_refused(memory: ProfileMemory, k: object) -> None:
    memory.add("alice", PAPERS[:1])
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        memory.search("alice", "x", k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("query", ["", "   ", None, 5])
def test_bad_query_is_refused(memory: ProfileMemory, query: object) -> None:
    memory.add("alice", PAPERS[:1])
    with pytest.raises(InvalidArgumentError, match="query must be a non-empty string"):
        memory.search("alice", query)  # type: ignore[arg-type]


def test_unknown_user(memory: ProfileMemory) -> None:
    memory.add("alice", PAPERS[:1])
    with pytest.raises(UnknownUserError) as err:
        memory.search("bob", "anything")
    message = str(err.value)
    assert "'bob'" in message
    assert "memory.add('bob'" in message  # how to fix it
    assert isinstance(err.value, KeyError)
    for call in (
        lambda: memory.items("bob"),
        lambda: memory.remove("bob", ["p1"]),
        lambda: memory.forget("bob"),
        lambda: memory.get_profile("bob"),
        lambda: memory.set_profile("bob", ProfileDraft(summary="x")),
    ):
        with pytest.raises(UnknownUserError):
            call()
    assert memory.users() == ["alice"]


def test_isolation_between_near_identical_users(memory: ProfileMemory) -> None:
    topics = [
        "neural machine translation with attention",
        "protein structure prediction",
        "reinforcement learning for text games",
        "sarcasm detection on twitter",
        "galaxy redshift surveys",
        "graph neural networks for molecules",
    ]
    alice = memory.add("alice", [{"id": f"a{i}", "text": t} for i, t in enumerate(topics)])
    bob = memory.add("bob", [{"id": f"b{i}", "text": t + "."} for i, t in enumerate(topics)])
    memory.add("carol", [{"id": f"c{i}", "text": t} for i, t in enumerate(topics)])
    queries = [*topics[:3], *(t + "." for t in topics[3:]), "translation", "stars", "x"]
    for query in queries:
        got_alice = memory.search("alice", query, k=50)
        got_bob = memory.search("bob", query, k=50)
        assert [r.user_id for r in got_alice] == ["alice"] * len(topics)
        assert [r.user_id for r in got_bob] == ["bob"] * len(topics)
        assert {r.item.id for r in got_alice} == set(alice)
        assert {r.item.id for r in got_bob} == set(bob)
        top = memory.search("alice", query, k=1)
        assert len(top) == 1 and top[0].item.id in alice
    # bob's exact text, asked of alice, still only gives alice's items
    assert memory.search("alice", topics[0] + ".", k=1)[0].item.id == "a0"
    assert memory.search("bob", topics[0], k=1)[0].item.id == "b0"


def test_search_many(memory: ProfileMemory) -> None:
    memory.add_histories({"alice": PAPERS[:2], "bob": PAPERS[2:]}, show_progress=False)
    results = memory.search_many(["bob", "alice"], "protein folding", k=2)
    assert list(results) == ["bob", "alice"]
    assert results["alice"][0].item.id == "p2"
    assert {r.item.id for r in results["bob"]} <= {"p3", "p4", "p5"}


def test_real_lamp5_history(memory: ProfileMemory, lamp5_questions: list[dict]) -> None:
    question = lamp5_questions[0]
    papers = question["profile"][:20]
    ids = memory.add(question["user"], papers)
    assert ids == [str(p["id"]).strip() for p in papers]
    for paper in papers[::7]:
        hits = memory.search(question["user"], paper["abstract"], k=3)
        assert paper["id"] in ids_of(hits)


# ---------------------------------------------------------------- remove / forget
def test_remove(memory: ProfileMemory, embedded: list[str]) -> None:
    memory.add("alice", PAPERS)
    assert memory.remove("alice", ["p1", "p3", "not-there"]) == 2
    assert [i.id for i in memory.items("alice")] == ["p2", "p4", "p5"]
    assert set(ids_of(memory.search("alice", "translation", k=10))) == {"p2", "p4", "p5"}
    assert HistoryIndex(memory.path / "indexes", 384).count("alice") == 3  # saved to disk
    assert memory.remove("alice", []) == 0
    # the id is free again, for other text
    embedded.clear()
    assert memory.add("alice", [{"id": "p1", "text": "brand new text"}]) == ["p1"]
    assert embedded == ["brand new text"]


def test_remove_one_id_given_as_string(memory: ProfileMemory) -> None:
    memory.add("alice", [{"id": "p", "text": "p text"}, {"id": "1", "text": "one"}, "keep"])
    assert memory.remove("alice", "p1") == 0  # not 'p' and '1'
    assert len(memory.items("alice")) == 3
    assert memory.remove("alice", "p") == 1
    assert len(memory.items("alice")) == 2


def test_remove_everything_makes_user_unknown(memory: ProfileMemory) -> None:
    memory.add("alice", PAPERS[:2])
    assert memory.remove("alice", ["p1", "p2"]) == 2
    assert memory.users() == []
    with pytest.raises(UnknownUserError):
        memory.search("alice", "x")


def test_forget(memory: ProfileMemory) -> None:
    memory.add("alice", PAPERS)
    memory.set_profile("alice", ProfileDraft(summary="first"))
    memory.set_profile("alice", ProfileDraft(summary="second"))
    memory.add("bob", PAPERS[:2])
    memory.set_profile("bob", ProfileDraft(summary="bob"))
    bob_before = memory.search("bob", "translation", k=2)
    assert index_file(memory, "alice").exists()

    assert memory.forget("alice") == {"items": 5, "vectors": 5, "profile_versions": 2}

    assert memory.users() == ["bob"]
    assert not index_file(memory, "alice").exists()
    assert memory.store.get_items("alice") == []
    assert memory.store.profile_versions("alice") == []
    for call in (lambda: memory.search("alice", "x"), lambda: memory.get_profile("alice")):
        with pytest.raises(UnknownUserError):
            call()
    # bob is untouched
    assert memory.search("bob", "translation", k=2) == bob_before
    profile = memory.get_profile("bob")
    assert profile is not None and profile.summary == "bob"
    assert index_file(memory, "bob").exists()
    # alice can come back with a clean slate
    memory.add("alice", ["a new start"])
    assert [r.item.text for r in memory.search("alice", "translation", k=10)] == ["a new start"]
    assert memory.get_profile("alice") is None


def test_forget_survives_reopen(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory]
) -> None:
    memory.add_histories({"alice": PAPERS[:2], "bob": PAPERS[2:]}, show_progress=False)
    memory.forget("alice")
    memory.close()
    again = reopen(memory.path)
    assert again.users() == ["bob"]
    with pytest.raises(UnknownUserError):
        again.search("alice", "x")


# ---------------------------------------------------------------- profiles
def test_set_profile_stores_new_edited_versions(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory]
) -> None:
    memory.add("alice", PAPERS[:3])
    assert memory.get_profile("alice") is None
    first = memory.set_profile("alice", ProfileDraft(interests=["MT"], summary="Works on MT."))
    assert first.version == 1 and first.edited
    assert first.user_id == "alice"
    assert first.item_ids == ["p1", "p2", "p3"]
    assert first.history_hash == history_hash(memory.items("alice"))
    second = memory.set_profile("alice", ProfileDraft(interests=["MT", "RL"], summary="Edited."))
    assert second.version == 2
    assert memory.get_profile("alice") == second
    assert [p.summary for p in memory.profile_versions("alice")] == ["Works on MT.", "Edited."]
    memory.close()
    again = reopen(memory.path)
    latest = again.get_profile("alice")
    assert latest is not None and latest.version == 2 and latest.interests == ["MT", "RL"]


# ---------------------------------------------------------------- async
async def test_aadd_and_asearch(memory: ProfileMemory) -> None:
    assert await memory.aadd("alice", PAPERS) == ["p1", "p2", "p3", "p4", "p5"]
    results = await memory.asearch("alice", "detecting sarcasm in tweets", k=2)
    assert results[0].item.id == "p4"
    assert results == memory.search("alice", "detecting sarcasm in tweets", k=2)
    with pytest.raises(UnknownUserError):
        await memory.asearch("bob", "x")


# ---------------------------------------------------------------- reopening
def test_reopen_gives_identical_results(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory], embedded: list[str]
) -> None:
    memory.add_histories({"alice": PAPERS, "bob": PAPERS[:2]}, show_progress=False)
    queries = ["translation", "biology", "games", "social media", "astronomy"]
    before = {q: memory.search("alice", q, k=3) for q in queries}
    memory.close()
    embedded.clear()
    again = reopen(memory.path)
    assert again.users() == ["alice", "bob"]
    assert {q: again.search("alice", q, k=3) for q in queries} == before
    assert embedded == []  # nothing was re-embedded


@pytest.mark.parametrize(
    "other",
    [TinyEmbeddings(8, "tiny-8"), TinyEmbeddings(384, "tiny-384")],
    ids=["other-dimension", "same-dimension"],
)
def test_reopen_with_other_embeddings_is_refused(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory], other: TinyEmbeddings
) -> None:
    memory.add("alice", PAPERS)
    before = memory.search("alice", "translation", k=3)
    memory.close()
    with pytest.raises(StoreError) as err:
        ProfileMemory(memory.path, embeddings=other)
    message = str(err.value)
    assert "sentence-transformers/all-MiniLM-L6-v2" in message and other.embedding_id in message
    assert "same embeddings" in message and "new path" in message
    again = reopen(memory.path)  # still usable with the right model
    assert again.search("alice", "translation", k=3) == before
    again.add("alice", ["one more"])
    assert len(again.items("alice")) == 6


# ---------------------------------------------------------------- crash recovery
def _every_item_is_found(mem: ProfileMemory, user_id: str) -> None:
    items = mem.items(user_id)
    assert {r.item.id for r in mem.search(user_id, "anything", k=100)} == {i.id for i in items}
    for item in (items[0], items[-1]):  # the vectors are the right ones, not just present
        hit = mem.search(user_id, item.text, k=1)[0]
        assert hit.item.id == item.id
        assert hit.score == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_damaged_index_file_is_rebuilt_from_store(
    memory: ProfileMemory,
    reopen: Callable[..., ProfileMemory],
    embedded: list[str],
    damage: str,
) -> None:
    memory.add_histories({"alice": PAPERS, "bob": PAPERS[:2]}, show_progress=False)
    memory.close()
    path = index_file(memory, "alice")
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(os.urandom(2048))
    embedded.clear()

    again = reopen(memory.path)
    _every_item_is_found(again, "alice")
    assert len(embedded) == 5  # alice's items re-embedded, bob's untouched
    assert HistoryIndex(memory.path / "indexes", 384).count("alice") == 5  # repair was saved
    _every_item_is_found(again, "bob")
    assert len(embedded) == 5


def test_item_written_only_to_store_is_indexed_on_reopen(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory], embedded: list[str]
) -> None:
    memory.add("alice", PAPERS[:3])
    # a crash between the SQLite commit and the index save
    memory.store.add_items("alice", [HistoryItem(id="late", text="written before the crash")])
    memory.close()
    embedded.clear()
    again = reopen(memory.path)
    _every_item_is_found(again, "alice")
    assert embedded == ["written before the crash"]
    assert again.search("alice", "written before the crash", k=1)[0].item.id == "late"


def test_item_removed_only_from_store_is_dropped_on_reopen(
    memory: ProfileMemory, reopen: Callable[..., ProfileMemory]
) -> None:
    memory.add("alice", PAPERS)
    memory.store.remove_items("alice", ["p1"])  # a crash before the index save
    memory.close()
    again = reopen(memory.path)
    assert len(again.search("alice", "translation", k=5)) == 4
    assert "p1" not in ids_of(again.search("alice", "neural machine translation", k=5))
    assert HistoryIndex(memory.path / "indexes", 384).count("alice") == 4
