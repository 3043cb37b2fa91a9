"""Extractive evidence ranked with the real MiniLM embedder (the other evidence tests are in
tests/unit_tests/test_evidence.py)."""

from __future__ import annotations

import pytest

from langchain_stepback_profile.evidence import (
    extract_evidence,
)
from langchain_stepback_profile.history import HistoryItem

pytestmark = pytest.mark.slow


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
