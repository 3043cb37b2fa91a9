"""create_personalized_chain(group_mode=...): concat (one prompt, author order) and two_stage
(each author proposes from their own documents, the first author merges)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from langchain_stepback_profile import InvalidArgumentError, create_personalized_chain
from langchain_stepback_profile.chains import GROUP_MODES, TwoStage, split_by_author
from langchain_stepback_profile.cli.parser import build_parser
from langchain_stepback_profile.tasks import get_task

ABSTRACT = "We translate humpback whale songs with graph parsers."


class AuthorChat(BaseChatModel):
    """Answers a merge request with ``merged``, else with the topic of the author it sees."""

    merged: str = "Merged Whale Graphs"
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "author-chat"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        text = "\n".join(str(m.content) for m in messages)
        self.prompts.append(text)
        if "proposed by the authors" in text:
            reply = self.merged
        elif "ada-profile" in text and "bob-profile" in text:
            reply = "Both Authors Title"
        elif "ada-profile" in text:
            reply = "Graph Parsers for Songs"
        else:
            reply = "Whale Song Translation"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def _docs(users: tuple[str, ...] = ("ada", "bob")) -> list[Document]:
    docs = [
        Document(
            f"Summary: {u}-profile",
            metadata={"user_id": u, "kind": "profile", "position": n, "stats": {}},
        )
        for n, u in enumerate(users)
    ]
    docs += [
        Document(
            f"{u} earlier paper",
            metadata={"user_id": u, "kind": "history", "position": n, "item_id": f"{u}1"},
        )
        for n, u in enumerate(users)
    ]
    return docs


def _chain(llm: AuthorChat, docs: list[Document], **kw: Any):
    options = {"task": "scholarly_title", "prompt_layout": "paper", "return_context": True} | kw
    return create_personalized_chain(llm, RunnableLambda(lambda q: docs), **options)


def test_concat_is_the_default_one_prompt_in_author_order() -> None:
    llm = AuthorChat()
    result = _chain(llm, _docs()).invoke(ABSTRACT)
    assert len(llm.prompts) == 1
    assert llm.prompts[0].index("ada-profile") < llm.prompts[0].index("bob-profile")
    assert result["output"] == "Both Authors Title"
    assert result["control"]["llm_calls"] == 1
    assert GROUP_MODES == ("concat", "two_stage")


def test_two_stage_proposes_per_author_then_the_first_merges() -> None:
    llm = AuthorChat()
    result = _chain(llm, _docs(), group_mode="two_stage").invoke(ABSTRACT)
    assert len(llm.prompts) == 3  # n_authors + 1
    first, second, merge = llm.prompts
    assert "ada-profile" in first and "bob" not in first
    assert "bob-profile" in second and "ada" not in second
    assert "Graph Parsers for Songs" in merge and "Whale Song Translation" in merge
    assert merge.index("Graph Parsers for Songs") < merge.index("Whale Song Translation")
    assert result["output"] == "Merged Whale Graphs"
    control = result["control"]
    assert control["group_mode"] == "two_stage" and control["layout"] == "two_stage"
    assert control["proposals"] == ["Graph Parsers for Songs", "Whale Song Translation"]
    assert control["llm_calls"] == 3 and control["fallback"] is False
    assert len(result["documents"]) == 4  # every author's documents


def test_an_unusable_merge_keeps_the_first_authors_proposal() -> None:
    llm = AuthorChat(merged="")
    result = _chain(llm, _docs(), group_mode="two_stage").invoke(ABSTRACT)
    assert result["output"] == "Graph Parsers for Songs"
    assert result["control"]["fallback"] is True


def test_one_author_costs_one_call() -> None:
    llm = AuthorChat()
    result = _chain(llm, _docs(("bob",)), group_mode="two_stage").invoke(ABSTRACT)
    assert len(llm.prompts) == 1
    assert result["output"] == "Whale Song Translation"
    assert result["control"]["proposals"] == ["Whale Song Translation"]


async def test_two_stage_async_matches_sync() -> None:
    sync_llm, async_llm = AuthorChat(), AuthorChat()
    expected = _chain(sync_llm, _docs(), group_mode="two_stage").invoke(ABSTRACT)
    got = await _chain(async_llm, _docs(), group_mode="two_stage").ainvoke(ABSTRACT)
    assert got["output"] == expected["output"]
    assert sorted(async_llm.prompts) == sorted(sync_llm.prompts)


def test_plain_output_and_output_control() -> None:
    chain = create_personalized_chain(
        AuthorChat(merged='Title: "Merged Whale Graphs"'),
        RunnableLambda(lambda q: _docs()),
        task="scholarly_title",
        prompt_layout="paper",
        group_mode="two_stage",
    )
    assert chain.invoke(ABSTRACT) == "Merged Whale Graphs"  # cleaned by output control


def test_documents_are_split_in_author_order() -> None:
    docs = _docs()[::-1]
    groups = split_by_author(docs)
    assert [{d.metadata["user_id"] for d in g} for g in groups] == [{"ada"}, {"bob"}]
    step = TwoStage(AuthorChat(), get_task("scholarly_title"), prompt_layout="paper")
    assert step.proposer.candidates == 1  # one answer per proposal unless asked


def test_unknown_group_mode_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown group_mode 'vote'"):
        create_personalized_chain(AuthorChat(), RunnableLambda(lambda q: []), group_mode="vote")


def test_the_query_command_takes_a_group_mode() -> None:
    args = build_parser().parse_args(
        ["query", "--users", "a,b", "--group-mode", "two_stage", "some text"]
    )
    assert args.group_mode == "two_stage"
    assert build_parser().parse_args(["query", "--users", "a", "x"]).group_mode == "concat"
