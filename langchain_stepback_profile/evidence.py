"""Extractive evidence about a user, computed from their history without any LLM.

Keywords ranked by embedding similarity to the history, the most representative items,
and style statistics of what the user writes (typical length, casing, punctuation,
characteristic informal word forms). It is the whole of an ``extractive`` profile, the
material a ``hybrid`` profile is written from, and what output control reads (typical length).

Example:
    >>> from langchain_stepback_profile.history import HistoryItem
    >>> stats = style_stats(["Deep RL for Text Games", "Neural Dialogue: A Study"])
    >>> stats.median_words, stats.colon_share
    (4.5, 0.5)
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_stepback_profile.embeddings import encode_texts
from langchain_stepback_profile.history import HistoryItem

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*")
_TOKEN = re.compile(r"\S+")
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;=][\-']?[()DPpO/\\|]")
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_EDGES = ".,!?;:\"()[]*'"
"""Punctuation a token may carry at its edges (``BERT?``, ``(NMT)``)."""
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves via using use used based new show shows paper propose proposed
    approach method methods results result work task tasks model models present study
    however within without well one two three first however many much may might also
    outperforms outperform performance state-of-the-art significantly substantially
    improve improves improved improvement existing different various simple simpler
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# phrases every author in a field uses; they say nothing about one author
GENERIC_PHRASES = frozenset(
    {
        "natural language",
        "language processing",
        "neural network",
        "neural networks",
        "experimental results",
        "state-of-the-art",
        "large scale",
        "data set",
        "data sets",
    }
)
# Informal forms a user may habitually write; only those the user actually uses are reported.
_INFORMAL_TEXT = """
    im i'm dont don't cant can't wont won't didnt doesnt isnt wasnt aint ive i've i'll
    i'd youre ur u r ya yall gonna wanna gotta kinda sorta lol lmao haha hahaha hehe omg
    idk tbh btw imo smh thx tho cuz cos coz yeah yea yep nope nah ok okay pls plz luv xx
    xoxo ugh aww wtf
"""
INFORMAL_FORMS = frozenset(_INFORMAL_TEXT.split())


@dataclass(frozen=True)
class StyleStats:
    """Measured habits of what a user writes (their outputs: titles, tweets...)."""

    items: int = 0
    median_words: float = 0.0
    p25_words: float = 0.0
    p75_words: float = 0.0
    title_case_share: float = 0.0
    lowercase_share: float = 0.0
    colon_share: float = 0.0
    question_share: float = 0.0
    acronym_share: float = 0.0
    exclamation_share: float = 0.0
    emoji_share: float = 0.0
    characteristic_forms: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, str]:
        """The stats as the profile's style fields, in words a person reads."""
        if not self.items:
            return {}
        length = (
            f"typically {self.median_words:.0f} words ({self.p25_words:.0f}-{self.p75_words:.0f})"
        )
        structure = []
        if self.colon_share >= 0.2:
            structure.append(f"a colon in {self.colon_share:.0%}")
        if self.question_share >= 0.1:
            structure.append(f"questions in {self.question_share:.0%}")
        if self.acronym_share >= 0.2:
            structure.append(f"acronyms in {self.acronym_share:.0%}")
        if self.exclamation_share >= 0.2:
            structure.append(f"'!' in {self.exclamation_share:.0%}")
        if self.emoji_share >= 0.2:
            structure.append(f"emoticons in {self.emoji_share:.0%}")
        casing = (
            "Title Case"
            if self.title_case_share >= 0.6
            else "all lower case"
            if self.lowercase_share >= 0.5
            else "sentence case"
        )
        vocabulary = ", ".join(self.characteristic_forms)
        return {
            "length": length,
            "structure": "; ".join(structure),
            "tone": casing,
            "vocabulary": f"writes {vocabulary}" if vocabulary else "",
        }


@dataclass(frozen=True)
class Evidence:
    """What the history shows: ranked keywords, representative items, style statistics."""

    keywords: list[str]
    phrases: list[str]
    representative: list[str]
    style: StyleStats


def output_text(item: HistoryItem) -> str:
    """What the user wrote in an item: its output when it is a pair, else its text."""
    return item.output if item.output else item.text


def _is_title_case(words: list[str]) -> bool:
    content = [w for w in words if w.lower() not in STOPWORDS and w[:1].isalpha()]
    return bool(content) and sum(w[0].isupper() for w in content) >= 0.8 * len(content)


def characteristic_forms(texts: Sequence[str], limit: int = 8) -> list[str]:
    """Informal word forms the user writes, most frequent first (as the user spells them)."""
    counts: Counter[str] = Counter()
    for text in texts:
        for token in _TOKEN.findall(text):
            word = token.strip(_EDGES.replace("'", "")).lower()
            if word in INFORMAL_FORMS or (word.isalpha() and _ELONGATED.search(word)):
                counts[word] += 1
    return [w for w, n in counts.most_common(limit) if n >= 2 or len(texts) < 4]


