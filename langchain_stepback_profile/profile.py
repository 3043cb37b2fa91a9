"""The step-back profile: a user's history distilled into a short, inspectable record.

Example:
    >>> draft = ProfileDraft(interests=["machine translation"], keywords=["NMT"],
    ...                      style=WritingStyle(tone="formal"), summary="Works on MT.")
    >>> profile = UserProfile.from_draft(draft, user_id="alice", history_hash="h",
    ...                                  item_ids=["p1"], model="m", prompt_version="1")
    >>> print(profile.render().splitlines()[0])
    Research interests / topics: machine translation
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from langchain_stepback_profile.output_control import sentences

_PLACEHOLDER = re.compile(
    r"^(?:[\s.…_\-*]*|(?:<[^<>]*>\s*)+|(?:\{\{[^{}]*\}\}\s*)+|n/?a|none|null|string|unknown)$", re.I
)


SUPPORTED = 0.5
"""A topic or keyword is supported when at least this share of its words occurs in the history."""
SENTENCE_SUPPORTED = 0.75
"""A summary sentence needs more: its filler words ("works on", "uses") are common anyway."""


MAX_TERMS = 24
"""At most this many interests, and as many keywords, are kept."""
MAX_TERM_CHARS = 120
MAX_STYLE_CHARS = 300
MAX_SUMMARY_CHARS = 2000
"""Bounds of a profile's text: it is read into every prompt, so a runaway answer or a huge
item copied into it must not grow it without limit. Cut text ends with :data:`CUT_MARK`."""
CUT_MARK = " [cut]"


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, marked as cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(CUT_MARK)]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + CUT_MARK


def is_placeholder(text: str) -> bool:
    """True for empty or template text a model copied instead of answering ("...", "<topic>")."""
    return bool(_PLACEHOLDER.match(text.strip().strip("\"'")))


def _as_list(value: Any) -> Any:
    """Accept a list, or a comma/semicolon/newline separated string (small models do this),
    or nothing (``null``); drop placeholders and repeats."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[,;\n]+", value)
    if isinstance(value, list):
        parts = (bounded(str(v).strip(" -*•\t"), MAX_TERM_CHARS) for v in value)
        return list(dict.fromkeys(p for p in parts if not is_placeholder(p)))[:MAX_TERMS]
    return value


def _is_term(text: str) -> bool:
    """A short phrase (checked like a keyword), not prose (checked sentence by sentence)."""
    return len(text.split()) <= 8 and len(sentences(text)) <= 1


def data_claims(
    data: Mapping[str, Any], fields: Iterable[str] | None = None
) -> list[tuple[str, bool]]:
    """The claims of a custom profile (of ``fields`` only, when given), each with whether it
    is a short term: every list entry and short text is one claim, longer text one claim a
    sentence; numbers and flags are not claims."""
    chosen = set(fields) if fields is not None else None
    found: list[tuple[str, bool]] = []

    def walk(value: Any, in_list: bool) -> None:
        if isinstance(value, str):
            text = value.strip()
            if text and (in_list or _is_term(text)):
                found.append((text, True))
            elif text:
                found.extend((part, False) for part in sentences(text))
        elif isinstance(value, (list, tuple)):
            for entry in value:
                walk(entry, True)
        elif isinstance(value, Mapping):
            for entry in value.values():
                walk(entry, False)

    for name, value in data.items():
        if chosen is None or name in chosen:
            walk(value, False)
    return list(dict.fromkeys(found))


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def render_data(data: Mapping[str, Any], drop: set[str] | frozenset[str] = frozenset()) -> str:
    """A custom profile as prompt text: one field a line, named after the field, without
    empty fields and the ``drop`` claims."""

    def text(value: Any) -> str:
        if isinstance(value, str):
            value = value.strip()
            if value in drop:
                return ""
            return " ".join(s for s in sentences(value) if s not in drop)
        if isinstance(value, (list, tuple)):
            return "; ".join(t for t in (text(v) for v in value) if t)
        if isinstance(value, Mapping):
            return "; ".join(f"{_label(k).lower()} {t}" for k, v in value.items() if (t := text(v)))
        return "" if value is None else str(value)

    return "\n".join(f"{_label(name)}: {t}" for name, value in data.items() if (t := text(value)))


class WritingStyle(BaseModel):
    """How the user writes.

    Example:
        >>> WritingStyle(tone="formal", length="8-10 words").length
        '8-10 words'
    """

    tone: str = ""
    length: str = ""
    structure: str = ""
    vocabulary: str = ""

    @field_validator("tone", "length", "structure", "vocabulary", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if not is_placeholder(str(v)))
        if isinstance(value, str) and is_placeholder(value):
            return ""
        return bounded(value, MAX_STYLE_CHARS) if isinstance(value, str) else value


