"""The profile tools in real create_agent graphs: each is scoped to the run's user, whatever the
model writes into its arguments."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_stepback_profile import InvalidArgumentError, ProfileMemory
from langchain_stepback_profile.agents import (
    StepBackProfileMiddleware,
    UserContext,
    create_profile_tools,
)
from tests.agents_tests.data import PROFILES, fingerprints, scripted, seen_text

FORGED = {"user_id": "bob", "user_ids": ["bob"], "runtime": {"context": {"user_ids": ["bob"]}}}
NOTE = "Prefers titles under eight words."


def forged_calls() -> AIMessage:
    """A model that asks every tool for bob's data, in every way it could."""
    return AIMessage(
        "",
        tool_calls=[
            {
                "name": "search_user_history",
                "args": {"query": "beef stew sourdough pasta", **FORGED},
                "id": "call_search",
            },
            {"name": "read_user_profile", "args": dict(FORGED), "id": "call_profile"},
            {"name": "remember_about_user", "args": {"text": NOTE, **FORGED}, "id": "call_note"},
        ],
    )


def tool_results(messages: list) -> dict[str, str]:
    return {m.tool_call_id: str(m.content) for m in messages if isinstance(m, ToolMessage)}


def test_the_model_sees_only_its_own_arguments(memory: ProfileMemory) -> None:
    schemas = {
        t.name: convert_to_openai_tool(t)["function"]["parameters"]["properties"]
        for t in create_profile_tools(memory)
    }
    assert schemas == {
        "search_user_history": {"query": {"type": "string"}},
        "read_user_profile": {},
        "remember_about_user": {"text": {"type": "string"}},
    }


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_forged_user_ids_reach_only_the_context_users_data(
    people: ProfileMemory, asynchronous: bool
) -> None:
    bob_before = people.items("bob")
    model = scripted(forged_calls(), "Done.")
    agent = create_agent(model, create_profile_tools(people, k=2), context_schema=UserContext)
    request = {"messages": [HumanMessage("What do you know about me?")]}
    if asynchronous:
        result = await agent.ainvoke(request, context=UserContext("alice"))
    else:
        result = agent.invoke(request, context=UserContext("alice"))

    results = tool_results(result["messages"])
    assert "Neural Machine Translation with Attention" in results["call_search"]
    assert PROFILES["alice"].summary in results["call_profile"]
    assert results["call_note"] == "Saved to the user's history."
    everything = "\n".join(results.values())
    for text in fingerprints("bob"):
        assert text not in everything
    assert people.items("alice")[-1].text == NOTE
    assert people.items("alice")[-1].metadata == {"source": "agent_tool"}
    assert people.items("bob") == bob_before  # nothing written for bob


def test_tools_and_middleware_together(people: ProfileMemory) -> None:
    model = scripted(forged_calls(), "Done.")
    agent = create_agent(
        model,
        create_profile_tools(people),
        middleware=[StepBackProfileMiddleware(people, k=2)],
        context_schema=UserContext,
    )
    agent.invoke(
        {"messages": [HumanMessage("Tell me about my work.")]}, context=UserContext("alice")
    )
    assert len(model.prompts) == 2
    for text in fingerprints("bob"):
        assert text not in seen_text(model.prompts)
    assert PROFILES["alice"].summary in seen_text(model.prompts[1:])


def test_a_group_context_searches_every_member_and_notes_go_to_the_first(
    people: ProfileMemory,
) -> None:
    model = scripted(
        AIMessage(
            "",
            tool_calls=[
                {"name": "search_user_history", "args": {"query": "translation"}, "id": "s"},
                {"name": "remember_about_user", "args": {"text": NOTE}, "id": "n"},
            ],
        ),
        "ok",
    )
    agent = create_agent(model, create_profile_tools(people, k=1), context_schema=UserContext)
    result = agent.invoke({"messages": [HumanMessage("hi")]}, context=UserContext(["bob", "alice"]))
    found = tool_results(result["messages"])["s"]
    assert found.index("[Author 1]") < found.index("[Author 2]")
    assert people.items("bob")[-1].text == NOTE
    assert NOTE not in [i.text for i in people.items("alice")]


def test_a_new_user_gets_an_empty_answer_and_can_start_a_history(people: ProfileMemory) -> None:
    model = scripted(
        AIMessage(
            "",
            tool_calls=[
                {"name": "search_user_history", "args": {"query": "stew"}, "id": "s"},
                {"name": "read_user_profile", "args": {}, "id": "p"},
                {"name": "remember_about_user", "args": {"text": NOTE}, "id": "n"},
            ],
        ),
        "ok",
    )
    agent = create_agent(model, create_profile_tools(people), context_schema=UserContext)
    result = agent.invoke({"messages": [HumanMessage("hi")]}, context=UserContext("carol"))
    found = tool_results(result["messages"])
    assert found["s"] == "Nothing is stored for this user yet."
    assert found["p"] == "This user has no profile yet."
    assert [i.text for i in people.items("carol")] == [NOTE]


def test_a_tool_call_without_a_user_fails_loudly(people: ProfileMemory) -> None:
    model = scripted(
        AIMessage("", tool_calls=[{"name": "read_user_profile", "args": FORGED, "id": "p"}]),
        "ok",
    )
    agent = create_agent(model, create_profile_tools(people))
    with pytest.raises(InvalidArgumentError, match="names no user"):
        agent.invoke({"messages": [HumanMessage("hi")]})