def style_stats(texts: Sequence[str]) -> StyleStats:
    """Statistics of the user's own outputs."""
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        return StyleStats()
    words = [_TOKEN.findall(t) for t in texts]
    lengths = np.array([len(w) for w in words], dtype=float)

    def share(flags: Sequence[bool]) -> float:
        return round(float(np.mean(flags)), 3)

    return StyleStats(
        items=len(texts),
        median_words=float(np.median(lengths)),
        p25_words=float(np.percentile(lengths, 25)),
        p75_words=float(np.percentile(lengths, 75)),
        title_case_share=share([_is_title_case(w) for w in words]),
        lowercase_share=share([t == t.lower() for t in texts]),
        colon_share=share([":" in t for t in texts]),
        question_share=share(["?" in t for t in texts]),
        acronym_share=share(
            [any(re.fullmatch(r"[A-Z][A-Z0-9]{1,}s?", x.strip(_EDGES)) for x in w) for w in words]
        ),
        exclamation_share=share(["!" in t for t in texts]),
        emoji_share=share([bool(_EMOJI.search(t)) for t in texts]),
        characteristic_forms=characteristic_forms(texts),
    )


def _candidates(texts: Sequence[str]) -> Counter[str]:
    """Content words and two-word phrases, counted once per item (document frequency)."""
    df: Counter[str] = Counter()
    for text in texts:
        tokens = [w.lower().strip("'-") for w in _WORD.findall(text)]
        seen = {t for t in tokens if len(t) > 2 and t not in STOPWORDS}
        seen |= {
            f"{a} {b}"
            for a, b in itertools.pairwise(tokens)
            if a not in STOPWORDS and b not in STOPWORDS and len(a) > 2 and len(b) > 2
        } - GENERIC_PHRASES
        df.update(seen)
    return df


def extract_evidence(
    items: Sequence[HistoryItem],
    embeddings: Embeddings,
    *,
    keywords: int = 10,
    phrases: int = 6,
    representative: int = 3,
) -> Evidence:
    """Keywords and phrases that recur in the history, ranked by how close their embedding is
    to the history's centroid (weighted by how many items use them); the items closest to
    the centroid; the style statistics of the user's outputs."""
    if not items:
        return Evidence([], [], [], StyleStats())
    texts = [item.text for item in items]
    # the centroid of what the user wrote (titles, tweets): short texts, cheap to embed
    vectors = encode_texts(embeddings, [output_text(item)[:500] for item in items])
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    closeness = vectors @ centroid
    order = np.argsort(-closeness, kind="stable")[:representative]
    reps = [output_text(items[i]) for i in order]

    df = _candidates(texts)
    floor = 2 if len(items) >= 3 else 1
    pool = [c for c, n in df.most_common(400) if n >= floor]
    ranked_words: list[str] = []
    ranked_phrases: list[str] = []
    if pool:
        sims = encode_texts(embeddings, pool) @ centroid
        score = sims * np.log1p([df[c] for c in pool])
        for i in np.argsort(-score, kind="stable"):
            target = ranked_phrases if " " in pool[i] else ranked_words
            target.append(pool[i])
        # phrases that share a word say the same thing twice ("markov chain", "chain monte")
        chosen: list[str] = []
        for phrase in ranked_phrases:
            if len(chosen) < phrases and not any(
                set(phrase.split()) & set(c.split()) for c in chosen
            ):
                chosen.append(phrase)
        ranked_phrases = chosen
        # a word already inside a chosen phrase adds nothing
        ranked_words = [w for w in ranked_words if not any(w in p.split() for p in chosen)]
    return Evidence(
        keywords=ranked_words[:keywords],
        phrases=ranked_phrases[:phrases],
        representative=reps,
        style=style_stats([output_text(item) for item in items]),
    )


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    # imported on first use: importing nltk takes a second or two. Snowball is rules only,
    # it needs no NLTK data download.
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of a lower-case word: 'networks' and 'network' give
    'network', 'translating' and 'translation' 'translat', while 'generative' ('generat')
    and 'general' stay apart, as a fixed-length prefix would not keep them."""
    return _stemmer().stem(word)


def content_stems(text: str) -> set[str]:
    """The stems of a text's content words (stopwords and words under three letters left out).

    Example:
        >>> sorted(content_stems("Parsing the networks of generative models"))
        ['generat', 'network', 'pars']
    """
    return {
        stem(word)
        for word in (w.lower() for w in _WORD.findall(text))
        if word not in STOPWORDS and len(word) > 2
    }


def claim_support(claims: Sequence[str], items: Sequence[HistoryItem]) -> dict[str, float]:
    """For each claim, the share of its content words whose stem (see :func:`content_stems`)
    occurs anywhere in the history."""
    seen: set[str] = set()
    for item in items:
        seen |= content_stems(item.text)
    support: dict[str, float] = {}
    for claim in claims:
        words = content_stems(claim)
        if words:
            support[claim] = round(len(words & seen) / len(words), 3)
    return support
