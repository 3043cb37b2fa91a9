"""The command's exit code comes from the error class: ``user_error`` classes exit 2, others 1.

A new input error needs no list to reach exit code 2: subclassing an input error is enough.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from langchain_stepback_profile import errors
from langchain_stepback_profile.cli import Session, main
from langchain_stepback_profile.cli import commands as cli_commands
from langchain_stepback_profile.errors import (
    InvalidArgumentError,
    ProfileModelError,
    StepBackProfileError,
)


class MyBadInput(InvalidArgumentError):
    """An input error the command has never heard of."""


class MyOwnInputError(StepBackProfileError):
    """A new error that marks itself as caused by the input."""

    user_error = True


class MyModelFailure(ProfileModelError):
    """A model failure the command has never heard of: not the user's fault."""


def run_raising(
    error: BaseException,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> tuple[int, str, str]:
    """Run ``stepback-profile users`` with a handler that raises ``error``; the exit code,
    stdout and stderr."""

    def handler(session: Session, args: argparse.Namespace) -> None:
        raise error

    monkeypatch.setattr(cli_commands, "cmd_users", handler)  # looked up when the command runs
    code = main(["users", "--store", str(tmp_path / "store")])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("error_class", [MyBadInput, MyOwnInputError])
def test_a_new_input_error_exits_2_with_its_one_line_message(
    error_class: type[StepBackProfileError],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, err = run_raising(
        error_class("bad value 'x' for --thing;\n  use one of: a, b"), monkeypatch, capsys, tmp_path
    )
    assert code == 2
    assert out == ""
    assert err == "stepback-profile: error: bad value 'x' for --thing; use one of: a, b\n"


@pytest.mark.parametrize(
    "error", [MyModelFailure("the server kept failing"), RuntimeError("the server kept failing")]
)
def test_other_errors_exit_1_and_name_their_class(
    error: Exception,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, err = run_raising(error, monkeypatch, capsys, tmp_path)
    assert code == 1
    assert out == ""
    assert err == (
        f"stepback-profile: error: {type(error).__name__}: the server kept failing "
        "(run with --debug for the traceback)\n"
    )


def test_a_user_error_attribute_outside_the_package_errors_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    class Foreign(ValueError):
        user_error = True

    code, _, err = run_raising(Foreign("nope"), monkeypatch, capsys, tmp_path)
    assert code == 1
    assert "Foreign: nope" in err


# the classes the command has always treated as bad input, and the ones it never has
USER_ERRORS = {
    "BuildJobError",  # an InvalidArgumentError
    "ContextOverflowError",
    "DataFormatError",
    "DuplicateItemError",
    "InvalidArgumentError",
    "InvalidItemError",
    "MissingExtraError",
    "StoreError",
    "ProfileVersionConflictError",  # a StoreError
    "UnknownUserError",
}
OTHER_ERRORS = {
    "BuildFailure",  # a user's build failed in a worker
    "ProfileBuildError",
    "ProfileGenerationError",
    "ProfileModelError",
    "ProfileTimeoutError",
    "StepBackProfileError",
}


def test_every_package_error_is_classified() -> None:
    classes = {
        name: value
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, StepBackProfileError)
    }
    assert set(classes) == USER_ERRORS | OTHER_ERRORS
    assert {name for name, cls in classes.items() if cls.user_error} == USER_ERRORS
