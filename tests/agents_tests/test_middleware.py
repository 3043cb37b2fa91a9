"""StepBackProfileMiddleware in real create_agent graphs (real MiniLM, FAISS and SQLite): the
model's prompt holds the run's users' profiles and history, and nothing of anyone else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_stepback_profile import InvalidArgumentError, MiniLMEmbeddings, ProfileMemory
from langchain_stepback_profile.agents import StepBackProfileMiddleware, UserContext
from langchain_stepback_profile.agents.middleware import DEFAULT_HEADER, with_context
from tests.agents_tests.data import (
    PROFILES,
    QUERY,
    ScriptedChatModel,
    fingerprints,
    scripted,
    seen_text,
)

SYSTEM = "You are a helpful writing assistant."


def agent_for(memory: ProfileMemory, model: ScriptedChatModel, **options):
    return create_agent(
        model,
        system_prompt=SYSTEM,
        middleware=[StepBackProfileMiddleware(memory, k=2, **options)],
        context_schema=UserContext,
    )


def system_of(model: ScriptedChatModel, call: int = 0) -> str:
    message = model.prompts[call][0]
    assert isinstance(message, SystemMessage)
    return str(message.content)


# --------------------------------------------------------------------------- the prompt
def test_the_prompt_holds_the_context_users_data_and_nothing_of_another(
    people: ProfileMemory,
) -> None:
    model = scripted("A title", "Another title")
    agent = agent_for(people, model)

    result = agent.invoke({"messages": [HumanMessage(QUERY)]}, context=UserContext(["alice"]))
    assert result["messages"][-1].content == "A title"

    system = system_of(model)
    assert system.startswith(SYSTEM + "\n\n" + DEFAULT_HEADER)
    assert "Author 1 (alice):" in system
    assert PROFILES["alice"].summary in system
    # alice's two items most similar to the query, not her parsing paper
    assert "Back-Translation for Low-Resource Languages" in system
    assert "Neural Machine Translation with Attention" in system
    assert "Parsing Chinese Dependencies" not in system
    assert model.prompts[0][-1].content == QUERY  # the conversation itself is untouched
    for text in fingerprints("bob"):
        assert text not in seen_text(model.prompts)

    # the same agent, another run: bob's data only
    agent.invoke({"messages": [HumanMessage("a hearty winter dinner")]}, context=UserContext("bob"))
    second = system_of(model, 1)
    assert PROFILES["bob"].summary in second
    assert "Slow-cooked beef stew with red wine and thyme." in second
    for text in fingerprints("alice"):
        assert text not in second


async def test_async_runs_are_personalized_the_same_way(people: ProfileMemory) -> None:
    sync_model, async_model = scripted("t"), scripted("t")
    agent_for(people, sync_model).invoke(
        {"messages": [HumanMessage(QUERY)]}, context=UserContext("alice")
    )
    await agent_for(people, async_model).ainvoke(
        {"messages": [HumanMessage(QUERY)]}, context=UserContext("alice")
    )
    assert system_of(async_model) == system_of(sync_model)


def test_a_group_keeps_its_order(people: ProfileMemory) -> None:
    model = scripted("t")
    agent_for(people, model).invoke(
        {"messages": [HumanMessage(QUERY)]}, context=UserContext(["bob", "alice"])
    )
    system = system_of(model)
    assert system.index("Author 1 (bob):") < system.index("Author 2 (alice):")
    assert PROFILES["alice"].summary in system and PROFILES["bob"].summary in system


def test_every_model_call_of_a_run_is_personalized(people: ProfileMemory) -> None:
    @tool
    def word_count(text: str) -> int:
        """Count the words of a text."""
        return len(text.split())

    model = scripted(
        AIMessage("", tool_calls=[{"name": "word_count", "args": {"text": "a b"}, "id": "c1"}]),
        "Done",
    )
    agent = create_agent(
        model,
        [word_count],
        middleware=[StepBackProfileMiddleware(people, k=2)],
        context_schema=UserContext,
    )
    agent.invoke({"messages": [HumanMessage(QUERY)]}, context=UserContext("alice"))
    assert len(model.prompts) == 2
    assert system_of(model, 0) == system_of(model, 1)  # the query is still the user's message
    assert PROFILES["alice"].summary in system_of(model, 1)


# --------------------------------------------------------------------------- whose run
@dataclass
class AppContext:
    """An application's own context schema, with a user_id field."""

    user_id: str
    locale: str = "en"


