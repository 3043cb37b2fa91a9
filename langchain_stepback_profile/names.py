"""The names the package accepts, in a module that imports nothing heavy.

User ids, store URLs and the names of tasks, strategies, group modes, file formats and
evaluation tasks and methods live here, so the ``stepback-profile`` command offers and checks
them (``--help``, a usage error) without loading LangChain, NumPy or FAISS. The modules that
hold the objects behind the names import them from here and check at import that their
objects match (``tasks.TASKS`` has the keys :data:`TASK_NAMES`, and so on); the old import
paths (``from langchain_stepback_profile.chains import GROUP_MODES``) keep working.

Example:
    >>> from langchain_stepback_profile.names import GROUP_MODES, check_user_id
    >>> GROUP_MODES
    ('concat', 'two_stage')
    >>> check_user_id("alice")
    'alice'
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal, get_args

from langchain_stepback_profile.errors import InvalidArgumentError

# ------------------------------------------------------------------ generation
GroupMode = Literal["concat", "two_stage"]
GROUP_MODES: tuple[str, ...] = get_args(GroupMode)
"""How a group's answer is written: ``concat`` (every author's profile and history in one
prompt, in author order) or ``two_stage`` (each author proposes, the first author merges)."""

ProfileStrategy = Literal["auto", "llm", "extractive", "hybrid"]
PROFILE_STRATEGIES: tuple[str, ...] = get_args(ProfileStrategy)
"""How :class:`~langchain_stepback_profile.distill.StepBackProfiler` writes a profile."""

PromptStrategy = Literal["auto", "paper", "few_shot", "plain", "style"]
PROMPT_STRATEGIES: tuple[str, ...] = get_args(PromptStrategy)
"""The prompt layouts of :mod:`~langchain_stepback_profile.prompting`."""

TASK_NAMES: tuple[str, ...] = (
    "generic",
    "scholarly_title",
    "abstract",
    "research_interests",
    "research_topic",
    "research_questions",
    "tweet_paraphrase",
    "news_headline",
    "email_subject",
    "product_review",
)
"""The built-in writing tasks, the keys of :data:`~langchain_stepback_profile.tasks.TASKS`."""

WRITING_TASKS: dict[str, str] = {
    "interests": "research_interests",
    "topic": "research_topic",
    "questions": "research_questions",
    "abstract": "abstract",
    "title": "scholarly_title",
}
"""The scientific-writing tasks for an ordered author group (the PSW benchmark's five), by
their short name (``stepback-profile write --task NAME``) -> the built-in task."""

# ------------------------------------------------------------------ input files
FORMATS: tuple[str, ...] = ("lamp", "jsonl", "csv")
"""The file formats :func:`~langchain_stepback_profile.loaders.load_histories` reads."""

# ------------------------------------------------------------------ evaluation
EVAL_TASK_NAMES: tuple[str, ...] = (
    "LaMP-1",
    "LaMP-2",
    "LaMP-3",
    "LaMP-4",
    "LaMP-5",
    "LaMP-6",
    "LaMP-7",
    "PSW-title",
    "PSW-abstract",
)
"""The evaluation tasks, the keys of
:data:`~langchain_stepback_profile.evaluation.tasks.EVAL_TASKS`."""

METHOD_NAMES: tuple[str, ...] = (
    "copy-input",
    "first-words",
    "non-personalized",
    "retrieval",
    "retrieval-other",
    "profile",
    "profile-other",
    "step-back",
    "step-back-other",
    "step-back-gists",
    "few-shot",
    "few-shot-greedy",
    "few-shot-other",
    "style",
    "style-other",
    "first-author",
    "few-shot-first-author",
    "shuffled",
    "two-stage",
)
"""The evaluation methods in report order, the keys of
:data:`~langchain_stepback_profile.evaluation.methods.METHODS`."""

ATTRIBUTION = "attribution"
"""The task that needs no generator: held-out items ranked against users' profiles (see
:mod:`~langchain_stepback_profile.evaluation.attribution`); it reads the items of a writing
task's folder."""
ATTRIBUTION_ROWS: tuple[str, ...] = (
    "chance",
    "centroid",
    "extractive",
    "extractive-topics",
    "extractive-wide",
    "hybrid",
    "hybrid-topics",
    "llm",
    "llm-topics",
    "schema",
)
"""The rows of the attribution task, in report order."""


# ------------------------------------------------------------------ users and stores
def check_user_id(user_id: Any) -> str:
    """The one rule for user ids, in every face: a non-empty string, compared exactly.

    Ids that only look like another id are refused rather than stored: leading or trailing
    whitespace, control or invisible format characters, and text not in Unicode NFC form (an
    ``é`` written as ``e`` plus an accent). So ``"alice "`` can never be a second ``alice``, and
    a face that trims the spaces around commas in ``"alice, bob"`` cannot merge two users.
    """
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidArgumentError(f"user id must be a non-empty string, got {user_id!r}")
    if user_id != user_id.strip():
        raise InvalidArgumentError(
            f"user id {user_id!r} has leading or trailing whitespace; ids are compared exactly, "
            f"so use {user_id.strip()!r}"
        )
    hidden = sorted({c for c in user_id if unicodedata.category(c).startswith("C")})
    if hidden:
        raise InvalidArgumentError(
            f"user id {user_id!r} holds control or invisible characters "
            f"({', '.join(f'U+{ord(c):04X}' for c in hidden)}); remove them"
        )
    if unicodedata.normalize("NFC", user_id) != user_id:
        raise InvalidArgumentError(
            f"user id {user_id!r} is not in Unicode NFC form and would look like another id; "
            "pass unicodedata.normalize('NFC', user_id)"
        )
    return user_id


def is_store_url(value: object) -> bool:
    """True for a PostgreSQL URL (``postgresql://...``), which names a store instead of a folder.

    Example:
        >>> is_store_url("postgresql://app@db:5432/profiles"), is_store_url("./profiles")
        (True, False)
    """
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))
