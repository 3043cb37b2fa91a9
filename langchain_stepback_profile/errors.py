"""Errors raised by the package. Every message names the problem and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pydantic loads with the first model, not with the package
    from pydantic import ValidationError


class StepBackProfileError(Exception):
    """Base class of every error this package raises on purpose.

    ``user_error`` marks the classes caused by the input, the options or a missing extra: the
    ``stepback-profile`` command exits with code 2 and the one-line message for them (1 for
    every other error). Subclasses inherit the mark, so a new input error needs no list.
    """

    user_error: ClassVar[bool] = False


class InvalidItemError(StepBackProfileError, ValueError):
    """A history item is malformed (empty or non-string text, bad id)."""

    user_error: ClassVar[bool] = True


class DuplicateItemError(StepBackProfileError, ValueError):
    """An item id is already stored for this user with different text."""

    user_error: ClassVar[bool] = True


class UnknownUserError(StepBackProfileError, KeyError):
    """The user has no history in this store."""

    user_error: ClassVar[bool] = True

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(StepBackProfileError, ValueError):
    """An argument is out of range or missing (k <= 0, no users...)."""

    user_error: ClassVar[bool] = True


class StoreError(StepBackProfileError):
    """The store folder is corrupt, foreign, or was made with another embedding model."""

    user_error: ClassVar[bool] = True


class DataFormatError(StepBackProfileError, ValueError):
    """A history file is missing, unreadable or malformed; the message names file and line."""

    user_error: ClassVar[bool] = True


class ContextOverflowError(StepBackProfileError, ValueError):
    """A prompt does not fit the model's context window."""

    user_error: ClassVar[bool] = True


class ProfileGenerationError(StepBackProfileError):
    """The LLM did not produce a valid profile, even after one repair attempt."""


class ProfileVersionConflictError(StoreError):
    """Another writer stored the same profile version first; the build is redone on the newer
    profile (:meth:`ProfileMemory.refresh` does this itself)."""


class ProfileBuildError(StepBackProfileError):
    """Some users' profiles could not be built; the others were built and saved.

    ``report`` is the :class:`~langchain_stepback_profile.memory.RefreshReport` of the whole
    refresh, with ``report.failures`` naming each failed user and why.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


def explain(err: ValidationError) -> str:
    """A pydantic error as one line: each bad field and what it must be."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']} (got {e.get('input')!r:.60})"
        for e in err.errors()
    )


class ProfileTimeoutError(StepBackProfileError, TimeoutError):
    """A user's profile build took longer than the refresh's ``timeout``; the stored profile
    was kept."""


class ProfileModelError(StepBackProfileError):
    """The chat model could not be reached or kept failing (connection, timeout, rate limit,
    server error) after the retries; the stored profile was kept."""


class BuildJobError(InvalidArgumentError):
    """A build job cannot be started, joined or worked on as asked: the store cannot share a
    build between processes, the job's running build has other settings, or no such job."""


class BuildFailure(StepBackProfileError):
    """A user's build that failed in a worker (maybe another process); its message is the
    worker's ``"ErrorClass: message"``."""


class MissingExtraError(StepBackProfileError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the
    ``pip install "langchain-stepback-profile[EXTRA]"`` command (and any alternative).

    ``extra`` is the extra's name, ``missing`` the modules that were not found.
    """

    user_error: ClassVar[bool] = True

    def __init__(self, message: str, extra: str, missing: tuple[str, ...]) -> None:
        super().__init__(message, name=missing[0] if missing else None)
        self.extra = extra
        self.missing = missing


class FewItemsWarning(UserWarning):
    """A bootstrap interval was computed over too few items to mean anything (see
    ``evaluation.metrics.MIN_ITEMS``); reports still show the value but mark the interval as
    not meaningful."""
