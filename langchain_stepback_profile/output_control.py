"""Output control: what the model wrote, checked and shaped by what the profile measured.

A small model chats back ("Sure! Here is..."), comments on its input, copies a retrieved
title or a profile line, loops, or writes three times the user's length. :func:`control`
cleans the answer, detects those failures (so the caller regenerates or falls back), cuts
it at a word boundary near the user's typical length, and, for rewriting tasks, carries
over the user's own word forms and casing.

Example:
    >>> control("Sure! Here is a title: Neural Parsing of Tweets for Fun and Profit Today",
    ...         typical_words=5).text
    'Neural Parsing of Tweets for Fun'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from langchain_stepback_profile.evidence import content_stems

Verdict = Literal["ok", "chat", "copy", "drift", "empty"]

_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|great)\s*[!.,]|(?:here(?:'s| is| are)|the "
    r"(?:following|new|suggested|generated)\b)[^:\n]{0,60}:)\s*",
    re.I,
)
_CHAT = re.compile(
    r"^\s*(?:i(?:'m| am) (?:ready|happy|glad|sorry)|as an ai|i can(?:not|'t)? (?:help|assist)"
    r"|(?:this|the) (?:paper|abstract|article|tweet|text|email|review) (?:is|was|discusses|"
    r"describes|presents|talks|says|seems|mentions)|it (?:sounds|seems) like|what a\b"
    r"|(?:the|this) (?:author|user|writer)(?:'s)? (?:tweet|post|text|message))",
    re.I,
)
_LABEL = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:(?:title|headline|subject|paraphrase|tweet|answer|output)\s*:"
    r"|\[author \d+\])\s*",  # "[Author 1]": how the paper layout lists the history
    re.I,
)
# words a title or sentence does not end on
_TRAIL_TEXT = """
    a an the and or but nor of for with via to in on at by from into onto as than that
    which who whose whom this these those its their our your his her my is are was were be
    been being do does did not no & - – —
"""
_TRAIL = frozenset(_TRAIL_TEXT.split())
_BOUNDARY = {"and", "for", "with", "via", "in", "on", "to", "using", "from", "by", "through"}
# formal phrase -> the informal forms that stand for it, as users spell them
_FORMS: dict[str, tuple[str, ...]] = {
    "i am": ("i'm", "im"),
    "do not": ("don't", "dont"),
    "cannot": ("can't", "cant"),
    "can not": ("can't", "cant"),
    "will not": ("won't", "wont"),
    "did not": ("didn't", "didnt"),
    "does not": ("doesn't", "doesnt"),
    "is not": ("isn't", "isnt"),
    "was not": ("wasn't", "wasnt"),
    "i have": ("i've", "ive"),
    "i will": ("i'll",),
    "you are": ("you're", "youre", "ur"),
    "going to": ("gonna",),
    "want to": ("wanna",),
    "got to": ("gotta",),
    "i do not know": ("idk",),
    "okay": ("ok",),
    "you": ("u",),
    "your": ("ur",),
}


@dataclass(frozen=True)
class Controlled:
    """The controlled answer and what control did to it."""

    text: str
    verdict: Verdict
    actions: list[str] = field(default_factory=list)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def overlap(a: str, b: str) -> float:
    """The share of ``a``'s words that also occur in ``b``."""
    words = _words(a)
    if not words:
        return 0.0
    other = set(_words(b))
    return sum(w in other for w in words) / len(words)


def grounding(answer: str, given: str) -> float:
    """The share of an answer's content words that the input holds: how little it invents.

    Example:
        >>> grounding("Neural Models of Tweets", "We parse tweets with a neural model.")
        1.0
        >>> grounding("A Quantum Theory of Poetry", "We parse tweets with a neural model.")
        0.0
    """
    words = content_stems(answer)
    return len(words & content_stems(given)) / len(words) if words else 0.0


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd  # rule-based, offline; built once per process

    return pysbd.Segmenter(language="en", clean=False)


@lru_cache(maxsize=4096)
def _sentences(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _segmenter().segment(text) if part.strip())


def sentences(text: str) -> list[str]:
    """The sentences of a text, stripped, none empty. Split by pysbd's rules, so abbreviations
    ("e.g.", "et al.", "Dr."), decimals and URLs do not end a sentence.

    Example:
        >>> sentences("Works on parsing, e.g. of tweets. Writes short titles!  ")
        ['Works on parsing, e.g. of tweets.', 'Writes short titles!']
    """
    if not text or text.isspace():
        return []
    return list(_sentences(text))


def _squash(text: str) -> str:
    return " ".join(_words(text))


def _is_piece_of(text: str, given: str) -> bool:
    """A verbatim run of ``given``: four words or more anywhere, or its opening words."""
    piece, whole = _squash(text), _squash(given)
    return bool(piece) and piece in whole and (piece.count(" ") >= 3 or whole.startswith(piece))


_OPENING = re.compile(
    r"^\s*(?:(?:in|with) (?:this|the present) (?:paper|work|article|study)|this (?:paper|work|"
    r"article|study)|here|we)[\s,]*(?:we\s+)?(?:propose|present|introduce|describe|study|"
    r"consider|investigate|address|explore|develop|show|report|examine|tackle|focus on)?\s*"
    r"(?:the (?:task|problem) of\s+)?(?:(?:a|an|the)\s+)?",
    re.I,
)