@pytest.mark.parametrize(
    ("schema", "run"),
    [
        (UserContext, {"context": {"user_ids": ["alice"]}}),  # a dict, coerced by LangGraph
        (AppContext, {"context": AppContext(user_id="alice")}),
        (None, {"config": {"configurable": {"user_ids": ["alice"]}}}),
        (None, {"config": {"configurable": {"user_id": "alice"}}}),
    ],
)
def test_users_come_from_the_context_or_the_config(
    people: ProfileMemory, schema: type | None, run: dict
) -> None:
    model = scripted("t")
    agent = create_agent(
        model, middleware=[StepBackProfileMiddleware(people)], context_schema=schema
    )
    agent.invoke({"messages": [HumanMessage(QUERY)]}, **run)
    assert PROFILES["alice"].summary in system_of(model)
    assert PROFILES["bob"].summary not in system_of(model)


def test_the_context_wins_over_the_config(people: ProfileMemory) -> None:
    model = scripted("t")
    agent_for(people, model).invoke(
        {"messages": [HumanMessage(QUERY)]},
        context=UserContext("alice"),
        config={"configurable": {"user_ids": ["bob"]}},
    )
    assert PROFILES["alice"].summary in system_of(model)
    assert PROFILES["bob"].summary not in system_of(model)


def test_a_run_without_users_says_how_to_pass_them(people: ProfileMemory) -> None:
    agent = agent_for(people, scripted("t"))
    with pytest.raises(InvalidArgumentError, match=r"context=UserContext\(user_ids="):
        agent.invoke({"messages": [HumanMessage(QUERY)]})
    with pytest.raises(InvalidArgumentError, match="names no user"):
        UserContext([])


def test_a_new_user_gets_the_plain_prompt(people: ProfileMemory) -> None:
    model = scripted("t")
    agent_for(people, model).invoke(
        {"messages": [HumanMessage(QUERY)]}, context=UserContext(["newcomer"])
    )
    assert system_of(model) == SYSTEM
    model = scripted("t")
    agent_for(people, model).invoke(
        {"messages": [HumanMessage(QUERY)]}, context=UserContext(["newcomer", "alice"])
    )
    assert PROFILES["alice"].summary in system_of(model)


def test_without_a_user_message_only_profiles_are_added(people: ProfileMemory) -> None:
    model = scripted("t")
    create_agent(
        model, middleware=[StepBackProfileMiddleware(people)], context_schema=UserContext
    ).invoke(
        {"messages": [AIMessage("Hello! What shall we write today?")]}, context=UserContext("alice")
    )
    system = system_of(model)
    assert PROFILES["alice"].summary in system
    assert "Earlier work" not in system
    assert system.startswith(DEFAULT_HEADER)  # no system prompt of its own: a new one


def test_content_block_system_prompts_keep_their_blocks() -> None:
    blocks = SystemMessage([{"type": "text", "text": "Be brief.", "cache_control": {"x": 1}}])
    extended = with_context(blocks, "profiles")
    assert extended.content == [*blocks.content, {"type": "text", "text": "profiles"}]


def test_options_are_checked(people: ProfileMemory) -> None:
    with pytest.raises(InvalidArgumentError, match="k must be"):
        StepBackProfileMiddleware(people, k=0)
    with pytest.raises(InvalidArgumentError, match="refresh_after must be"):
        StepBackProfileMiddleware(people, refresh_after=0)
    with pytest.raises(InvalidArgumentError, match="keep at least one"):
        StepBackProfileMiddleware(people, include_profiles=False, include_history=False)


# --------------------------------------------------------------------------- recording
@pytest.fixture
def extractive(tmp_path: Path, embeddings: MiniLMEmbeddings) -> Iterator[ProfileMemory]:
    """A memory whose profiles are written without an LLM (so refreshes are instant)."""
    memory = ProfileMemory(
        tmp_path / "extractive",
        embeddings=embeddings,
        profile_strategy="extractive",
    )
    memory.add("alice", ["I mostly write about machine translation and BLEU."])
    memory.refresh()
    yield memory
    memory.close()


