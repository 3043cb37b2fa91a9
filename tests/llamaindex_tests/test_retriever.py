"""StepBackProfileLlamaIndexRetriever on a real LaMP-5-like slice (MiniLM, FAISS, SQLite):
the same things, in the same order, as the LangChain retriever."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileMemory,
    StepBackProfileRetriever,
    UnknownUserError,
)
from llamaindex_integration import StepBackProfileLlamaIndexRetriever
from tests.llamaindex_tests.helpers import PAPERS, shown_profile

K = 2
PREFIX = "Generate a title for the following abstract of a paper: "


def query_of(question: dict[str, Any]) -> str:
    return question["input"].removeprefix(PREFIX)


def groups(users: list[str]) -> list[list[str]]:
    a, b, c = users
    return [[a], [c], [a, b], [b, a], [c, a, b]]


def assert_same(nodes: list[NodeWithScore], docs: list[Document]) -> None:
    assert len(nodes) == len(docs)
    for node, doc in zip(nodes, docs, strict=True):
        assert node.node.get_content() == doc.page_content
        assert node.node.metadata == doc.metadata
        assert node.score == doc.metadata.get("score")


async def test_nodes_match_the_langchain_documents_for_every_group_and_query(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    users = list(lamp_slice)
    langchain = StepBackProfileRetriever(memory=lamp_memory, k=K)
    for group in groups(users):
        retriever = StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids=group, k=K)
        assert retriever.user_ids == group
        for question in lamp_slice.values():
            query = query_of(question)
            docs = await langchain.ainvoke(query, user_ids=group)
            nodes = await retriever.aretrieve(query)
            assert_same(nodes, docs)
            kinds = [(n.metadata["user_id"], n.metadata["kind"]) for n in nodes]
            profiles = [(u, "profile") for u in group]
            assert kinds == profiles + [(u, "history") for u in group for _ in range(K)]
            assert len({n.node.node_id for n in nodes}) == len(nodes)


def test_sync_retrieve_equals_async_and_keeps_isolation(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, _ = lamp_slice
    retriever = StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids=[bob, alice], k=PAPERS)
    query = query_of(lamp_slice[alice])
    nodes = retriever.retrieve(QueryBundle(query))
    assert_same(
        nodes,
        StepBackProfileRetriever(memory=lamp_memory, k=PAPERS).invoke(query, user_ids=[bob, alice]),
    )
    own = {u: {p["id"] for p in q["profile"][:PAPERS]} for u, q in lamp_slice.items()}
    history = [n for n in nodes if n.metadata["kind"] == "history"]
    assert len(history) == 2 * PAPERS
    for node in history:
        assert node.metadata["item_id"] in own[node.metadata["user_id"]]
        assert node.node.node_id == f"{node.metadata['user_id']}/{node.metadata['item_id']}"
        assert -1.0 <= node.score <= 1.0 + 1e-5
        assert node.metadata["output"] and node.metadata["input"] in node.node.get_content()
    scores = [n.score for n in history if n.metadata["user_id"] == alice]
    assert scores == sorted(scores, reverse=True)
    assert [n.node.node_id for n in nodes[:2]] == [f"{bob}#profile", f"{alice}#profile"]


def test_only_the_user_id_is_shown_to_the_llm_and_nothing_is_embedded(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    nodes = StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids=alice, k=1).retrieve("parsing")
    for node in nodes:
        shown = node.node.get_content(metadata_mode=MetadataMode.LLM)
        assert shown == f"user_id: {alice}\n\n{node.node.get_content()}"
        assert node.node.get_content(metadata_mode=MetadataMode.EMBED) == node.node.get_content()


def test_profiles_or_history_can_be_left_out(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, _ = lamp_slice
    history = StepBackProfileLlamaIndexRetriever(
        lamp_memory, user_ids=[alice, bob], k=1, include_profiles=False
    ).retrieve("semantic parsing")
    assert [n.metadata["kind"] for n in history] == ["history", "history"]
    profiles = StepBackProfileLlamaIndexRetriever(
        lamp_memory, user_ids=[alice, bob], include_history=False
    ).retrieve("semantic parsing")
    assert [(n.metadata["user_id"], n.score) for n in profiles] == [(alice, None), (bob, None)]


def test_bad_arguments_fail_clearly(lamp_memory: ProfileMemory) -> None:
    with pytest.raises(InvalidArgumentError, match="no users given"):
        StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids=[])
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids="x", k=0)
    with pytest.raises(UnknownUserError, match="unknown user 'nobody'"):
        StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids="nobody").retrieve("x")


async def test_it_serves_a_llamaindex_query_engine(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    retriever = StepBackProfileLlamaIndexRetriever(lamp_memory, user_ids=alice, k=1)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())  # MockLLM echoes its prompt
    response = await engine.aquery(query_of(lamp_slice[alice]))
    assert [n.node.node_id for n in response.source_nodes] == [
        n.node.node_id for n in await retriever.aretrieve(query_of(lamp_slice[alice]))
    ]
    assert shown_profile(lamp_memory, alice) in str(response)
