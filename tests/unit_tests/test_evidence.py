"""Extractive evidence: style statistics, word forms, keywords, claim support."""

from __future__ import annotations

from langchain_stepback_profile.evidence import (
    characteristic_forms,
    claim_support,
    extract_evidence,
    style_stats,
)
from langchain_stepback_profile.history import HistoryItem


def test_style_stats_measure_length_casing_and_punctuation() -> None:
    stats = style_stats(
        ["Deep RL for Text Games", "Neural Dialogue: A Study", "Why Do Parsers Fail?"]
    )
    assert stats.items == 3
    assert stats.median_words == 4.0
    assert stats.colon_share == round(1 / 3, 3)
    assert stats.question_share == round(1 / 3, 3)
    assert stats.title_case_share == 1.0
    assert stats.acronym_share == round(1 / 3, 3)  # RL
    assert stats.describe()["length"].startswith("typically 4 words")


def test_style_stats_of_nothing() -> None:
    assert style_stats([]).items == 0
    assert style_stats([]).describe() == {}


def test_characteristic_forms_are_the_users_own() -> None:
    tweets = ["im so tired lol", "dont care lol", "im out", "sooo good"]
    forms = characteristic_forms(tweets)
    assert forms[:2] == ["im", "lol"] or forms[:2] == ["lol", "im"]
    assert "dont" not in forms  # used once in four tweets: not a habit
    assert characteristic_forms(["I am formal.", "I do not abbreviate."]) == []


def test_claim_support_counts_words_found_in_history() -> None:
    items = [HistoryItem(id="1", text="Neural machine translation with attention")]
    support = claim_support(["machine translation", "speech recognition", "the of"], items)
    assert support["machine translation"] == 1.0
    assert support["speech recognition"] == 0.0
    assert "the of" not in support  # no content words: nothing to check


def test_extract_evidence_ranks_recurring_terms(embeddings) -> None:
    items = [
        HistoryItem(id=str(i), text=text, input=text, output=title)
        for i, (title, text) in enumerate(
            [
                ("Parsing with Neural Networks", "We improve dependency parsing with a parser."),
                ("Fast Dependency Parsing", "A fast dependency parsing algorithm for parsers."),
                ("Parsing Tweets", "Dependency parsing of tweets is hard for a parser."),
            ]
        )
    ]
    evidence = extract_evidence(items, embeddings)
    assert "dependency parsing" in evidence.phrases
    assert "parsing" not in evidence.keywords  # already inside a chosen phrase
    assert len(evidence.representative) == 3
    assert evidence.style.median_words == 3.0
