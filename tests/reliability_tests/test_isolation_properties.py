"""Property-based isolation: whatever the ids and histories, no face returns or prompts anything
of a user outside the requested group, and every document and node id is unique.

Each generated example is a store of look-alike users (ids differing by case, by a slash or a
percent sign, by a space inside, sharing item ids and even texts) and a batch of group queries,
each asked through every face: ProfileMemory.search_many, the LangChain retriever, the
LlamaIndex retriever, the LlamaIndex memory block, and the prompt of a personalized chain.
Texts carry a marker of their owner, so a leak is a marker of another user in an answer.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from pydantic import Field

from langchain_stepback_profile import (
    ProfileDraft,
    ProfileMemory,
    StepBackProfileRetriever,
    UnknownUserError,
    create_personalized_chain,
)
from llamaindex_integration import StepBackProfileLlamaIndexRetriever, StepBackProfileMemoryBlock

EXAMPLES = 400
QUERIES = 6  # per example, each through 5 faces: 400 x 6 x 5 = 12,000 checked cases
CHECKED: list[int] = []

LOOK_ALIKES = st.sampled_from(
    ["a", "A", "a/b", "a%2Fb", "a b", "ab", "a.b", "é", "b", "a/", "%", "用户", "a#profile"]
)
ITEM_IDS = st.sampled_from(["1", "b/c", "c", "p1", "a/b", "x%2F", "#profile"])


def look_alike_histories(users: int, items: int) -> st.SearchStrategy[dict]:
    """2 to ``users`` look-alike users, each with 1 to ``items`` (item id, words) pairs."""
    pairs = st.tuples(ITEM_IDS, st.sampled_from(["shared words", "own words"]))
    rows = st.lists(pairs, min_size=1, max_size=items, unique_by=lambda t: t[0])
    return st.dictionaries(LOOK_ALIKES, rows, min_size=2, max_size=users)


def group_queries(users: int, queries: int) -> st.SearchStrategy[list[list[int]]]:
    """``queries`` groups of 1 to 3 user numbers (taken modulo the store's user count)."""
    group = st.lists(st.integers(0, users - 1), min_size=1, max_size=3)
    return st.lists(group, min_size=queries, max_size=queries)


def marker(user: str) -> str:
    """A token naming its owner that no other user's marker contains."""
    return f"<<owner:{user.encode().hex()}>>"


def owners(text: str, users: list[str]) -> set[str]:
    return {u for u in users if marker(u) in text}


class Recording(BaseChatModel):
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs
    ) -> ChatResult:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage("A Title"))])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    histories=look_alike_histories(users=6, items=4),
    groups=group_queries(users=6, queries=QUERIES),
    stranger=LOOK_ALIKES,
    k=st.integers(1, 5),
)  # fmt: skip
def test_no_face_ever_shows_another_users_data(
    histories: dict[str, list[tuple[str, str]]], groups: list[list[int]], stranger: str, k: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = ProfileMemory(Path(tmp) / "s", embeddings=DeterministicFakeEmbedding(size=16))
        users = list(histories)
        for user, items in histories.items():
            rows = [{"id": i, "text": f"{words} {marker(user)} {i}"} for i, words in items]
            memory.add(user, rows)
            memory.set_profile(user, ProfileDraft(summary=f"Profile {marker(user)}."))
        llm = Recording()
        retriever = StepBackProfileRetriever(memory=memory, k=k)
        chain = create_personalized_chain(llm, retriever, task="generic", prompt_layout="paper")
        if stranger not in users:  # an unknown id is refused by name, never matched to another
            with pytest.raises(UnknownUserError, match="unknown user"):
                memory.search_many([users[0], stranger], "shared words", k=k)
            with pytest.raises(UnknownUserError):
                retriever.invoke("shared words", user_ids=[stranger])
        for numbers in groups:
            group = list(dict.fromkeys(users[n % len(users)] for n in numbers))
            asked = set(group)
            query = f"shared words {marker(group[0])}"
            found = memory.search_many(group, query, k=k)
            assert list(found) == group
            for user, hits in found.items():
                assert all(h.user_id == user and owners(h.item.text, users) == {user} for h in hits)
            docs = retriever.invoke(query, user_ids=group)
            assert all(owners(d.page_content, users) <= asked for d in docs)
            assert all(d.metadata["user_id"] in asked for d in docs)
            ids = [d.id for d in docs]
            assert len(ids) == len(set(ids)), ids
            nodes = StepBackProfileLlamaIndexRetriever(memory, group, k=k).retrieve(query)
            node_ids = [n.node.node_id for n in nodes]
            assert len(node_ids) == len(set(node_ids)) == len(docs), node_ids
            assert all(owners(n.node.get_content(), users) <= asked for n in nodes)
            block = StepBackProfileMemoryBlock(memory=memory, user_ids=group, k=k)
            shown = asyncio.run(block.aget([ChatMessage(role=MessageRole.USER, content=query)]))
            assert owners(shown, users) <= asked
            chain.invoke(query, config={"configurable": {"user_ids": group}})
            assert owners(llm.prompts[-1], users) <= asked
            assert owners(llm.prompts[-1], users) == asked  # each author's profile is there
            CHECKED.append(5)
        memory.close()


def test_the_property_run_checked_enough_cases() -> None:
    # runs after the property test in file order; counts (query, face) checks made
    assert sum(CHECKED) == EXAMPLES * QUERIES * 5 >= 10_000, sum(CHECKED)
