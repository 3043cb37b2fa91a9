"""StepBackProfileMemoryBlock inside LlamaIndex's real ``Memory`` and ``FunctionAgent``, over a
real store (MiniLM, FAISS, SQLite) of LaMP-5-like authors. The agent's LLM is LlamaIndex's mock
function-calling LLM, recording what it receives; profiles are written through
``LlamaIndexChatModel`` by a deterministic LlamaIndex LLM."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory, StaticMemoryBlock

from langchain_stepback_profile import InvalidArgumentError, ProfileMemory, UnknownUserError
from langchain_stepback_profile.chains import render_context
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from llamaindex_integration import StepBackProfileMemoryBlock
from tests.llamaindex_tests.helpers import PAPERS, ProfileWriterLLM, recording_llm, shown_profile

PREFIX = "Generate a title for the following abstract of a paper: "


def abstract(question: dict[str, Any]) -> str:
    return question["input"].removeprefix(PREFIX)


def paper_texts(question: dict[str, Any]) -> list[str]:
    return [p["abstract"] for p in question["profile"][:PAPERS]]


async def run_agent(memory: Memory, text: str) -> list[str]:
    """One FunctionAgent turn; returns the messages its LLM received (one string each)."""
    llm, calls = recording_llm()
    agent = FunctionAgent(llm=llm, tools=[], system_prompt="You suggest titles for papers.")
    await agent.run(user_msg=text, memory=memory)
    assert len(calls) == 1
    return calls[0]


# --------------------------------------------------------------------------- reading


async def test_profile_reaches_the_agents_prompt_and_another_users_data_never_does(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, carol = lamp_slice
    question = lamp_slice[alice]
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=alice, k=2)
    memory = Memory.from_defaults(session_id="alice-chat", memory_blocks=[block])

    received = await run_agent(memory, abstract(question))
    prompt = "\n".join(received)

    expected = await StepBackProfileRetriever(memory=profiles, k=2).ainvoke(
        abstract(question), user_ids=[alice]
    )
    system = [m for m in received if m.startswith("system: <memory>")]
    assert len(system) == 1
    assert f"<StepBackProfile>\n{render_context(expected)}\n</StepBackProfile>" in system[0]
    assert shown_profile(profiles, alice) in prompt
    assert f"Author 1 ({alice})" in prompt
    assert sum(text in prompt for text in paper_texts(question)) == 2  # her top-2 items
    for other in (bob, carol):
        assert other not in prompt
        assert shown_profile(profiles, other) not in prompt
        assert not any(text in prompt for text in paper_texts(lamp_slice[other]))
    assert received[-1] == f"user: {abstract(question)}"


async def test_a_group_is_shown_in_author_order(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, carol = lamp_slice
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=[bob, alice], k=1)
    memory = Memory.from_defaults(session_id="group", memory_blocks=[block])

    prompt = "\n".join(await run_agent(memory, abstract(lamp_slice[alice])))

    assert prompt.index(f"Author 1 ({bob})") < prompt.index(f"Author 2 ({alice})")
    assert prompt.index("[Author 1]") < prompt.index("[Author 2]")
    assert carol not in prompt


async def test_query_is_the_latest_user_messages(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    papers = lamp_slice[alice]["profile"][:PAPERS]
    block = StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=[alice], k=1)
    history = [
        ChatMessage(role="user", content=papers[0]["abstract"]),
        ChatMessage(role="assistant", content=papers[2]["abstract"]),
        ChatMessage(role="user", content=papers[1]["abstract"]),
    ]
    shown = await block.aget(history)
    assert papers[1]["abstract"] in shown
    assert papers[0]["abstract"] not in shown

    only_profile = await block.aget([ChatMessage(role="assistant", content="Hello!")])
    assert only_profile == render_context(
        await StepBackProfileRetriever(memory=lamp_memory, include_history=False).ainvoke(
            "", user_ids=[alice]
        )
    )
    assert "Earlier work" not in only_profile


async def test_a_new_user_gets_an_empty_block_and_the_agent_still_runs(
    profiles: ProfileMemory,
) -> None:
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids="newcomer")
    assert await block.aget([ChatMessage(role="user", content="hi")]) == ""
    memory = Memory.from_defaults(session_id="new", memory_blocks=[block])
    received = await run_agent(memory, "Hello there")
    assert not any("<memory>" in m for m in received)


# --------------------------------------------------------------------------- writing


async def test_user_messages_flushed_by_memory_go_to_the_users_history_only(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, carol = lamp_slice
    before = {u: len(profiles.items(u)) for u in lamp_slice}
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=[alice, bob])
    # a tiny short-term memory: every turn pushes the older ones into the blocks
    memory = Memory.from_defaults(
        session_id="flush", memory_blocks=[block], token_limit=100, chat_history_token_ratio=0.1
    )
    said = [
        "Grammar induction for low-resource languages with shared priors.",
        "Unsupervised morphology learning across related languages.",
        "Transfer of dependency parsers between typologically close languages.",
    ]
    for text in said:
        await run_agent(memory, text)

    archived = [m.content for m in await memory.aget_all() if m.role == "assistant"]
    assert archived  # the agent's answers went through memory as well
    items = [item.text for item in profiles.items(alice)]
    assert items[before[alice] :] == said[:2]  # the last turn is still in short-term memory
    assert "A title." not in items  # what the assistant said is not the user's writing
    assert {u: len(profiles.items(u)) for u in (bob, carol)} == {u: before[u] for u in (bob, carol)}


async def test_record_user_can_be_another_member_of_the_group(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, _ = lamp_slice
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=[alice, bob], record_user_id=bob)
    await block.aput([ChatMessage(role="user", content="Bob wrote this sentence.")])
    assert "Bob wrote this sentence." in [i.text for i in profiles.items(bob)]
    assert "Bob wrote this sentence." not in [i.text for i in profiles.items(alice)]


async def test_a_new_users_messages_start_their_history(profiles: ProfileMemory) -> None:
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids="newcomer")
    await block.aput(
        [
            ChatMessage(role="system", content="You are helpful."),
            ChatMessage(role="user", content="Coreference resolution with neural networks."),
            ChatMessage(role="assistant", content="Noted."),
            ChatMessage(role="user", content="   "),
        ]
    )
    assert [i.text for i in profiles.items("newcomer")] == [
        "Coreference resolution with neural networks."
    ]
    shown = await block.aget([ChatMessage(role="user", content="coreference")])
    assert "Coreference resolution with neural networks." in shown


async def test_refresh_every_n_new_items(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    writer = ProfileWriterLLM()
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=alice, refresh_every=2, llm=writer)
    version = profiles.get_profile(alice).version

    await block.aput([ChatMessage(role="user", content="Sentence compression with syntax.")])
    assert profiles.get_profile(alice).version == version
    assert writer.prompts == []

    await block.aput([ChatMessage(role="user", content="Summarization of meeting transcripts.")])
    profile = profiles.get_profile(alice)
    assert profile.version == version + 1
    assert len(writer.prompts) == 1
    assert "Summarization of meeting transcripts." in writer.prompts[0]
    assert set(profile.item_ids) == {i.id for i in profiles.items(alice)}


async def test_refresh_on_demand(
    profiles: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    writer = ProfileWriterLLM()
    block = StepBackProfileMemoryBlock(memory=profiles, user_ids=alice, llm=writer)
    for n in range(3):
        await block.aput([ChatMessage(role="user", content=f"Note number {n} on parsing.")])
    assert writer.prompts == []

    report = await block.arefresh()
    assert report.count("updated") + report.count("built") == 1
    assert "Note number 2 on parsing." in writer.prompts[-1]
    assert (await block.arefresh()).llm_calls == 0


# --------------------------------------------------------------------------- token limits


async def test_priority_zero_is_never_truncated(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice = next(iter(lamp_slice))
    block = StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=alice, k=PAPERS)
    memory = Memory.from_defaults(session_id="p0", memory_blocks=[block], token_limit=50)
    full = await block.aget([ChatMessage(role="user", content=abstract(lamp_slice[alice]))])
    await memory.aput(ChatMessage(role="user", content=abstract(lamp_slice[alice])))
    messages = await memory.aget()
    assert full in messages[0].content


async def test_lower_priority_blocks_shrink_history_first_then_profiles(
    lamp_memory: ProfileMemory, lamp_slice: dict[str, dict[str, Any]]
) -> None:
    alice, bob, _ = lamp_slice
    query = ChatMessage(role="user", content=abstract(lamp_slice[alice]))
    block = StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=[alice, bob], k=2, priority=1)
    count = block.tokenizer_fn
    full = await block.aget([query])
    tokens = len(count(full))
    profile_docs = await StepBackProfileRetriever(
        memory=lamp_memory, include_history=False
    ).ainvoke("", user_ids=[alice, bob])
    both, first = render_context(profile_docs), render_context(profile_docs[:1])

    fewer = await block.atruncate(full, 1)
    assert fewer is not None and len(count(fewer)) < tokens
    assert (fewer.count("[Author 1]"), fewer.count("[Author 2]")) == (2, 1)  # least similar first
    assert await block.atruncate(full, tokens - len(count(both))) == both
    assert await block.atruncate(full, tokens - len(count(first))) == first  # first author stays
    assert await block.atruncate(full, tokens) is None
    assert await block.atruncate("text this block never returned", 1) is None

    # inside Memory: a static block of priority 0 stays whole, this one shrinks to what fits
    rules = "Answer with a title only."
    static = StaticMemoryBlock(name="rules", static_content=rules)
    limit = len(count(query.content)) + len(count(rules)) + len(count(both)) + 20
    memory = Memory.from_defaults(
        session_id="limits", memory_blocks=[static, block], token_limit=limit
    )
    await memory.aput(query)
    system = (await memory.aget())[0].content
    assert rules in system
    assert both in system
    assert "Earlier work" not in system


# --------------------------------------------------------------------------- arguments


def test_bad_users_are_refused_with_clear_errors(lamp_memory: ProfileMemory) -> None:
    with pytest.raises(InvalidArgumentError, match="no users given"):
        StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=[])
    with pytest.raises(InvalidArgumentError, match="not one of user_ids"):
        StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=["a", "b"], record_user_id="c")
    with pytest.raises(InvalidArgumentError, match="non-empty string"):
        StepBackProfileMemoryBlock(memory=lamp_memory, user_ids=["a", ""])


async def test_refreshing_a_user_without_history_says_so(lamp_memory: ProfileMemory) -> None:
    block = StepBackProfileMemoryBlock(memory=lamp_memory, user_ids="nobody")
    with pytest.raises(UnknownUserError, match="add items first"):
        await block.arefresh()
