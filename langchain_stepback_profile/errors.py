"""Errors raised by the package. Every message names the problem and how to fix it."""

from __future__ import annotations


class StepBackProfileError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidItemError(StepBackProfileError, ValueError):
    """A history item is malformed (empty or non-string text, bad id)."""


class DuplicateItemError(StepBackProfileError, ValueError):
    """An item id is already stored for this user with different text."""


class UnknownUserError(StepBackProfileError, KeyError):
    """The user has no history in this store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(StepBackProfileError, ValueError):
    """An argument is out of range or missing (k <= 0, no users...)."""


class StoreError(StepBackProfileError):
    """The store folder is corrupt, foreign, or was made with another embedding model."""


class DataFormatError(StepBackProfileError, ValueError):
    """A history file is missing, unreadable or malformed; the message names file and line."""


class ContextOverflowError(StepBackProfileError, ValueError):
    """A prompt does not fit the model's context window."""


class ProfileGenerationError(StepBackProfileError):
    """The LLM did not produce a valid profile, even after one repair attempt."""
