"""Extractive evidence: style statistics, word forms, keywords, claim support."""

from __future__ import annotations

from langchain_stepback_profile.evidence import (
    characteristic_forms,
    claim_support,
    content_stems,
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


def test_claim_support_compares_stems_not_prefixes() -> None:
    items = [
        HistoryItem(id="1", text="A general theory of admissions at the University of Leeds"),
        HistoryItem(id="2", text="Transfer of parsers across treebanks"),
    ]
    support = claim_support(
        ["generative universes", "generative transformers", "transferring treebank parsers"],
        items,
    )
    # 'generative' is not 'general' (a five-letter prefix made both 'gener'); Snowball still
    # stems 'universes' and 'University' alike, so half the words are found
    assert support["generative universes"] == 0.5
    assert support["generative transformers"] == 0.0
    assert support["transferring treebank parsers"] == 1.0  # inflections still meet


def test_content_stems_meet_inflections() -> None:
    assert content_stems("translating networks") == content_stems("translation network")
    assert content_stems("embeddings") == content_stems("embedding") == {"embed"}
    assert content_stems("the of and") == set()
