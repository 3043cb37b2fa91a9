"""Property-based isolation through the agent middleware, the profile tools and the CLI.

Each generated example is a store of look-alike users (as in test_isolation_properties). An
agent built with ``create_agent`` carries the middleware and the profile tools; its model
asks the tools for another user's data in every argument it can forge, and everything the
model is shown (the middleware's system prompt, the tools' results) is checked. The CLI's
``query --json`` runs in-process on the same store: its output, the profiles and history it
shows and the prompt its chain sends may hold only the requested users' markers.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from langchain_stepback_profile import ProfileDraft, ProfileMemory
from langchain_stepback_profile.agents import (
    StepBackProfileMiddleware,
    UserContext,
    create_profile_tools,
)
from langchain_stepback_profile.cli import Session, main

from .test_isolation_properties import group_queries, look_alike_histories, marker, owners

EXAMPLES = 120
QUERIES = 4  # each through the middleware, the tools and the CLI: 120 x 4 x 3 = 1,440 cases
CHECKED: list[int] = []
EMBEDDINGS = DeterministicFakeEmbedding(size=16)


class ForgingAgentModel(BaseChatModel):
    """Calls both read tools with forged arguments naming ``forged``, then answers."""

    forged: str = ""
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "forging"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ForgingAgentModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs
    ) -> ChatResult:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        if isinstance(messages[-1], ToolMessage):
            return ChatResult(generations=[ChatGeneration(message=AIMessage("A Title"))])
        forged = {"user_id": self.forged, "user_ids": [self.forged]}
        calls = [
            {"name": "search_user_history", "args": {"query": "shared words", **forged}, "id": "s"},
            {"name": "read_user_profile", "args": dict(forged), "id": "p"},
        ]
        return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=calls))])


class Recording(ForgingAgentModel):
    """The CLI's chat model: records the prompt, answers a title."""

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs
    ) -> ChatResult:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage("A Title"))])


@pytest.fixture(autouse=True)
def cli_models(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """The CLI's embeddings are the store's fake ones and its chat model records prompts."""
    llm = Recording()
    monkeypatch.setattr(Session, "embeddings", lambda self: EMBEDDINGS)
    monkeypatch.setattr(Session, "llm", lambda self: llm)
    return llm


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the recording model is reset per query
    ],
)
@given(
    histories=look_alike_histories(users=5, items=3),
    groups=group_queries(users=5, queries=QUERIES),
    forged=st.integers(0, 4),
    k=st.integers(1, 3),
)
def test_agents_tools_and_the_cli_never_show_another_users_data(
    cli_models: Recording,
    capsys: pytest.CaptureFixture[str],
    histories: dict[str, list[tuple[str, str]]],
    groups: list[list[int]],
    forged: int,
    k: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s"
        memory = ProfileMemory(path, embeddings=EMBEDDINGS)
        users = list(histories)
        for user, items in histories.items():
            memory.add(user, [{"id": i, "text": f"{w} {marker(user)} {i}"} for i, w in items])
            memory.set_profile(user, ProfileDraft(summary=f"Profile {marker(user)}."))
        model = ForgingAgentModel()
        agent = create_agent(
            model,
            tools=create_profile_tools(memory, k=k),
            middleware=[StepBackProfileMiddleware(memory, k=k)],
            context_schema=UserContext,
        )
        for numbers in groups:
            group = list(dict.fromkeys(users[n % len(users)] for n in numbers))
            asked = set(group)
            query = f"shared words {marker(group[0])}"
            outsider = [u for u in users if u not in asked]
            model.forged = outsider[forged % len(outsider)] if outsider else group[0]
            model.prompts.clear()
            result = agent.invoke({"messages": [HumanMessage(query)]}, context=UserContext(group))
            tool_texts = [str(m.content) for m in result["messages"] if isinstance(m, ToolMessage)]
            # each tool shows every asked user's data, whatever user the model forged
            assert len(tool_texts) == 2 and all(owners(t, users) == asked for t in tool_texts)
            assert all(owners(p, users) <= asked for p in model.prompts)
            assert owners(model.prompts[0], users) == asked  # the middleware showed each profile

            cli_models.prompts.clear()
            code = main(["query", "--users", ",".join(group), "--k", str(k), "--json",
                         "--store", str(path), query])  # fmt: skip
            shown = json.loads(capsys.readouterr().out)
            assert code == 0 and shown["users"] == group
            assert owners(json.dumps(shown, ensure_ascii=False), users) <= asked
            assert {p["user_id"] for p in shown["profiles"]} == asked
            assert all(owners(p, users) <= asked for p in cli_models.prompts)
            CHECKED.append(3)
        memory.close()


def test_the_agent_and_cli_run_checked_enough_cases() -> None:
    assert sum(CHECKED) == EXAMPLES * QUERIES * 3, sum(CHECKED)