class ProfileDraft(BaseModel):
    """What the LLM writes in the Gist step (the structured-output schema).

    Example:
        >>> ProfileDraft.model_validate({"interests": "parsing, MT", "summary": "x"}).interests
        ['parsing', 'MT']
    """

    interests: list[str] = Field(
        default_factory=list, description="research interests or main topics, short phrases"
    )
    keywords: list[str] = Field(
        default_factory=list, description="recurring keywords or phrases the user uses"
    )
    style: WritingStyle = Field(
        default_factory=WritingStyle,
        description="writing style: tone, typical length, structure, vocabulary",
    )
    summary: str = Field(default="", description="two or three sentences about the user")

    @field_validator("interests", "keywords", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and is_placeholder(value)):
            return ""
        return bounded(value, MAX_SUMMARY_CHARS) if isinstance(value, str) else value

    @field_validator("style", mode="before")
    @classmethod
    def _style(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"tone": value}
        return value

    def claims(self, fields: Iterable[str] | None = None) -> list[str]:
        """What the profile asserts and the history can be checked against: each interest,
        keyword and summary sentence (of ``fields`` only, when given)."""
        chosen = set(fields) if fields is not None else {"interests", "keywords", "summary"}
        return [
            *(self.interests if "interests" in chosen else []),
            *(self.keywords if "keywords" in chosen else []),
            *(sentences(self.summary) if "summary" in chosen else []),
        ]

    def support_with_edits(
        self, support: dict[str, float], edited: Iterable[str]
    ) -> dict[str, float]:
        """``support`` with every claim of the ``edited`` fields counted as supported: what a
        person wrote about themselves is never dropped from a prompt as invented."""
        return {**support, **dict.fromkeys(self.claims(edited), 1.0)}

    def is_empty(self) -> bool:
        """True when the draft says nothing at all (a useless answer)."""
        return not (self.interests or self.keywords or self.summary.strip())


class UserProfile(ProfileDraft):
    """A stored step-back profile with its provenance.

    ``history_hash`` identifies the history it was distilled from, ``item_ids`` the items
    it drew on; ``version`` increases with every rebuild or edit.

    Example:
        >>> p = UserProfile(user_id="alice", summary="Works on MT.")
        >>> p.version
        1
    """

    model_config = ConfigDict(frozen=False)

    user_id: str
    version: int = 1
    history_hash: str = ""
    item_ids: list[str] = Field(default_factory=list)
    model: str = ""
    prompt_version: str = ""
    task: str = "generic"
    strategy: str = "llm"
    """How it was written: ``llm`` (the paper's), ``extractive`` (no LLM) or ``hybrid``."""
    stats: dict[str, Any] = Field(default_factory=dict)
    """Measured style statistics of the user's outputs (see ``evidence.StyleStats``)."""
    support: dict[str, float] = Field(default_factory=dict)
    """Each claim (see :meth:`claims`) with the share of its words found in the history."""
    edited: bool = False
    edited_fields: list[str] = Field(default_factory=list)
    """The content fields a person set by hand; later refreshes keep them as they are."""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] | None = None
    """The profile's content in a custom schema (``ProfileMemory(profile_schema=...)``), as
    JSON data; ``None`` for the built-in fields above."""
    schema_name: str = ""
    """The custom schema's class name; empty for the built-in fields."""

    def claims(self, fields: Iterable[str] | None = None) -> list[str]:
        if self.data is None:
            return super().claims(fields)
        return [text for text, _ in data_claims(self.data, fields)]

    @property
    def faithfulness(self) -> float | None:
        """The share of claims the history supports; None when they were not checked."""
        if not self.support:
            return None
        return round(1 - len(self.unsupported()) / len(self.support), 3)

    def unsupported(self) -> list[str]:
        """Claims whose words the history does not contain (likely invented)."""
        terms = {*self.interests, *self.keywords}
        if self.data is not None:
            terms |= {text for text, term in data_claims(self.data) if term}
        return [
            claim
            for claim, share in self.support.items()
            if share < (SUPPORTED if claim in terms else SENTENCE_SUPPORTED)
        ]

    @property
    def typical_words(self) -> float | None:
        """The median length in words of what the user writes, when measured."""
        value = self.stats.get("median_words")
        return float(value) if value else None

    @classmethod
    def from_draft(cls, draft: ProfileDraft, **provenance: Any) -> UserProfile:
        """Attach provenance to what the LLM wrote."""
        return cls(**draft.model_dump(), **provenance)

    def draft(self) -> ProfileDraft:
        """The content part alone (what an LLM reads back on an incremental update)."""
        return ProfileDraft.model_validate(self.model_dump(include=set(ProfileDraft.model_fields)))

    def render(self, supported_only: bool = False) -> str:
        """The profile as prompt text, one field a line; empty fields are left out.

        With ``supported_only`` the interests and keywords the history does not support are
        left out, so a prompt never carries an invented claim.
        """
        drop = set(self.unsupported()) if supported_only else set()
        if self.data is not None:
            return render_data(self.data, drop)
        interests = [c for c in self.interests if c not in drop]
        keywords = [c for c in self.keywords if c not in drop]
        summary = " ".join(x for x in sentences(self.summary) if x not in drop)
        lines = []
        if interests:
            lines.append("Research interests / topics: " + "; ".join(interests))
        if keywords:
            lines.append("Keywords: " + ", ".join(keywords))
        style = [f"{name} {value}" for name, value in self.style.model_dump().items() if value]
        if style:
            lines.append("Style: " + "; ".join(style))
        if summary:
            lines.append("Summary: " + summary)
        return "\n".join(lines)
