"""create_personalized_chain / build_messages: one LLM call, the paper's prompt layout."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from langchain_stepback_profile import (
    InvalidArgumentError,
    build_messages,
    create_personalized_chain,
    get_task,
)

TITLE_TASK = get_task("scholarly_title")
ABSTRACT = "We translate low-resource languages with back-translation and attention."


class RecordingChat(BaseChatModel):
    """Records the messages of every call and answers with a fixed text."""

    reply: str = "A Personalized Title"
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording-chat"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.prompts.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])


# --------------------------------------------------------------------------- one call


@pytest.mark.parametrize("bad", ["", "   ", 42, None, ["a list"], {"input": ""}, {"query": "x"}])
def test_bad_input_is_refused_before_any_call(bad: Any) -> None:
    llm = RecordingChat()
    seen: list[str] = []
    chain = create_personalized_chain(llm, RunnableLambda(lambda q: seen.append(q) or []))
    with pytest.raises(InvalidArgumentError, match="non-empty string"):
        chain.invoke(bad)
    assert llm.prompts == []
    assert seen == []  # nor any retrieval


def test_unknown_task_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown task"):
        create_personalized_chain(RecordingChat(), RunnableLambda(lambda q: []), task="nope")


# --------------------------------------------------------------------------- build_messages


def test_build_messages_without_context_is_just_the_request() -> None:
    [message] = build_messages("some tweet", [], get_task("tweet_paraphrase"))
    assert isinstance(message, HumanMessage)
    spec = get_task("tweet_paraphrase")
    assert message.content.startswith(f"{spec.instruction} some tweet")
    assert "Author" not in message.content


def test_build_messages_profiles_only() -> None:
    docs = [
        Document("Summary: B.", metadata={"user_id": "b", "kind": "profile", "position": 0}),
        Document("Summary: A.", metadata={"user_id": "a", "kind": "profile", "position": 1}),
    ]
    [message] = build_messages("x", docs, get_task("generic"))
    text = message.content
    assert text.index("Author 1 (b):\nSummary: B.") < text.index("Author 2 (a):\nSummary: A.")
    assert "Earlier work" not in text
    assert text.index("Author 2") < text.index(get_task("generic").instruction)


def test_auto_layout_is_few_shot_for_the_embedded_model_and_paper_otherwise() -> None:
    from langchain_stepback_profile.llms import LocalChatModel
    from langchain_stepback_profile.prompting import resolve_strategy

    assert resolve_strategy("auto", LocalChatModel.model_construct()) == "few_shot"
    assert resolve_strategy("auto", RecordingChat()) == "paper"
    with pytest.raises(InvalidArgumentError, match="prompt strategy"):
        resolve_strategy("clever", RecordingChat())


# ------------------------------------------------------------------- group shots, candidates
def _pair(user: str, position: int, title: str, score: float) -> Document:
    return Document(
        title,
        metadata={
            "kind": "history",
            "user_id": user,
            "position": position,
            "input": f"Abstract of {title}.",
            "output": title,
            "score": score,
        },
    )


def test_few_shot_group_shows_the_leads_pairs_and_the_coauthors_best_pair() -> None:
    from langchain_stepback_profile.prompting import build_prompt

    docs = [
        _pair("lead", 0, "Lead Near", 0.8),
        _pair("lead", 0, "Lead Far", 0.4),
        _pair("co1", 1, "Shared Paper", 0.95),
        _pair("co1", 1, "Co One Best", 0.9),
        _pair("co2", 2, "Co Two", 0.7),
        _pair("co2", 2, "Lead Far", 0.99),  # co-authored with the lead: shown once, as the lead's
    ]
    messages = build_prompt(ABSTRACT, docs, TITLE_TASK, "few_shot")
    shown = [m.content for m in messages if m.type == "ai"]
    # the co-authors' most similar pair first, then the lead's, best match last
    assert shown == ["Shared Paper", "Lead Far", "Lead Near"]
    assert messages[-1].content == f"{TITLE_TASK.instruction} {ABSTRACT}"


class SeededSmallChat(BaseChatModel):
    """A "135M" model whose answer depends on the sampling seed; records the call options."""

    model_name: str = "SmolLM2-135M-Instruct"
    replies: dict[int, str] = Field(default_factory=dict)
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "seeded-small-chat"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.calls.append(kwargs)
        reply = self.replies[kwargs.get("seed", 0)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def test_candidate_defaults_and_bad_values() -> None:
    from langchain_stepback_profile.chains import Personalizer

    small = SeededSmallChat()
    assert Personalizer(small, TITLE_TASK).candidates == 3  # auto -> few_shot
    assert Personalizer(small, TITLE_TASK, prompt_layout="plain").candidates == 1
    assert Personalizer(small, TITLE_TASK, control=False).candidates == 1
    assert (
        Personalizer(small, get_task("tweet_paraphrase"), prompt_layout="few_shot").candidates == 1
    )
    assert Personalizer(RecordingChat(), TITLE_TASK, prompt_layout="few_shot").candidates == 1
    assert Personalizer(RecordingChat(), TITLE_TASK, candidates=4).candidates == 4
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(InvalidArgumentError, match="candidates must be a whole number"):
            Personalizer(small, TITLE_TASK, candidates=bad)


class WrappingChat(RecordingChat):
    """An adapter whose own fields do not name the model; its identifying params do."""

    wrapped: str = "SmolLM2-135M-Instruct"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.wrapped}


def test_a_small_model_is_recognized_through_an_adapters_identifying_params() -> None:
    from langchain_stepback_profile.prompting import is_small_model, resolve_strategy

    assert is_small_model(WrappingChat())
    assert resolve_strategy("auto", WrappingChat()) == "few_shot"
    assert not is_small_model(WrappingChat(wrapped="Qwen2.5-7B-Instruct"))
    assert not is_small_model(RecordingChat())
