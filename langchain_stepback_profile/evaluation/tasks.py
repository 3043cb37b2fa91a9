"""The evaluation tasks: LaMP-1 ... LaMP-7 and the multi-author PSW-title / PSW-abstract.

Each :class:`EvalTask` says what kind of answer is scored (generation, a label, a rating),
which metrics and parser apply, how its data is read, and which prompt task it uses.

Example:
    >>> task = get_eval_task("LaMP-7")
    >>> task.kind, task.metrics, task.baseline
    ('generation', ('rouge-1', 'rouge-L'), 'copy-input')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation.parsers import (
    LAMP2_MOVIE_TAGS,
    LAMP2_NEWS_CATEGORIES,
    parse_citation_choice,
    parse_label,
    parse_rating,
)
from langchain_stepback_profile.names import ATTRIBUTION as ATTRIBUTION
from langchain_stepback_profile.names import ATTRIBUTION_ROWS as ATTRIBUTION_ROWS
from langchain_stepback_profile.names import EVAL_TASK_NAMES
from langchain_stepback_profile.tasks import TaskSpec, get_task

TaskKind = Literal["generation", "classification", "rating"]

CITATION_CHOICE = TaskSpec(
    name="citation_choice",
    history="scientific papers the user wrote (title and abstract)",
    instruction="Answer the question about this author's citations.",
    output_name="answer",
    focus="research interests and recurring technical keywords",
)
TAGGING = TaskSpec(
    name="tagging",
    history="texts the user tagged or categorised, with the label they chose",
    instruction="Choose the label this user would give:",
    output_name="label",
    focus="which labels the user gives to which topics, and how often",
)
RATING = TaskSpec(
    name="rating",
    history="product reviews the user wrote, with the score they gave (1 to 5)",
    instruction="Give the score (1 to 5) this user would give to the following review:",
    output_name="score",
    focus="rating habits: how scores follow the tone of the review, the user's usual score",
)


def _lamp2_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A LaMP-2 profile item as text -> label: the movie description or the article (with its
    title) is the input, the tag or category the output."""
    label_field = "tag" if "tag" in raw else "category"
    parts = [raw.get("title"), raw.get("description"), raw.get("text")]
    text = "\n".join(str(p) for p in parts if p)
    return {"id": raw.get("id"), "text": text, label_field: raw.get(label_field)}


