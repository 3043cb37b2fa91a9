"""What a user's history is, and what is generated from it.

A :class:`TaskSpec` tells the profiler what to focus on (research topics for paper
titles, informal word forms for tweets) and tells the prompt how to phrase the request.

Example:
    >>> spec = get_task("scholarly_title")
    >>> spec.output_name
    'title'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from langchain_stepback_profile.errors import InvalidArgumentError


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
