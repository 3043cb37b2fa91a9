"""ProfileMemory on a LangGraph BaseStore (InMemoryStore): the same memory as with SQLite, the
rows in per-user namespaces, and an agent whose graph shares the store."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langgraph.store.memory import InMemoryStore

from langchain_stepback_profile import (
    HistoryItem,
    InvalidArgumentError,
    MiniLMEmbeddings,
    ProfileMemory,
    StepBackProfileRetriever,
    StoreError,
)
from langchain_stepback_profile.agents import StepBackProfileMiddleware, UserContext
from langchain_stepback_profile.langgraph_store import LangGraphProfileStore, user_label
from tests.agents_tests.data import (
    HISTORIES,
    PROFILES,
    QUERY,
    fingerprints,
    scripted,
    seen_text,
)


@pytest.fixture
def graph_store() -> InMemoryStore:
    return InMemoryStore()


def open_memory(
    path: Path, graph_store: InMemoryStore, embeddings: MiniLMEmbeddings
) -> ProfileMemory:
    return ProfileMemory(path, embeddings=embeddings, store=LangGraphProfileStore(graph_store))


@pytest.fixture
def filled(
    tmp_path: Path, graph_store: InMemoryStore, embeddings: MiniLMEmbeddings
) -> ProfileMemory:
    memory = open_memory(tmp_path / "vectors", graph_store, embeddings)
    memory.add_histories(HISTORIES, show_progress=False)
    for user_id, draft in PROFILES.items():
        memory.set_profile(user_id, draft)
    return memory


def rows(graph_store: InMemoryStore, *namespace: str) -> list:
    return graph_store.search(("stepback_profile", *namespace), limit=10_000)


def test_the_memory_works_the_same_on_a_langgraph_store(
    filled: ProfileMemory, memory: ProfileMemory
) -> None:
    memory.add_histories(HISTORIES, show_progress=False)  # the SQLite twin
    assert filled.users() == memory.users() == ["alice", "bob"]
    assert filled.items("alice") == memory.items("alice")
    hits = filled.search("alice", "translation with little parallel data", k=2)
    twin = memory.search("alice", "translation with little parallel data", k=2)
    assert [h.item.id for h in hits] == [h.item.id for h in twin] == ["a2", "a1"]
    assert [h.score for h in hits] == pytest.approx([h.score for h in twin], abs=1e-5)
    assert filled.get_profile("alice").summary == PROFILES["alice"].summary


def test_rows_live_in_per_user_namespaces(
    filled: ProfileMemory, graph_store: InMemoryStore
) -> None:
    alice = rows(graph_store, "users", "alice", "items")
    assert sorted(r.value["item_id"] for r in alice) == ["a1", "a2", "a3"]
    assert {
        r.value["profile"]["user_id"] for r in rows(graph_store, "users", "bob", "profiles")
    } == {"bob"}
    assert graph_store.get(("stepback_profile", "meta"), "format") is not None


def test_forget_removes_every_row_of_the_user(
    filled: ProfileMemory, graph_store: InMemoryStore
) -> None:
    assert filled.forget("alice") == {"items": 3, "vectors": 3, "profile_versions": 1}
    assert rows(graph_store, "users", "alice") == []
    assert filled.users() == ["bob"]
    assert len(rows(graph_store, "users", "bob")) == 4  # three items and one profile


def test_reopening_keeps_everything(
    filled: ProfileMemory, graph_store: InMemoryStore, embeddings: MiniLMEmbeddings
) -> None:
    again = open_memory(filled.path, graph_store, embeddings)
    assert again.users() == ["alice", "bob"]
    assert again.get_profile("bob").summary == PROFILES["bob"].summary
    assert again.search("bob", "bread", k=1) == filled.search("bob", "bread", k=1)


def test_a_second_machine_rebuilds_its_vectors_from_the_store(
    filled: ProfileMemory, graph_store: InMemoryStore, embeddings: MiniLMEmbeddings, tmp_path: Path
) -> None:
    """Only the FAISS files are local: a new folder over the same store searches the same."""
    other = open_memory(tmp_path / "other-machine", graph_store, embeddings)
    expected = filled.search("alice", QUERY, k=3)
    found = other.search("alice", QUERY, k=3)
    assert [h.item.id for h in found] == [h.item.id for h in expected]
    other.add("alice", ["A new note written on the second machine."])
    assert len(filled.items("alice")) == 4  # one store, seen from both


def test_two_prefixes_are_two_stores(graph_store: InMemoryStore) -> None:
    first = LangGraphProfileStore(graph_store, prefix="app_one")
    second = LangGraphProfileStore(graph_store, prefix=("app_two", "profiles"))
    first.add_items("alice", [HistoryItem(id="x", text="one")])
    assert second.users() == []
    assert first.users() == ["alice"]


@pytest.mark.parametrize("prefix", ["", "a.b", ("ok", ""), (), "langgraph"])
def test_bad_prefixes_are_refused(graph_store: InMemoryStore, prefix: object) -> None:
    with pytest.raises(InvalidArgumentError, match="prefix must be"):
        LangGraphProfileStore(graph_store, prefix=prefix)  # type: ignore[arg-type]


def test_user_labels_are_valid_namespace_labels() -> None:
    assert user_label("ada.lovelace@example.org") == "ada%2Elovelace%40example%2Eorg"
    assert user_label("a%2Eb") != user_label("a.b")


def test_the_folder_of_a_langgraph_backed_memory(
    tmp_path: Path, graph_store: InMemoryStore, embeddings: MiniLMEmbeddings
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not a store")
    with pytest.raises(StoreError, match="holds no indexes"):
        open_memory(tmp_path / "notes", graph_store, embeddings)
    memory = open_memory(tmp_path / "vectors", graph_store, embeddings)
    memory.add("alice", ["hello"])
    assert sorted(p.name for p in (tmp_path / "vectors").iterdir()) == [".lock", "indexes"]
    open_memory(tmp_path / "vectors", graph_store, embeddings)  # reopens


def test_an_agent_compiled_with_the_same_store(
    filled: ProfileMemory, graph_store: InMemoryStore
) -> None:
    model = scripted("A title")
    agent = create_agent(
        model,
        middleware=[StepBackProfileMiddleware(filled, k=2)],
        context_schema=UserContext,
        store=graph_store,
    )
    agent.invoke({"messages": [HumanMessage(QUERY)]}, context=UserContext("alice"))
    assert PROFILES["alice"].summary in seen_text(model.prompts)
    for text in fingerprints("bob"):
        assert text not in seen_text(model.prompts)


class AsyncOnlyStore(InMemoryStore):
    """A store like an async-only deployment's: once ``async_only`` is set, ``batch`` fails
    and ``abatch`` records the thread it runs on."""

    async_only: bool = False
    abatch_threads: list[int]

    def batch(self, ops):  # type: ignore[no-untyped-def]
        if self.async_only:
            raise AssertionError("a blocking batch() call inside an async twin")
        return super().batch(ops)

    async def abatch(self, ops):  # type: ignore[no-untyped-def]
        self.abatch_threads.append(threading.get_ident())
        return await super().abatch(ops)


def test_async_twins_use_the_stores_async_batch_api(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> None:
    graph_store = AsyncOnlyStore()
    graph_store.abatch_threads = []
    memory = open_memory(tmp_path / "vectors", graph_store, embeddings)
    memory.add("alice", HISTORIES["alice"])  # sync: batch()
    assert graph_store.abatch_threads == []
    graph_store.async_only = True
    retriever = StepBackProfileRetriever(memory=memory, k=2)

    async def session() -> list[str]:
        loop_thread = threading.get_ident()
        await memory.aadd("bob", HISTORIES["bob"])
        await memory.aset_profile("alice", PROFILES["alice"])
        await memory.arefresh(["bob"], strategy="extractive")
        docs = await retriever.ainvoke(QUERY, user_ids=["alice", "bob"])
        assert (await memory.aget_profile("bob")) is not None
        assert await memory.ausers() == ["alice", "bob"]
        assert (await memory.aforget("bob"))["items"] == 3
        assert set(graph_store.abatch_threads) == {loop_thread}  # on the caller's loop
        return [d.page_content for d in docs]

    texts = asyncio.run(session())
    assert any(PROFILES["alice"].summary in text for text in texts)
    graph_store.async_only = False
    assert memory.users() == ["alice"] and len(graph_store.abatch_threads) > 10