@dataclass(frozen=True)
class EvalTask:
    """One evaluation task.

    Args:
        name: the name on the command line (``LaMP-5``, ``PSW-title``...).
        kind: ``generation`` (ROUGE), ``classification`` (accuracy, macro-F1) or ``rating``
            (MAE, RMSE).
        spec: the prompt and profile task of the core (:class:`TaskSpec`).
        source: ``lamp`` (questions.json + outputs.json) or ``psw`` (papers.jsonl +
            targets.jsonl).
        number: the LaMP task number (outputs.json names it), or None.
        field: for PSW, the field generated (``title`` or ``abstract``).
        prefix: LaMP's instruction before the input text, removed from the input.
        baseline: the trivial calibration method, if any.
        adapt_item: rewrites a raw profile item so its input and output fields are the ones
            the core reads.

    Example:
        >>> get_eval_task("PSW-title").group
        True
    """

    name: str
    kind: TaskKind
    spec: TaskSpec
    source: Literal["lamp", "psw"]
    number: int | None = None
    field: Literal["title", "abstract"] | None = None
    prefix: str | None = None
    baseline: Literal["copy-input", "first-words"] | None = None
    adapt_item: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    @property
    def group(self) -> bool:
        """True when an item is written by an ordered group of users (PSW)."""
        return self.source == "psw"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names of the task, the headline metric first."""
        return {
            "generation": ("rouge-1", "rouge-L"),
            "classification": ("accuracy", "macro-F1"),
            "rating": ("MAE", "RMSE"),
        }[self.kind]

    @property
    def few_shot(self) -> bool:
        """True when the few-shot layout applies: every task but LaMP-1, whose history (papers)
        holds no question and answer to show as an example."""
        return self.name != "LaMP-1"

    def split_prompt(self, prompt: str) -> tuple[str, str]:
        """``(instruction, input text)``: LaMP's instruction prefix and the raw text after it.

        Without a known prefix the whole prompt is the input and the instruction is the spec's.

        Example:
            >>> get_eval_task("LaMP-5").split_prompt(
            ...     "Generate a title for the following abstract of a paper: We parse.")
            ('Generate a title for the following abstract of a paper:', 'We parse.')
        """
        match = re.match(self.prefix, prompt, re.S | re.I) if self.prefix else None
        if match is None or not prompt[match.end() :].strip():
            return self.spec.instruction, prompt.strip()
        return match.group(0).strip(), prompt[match.end() :].strip()

    def labels(self, prompts: Sequence[str]) -> tuple[str, ...]:
        """The label set of a classification task: LaMP-1's two choices, or LaMP-2's movie
        tags or news categories, told apart by the prompt wording."""
        if self.name == "LaMP-1":
            return ("[1]", "[2]")
        if self.name == "LaMP-2":
            movie = any(re.search(r"\bmovie\b|\btags\s*:", p, re.I) for p in prompts[:20])
            return LAMP2_MOVIE_TAGS if movie else LAMP2_NEWS_CATEGORIES
        return ()

    def parse(self, text: str, labels: Sequence[str] = ()) -> str | None:
        """The answer read out of a model output (None when there is none); a generation is
        returned as it is (output control has cleaned it already)."""
        if self.kind == "rating":
            rating = parse_rating(text)
            return None if rating is None else str(int(rating))
        if self.name == "LaMP-1":
            return parse_citation_choice(text)
        if self.kind == "classification":
            return parse_label(text, labels)
        return text


_TASKS: tuple[EvalTask, ...] = (
    EvalTask("LaMP-1", "classification", CITATION_CHOICE, "lamp", number=1),
    EvalTask(
        "LaMP-2",
        "classification",
        TAGGING,
        "lamp",
        number=2,
        prefix=r"which (?:category|tag) does this .*?\b(?:article|description)\s*:\s*",
        adapt_item=_lamp2_item,
    ),
    EvalTask(
        "LaMP-3",
        "rating",
        RATING,
        "lamp",
        number=3,
        prefix=r"what is the score of the following review.*?\breview\s*:\s*",
    ),
    EvalTask(
        "LaMP-4",
        "generation",
        get_task("news_headline"),
        "lamp",
        number=4,
        prefix=r"generate a headline for the following article\s*:\s*",
        baseline="first-words",
    ),
    EvalTask(
        "LaMP-5",
        "generation",
        get_task("scholarly_title"),
        "lamp",
        number=5,
        prefix=r"generate a title for the following abstract of a paper\s*:\s*",
        baseline="first-words",
    ),
    EvalTask(
        "LaMP-6",
        "generation",
        get_task("email_subject"),
        "lamp",
        number=6,
        prefix=r"generate a subject for the following email\s*:\s*",
        baseline="first-words",
    ),
    EvalTask(
        "LaMP-7",
        "generation",
        get_task("tweet_paraphrase"),
        "lamp",
        number=7,
        prefix=r"paraphrase the following tweet without any explanation before or after it\s*:\s*",
        baseline="copy-input",
    ),
    EvalTask(
        "PSW-title",
        "generation",
        get_task("scholarly_title"),
        "psw",
        field="title",
        baseline="first-words",
    ),
    EvalTask("PSW-abstract", "generation", get_task("abstract"), "psw", field="abstract"),
)

EVAL_TASKS: dict[str, EvalTask] = {task.name: task for task in _TASKS}
"""Every evaluation task by its command-line name."""
assert tuple(EVAL_TASKS) == EVAL_TASK_NAMES, "names.EVAL_TASK_NAMES names these tasks"
ATTRIBUTION_DEFAULT = "extractive"
"""The strategy ``auto`` picks for small local models: every profile row of an attribution
run is also compared with it."""


def get_eval_task(task: str | EvalTask) -> EvalTask:
    """The :class:`EvalTask` of a name (``LaMP-1`` ... ``LaMP-7``, ``PSW-title``,
    ``PSW-abstract``)."""
    if isinstance(task, EvalTask):
        return task
    try:
        return EVAL_TASKS[task]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown evaluation task {task!r}; use one of: {', '.join(EVAL_TASKS)}"
        ) from None