def headline(text: str, typical_words: float) -> str:
    """A title-like phrase from a text's first sentence: its research-paper opening ("In this
    paper, we consider the task of") removed, cut near the typical length.

    Example:
        >>> headline("In this paper, we consider the task of learning control policies for "
        ...          "text-based games. In these games...", 8)
        'Learning control policies for text-based games'
    """
    sentence = next(iter(sentences(first_line(text))), "").rstrip(".!?")
    rest = _OPENING.sub("", sentence, count=1) or sentence
    cut = cut_to_length(rest, typical_words, slack=1.0)
    return cut[:1].upper() + cut[1:]


def first_line(text: str) -> str:
    """The first non-empty line, without chat lead-ins, labels, quotes or markdown marks."""
    for line in text.strip().splitlines():
        for pattern in (_LEAD_IN, _LEAD_IN, _LABEL):  # "Sure! Here is a title: ..."
            line = pattern.sub("", line, count=1)
        line = line.strip().strip("*#`").strip()
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
            line = line[1:-1].strip()
        if line.strip("\"'“”*").strip():
            return line.strip("\"'“”").strip()
    return ""


def cut_repetition(text: str, n: int = 3) -> str:
    """Cut where a run of ``n`` words starts to repeat (a small model's loop)."""
    words = text.split()
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(w.lower().strip(".,:;!?") for w in words[i : i + n])
        if gram in seen:
            return _trim(words[:i])
        seen.add(gram)
    return text


def _trim(words: list[str]) -> str:
    """Join words, dropping trailing function words and punctuation (never below two words)."""
    words = list(words)
    while len(words) > 2 and words[-1].lower().strip(".,:;!?") in _TRAIL:
        words.pop()
    return " ".join(words).rstrip(",;:-–—")


def cut_to_length(text: str, typical_words: float, slack: float = 1.3) -> str:
    """Cut an answer longer than ``slack`` x the typical length at a word boundary, and never
    on a dangling function word (``... for the``)."""
    words = text.split()
    limit = max(2, math.ceil(typical_words * slack))
    if len(words) <= limit:
        return text
    # prefer a phrase boundary (before "and", "for", "with"... or after a comma) near the length
    low = max(2, math.ceil(0.6 * typical_words))
    bounds = [
        i
        for i in range(low, limit + 1)
        if words[i].lower() in _BOUNDARY or words[i - 1].endswith((",", ";"))
    ]
    return _trim(words[: bounds[-1] if bounds else max(2, round(typical_words))])


def apply_word_forms(text: str, forms: Sequence[str], lowercase: bool = False) -> str:
    """Rewrite formal phrases into the informal forms the user actually writes
    (``I am`` -> ``im`` for a user who writes ``im``), and lower-case for a user who does."""
    used = {f.lower() for f in forms}
    for formal, informal in sorted(_FORMS.items(), key=lambda kv: -len(kv[0])):
        choice = next((f for f in informal if f in used), None)
        if choice:
            # not inside a contraction: "you're" must not become "u're"
            text = re.sub(rf"\b{re.escape(formal)}\b(?!')", choice, text, flags=re.I)
    return text.lower() if lowercase else text


def control(
    raw: str,
    *,
    typical_words: float | None = None,
    sources: Sequence[str] = (),
    word_forms: Sequence[str] = (),
    lowercase: bool = False,
    anchor: str | None = None,
    given: str | None = None,
) -> Controlled:
    """Clean, check and shape one answer.

    ``sources`` are the texts the prompt showed (profile lines, retrieved items): an answer
    made of one of them is a copy. ``anchor`` is the input of a rewriting task: an answer
    that keeps under a third of its words has drifted away from it. The verdict says whether
    the answer can be used. ``given`` is the input of any other task: an answer that is a
    verbatim piece of it (the abstract's first sentence as a "title") is a copy too.
    """
    actions: list[str] = []
    text = first_line(raw)
    if text != raw.strip():
        actions.append("cleaned")
    if not text:
        return Controlled("", "empty", actions)
    if _CHAT.match(text):
        return Controlled(text, "chat", actions)
    looped = cut_repetition(text)
    if looped != text:
        text, actions = looped, [*actions, "cut repetition"]
    if typical_words:
        shorter = cut_to_length(text, typical_words)
        if shorter != text:
            text, actions = shorter, [*actions, "cut to length"]
    # checked on what would be returned: a model that continues the abstract is cut to a piece
    if given is not None and _is_piece_of(text, given):
        return Controlled(text, "copy", actions)
    for source in sources:
        if len(_words(text)) >= 3 and overlap(text, source) >= 0.9 and overlap(source, text) >= 0.6:
            return Controlled(text, "copy", actions)
    if anchor is not None and overlap(text, anchor) < 1 / 3:
        return Controlled(text, "drift", actions)
    if word_forms or lowercase:
        styled = apply_word_forms(text, word_forms, lowercase)
        if styled != text:
            text, actions = styled, [*actions, "word forms"]
    return Controlled(text, "ok", actions)
