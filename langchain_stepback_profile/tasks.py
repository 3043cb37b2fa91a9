"""What a user's history is, and what is generated from it.

A :class:`TaskSpec` tells the profiler what to focus on (research topics for paper
titles, informal word forms for tweets) and tells the prompt how to phrase the request.

Example:
    >>> spec = get_task("scholarly_title")
    >>> spec.output_name
    'title'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.names import TASK_NAMES, WRITING_TASKS

__all__ = ["TASKS", "WRITING_TASKS", "OutputFormat", "TaskSpec", "get_task"]

OutputFormat = Literal["line", "paragraph", "list"]
"""How an answer is shaped: ``line`` (one line, cut near the user's typical length: a title),
``paragraph`` (one paragraph of whole sentences: an abstract) or ``list`` (one entry a line:
research questions)."""


class TaskSpec(BaseModel):
    """A writing task: what the history holds and what the model must write.

    Example:
        >>> TaskSpec(name="review", history="product reviews the user wrote",
        ...          instruction="Write a review of the following product:",
        ...          output_name="review", focus="opinions, rating habits, tone").name
        'review'
    """

    model_config = ConfigDict(frozen=True)

    name: str
    history: str
    """What each history item is, e.g. "scientific papers (title and abstract) the user wrote"."""
    instruction: str
    """The request placed right before the new input, e.g. "Generate a title for ..."."""
    output_name: str
    """What is produced, e.g. "title"."""
    focus: str
    """What a profile should capture for this task."""
    rewrite: bool = False
    """The output restates the input (a paraphrase): the input is the safe fallback, and the
    user's word forms carry over."""
    output_format: OutputFormat = "line"
    """The answer's shape (see :data:`OutputFormat`); output control keeps it."""
    max_words: int | None = None
    """At most this many words: the whole answer of a ``line`` or ``paragraph``, each entry of
    a ``list``. None: a ``line`` is cut near the lead author's typical length (their profile),
    a ``paragraph`` or ``list`` only by ``max_sentences`` / ``max_items``."""
    max_sentences: int | None = None
    """A ``paragraph`` keeps at most this many whole sentences."""
    max_items: int | None = None
    """A ``list`` keeps at most this many entries."""
    questions: bool = False
    """Each entry of a ``list`` is a question: the prompt asks for questions that start with
    an interrogative and end with a question mark, output control keeps only questions (a
    line of several is split), and the fallback asks about the profiles' interests."""
    examples: bool = True
    """The history's (input, output) pairs are examples of this output, so the few-shot
    layout can show them. False for outputs no history item holds (research interests,
    topics, questions): ``auto`` then uses the paper layout (profiles and retrieved items)."""
    default_input: str | None = None
    """The input used when none is given (None: the task needs one, see ``input_hint``)."""
    input_hint: str = "the text to work on"
    """What the input is, for messages (``"the paper's abstract"``)."""

    @property
    def plural(self) -> str:
        """The output's name in the plural (``titles``, ``research questions``)."""
        return self.output_name if self.output_name.endswith("s") else f"{self.output_name}s"

    @property
    def needs_input(self) -> bool:
        """True when the task has no default input: the caller must give one."""
        return self.default_input is None

    def input_text(self, text: str | None, fix: str = "pass it as the chain input") -> str:
        """The input to use: ``text``, else the task's default input; a task that needs an
        input and gets none (or only blanks) raises :class:`InvalidArgumentError` naming it.

        Example:
            >>> get_task("research_interests").input_text(None)
            "the topics of the authors' earlier papers."
            >>> get_task("scholarly_title").input_text("We parse.")
            'We parse.'
        """
        if text is not None and text.strip():
            return text
        if self.default_input is not None:
            return self.default_input
        raise InvalidArgumentError(
            f"the {self.name} task needs an input ({self.input_hint}); {fix}"
        )


_EARLIER_WORK = "the topics of the authors' earlier papers."

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="generic",
            history="texts the user wrote",
            instruction="Write a response to the following input in the user's own style:",
            output_name="response",
            focus="topics, recurring keywords, tone, typical length, structure and vocabulary",
        ),
        TaskSpec(
            name="scholarly_title",
            history="scientific papers the user wrote (title and abstract)",
            instruction="Generate a title for the following abstract of a paper:",
            output_name="title",
            focus=(
                "research interests, recurring technical keywords, and how the user's titles are "
                "built (length, colon or question forms, acronyms, capitalisation)"
            ),
            input_hint="the paper's abstract",
        ),
        TaskSpec(
            name="abstract",
            history="scientific papers the user wrote (title and abstract)",
            instruction="Write the abstract of a paper with the following title:",
            output_name="abstract",
            focus=(
                "research interests, methods, recurring keywords, and how the user's abstracts "
                "are organised (problem, method, results), their length and tone"
            ),
            output_format="paragraph",
            max_words=220,
            max_sentences=8,
            input_hint="the paper's title, or notes or a draft of it",
        ),
        TaskSpec(
            name="research_interests",
            history="scientific papers the user wrote (title and abstract)",
            instruction=(
                "List the research interests these authors share, as short phrases, one a "
                "line, for work on the following:"
            ),
            output_name="research interests",
            focus="research interests, methods and recurring technical keywords",
            output_format="list",
            max_words=8,
            max_items=5,
            examples=False,
            default_input=_EARLIER_WORK,
            input_hint="notes on the work the group plans (optional)",
        ),
        TaskSpec(
            name="research_topic",
            history="scientific papers the user wrote (title and abstract)",
            instruction=(
                "Name, in one short phrase, the research topic of a paper by these authors "
                "on the following:"
            ),
            output_name="topic",
            focus="research interests, methods and recurring technical keywords",
            max_words=12,
            examples=False,
            default_input=_EARLIER_WORK,
            input_hint="notes, a draft or the abstract of the paper (optional)",
        ),
        TaskSpec(
            name="research_questions",
            history="scientific papers the user wrote (title and abstract)",
            instruction=(
                "Write three research questions that a new paper by these authors could ask, "
                "on the following:"
            ),
            output_name="research questions",
            questions=True,
            focus="research interests, open problems, methods and recurring technical keywords",
            output_format="list",
            max_words=25,
            max_items=3,
            examples=False,
            default_input=_EARLIER_WORK,
            input_hint="the paper's topic, notes or a draft (optional)",
        ),
        TaskSpec(
            name="tweet_paraphrase",
            history="tweets the user wrote",
            instruction=(
                "Paraphrase the following tweet without any explanation before or after it:"
            ),
            output_name="tweet",
            focus=(
                "topics, informal word forms and spellings, casing, punctuation, emoji and "
                "typical tweet length"
            ),
            rewrite=True,
        ),
        TaskSpec(
            name="news_headline",
            history="news articles the user wrote, with their headlines",
            instruction="Generate a headline for the following article:",
            output_name="headline",
            focus="topics covered, headline length, tone and wording habits",
        ),
        TaskSpec(
            name="email_subject",
            history="emails the user wrote, with their subject lines",
            instruction="Generate a subject for the following email:",
            output_name="subject",
            focus="topics, subject-line length, tone and wording habits",
        ),
        TaskSpec(
            name="product_review",
            history="product reviews the user wrote, with their ratings",
            instruction="Write a review for the following product:",
            output_name="review",
            focus="opinions, rating habits, tone, length and vocabulary",
        ),
    )
}
assert tuple(TASKS) == TASK_NAMES, "names.TASK_NAMES names these tasks (for the command line)"
assert set(WRITING_TASKS.values()) <= set(TASKS), "names.WRITING_TASKS names built-in tasks"


def get_task(task: str | TaskSpec | None) -> TaskSpec:
    """Resolve a task name (or ``None`` for ``generic``) into its :class:`TaskSpec`."""
    if isinstance(task, TaskSpec):
        return task
    if task is None:
        return TASKS["generic"]
    try:
        return TASKS[task]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown task {task!r}; use one of {sorted(TASKS)} or pass a TaskSpec"
        ) from None