def test_record_adds_the_turn_to_the_users_history_after_the_run(
    extractive: ProfileMemory,
) -> None:
    model = scripted("Noted.", "Noted again.")
    agent = agent_for(extractive, model, record=True)
    message = "My new paper is on speech translation for sign languages."
    agent.invoke({"messages": [HumanMessage(message)]}, context=UserContext("alice"))
    assert message not in system_of(model)  # recorded after the run, not retrieved in it
    assert [i.text for i in extractive.items("alice")][-1] == message
    assert extractive.items("alice")[-1].metadata == {"source": "agent"}

    agent.invoke({"messages": [HumanMessage("speech translation")]}, context=UserContext("alice"))
    assert message in system_of(model, 1)
    assert extractive.get_profile("alice").version == 1  # no refresh policy: unchanged


def test_record_with_a_checkpointer_adds_each_turn_once(extractive: ProfileMemory) -> None:
    model = scripted("ok", "ok")
    agent = create_agent(
        model,
        middleware=[StepBackProfileMiddleware(extractive, record=True)],
        context_schema=UserContext,
        checkpointer=InMemorySaver(),
    )
    run = {"context": UserContext("alice"), "config": {"configurable": {"thread_id": "t1"}}}
    agent.invoke({"messages": [HumanMessage("first turn about parsing")]}, **run)
    first = extractive.items("alice")[-1]
    extractive.remove("alice", [first.id])  # forgotten: a later turn must not bring it back
    agent.invoke({"messages": [HumanMessage("second turn about tagging")]}, **run)
    texts = [i.text for i in extractive.items("alice")]
    assert "second turn about tagging" in texts
    assert "first turn about parsing" not in texts


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_refresh_after_n_new_items(extractive: ProfileMemory, asynchronous: bool) -> None:
    model = scripted(*["ok"] * 3)
    agent = agent_for(extractive, model, record=True, refresh_after=2)
    versions = []
    for text in ["I love statistical parsing.", "Treebanks are great.", "So is tagging."]:
        run = ({"messages": [HumanMessage(text)]},)
        if asynchronous:
            await agent.ainvoke(*run, context=UserContext("alice"))
        else:
            agent.invoke(*run, context=UserContext("alice"))
        versions.append(extractive.get_profile("alice").version)
    assert versions == [1, 2, 2]  # rebuilt once two new items had come in
    profile = extractive.get_profile("alice")
    assert "Treebanks are great." in [i.text for i in extractive.items("alice")]
    assert len(profile.item_ids) == 3


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_failing_refresh_after_the_turn_is_logged_not_raised(
    tmp_path: Path,
    embeddings: MiniLMEmbeddings,
    asynchronous: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = ProfileMemory(tmp_path / "m", embeddings=embeddings, profile_strategy="llm")
    memory.add("alice", ["I mostly write about machine translation and BLEU."])
    broken = scripted(*["not a profile"] * 6)  # every profile answer fails to parse
    middleware = StepBackProfileMiddleware(memory, record=True, refresh_after=1, llm=broken)
    agent = create_agent(
        scripted("The answer."), middleware=[middleware], context_schema=UserContext
    )
    run = ({"messages": [HumanMessage("Tell me about my work.")]},)
    if asynchronous:
        result = await agent.ainvoke(*run, context=UserContext("alice"))
    else:
        result = agent.invoke(*run, context=UserContext("alice"))
    assert result["messages"][-1].content == "The answer."  # the user got the answer
    assert middleware.last_refresh is not None
    assert list(middleware.last_refresh.failures) == ["alice"]
    assert "profile refresh of user 'alice' after the turn failed" in caplog.text
    assert memory.get_profile("alice") is None
    assert len(memory.items("alice")) == 2  # the turn was recorded all the same


def test_the_user_can_come_from_langgraphs_own_config_key() -> None:
    from langchain_stepback_profile.agents.context import run_users

    assert run_users(None, {"configurable": {"langgraph_user_id": "alice"}}) == ["alice"]
    assert run_users({"user_id": "bob"}, {"configurable": {"langgraph_user_id": "x"}}) == ["bob"]
    with pytest.raises(InvalidArgumentError, match="langgraph_user_id"):
        run_users(None, {"configurable": {}})
