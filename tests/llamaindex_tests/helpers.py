"""Test helpers of the LlamaIndex face: a small real LaMP-5-like slice, a profile-writing
LlamaIndex LLM, a function-calling LLM that records what it was sent, and a free port."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import Field

from langchain_stepback_profile import ProfileMemory, StepBackProfileRetriever
from llamaindex_integration import LlamaIndexChatModel

USERS = 3  # authors in the slice
PAPERS = 4  # earlier papers per author
_COMMON = {
    "this",
    "that",
    "with",
    "from",
    "which",
    "their",
    "these",
    "paper",
    "item",
    "title",
    "abstract",
    "propose",
    "show",
    "using",
    "based",
    "results",
    "approach",
    "model",
    "models",
}


class ProfileWriterLLM(CustomLLM):
    """A deterministic LlamaIndex LLM that writes a profile JSON from the most frequent words of
    the items it is shown, and keeps every prompt."""

    prompts: list[str] = Field(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=8192, num_output=512, model_name="profile-writer")

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        start, end = prompt.find("Item "), prompt.rfind("\n\nWrite ")
        words = re.findall(r"[a-z]{4,}", prompt[max(start, 0) : end].lower())
        top = [w for w, _ in Counter(w for w in words if w not in _COMMON).most_common(5)]
        answer = {
            "interests": top[:3] or ["research"],
            "keywords": top or ["research"],
            "style": {"tone": "technical", "length": "short titles"},
            "summary": f"Writes about {', '.join(top[:3]) or 'research'}.",
        }
        return CompletionResponse(text=json.dumps(answer))

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        yield self.complete(prompt, formatted, **kwargs)


def recording_llm(reply: str = "A title.") -> tuple[MockFunctionCallingLLM, list[list[str]]]:
    """LlamaIndex's mock function-calling LLM, answering ``reply`` and recording the text of the
    messages of every call (role: text), as the model received them."""
    calls: list[list[str]] = []

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        calls.append([f"{m.role.value}: {m.content or ''}" for m in messages])
        return ChatMessage(role="assistant", content=reply)

    return MockFunctionCallingLLM(response_generator=respond), calls


def shown_profile(memory: ProfileMemory, user_id: str) -> str:
    """The user's profile as every face shows it to a model."""
    retriever = StepBackProfileRetriever(memory=memory, include_history=False)
    (doc,) = retriever.invoke("", user_ids=[user_id])
    return doc.page_content


def slice_of(questions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The first USERS authors with at least PAPERS + 1 earlier papers, one query each."""
    chosen: dict[str, dict[str, Any]] = {}
    for question in questions:
        if len(question["profile"]) > PAPERS and question["user"] not in chosen:
            chosen[question["user"]] = question
        if len(chosen) == USERS:
            break
    return chosen


def fill(memory: ProfileMemory, chosen: dict[str, dict[str, Any]]) -> ProfileMemory:
    """Each author's first PAPERS papers as history, and profiles written by ProfileWriterLLM."""
    memory.add_histories({u: q["profile"][:PAPERS] for u, q in chosen.items()}, show_progress=False)
    memory.refresh(llm=LlamaIndexChatModel(llm=ProfileWriterLLM()))
    return memory
