"""The storage suite, run on every ProfileStore implementation: SQLiteProfileStore on real SQLite
files, LangGraphProfileStore on a LangGraph InMemoryStore and on a real LangGraph PostgresStore,
and PostgresProfileStore on a real PostgreSQL server (a database of its own per test). Items,
vector ids, profiles, isolation, atomicity; then what only a SQLite file can get wrong (locks,
corrupt files)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres import PostgresStore

from langchain_stepback_profile import (
    DuplicateItemError,
    HistoryItem,
    ProfileStore,
    SQLiteProfileStore,
    StoreError,
    UserProfile,
)
from langchain_stepback_profile.langgraph_store import LangGraphProfileStore
from langchain_stepback_profile.postgres_store import PostgresProfileStore
from langchain_stepback_profile.store import ForgetReport, ItemAnnotation, StoredItem


@dataclass
class Backend:
    """One storage implementation: how to open it and what a clashing item id raises."""

    open: Callable[[], ProfileStore]  # a new handle on the same data
    clash: type[Exception]
    clash_message: str


@pytest.fixture(params=["sqlite", "langgraph", "langgraph-postgres", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend(
            lambda: SQLiteProfileStore(tmp_path / "store.sqlite3"), sqlite3.IntegrityError, "UNIQUE"
        )
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield Backend(
            lambda: PostgresProfileStore(url), DuplicateItemError, "nothing of this batch"
        )
    elif request.param == "langgraph-postgres":
        url = request.getfixturevalue("postgres_url")
        with ExitStack() as opened:  # each handle a PostgresStore on its own connection

            def open_store() -> ProfileStore:
                graph_store = opened.enter_context(PostgresStore.from_conn_string(url))
                graph_store.setup()
                return LangGraphProfileStore(graph_store)

            yield Backend(open_store, DuplicateItemError, "nothing of this batch")
    else:
        shared = InMemoryStore()
        yield Backend(
            lambda: LangGraphProfileStore(shared), DuplicateItemError, "nothing of this batch"
        )


@pytest.fixture
def store(backend: Backend) -> Iterator[ProfileStore]:
    s = backend.open()
    yield s
    s.close()


def items(*texts: str, prefix: str = "p") -> list[HistoryItem]:
    return [HistoryItem(id=f"{prefix}{i}", text=t) for i, t in enumerate(texts)]


# ---------------------------------------------------------------- items
def test_new_store_is_empty(store: ProfileStore) -> None:
    assert store.users() == []
    assert store.count_items("alice") == 0
    assert store.get_items("alice") == []
    assert store.get_profile("alice") is None
    assert store.profile_versions("alice") == []


def test_add_and_get_items(store: ProfileStore) -> None:
    stored = items("first", "second", "third")
    vids = store.add_items("alice", stored)
    assert len(vids) == 3
    got = store.get_items("alice")
    assert [s.vid for s in got] == vids
    assert [s.item for s in got] == stored  # round trip, oldest first
    assert store.count_items("alice") == 3
    assert store.users() == ["alice"]


def test_item_fields_round_trip(store: ProfileStore) -> None:
    item = HistoryItem(
        id="D15-1001",
        text="Title\nAbstract",
        input="Abstract",
        output="Title",
        input_label="abstract",
        output_label="title",
        metadata={"year": 2015, "tags": ["rl", "games"], "unicode": "façade – ü"},
    )
    store.add_items("alice", [item])
    assert store.get_items("alice")[0].item == item


def test_vids_increase_and_are_never_reused(store: ProfileStore) -> None:
    first = store.add_items("alice", items("a", "b"))
    second = store.add_items("bob", items("c"))
    assert first[0] < first[1] < second[0]
    store.remove_items("bob", ["p0"])
    store.remove_items("alice", ["p1"])
    third = store.add_items("alice", items("d", prefix="q"))
    assert third[0] > second[0]  # a removed vector id is never handed out again


def test_add_empty_batch(store: ProfileStore) -> None:
    assert store.add_items("alice", []) == []
    assert store.users() == []


def test_lookup_by_id_and_by_hash(store: ProfileStore) -> None:
    stored = items("alpha", "beta")
    vids = store.add_items("alice", stored)
    by_id, by_hash = store.lookup(
        "alice", ["p0", "missing"], [stored[1].content_hash, "0" * 64, stored[1].content_hash]
    )
    assert by_id == {"p0": StoredItem(vids[0], stored[0])}
    assert by_hash == {stored[1].content_hash: StoredItem(vids[1], stored[1])}
    assert store.lookup("bob", ["p0"], [stored[0].content_hash]) == ({}, {})
    assert store.lookup("alice", [], []) == ({}, {})


def test_lookup_many_keys(store: ProfileStore) -> None:
    many = items(*(f"text {i}" for i in range(1200)))
    store.add_items("alice", many)
    by_id, by_hash = store.lookup("alice", [i.id for i in many], [i.content_hash for i in many])
    assert len(by_id) == len(by_hash) == 1200


def test_remove_items(store: ProfileStore) -> None:
    vids = store.add_items("alice", items("a", "b", "c"))
    removed = store.remove_items("alice", ["p0", "p2", "unknown"])
    assert sorted(removed) == [vids[0], vids[2]]
    assert [s.item.id for s in store.get_items("alice")] == ["p1"]
    assert store.remove_items("alice", []) == []
    assert store.remove_items("alice", ["p0"]) == []


def test_remove_never_touches_other_users(store: ProfileStore) -> None:
    store.add_items("alice", items("a"))
    store.add_items("bob", items("a"))
    assert store.remove_items("bob", ["p0"]) != []
    assert store.count_items("alice") == 1


def test_same_item_id_for_two_users(store: ProfileStore) -> None:
    a = store.add_items("alice", items("alice's text"))
    b = store.add_items("bob", items("bob's text"))
    assert a != b
    assert store.get_items("alice")[0].item.text == "alice's text"
    assert store.get_items("bob")[0].item.text == "bob's text"


def test_items_by_vid_only_returns_own_rows(store: ProfileStore) -> None:
    alice = store.add_items("alice", items("a0", "a1"))
    bob = store.add_items("bob", items("b0", "b1"))
    assert store.items_by_vid("alice", bob) == {}
    mixed = store.items_by_vid("alice", [*bob, *alice, 10_000])
    assert set(mixed) == set(alice)
    assert {item.text for item in mixed.values()} == {"a0", "a1"}
    assert store.items_by_vid("bob", []) == {}
    assert store.items_by_vid("mallory", [*alice, *bob]) == {}


def test_users_are_sorted_and_include_profile_only_users(store: ProfileStore) -> None:
    store.add_items("carol", items("c"))
    store.add_items("alice", items("a"))
    store.put_profile(UserProfile(user_id="bob", summary="no items yet"))
    assert store.users() == ["alice", "bob", "carol"]


def test_user_ids_are_data_not_sql(store: ProfileStore) -> None:
    evil = "x' OR '1'='1"
    store.add_items("alice", items("secret"))
    store.add_items(evil, items("evil"))
    assert [s.item.text for s in store.get_items(evil)] == ["evil"]
    assert store.count_items(evil) == 1
    assert store.delete_user(evil) == ForgetReport(items=1, profile_versions=0)
    assert store.count_items("alice") == 1


def test_user_ids_are_data_not_names(store: ProfileStore) -> None:
    """Ids that look alike as text, or hold characters namespaces and paths reserve, stay apart."""
    ids = ["alice", "alice2", "a.b", "a%2Eb", "a_b", "aXb", "x/y", "zoë 💡", "..", "%", "a\x00b"]
    for n, user_id in enumerate(ids):
        store.add_items(user_id, items(f"text of {n}"))
    assert store.users() == sorted(ids)
    for n, user_id in enumerate(ids):
        assert [s.item.text for s in store.get_items(user_id)] == [f"text of {n}"]
        assert store.has_user(user_id)
    assert store.delete_user("a.b") == ForgetReport(items=1, profile_versions=0)
    assert store.users() == sorted(set(ids) - {"a.b"})
    assert store.count_items("a%2Eb") == 1


def test_a_user_whose_rows_are_all_removed_is_gone(store: ProfileStore) -> None:
    store.add_items("alice", items("a", "b"))
    store.add_items("bob", items("c"))
    store.remove_items("alice", ["p0", "p1"])
    assert store.users() == ["bob"]
    assert not store.has_user("alice")
    assert not store.has_user("mallory")  # asking about a user creates nothing


# ---------------------------------------------------------------- profiles
def test_profile_versions(store: ProfileStore) -> None:
    for version, summary in [(1, "first"), (3, "third"), (2, "second")]:
        store.put_profile(UserProfile(user_id="alice", version=version, summary=summary))
    latest = store.get_profile("alice")
    assert latest is not None and latest.version == 3 and latest.summary == "third"
    versions = store.profile_versions("alice")
    assert [p.version for p in versions] == [1, 2, 3]
    assert [p.summary for p in versions] == ["first", "second", "third"]
    assert store.get_profile("bob") is None


def test_profile_round_trip(store: ProfileStore) -> None:
    profile = UserProfile(
        user_id="alice",
        interests=["machine translation"],
        keywords=["NMT", "BLEU"],
        summary="Works on MT.",
        history_hash="h",
        item_ids=["p1", "p2"],
        model="m",
        prompt_version="1",
        edited=True,
    )
    store.put_profile(profile)
    assert store.get_profile("alice") == profile


def test_existing_profile_version_is_refused(store: ProfileStore) -> None:
    store.put_profile(UserProfile(user_id="alice", version=1, summary="original"))
    with pytest.raises(StoreError, match="another process"):
        store.put_profile(UserProfile(user_id="alice", version=1, summary="overwrite"))
    assert [p.summary for p in store.profile_versions("alice")] == ["original"]


# ---------------------------------------------------------------- delete_user
def test_delete_user_counts_and_leaves_others_intact(store: ProfileStore) -> None:
    store.add_items("alice", items("a", "b", "c"))
    store.put_profile(UserProfile(user_id="alice", version=1))
    store.put_profile(UserProfile(user_id="alice", version=2))
    bob_vids = store.add_items("bob", items("x", "y"))
    store.put_profile(UserProfile(user_id="bob", summary="bob"))

    assert store.delete_user("alice") == ForgetReport(items=3, profile_versions=2)

    assert store.users() == ["bob"]
    assert store.get_items("alice") == []
    assert store.profile_versions("alice") == []
    assert [s.vid for s in store.get_items("bob")] == bob_vids
    bob_profile = store.get_profile("bob")
    assert bob_profile is not None and bob_profile.summary == "bob"
    assert store.delete_user("alice") == ForgetReport(items=0, profile_versions=0)


# ---------------------------------------------------------------- annotations (style gists)
def notes(stored: list[HistoryItem], setup: str = "s1") -> list[ItemAnnotation]:
    return [ItemAnnotation(i.content_hash, setup, f"gist of {i.text}") for i in stored]


def test_annotations_round_trip_and_are_replaced(store: ProfileStore) -> None:
    stored = items("a", "b")
    store.add_items("alice", stored)
    hashes = [i.content_hash for i in stored]
    assert store.get_annotations("alice", "style_gist", hashes) == {}
    assert store.put_annotations("alice", "style_gist", notes(stored)) == 2
    got = store.get_annotations("alice", "style_gist", [*hashes, "0" * 64])
    assert got == {n.item_hash: n for n in notes(stored)}
    store.put_annotations("alice", "style_gist", notes(stored[:1], setup="s2"))
    again = store.get_annotations("alice", "style_gist", hashes)
    assert again[hashes[0]].setup == "s2" and again[hashes[1]].setup == "s1"
    assert store.get_annotations("alice", "other_kind", hashes) == {}  # kinds stay apart
    assert store.users() == ["alice"]


def test_annotations_never_reach_another_user(store: ProfileStore) -> None:
    alice, bob = items("shared text"), items("shared text")  # the same content, two users
    store.add_items("alice", alice)
    store.add_items("bob", bob)
    store.put_annotations("alice", "style_gist", notes(alice))
    assert store.get_annotations("bob", "style_gist", [alice[0].content_hash]) == {}
    # an annotation of content the user does not have is not stored
    assert store.put_annotations("carol", "style_gist", notes(alice)) == 0
    assert store.get_annotations("carol", "style_gist", [alice[0].content_hash]) == {}
    assert store.users() == ["alice", "bob"]


def test_removing_an_item_removes_its_annotations(store: ProfileStore) -> None:
    stored = items("a", "b")
    store.add_items("alice", stored)
    store.add_items("bob", items("a"))
    store.put_annotations("alice", "style_gist", notes(stored))
    store.put_annotations("bob", "style_gist", notes(items("a")))
    store.remove_items("alice", ["p0"])
    hashes = [i.content_hash for i in stored]
    assert list(store.get_annotations("alice", "style_gist", hashes)) == [hashes[1]]
    assert list(store.get_annotations("bob", "style_gist", hashes)) == [hashes[0]]
    # the same content added again has no annotation until one is written
    store.add_items("alice", [HistoryItem(id="again", text="a")])
    assert list(store.get_annotations("alice", "style_gist", hashes)) == [hashes[1]]


def test_delete_user_removes_their_annotations(store: ProfileStore) -> None:
    stored = items("a", "b")
    store.add_items("alice", stored)
    store.add_items("bob", items("a"))
    store.put_annotations("alice", "style_gist", notes(stored))
    store.put_annotations("bob", "style_gist", notes(items("a")))
    store.delete_user("alice")
    store.add_items("alice", stored)  # the same items again: nothing of before is left
    hashes = [i.content_hash for i in stored]
    assert store.get_annotations("alice", "style_gist", hashes) == {}
    assert list(store.get_annotations("bob", "style_gist", hashes)) == [hashes[0]]


# ---------------------------------------------------------------- meta
def test_meta(store: ProfileStore) -> None:
    assert store.get_meta("format") is None
    store.set_meta("format", "v1")
    store.set_meta("dimension", "384")
    store.set_meta("format", "v2")
    assert store.get_meta("format") == "v2"
    assert store.get_meta("dimension") == "384"


def test_data_survives_reopen(backend: Backend) -> None:
    first = backend.open()
    vids = first.add_items("alice", items("a", "b"))
    first.put_profile(UserProfile(user_id="alice", summary="s"))
    first.set_meta("k", "v")
    first.close()

    again = backend.open()
    try:
        assert [s.vid for s in again.get_items("alice")] == vids
        profile = again.get_profile("alice")
        assert profile is not None and profile.summary == "s"
        assert again.get_meta("k") == "v"
        assert again.add_items("alice", items("c", prefix="q"))[0] > vids[-1]
    finally:
        again.close()


# ---------------------------------------------------------------- atomicity
def test_failed_batch_writes_nothing(store: ProfileStore, backend: Backend) -> None:
    store.add_items("alice", items("kept"))
    batch = [
        HistoryItem(id="n1", text="one"),
        HistoryItem(id="n2", text="two"),
        HistoryItem(id="n1", text="clash inside the batch"),
    ]
    with pytest.raises(backend.clash, match=backend.clash_message):
        store.add_items("alice", batch)
    assert [s.item.text for s in store.get_items("alice")] == ["kept"]
    assert store.lookup("alice", ["n1", "n2"], []) == ({}, {})
    # the store is still usable, and the failed batch left no open transaction
    assert len(store.add_items("alice", batch[:2])) == 2
    assert store.count_items("alice") == 3


def test_batch_clashing_with_stored_id_writes_nothing(
    store: ProfileStore, backend: Backend
) -> None:
    store.add_items("alice", [HistoryItem(id="p1", text="kept")])
    with pytest.raises(backend.clash):
        store.add_items("alice", [HistoryItem(id="new", text="n"), HistoryItem(id="p1", text="x")])
    assert [s.item.id for s in store.get_items("alice")] == ["p1"]


# ---------------------------------------------------------------- SQLite files only
def test_failed_transaction_start_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = SQLiteProfileStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        store._conn.execute("PRAGMA busy_timeout=0")
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError, match="locked by another process"):
            store.add_items("alice", items("a"))
        other.execute("ROLLBACK")

        # another thread (asyncio.to_thread, a web server) must not deadlock afterwards
        result: list[bool] = []

        def other_thread() -> None:
            got = store._lock.acquire(timeout=2)
            result.append(got)
            if got:
                store._lock.release()

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert result == [True]
        assert len(store.add_items("alice", items("a"))) == 1
    finally:
        other.close()
        store.close()


def test_random_bytes_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as err:
        SQLiteProfileStore(path)
    message = str(err.value)
    assert str(path) in message
    assert "not a readable SQLite database" in message
    assert "backup" in message and "new path" in message  # how to fix it


def test_text_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match="corrupt or not a stepback-profile store"):
        SQLiteProfileStore(path)
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_foreign_sqlite_schema_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError):
        SQLiteProfileStore(path)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert tables == {"items"}  # the failed schema set-up was rolled back
