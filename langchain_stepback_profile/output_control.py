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
from langchain_stepback_profile.tasks import OutputFormat

Verdict = Literal["ok", "chat", "copy", "drift", "empty"]

_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|great)\s*[!.,]|(?:here(?:'s| is| are)|the "
    r"(?:following|new|suggested|generated)\b)[^:\n]{0,60}:)\s*",
    re.I,
)
# the model talking as an assistant; a long-form answer may start "This paper presents"
_ASSISTANT_TEXT = (
    r"i(?:'m| am) (?:ready|happy|glad|sorry)|as an ai|i can(?:not|'t)? (?:help|assist)"
    r"|it (?:sounds|seems) like|what a\b"
)
_ASSISTANT = re.compile(rf"^\s*(?:{_ASSISTANT_TEXT})", re.I)
_CHAT = re.compile(
    rf"^\s*(?:{_ASSISTANT_TEXT}"
    r"|(?:this|the) (?:paper|abstract|article|tweet|text|email|review) (?:is|was|discusses|"
    r"describes|presents|talks|says|seems|mentions)"
    r"|(?:the|this) (?:author|user|writer)(?:'s)? (?:tweet|post|text|message))",
    re.I,
)
_LABEL = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:(?:title|headline|subject|paraphrase|tweet|answer|output|abstract"
    r"|topic|summary|keywords|(?:research )?(?:questions?|interests?)(?:\s*/\s*topics)?"
    r"|author \d+)\s*:"
    r"|\[author \d+\])\s*",  # "[Author 1]": how the paper layout lists the history
    re.I,
)
_BULLET = re.compile(r"^\s*(?:(?:[-*\u2022]|\(?\d{1,2}[.)])\s+)+")  # "- 1. " too
# a list entry that talks about the authors or their work instead of naming a point
_ABOUT = re.compile(
    r"^(?:the|these|this|our|their) (?:authors?|users?|writers?|papers?|works?|previous)\b", re.I
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


def _clean_line(line: str) -> str:
    for pattern in (_LEAD_IN, _LEAD_IN, _LABEL):  # "Sure! Here is a title: ..."
        line = pattern.sub("", line, count=1)
    line = line.strip().strip("*#`").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
        line = line[1:-1].strip()
    return line.strip("\"'“”").strip() if line.strip("\"'“”*").strip() else ""


def _answer_lines(text: str) -> list[str]:
    """The answer's lines from its first one with content (chat lead-ins and labels removed
    from that one); blank lines kept, as ``""``, to mark paragraphs."""
    lines = text.strip().splitlines()
    for n, line in enumerate(lines):
        first = _clean_line(line)
        if first:
            return [first, *(other.strip() for other in lines[n + 1 :])]
    return []


def first_line(text: str) -> str:
    """The first non-empty line, without chat lead-ins, labels, quotes or markdown marks."""
    return next(iter(_answer_lines(text)), "")


def first_paragraph(text: str) -> str:
    """The first paragraph as one line (its lines joined), without chat lead-ins or labels.

    Example:
        >>> first_paragraph("Abstract:\\nWe parse tweets.\\nIt works.\\n\\nNotes: none")
        'We parse tweets. It works.'
    """
    lines = _answer_lines(text)
    end = lines.index("") if "" in lines else len(lines)
    return " ".join(lines[:end])


def list_items(text: str, exclude: Sequence[str] = (), questions: bool = False) -> list[str]:
    """The entries of a list answer: one a line (bullets and numbers removed), a line's
    parts separated by ``;`` apart; repeated entries once, and none that talks about the
    authors instead of naming a point (``The authors of...``) or introduces the list (``...:``).
    With ``questions``, the entries are the questions the lines hold (a line of several is
    split after each question mark) and nothing else.

    Example:
        >>> list_items("Here are the research interests:\\n1. Parsing\\n2. Tweets\\n- parsing")
        ['Parsing', 'Tweets']
        >>> list_items("parsing; machine translation\\nThe authors of the work, including")
        ['parsing', 'machine translation']
        >>> list_items("Parsing tweets\\n- - How do we parse? Why parse? And so", questions=True)
        ['How do we parse?', 'Why parse?']
    """
    lines = [_BULLET.sub("", line).strip() for line in _answer_lines(text)]
    if questions:
        lines = [_BULLET.sub("", q).strip() for line in lines for q in _QUESTION.findall(line)]
    entries = [part.strip() for line in lines if line for part in _clean_line(line).split(";")]
    entries = [e for e in entries if not (_CHAT.match(e) or _ABOUT.match(e) or e.endswith(":"))]
    seen: set[str] = {_squash(x) for x in exclude}  # e.g. the authors' names: no interest
    unique = []
    for entry in entries:
        key = _squash(entry)
        if key and key not in seen:
            seen.add(key)
            unique.append(entry)
    return unique


_QUESTION = re.compile(r"[^?]*[A-Za-z][^?]*\?")
"""A question in a line: the words up to and with a question mark."""


def _cap_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else _trim(words[: max(2, limit)])


def shape_paragraph(text: str, max_sentences: int | None, max_words: int | None) -> str:
    """Whole sentences of one paragraph: repeated sentences and an unfinished last one (the
    token cap) dropped, at most ``max_sentences`` and ``max_words`` (a first sentence longer
    than that is cut at a word boundary).

    Example:
        >>> shape_paragraph("We parse. We parse. It works well. And then the", 5, None)
        'We parse. It works well.'
    """
    parts: list[str] = []
    for sentence in sentences(cut_repetition(text, n=8)):
        if sentence not in parts:
            parts.append(sentence)
    if len(parts) > 1 and not parts[-1].endswith((".", "!", "?", '"', ")")):
        parts.pop()
    if max_sentences:
        parts = parts[:max_sentences]
    while max_words and len(parts) > 1 and len(" ".join(parts).split()) > max_words:
        parts.pop()
    joined = " ".join(parts)
    return _cap_words(joined, max_words) if max_words else joined


def shape(
    text: str,
    output_format: OutputFormat,
    *,
    max_words: int | None = None,
    max_sentences: int | None = None,
    max_items: int | None = None,
    exclude: Sequence[str] = (),
    questions: bool = False,
) -> str:
    """An answer in its task's shape (see :class:`~langchain_stepback_profile.tasks.TaskSpec`):
    one cleaned line, one paragraph of whole sentences, or a list of ``- entry`` lines.

    Example:
        >>> print(shape("Sure! Here are two questions:\\n1. Why parse?\\n2. How?", "list",
        ...             max_items=1))
        - Why parse?
    """
    if output_format == "paragraph":
        return shape_paragraph(first_paragraph(text), max_sentences, max_words)
    if output_format == "list":
        entries = list_items(text, exclude, questions)
        entries = entries[:max_items] if max_items else entries
        return "\n".join(f"- {_cap_words(e, max_words) if max_words else e}" for e in entries)
    line = first_line(text)
    return _cap_words(line, max_words) if max_words else line


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
    output_format: OutputFormat = "line",
    max_words: int | None = None,
    max_sentences: int | None = None,
    max_items: int | None = None,
    exclude: Sequence[str] = (),
    questions: bool = False,
) -> Controlled:
    """Clean, check and shape one answer.

    ``sources`` are the texts the prompt showed (profile lines, retrieved items): an answer
    made of one of them is a copy. ``anchor`` is the input of a rewriting task: an answer
    that keeps under a third of its words has drifted away from it. The verdict says whether
    the answer can be used. ``given`` is the input of any other task: an answer that is a
    verbatim piece of it (the abstract's first sentence as a "title") is a copy too.
    ``output_format`` and the ``max_*`` limits give the answer its task's shape (see
    :func:`shape`): a ``line`` is also cut near ``typical_words``; a ``paragraph`` or a
    ``list`` keeps whole sentences or entries, and only an assistant's chatter ("I'm happy
    to help") counts as chat there, since an abstract may well start "This paper presents".
    ``exclude`` are entries a list must not hold (the authors' names); with ``questions``
    a list keeps only questions.
    """
    if output_format != "line":
        return _control_long(
            raw,
            output_format,
            sources,
            given,
            max_words,
            max_sentences,
            max_items,
            exclude,
            questions,
        )
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
    if max_words:  # the task's own bound holds whatever the user's habit
        shorter = _cap_words(text, max_words)
        if shorter != text:
            text, actions = shorter, [*actions, "cut to length"]
    # checked on what would be returned: a model that continues the abstract is cut to a piece
    if _is_copy(text, sources, given):
        return Controlled(text, "copy", actions)
    if anchor is not None and overlap(text, anchor) < 1 / 3:
        return Controlled(text, "drift", actions)
    if word_forms or lowercase:
        styled = apply_word_forms(text, word_forms, lowercase)
        if styled != text:
            text, actions = styled, [*actions, "word forms"]
    return Controlled(text, "ok", actions)


def _is_copy(text: str, sources: Sequence[str], given: str | None) -> bool:
    if given is not None and _is_piece_of(text, given):
        return True
    return any(
        len(_words(text)) >= 3 and overlap(text, source) >= 0.9 and overlap(source, text) >= 0.6
        for source in sources
    )


def _control_long(
    raw: str,
    output_format: OutputFormat,
    sources: Sequence[str],
    given: str | None,
    max_words: int | None,
    max_sentences: int | None,
    max_items: int | None,
    exclude: Sequence[str] = (),
    questions: bool = False,
) -> Controlled:
    """:func:`control` for a paragraph or a list: shaped whole, checked for an assistant's
    chatter and for copies."""
    text = shape(
        raw,
        output_format,
        max_words=max_words,
        max_sentences=max_sentences,
        max_items=max_items,
        exclude=exclude,
        questions=questions,
    )
    actions = ["shaped"] if " ".join(text.split()) != " ".join(raw.split()) else []
    if not text.strip("- \n"):
        return Controlled("", "empty", actions)
    if _ASSISTANT.match(text.lstrip("- ")):
        return Controlled(text, "chat", actions)
    if _is_copy(text, sources, given):
        return Controlled(text, "copy", actions)
    if output_format == "list":  # an entry that copies a shown title is no point of the list
        entries = text.splitlines()  # (one that names the input's topic may well be one)
        kept = [e for e in entries if not _is_copy(e.removeprefix("- "), sources, None)]
        if not kept:
            return Controlled(text, "copy", actions)
        if len(kept) < len(entries):
            text, actions = "\n".join(kept), [*actions, "dropped copies"]
    return Controlled(text, "ok", actions)
