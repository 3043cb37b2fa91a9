"""The evaluation task registry: prompts split from LaMP inputs, label sets, answer parsing."""

from __future__ import annotations

import pytest

from langchain_stepback_profile.evaluation import EVAL_TASKS, get_eval_task
from langchain_stepback_profile.evaluation.parsers import LAMP2_MOVIE_TAGS, LAMP2_NEWS_CATEGORIES

NEWS = (
    "Which category does this article relate to among the following categories? Just answer "
    "with the category name without further explanation. categories: [women, religion] "
    "article: The senate voted today."
)
MOVIE = (
    "Which tag does this movie relate to among the following tags? Just answer with the tag "
    "name without further explanation. tags: [sci-fi, comedy] description: A robot dreams."
)
CITATION = (
    'For an author who has written the paper with the title "Deep Parsing", which reference '
    'is related? Just answer with [1] or [2] without explanation. [1]: "A" [2]: "B"'
)


def test_registry_names_and_kinds() -> None:
    assert list(EVAL_TASKS) == [
        *(f"LaMP-{n}" for n in range(1, 8)),
        "PSW-title",
        "PSW-abstract",
    ]
    kinds = {name: task.kind for name, task in EVAL_TASKS.items()}
    assert kinds["LaMP-1"] == kinds["LaMP-2"] == "classification"
    assert kinds["LaMP-3"] == "rating"
    assert {kinds[f"LaMP-{n}"] for n in range(4, 8)} == {"generation"}
    assert get_eval_task("LaMP-3").metrics == ("MAE", "RMSE")
    assert get_eval_task("LaMP-2").metrics == ("accuracy", "macro-F1")
    assert get_eval_task("PSW-abstract").metrics == ("rouge-1", "rouge-L")


@pytest.mark.parametrize(
    ("task", "prompt", "text"),
    [
        ("LaMP-2", NEWS, "The senate voted today."),
        ("LaMP-2", MOVIE, "A robot dreams."),
        ("LaMP-4", "Generate a headline for the following article: Rain falls.", "Rain falls."),
        ("LaMP-6", "Generate a subject for the following email: Hi all,", "Hi all,"),
        (
            "LaMP-7",
            "paraphrase the following tweet without any explanation before or after it:   so tired",
            "so tired",
        ),
    ],
)
def test_split_prompt(task: str, prompt: str, text: str) -> None:
    instruction, rest = get_eval_task(task).split_prompt(prompt)
    assert rest == text
    assert prompt.startswith(instruction)


def test_split_prompt_without_a_known_prefix_keeps_the_whole_input() -> None:
    task = get_eval_task("LaMP-1")
    assert task.split_prompt(CITATION) == (task.spec.instruction, CITATION)
    # a prefix with nothing after it is no split either
    lamp5 = get_eval_task("LaMP-5")
    assert lamp5.split_prompt("Generate a title for the following abstract of a paper: ")[1]


def test_lamp2_label_set_from_the_wording() -> None:
    task = get_eval_task("LaMP-2")
    assert task.labels([MOVIE]) == LAMP2_MOVIE_TAGS
    assert task.labels([NEWS]) == LAMP2_NEWS_CATEGORIES
    assert get_eval_task("LaMP-1").labels([CITATION]) == ("[1]", "[2]")
    assert get_eval_task("LaMP-5").labels(["x"]) == ()


def test_parse_per_kind() -> None:
    assert get_eval_task("LaMP-1").parse("I pick [2].") == "[2]"
    assert get_eval_task("LaMP-2").parse("Tag: Sci-Fi", LAMP2_MOVIE_TAGS) == "sci-fi"
    assert get_eval_task("LaMP-2").parse("no idea", LAMP2_MOVIE_TAGS) is None
    assert get_eval_task("LaMP-3").parse("Rating: 4/5") == "4"
    assert get_eval_task("LaMP-3").parse("ten out of ten") is None
    assert get_eval_task("LaMP-5").parse("A Title") == "A Title"


def test_baselines_and_layout_applicability() -> None:
    assert get_eval_task("LaMP-7").baseline == "copy-input"
    assert get_eval_task("PSW-title").baseline == "first-words"
    assert get_eval_task("LaMP-3").baseline is None
    assert not get_eval_task("LaMP-1").few_shot
    assert get_eval_task("PSW-title").group and not get_eval_task("LaMP-5").group
