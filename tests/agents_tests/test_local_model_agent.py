"""End to end with every real part: LaMP-5-like papers, MiniLM, FAISS, SQLite, a profile written
by the embedded SmolLM2 model, and a create_agent agent running on that same model."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_stepback_profile import MiniLMEmbeddings, ProfileDraft, ProfileMemory
from langchain_stepback_profile.agents import StepBackProfileMiddleware, UserContext
from langchain_stepback_profile.llms import default_chat_model

pytestmark = pytest.mark.slow


class PromptCapture(BaseCallbackHandler):
    """Keeps the messages of every chat model call."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kw
    ) -> None:
        self.prompts.extend(messages)


def two_authors(questions: list[dict]) -> list[dict]:
    chosen: dict[str, dict] = {}
    for question in questions:
        if len(question["profile"]) >= 3 and question["user"] not in chosen:
            chosen[question["user"]] = question
        if len(chosen) == 2:
            return list(chosen.values())
    raise AssertionError("the LaMP-5-like data has fewer than two authors with 3 papers")


async def test_an_agent_on_the_embedded_model_gets_its_users_profile_only(
    tmp_path: Path, embeddings: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    author, other = two_authors(lamp5_questions)
    llm = default_chat_model(max_tokens=24)
    with ProfileMemory(
        tmp_path / "store", embeddings=embeddings, llm=llm, task="scholarly_title"
    ) as memory:
        memory.add(author["user"], author["profile"][:3])
        memory.add(other["user"], other["profile"][:3])
        assert memory.refresh([author["user"]]).count("built") == 1  # written by SmolLM2
        memory.set_profile(other["user"], ProfileDraft(summary="Writes about quantum optics."))
        profile = memory.get_profile(author["user"]).render(
            supported_only=True
        )  # what prompts carry
        assert profile

        agent = create_agent(
            llm,
            system_prompt="You suggest paper titles.",
            middleware=[StepBackProfileMiddleware(memory, k=2)],
            context_schema=UserContext,
        )
        capture = PromptCapture()
        result = await agent.ainvoke(
            {"messages": [HumanMessage(author["input"])]},
            context=UserContext(author["user"]),
            config={"callbacks": [capture]},
        )

    answer = result["messages"][-1]
    assert isinstance(answer, AIMessage) and str(answer.content).strip()
    (prompt,) = capture.prompts
    system = prompt[0]
    assert isinstance(system, SystemMessage)
    assert system.content.startswith("You suggest paper titles.")
    assert profile in system.content
    assert f"Author 1 ({author['user']}):" in system.content
    assert any(p["title"] in system.content for p in author["profile"][:3])
    everything = "\n".join(str(m.content) for m in prompt)
    assert other["user"] not in everything
    assert "quantum optics" not in everything
    for paper in other["profile"][:3]:
        assert paper["title"] not in everything
