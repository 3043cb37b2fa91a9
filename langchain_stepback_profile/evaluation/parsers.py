"""Reading answers out of model output for the LaMP label tasks and the writing tasks.

Small models rarely answer with the bare label; these parsers find the answer inside
chatty text and return ``None`` when there is none, so the metrics can count it as wrong.

Example:
    >>> parse_citation_choice("The answer is [2] because it matches the topic.")
    '[2]'
    >>> parse_label("I'd tag it as Dark Comedy.", LAMP2_MOVIE_TAGS)
    'dark comedy'
    >>> parse_rating("Rating: 4/5")
    4.0
    >>> clean_generation('**Title:** "Deep Nets for Text"')
    'Deep Nets for Text'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_stepback_profile.errors import InvalidArgumentError

__all__ = [
    "LAMP2_MOVIE_TAGS",
    "LAMP2_NEWS_CATEGORIES",
    "clean_generation",
    "parse_citation_choice",
    "parse_label",
    "parse_rating",
]

LAMP2_MOVIE_TAGS: tuple[str, ...] = (
    "sci-fi",
    "based on a book",
    "comedy",
    "action",
    "twist ending",
    "dystopia",
    "dark comedy",
    "classic",
    "psychology",
    "fantasy",
    "romance",
    "thought-provoking",
    "social commentary",
    "violence",
    "true story",
)

LAMP2_NEWS_CATEGORIES: tuple[str, ...] = (
    "women",
    "religion",
    "politics",
    "style & beauty",
    "entertainment",
    "culture & arts",
    "sports",
    "science & technology",
    "travel",
    "business",
    "crimes",
    "education & schools",
    "healthy living",
    "parents",
    "food & drink",
)

_BRACKETED_CHOICE = re.compile(r"\[\s*([12])\s*\]")
# Numbers not glued to a letter, another digit or a decimal point on either side.
_BARE_CHOICE = re.compile(r"(?<![\w.])([12])(?!\w|[.,]\d)")
# A rating may carry a scale ("4/5", "4 out of 5"); a range ("1-5", "1 to 5") is no rating.
_INTEGER = re.compile(
    r"(?<![\w.])(\d+)(?:\s*(/|out\s+of|-|–|to)\s*(\d+))?(?!\w|[.,]\d)", re.IGNORECASE
)

_SCALES = ("/", "out of")
_EDGE_CHARS = " \t\r\n\"'`“”‘’«».,;:!?*()[]{}"
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’", "«": "»"}
_LEADING_LABEL = re.compile(r"^(?:title|headline|subject|paraphrase|tweet)\s*:\s*", re.IGNORECASE)
_HEADING = re.compile(r"^#+\s*")


def parse_citation_choice(text: str) -> str | None:
    """LaMP-1 answer as ``"[1]"`` or ``"[2]"``; the first one mentioned, else ``None``.

    A bracketed mention (``[2]``) is preferred over a bare digit, so
    ``"Of the 2 papers, [1] fits"`` reads as ``"[1]"``.
    """
    match = _BRACKETED_CHOICE.search(text) or _BARE_CHOICE.search(text)
    return f"[{match.group(1)}]" if match else None


def _label_pattern(label: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive pattern; ``&`` also matches ``and``, spaces stretch."""
    parts = [r"(?:&|and)" if token == "&" else re.escape(token) for token in label.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", re.IGNORECASE)


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label named in ``text``: an exact match, else the earliest mention, else ``None``.

    Matching ignores case and surrounding quotes or punctuation. When two labels start at
    the same place the longer one wins.
    """
    if not labels:
        raise InvalidArgumentError("labels is empty; pass the task's label set")
    stripped = text.strip(_EDGE_CHARS).lower()
    for label in labels:
        if stripped == label.lower():
            return label
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = _label_pattern(label).search(text)
        if match:
            key = (match.start(), -len(label), label)
            best = key if best is None or key < best else best
    return best[2] if best else None


def parse_rating(text: str) -> float | None:
    """LaMP-3 rating: the first stand-alone integer from 1 to 5, else ``None``.

    Skipped: digits inside other numbers (``10``, ``3.5``), scores on another scale
    (``8/10``, ``2 out of 10``) and ranges (``1-5``, ``1 to 5``).
    """
    for match in _INTEGER.finditer(text):
        value, joiner, second = match.groups()
        if joiner is not None:
            is_scale = " ".join(joiner.lower().split()) in _SCALES
            if not is_scale or int(second) != 5:
                continue
        if 1 <= int(value) <= 5:
            return float(value)
    return None


def _clean_line(line: str) -> str:
    """One line without markdown marks, a leading label, or surrounding quotes."""
    line = _HEADING.sub("", line.replace("**", "").replace("__", "")).strip()
    previous = None
    while line != previous:
        previous = line
        line = _LEADING_LABEL.sub("", line).strip()
        if len(line) >= 2 and _QUOTE_PAIRS.get(line[0]) == line[-1]:
            line = line[1:-1].strip()
    return line


def clean_generation(text: str) -> str:
    """First non-empty line of a generation, cleaned of labels, quotes and markdown."""
    for line in text.splitlines():
        cleaned = _clean_line(line)
        if cleaned:
            return cleaned
    return ""
