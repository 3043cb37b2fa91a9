"""ProfileMemory on a real PostgreSQL + pgvector server (a database of its own per test): the
same answers as SQLite + FAISS, no local files, two memories on one database as two machines,
and the errors of a bad server, login, dimension or schema version."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile import (
    DuplicateItemError,
    HistoryItem,
    InvalidArgumentError,
    MiniLMEmbeddings,
    MissingExtraError,
    ProfileMemory,
    SQLiteProfileStore,
    StoreError,
    UnknownUserError,
)
from langchain_stepback_profile.postgres_store import SCHEMA_VERSION, PostgresProfileStore
from tests.postgres import PostgresServer, database_of
from tests.unit_tests.test_memory import PAPERS

pytestmark = pytest.mark.slow


def fake(dim: int = 32) -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=dim)


def ids_of(results) -> list[str]:
    return [r.item.id for r in results]


def text_of(memory: ProfileMemory, user_id: str, item_id: str) -> str:
    """The stored text of an item: the query that finds it first with a hash embedder."""
    return next(i.text for i in memory.items(user_id) if i.id == item_id)


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


# ---------------------------------------------------------------- the same answers as FAISS
def test_scores_match_sqlite_and_faiss(
    postgres_url: str, tmp_path: Path, embeddings: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    largest = sorted(lamp5_questions, key=lambda q: -len(q["profile"]))
    histories: dict[str, list[dict]] = {}
    for question in largest:  # the 3 users with the longest histories (about 30 papers each)
        histories.setdefault(question["user"], question["profile"])
        if len(histories) == 3:
            break
    queries = [q["input"][:400] for q in largest[:3]] + ["neural machine translation"]
    with (
        ProfileMemory(tmp_path / "faiss", embeddings=embeddings) as local,
        ProfileMemory(postgres_url, embeddings=embeddings) as shared,
    ):
        assert local.add_histories(histories) == shared.add_histories(histories)
        compared = 0
        for user in histories:
            for query in queries:
                expected = local.search(user, query, k=8)
                got = shared.search(user, query, k=8)
                assert ids_of(got) == ids_of(expected)
                np.testing.assert_allclose(
                    [r.score for r in got], [r.score for r in expected], atol=1e-5
                )
                compared += len(got)
        assert compared == 3 * len(queries) * 8


def test_a_url_keeps_no_local_files(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ProfileMemory(postgres_url, embeddings=fake()) as memory:
        memory.add("alice", PAPERS)
        assert memory.search("alice", text_of(memory, "alice", "p2"), k=1)[0].item.id == "p2"
        memory.refresh(strategy="extractive")
        assert memory.path is None
        assert isinstance(memory.store, PostgresProfileStore)
    assert os.listdir(tmp_path) == []


def test_a_folder_path_with_a_postgres_store_creates_no_folder(
    postgres_url: str, tmp_path: Path
) -> None:
    with ProfileMemory(
        tmp_path / "unused", embeddings=fake(), store=PostgresProfileStore(postgres_url)
    ) as memory:
        memory.add("alice", PAPERS[:2])
        assert memory.check_integrity() == {"alice": "ok"}
    assert not (tmp_path / "unused").exists()


# ---------------------------------------------------------------- two machines, one database
def test_add_search_refresh_forget_across_two_memories(postgres_url: str) -> None:
    first = ProfileMemory(postgres_url, embeddings=fake(), profile_strategy="extractive")
    second = ProfileMemory(postgres_url, embeddings=fake(), profile_strategy="extractive")
    try:
        assert first.add("alice", PAPERS) == [p["id"] for p in PAPERS]
        first.add("bob", [{"id": "b1", "text": "Bob writes about compilers."}])
        # the second "machine" sees the first one's writes at its next call
        assert second.users() == ["alice", "bob"]
        assert [i.id for i in second.items("alice")] == [p["id"] for p in PAPERS]
        query = text_of(second, "alice", "p3")
        assert ids_of(second.search("alice", query, k=2)) == ids_of(
            first.search("alice", query, k=2)
        )
        assert second.search("alice", query, k=1)[0].item.id == "p3"
        assert ids_of(second.search("bob", query, k=5)) == ["b1"]  # bob's items only

        report = second.refresh(strategy="extractive")
        assert report.count("built") == 2
        profile = first.get_profile("alice")
        assert profile is not None and sorted(profile.item_ids) == sorted(p["id"] for p in PAPERS)
        assert first.refresh(strategy="extractive").count("unchanged") == 2  # 0 work, 0 calls

        # an item added by one is stored once, and its duplicate from the other is not again
        assert second.add("alice", [PAPERS[0]]) == ["p1"]
        assert first.store.count_items("alice") == 5
        with pytest.raises(DuplicateItemError, match="p1"):
            second.add("alice", [{"id": "p1", "text": "other text"}])

        assert first.remove("alice", ["p5"]) == 1
        assert second.pending_changes("alice") == 1
        assert "p5" not in ids_of(second.search("alice", query, k=5))

        assert first.forget("alice") == {"items": 4, "vectors": 4, "profile_versions": 1}
        assert second.users() == ["bob"]
        with pytest.raises(UnknownUserError):
            second.search("alice", query, k=1)
        assert rows(postgres_url, "SELECT count(*) FROM stepback_profile.items")[0][0] == 1
    finally:
        first.close()
        second.close()


def test_reopened_memory_gives_identical_results(postgres_url: str) -> None:
    with ProfileMemory(postgres_url, embeddings=fake()) as memory:
        memory.add("alice", PAPERS)
        before = memory.search("alice", "protein structure", k=3)
    with ProfileMemory(postgres_url, embeddings=fake()) as again:
        assert again.search("alice", "protein structure", k=3) == before


async def test_async_twins_share_the_connection_pool(postgres_url: str) -> None:
    store = PostgresProfileStore(postgres_url, pool_size=2)
    with ProfileMemory(postgres_url, embeddings=fake(), store=store) as memory:
        users = [f"user{n}" for n in range(6)]
        await asyncio.gather(
            *(
                memory.aadd(u, [{"id": f"{u}-{k}", "text": f"{u} text {k}"} for k in range(3)])
                for u in users
            )
        )
        found = await asyncio.gather(*(memory.asearch(u, f"{u} text 1", k=2) for u in users * 3))
        assert [hits[0].item.id for hits in found] == [f"{u}-1" for u in users * 3]
        assert all(h.user_id == u for u, hits in zip(users * 3, found, strict=True) for h in hits)
        assert await memory.ausers() == users


def test_items_stored_without_vectors_get_them_from_check_integrity(postgres_url: str) -> None:
    with ProfileMemory(postgres_url, embeddings=fake()) as memory:
        memory.add("alice", PAPERS[:2])
        store = memory.store
        assert isinstance(store, PostgresProfileStore)
        store.add_items("alice", [HistoryItem(id="raw", text="Galaxy redshift maps")])
        assert "raw" not in ids_of(memory.search("alice", "Galaxy redshift maps", k=5))
        assert memory.check_integrity() == {"alice": "repaired"}
        assert memory.search("alice", "Galaxy redshift maps", k=1)[0].item.id == "raw"
        assert memory.check_integrity() == {"alice": "ok"}


# ---------------------------------------------------------------- errors that name the fix
def test_unreachable_server(tmp_path: Path) -> None:
    url = f"postgresql://app@/profiles?host={tmp_path}"  # no server listens on this socket
    with pytest.raises(StoreError) as caught:
        ProfileMemory(url, embeddings=fake())
    assert "cannot reach PostgreSQL" in str(caught.value)
    assert "check that the server is running" in str(caught.value)
    with pytest.raises(StoreError, match="cannot reach PostgreSQL"):
        PostgresProfileStore("postgresql://app@127.0.0.1:1/profiles", connect_timeout=2)


def test_wrong_password_is_named_and_masked(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    postgres_server.password_user("alice_app", "right-password")
    database = database_of(postgres_url)
    url = postgres_server.url(database, user="alice_app", password="wrong-password")
    with pytest.raises(StoreError) as caught:
        ProfileMemory(url, embeddings=fake())
    message = str(caught.value)
    assert "refused the login" in message and "password" in message
    assert "wrong-password" not in message and "alice_app:***@" in message


def test_missing_database_is_named(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreError, match=r"no such database .*createdb"):
        PostgresProfileStore(postgres_server.url("no_such_db"))


def test_other_embedding_dimension_is_refused_before_writing(postgres_url: str) -> None:
    with ProfileMemory(postgres_url, embeddings=fake(32)) as memory:
        memory.add("alice", PAPERS)
    with pytest.raises(StoreError, match=r"dimension 32, not 16.*embedding model"):
        PostgresProfileStore(postgres_url, dimension=16)
    with ProfileMemory(postgres_url, embeddings=fake(16)) as other:
        with pytest.raises(StoreError, match=r"dimension 16 but the store .* holds dimension 32"):
            other.add("bob", ["a text embedded with another model"])
        with pytest.raises(StoreError, match="dimension"):
            other.search("alice", "protein", k=1)
    assert rows(postgres_url, "SELECT count(*) FROM stepback_profile.items")[0][0] == 5


def test_other_schema_version_is_refused_and_nothing_written(postgres_url: str) -> None:
    with ProfileMemory(postgres_url, embeddings=fake()) as memory:
        memory.add("alice", PAPERS)
    rows(postgres_url, "UPDATE stepback_profile.store_info SET schema_version = 99 RETURNING 1")
    meta = rows(postgres_url, "SELECT key, value FROM stepback_profile.meta ORDER BY key")
    with pytest.raises(StoreError) as caught:
        ProfileMemory(postgres_url, embeddings=fake(), task="tweet_paraphrase")
    message = str(caught.value)
    assert "schema version 99" in message and f"reads schema version {SCHEMA_VERSION}" in message
    assert "another schema= or database" in message
    assert rows(postgres_url, "SELECT key, value FROM stepback_profile.meta ORDER BY key") == meta


def test_foreign_tables_in_the_schema_are_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stepback_profile")
        conn.execute("CREATE TABLE stepback_profile.x (i int)")
    with pytest.raises(StoreError, match="tables of other software"):
        PostgresProfileStore(postgres_url)
    tables = rows(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'stepback_profile'",
    )
    assert tables == [("x",)]
    store = PostgresProfileStore(postgres_url, schema="profiles_two")  # another schema: usable
    assert store.users() == []
    store.close()


def test_bad_arguments_are_refused(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="schema must be"):
        PostgresProfileStore(postgres_url, schema="Robert'); DROP TABLE x;--")
    with pytest.raises(InvalidArgumentError, match="PostgreSQL URL"):
        PostgresProfileStore("mysql://db/x")
    with pytest.raises(InvalidArgumentError, match="a URL names a database"):
        ProfileMemory(postgres_url, store=SQLiteProfileStore(tmp_path / "s.sqlite3"))


def test_a_user_without_create_privilege_is_told_what_to_grant(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE ROLE plain_app LOGIN")
    database = database_of(postgres_url)
    with pytest.raises(StoreError, match=r"lacks a privilege .*grant it"):
        PostgresProfileStore(postgres_server.url(database, user="plain_app"))
    assert rows(
        postgres_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'stepback_profile'"
    ) == [(0,)]


def test_a_url_without_the_postgres_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in ("psycopg", "psycopg_pool", "pgvector"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "langchain_stepback_profile.postgres_store")
    with pytest.raises(MissingExtraError) as caught:
        ProfileMemory("postgresql://app@db/profiles", embeddings=fake())
    assert caught.value.extra == "postgres"
    assert 'pip install "langchain-stepback-profile[postgres]"' in str(caught.value)
