"""Answer parsers on the clean, chatty and broken outputs small models produce."""

from __future__ import annotations

import pytest

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation.parsers import (
    LAMP2_MOVIE_TAGS,
    LAMP2_NEWS_CATEGORIES,
    clean_generation,
    parse_citation_choice,
    parse_label,
    parse_rating,
)


# ---------------------------------------------------------------- LaMP-1
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1]", "[1]"),
        ("1", "[1]"),
        ("2\n", "[2]"),
        ("Reference [2]", "[2]"),
        ("[2]: Neural ranking models for search", "[2]"),
        ("The answer is 1.", "[1]"),
        ("[ 2 ]", "[2]"),
        ("Sure! My answer: [1] or [2]? I pick [1].", "[1]"),
        ("[2] fits better than [1]", "[2]"),
        ("2, then 1", "[2]"),
        # A bracketed choice beats a bare count mentioned before it.
        ("Of the 2 papers, [1] fits the author best.", "[1]"),
    ],
)
def test_citation_choice(text: str, expected: str) -> None:
    assert parse_citation_choice(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "I cannot decide.", "[3]", "12", "1.5", "2023 paper", "v1 or v2", "[12]"]
)
def test_citation_choice_none(text: str) -> None:
    assert parse_citation_choice(text) is None


# ---------------------------------------------------------------- LaMP-2
def test_label_sets() -> None:
    assert len(LAMP2_MOVIE_TAGS) == len(set(LAMP2_MOVIE_TAGS)) == 15
    assert len(LAMP2_NEWS_CATEGORIES) == len(set(LAMP2_NEWS_CATEGORIES)) == 15
    assert {"dark comedy", "comedy", "sci-fi", "true story"} <= set(LAMP2_MOVIE_TAGS)
    assert {"style & beauty", "crimes", "food & drink"} <= set(LAMP2_NEWS_CATEGORIES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("comedy", "comedy"),
        ("Comedy", "comedy"),
        ('"Dark Comedy."', "dark comedy"),
        ("  'sci-fi'  \n", "sci-fi"),
        ("**twist ending**", "twist ending"),
        ("This movie is a dark comedy with some action.", "dark comedy"),
        ("Tag: action. It could also be comedy.", "action"),
        ("comedy, though some say dark comedy", "comedy"),
        ("A SCI-FI film", "sci-fi"),
        ("It is thought-provoking", "thought-provoking"),
        ("based  on a\nbook", "based on a book"),
    ],
)
def test_movie_tag(text: str, expected: str) -> None:
    assert parse_label(text, LAMP2_MOVIE_TAGS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Style & Beauty", "style & beauty"),
        ("The category is: Science and Technology", "science & technology"),
        ("food & drink; maybe travel", "food & drink"),
        ("category: Crimes.", "crimes"),
    ],
)
def test_news_category(text: str, expected: str) -> None:
    assert parse_label(text, LAMP2_NEWS_CATEGORIES) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "I don't know.", "scifi", "comedic", "actions", "sci-fiction"],
)
def test_movie_tag_none(text: str) -> None:
    assert parse_label(text, LAMP2_MOVIE_TAGS) is None


def test_label_returns_caller_spelling() -> None:
    assert parse_label("it is POSITIVE", ["Negative", "Positive"]) == "Positive"


def test_label_longest_wins_on_same_start() -> None:
    assert parse_label("new york times", ["new", "new york", "times"]) == "new york"


def test_label_refuses_empty_label_set() -> None:
    with pytest.raises(InvalidArgumentError, match="labels is empty"):
        parse_label("comedy", [])


# ---------------------------------------------------------------- LaMP-3
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4.0),
        ("1", 1.0),
        ("5\n", 5.0),
        ("Rating: 4", 4.0),
        ("4 stars", 4.0),
        ("4-star review", 4.0),
        ("4/5", 4.0),
        ("4 / 5", 4.0),
        ("4 out of 5", 4.0),
        ("I'd give it a 3.", 3.0),
        ("10/10 would buy again, so 5", 5.0),
        ("On a scale of 1 to 5, I would rate it 4.", 4.0),
        ("On a 1-5 scale: 2", 2.0),
        ("Rated 8/10, i.e. 4", 4.0),
        ("0 problems, score 2", 2.0),
    ],
)
def test_rating(text: str, expected: float) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "great product", "10/10", "8 out of 10", "3.5", "0", "6", "12345", "v2", "2/10"],
)
def test_rating_none(text: str) -> None:
    assert parse_rating(text) is None


# ---------------------------------------------------------------- generation
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deep Nets for Text", "Deep Nets for Text"),
        ('  "Deep Nets for Text"  ', "Deep Nets for Text"),
        ("“Curly quotes”", "Curly quotes"),
        ("Title: Deep Nets", "Deep Nets"),
        ("HEADLINE: Big News", "Big News"),
        ("subject:Lunch on Friday", "Lunch on Friday"),
        ("Paraphrase: it rains", "it rains"),
        ('Tweet: "so tired lol"', "so tired lol"),
        ('"Title: Deep Nets"', "Deep Nets"),
        ("**Title:** Deep Nets", "Deep Nets"),
        ("## Deep Nets", "Deep Nets"),
        ("# Headline: **Big** News", "Big News"),
        ("\n\nFirst line\nSecond line", "First line"),
        ("Title:\n\n'Deep Nets'\nBecause the abstract...", "Deep Nets"),
        ("Subject: Re: budget", "Re: budget"),
        ("Don't stop", "Don't stop"),
        ('"Quoted" and more', '"Quoted" and more'),
    ],
)
def test_clean_generation(text: str, expected: str) -> None:
    assert clean_generation(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\n", '""', "Title:", "**  **\n#"])
def test_clean_generation_empty(text: str) -> None:
    assert clean_generation(text) == ""
