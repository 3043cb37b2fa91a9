"""Shared test data: two users with distinct histories and profiles, and a scripted chat model
that records every prompt it receives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from langchain_stepback_profile import ProfileDraft

HISTORIES = {
    "alice": [
        {
            "id": "a1",
            "title": "Neural Machine Translation with Attention",
            "abstract": "Encoder-decoder networks with attention translate between languages.",
        },
        {
            "id": "a2",
            "title": "Back-Translation for Low-Resource Languages",
            "abstract": "Synthetic parallel data improves translation with little data.",
        },
        {
            "id": "a3",
            "title": "Parsing Chinese Dependencies",
            "abstract": "A transition-based dependency parser for Chinese.",
        },
    ],
    "bob": [
        "Slow-cooked beef stew with red wine and thyme.",
        "Sourdough bread: feeding the starter and proofing overnight.",
        "A quick weeknight pasta with garlic and chili.",
    ],
}
PROFILES = {
    "alice": ProfileDraft(
        interests=["machine translation", "parsing"],
        keywords=["attention", "back-translation"],
        summary="Alice writes short, technical titles about machine translation.",
    ),
    "bob": ProfileDraft(
        interests=["home cooking", "baking"],
        keywords=["stew", "sourdough"],
        summary="Bob writes warm, chatty recipe notes.",
    ),
}
QUERY = "Suggest a title: we translate low-resource languages with synthetic parallel data."


def fingerprints(user_id: str) -> list[str]:
    """Strings that only this user's data contains (their items and profile)."""
    items = [i if isinstance(i, str) else i["title"] for i in HISTORIES[user_id]]
    return [*items, PROFILES[user_id].summary, *PROFILES[user_id].keywords]


def seen_text(prompts: Sequence[Sequence[BaseMessage]]) -> str:
    """Everything the model was shown, as one string."""
    return "\n".join(str(m.content) for prompt in prompts for m in prompt)


class ScriptedChatModel(GenericFakeChatModel):
    """A fake tool-calling chat model: answers from a script, records every prompt."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def scripted(*replies: AIMessage | str) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(replies))
