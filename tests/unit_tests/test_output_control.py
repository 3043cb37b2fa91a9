"""Output control: cleaning, chat/copy detection, length cuts, repetition, word forms."""

from __future__ import annotations

import pytest

from langchain_stepback_profile.output_control import (
    apply_word_forms,
    control,
    cut_repetition,
    cut_to_length,
    first_line,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Sure! Here is a title: Parsing Tweets", "Parsing Tweets"),
        ('Title: "Parsing Tweets"\nThis title reflects...', "Parsing Tweets"),
        ("**Parsing Tweets**", "Parsing Tweets"),
        ("\n\n  Parsing Tweets  \n", "Parsing Tweets"),
        ("I'm so tired today.", "I'm so tired today."),  # a tweet that starts with I'm stays
        ("", ""),
    ],
)
def test_first_line(raw: str, expected: str) -> None:
    assert first_line(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "I'm ready to assist you with the title.",
        "This paper discusses neural models of coherence.",
        "The tweet is about being tired.",
        "As an AI, I cannot do that.",
    ],
)
def test_chatty_answers_are_rejected(raw: str) -> None:
    assert control(raw).verdict == "chat"


def test_empty_answer() -> None:
    assert control("  \n ").verdict == "empty"


def test_copy_of_a_shown_text_is_rejected_but_a_new_title_is_not() -> None:
    shown = ["A Model of Coherence Based on Distributed Sentence Representation"]
    assert (
        control(
            "A Model of Coherence Based on Distributed Sentence Representation", sources=shown
        ).verdict
        == "copy"
    )
    assert (
        control("Neural Models of Open-domain Discourse Coherence", sources=shown).verdict == "ok"
    )


def test_cut_to_length_prefers_a_phrase_boundary_and_never_ends_on_a_function_word() -> None:
    title = "A Model of Discourse Coherence and Domain-Independent Neural Models of Text Quality"
    assert cut_to_length(title, 8) == "A Model of Discourse Coherence"
    assert cut_to_length("Learning to Parse", 8) == "Learning to Parse"  # short: unchanged
    cut = cut_to_length("one two three four five six seven of the eight nine ten", 8)
    assert cut.split()[-1] not in {"of", "the"}


def test_cut_repetition() -> None:
    assert cut_repetition("Deep learning for deep learning for deep learning") == "Deep learning"
    assert cut_repetition("A clean title without loops") == "A clean title without loops"


def test_word_forms_only_those_the_user_writes() -> None:
    assert apply_word_forms("I am tired, do not call", ["im"]) == "im tired, do not call"
    assert apply_word_forms("I am tired", ["i'm"], lowercase=True) == "i'm tired"
    assert apply_word_forms("I am tired", []) == "I am tired"


def test_control_reports_its_actions() -> None:
    out = control(
        "Title: Neural Parsing of Tweets for Fun and Profit and More Things Here", typical_words=5
    )
    assert out.verdict == "ok"
    assert "cut to length" in out.actions and "cleaned" in out.actions
    assert len(out.text.split()) <= 7


def test_drift_from_the_input_of_a_rewrite() -> None:
    tweet = "I really need some sleep tonight"
    assert control("need some sleep tonight for real", anchor=tweet).verdict == "ok"
    assert control("Coffee is a popular drink.", anchor=tweet).verdict == "drift"


@pytest.mark.parametrize(
    ("abstract", "expected"),
    [
        (
            "In this paper, we consider the task of learning control policies for text-based "
            "games. More text.",
            "Learning control policies for text-based games",
        ),
        ("We present a parser for tweets.", "Parser for tweets"),
        ("Coherence matters for text quality.", "Coherence matters for text quality"),
    ],
)
def test_headline_from_an_abstract(abstract: str, expected: str) -> None:
    from langchain_stepback_profile.output_control import headline

    assert headline(abstract, 8) == expected


def test_failures_seen_in_the_evaluation() -> None:
    # the paper layout lists history as "[Author 1] ..." and the model repeats the marker
    assert first_line("[Author 1] Neural Parsing of Tweets") == "Neural Parsing of Tweets"
    # a "paraphrase" that describes the tweet
    assert control("The author's tweet is about feeling tired.").verdict == "chat"
    # a contraction is left alone, not turned into a form the user never writes
    assert apply_word_forms("you're late, you know", ["u"]) == "you're late, u know"


def test_grounding_is_the_share_of_content_words_the_input_holds() -> None:
    from langchain_stepback_profile.output_control import grounding

    abstract = "We translate low-resource languages with back-translation and attention."
    assert grounding("Back-Translation for Low-Resource Languages", abstract) == 1.0
    assert grounding("Languages of the Moon", abstract) == 0.5  # languag yes, moon no
    assert grounding("The", abstract) == 0.0  # no content word at all
    assert grounding("", abstract) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Works on parsing, e.g. of tweets. Writes short titles!",
            ["Works on parsing, e.g. of tweets.", "Writes short titles!"],
        ),
        (
            "Builds on Vaswani et al. (2017) for NMT. Dr. Chen uses BLEU, i.e. n-gram overlap.",
            [
                "Builds on Vaswani et al. (2017) for NMT.",
                "Dr. Chen uses BLEU, i.e. n-gram overlap.",
            ],
        ),
        (
            "Accuracy rose to 93.5 percent. Code is at https://github.com/x/repo. Thanks!",
            ["Accuracy rose to 93.5 percent.", "Code is at https://github.com/x/repo.", "Thanks!"],
        ),
        ("Is it solved? No.", ["Is it solved?", "No."]),
        ("", []),
        ("   ", []),
    ],
)
def test_sentences_are_not_cut_at_abbreviations(text: str, expected: list[str]) -> None:
    from langchain_stepback_profile.output_control import sentences

    assert sentences(text) == expected


def test_the_sentence_segmenter_is_built_once() -> None:
    from langchain_stepback_profile import output_control

    output_control.sentences("One. Two.")
    assert output_control._segmenter() is output_control._segmenter()
    assert output_control._segmenter.cache_info().currsize == 1
