"""The ``stepback-profile`` command: ingest histories, build and show profiles, query, forget.

Run ``stepback-profile --help`` or ``stepback-profile COMMAND --help``; ``docs/cli.md`` shows
every command with its output.

Exit codes: 0 ok; 2 bad input (one line on stderr naming the problem and the fix); 1 any other
failure (one line; ``--debug`` adds the traceback). Results go to stdout (one JSON object with
``--json``); progress bars, warnings and library logging go to stderr.

Example:
    ```bash
    stepback-profile ingest questions.json
    stepback-profile profile build
    stepback-profile query --users "Regina Barzilay,Michael Collins" "We study ..." --explain
    ```
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_stepback_profile.cli.parser import (
    DEFAULT_K,
    DEFAULT_STORE,
    DEFAULT_TASK,
    PROG,
    ModelSpec,
    build_parser,
)
from langchain_stepback_profile.errors import StepBackProfileError
from langchain_stepback_profile.lazy import lazy_names

if TYPE_CHECKING:
    from langchain_stepback_profile.cli.commands import (
        cmd_eval,
        cmd_forget,
        cmd_ingest,
        cmd_profile_build,
        cmd_profile_edit,
        cmd_profile_export,
        cmd_profile_import,
        cmd_profile_rollback,
        cmd_profile_show,
        cmd_query,
        cmd_users,
        run_demo,
    )
    from langchain_stepback_profile.cli.session import Session

__all__ = [
    "DEFAULT_K",
    "DEFAULT_STORE",
    "DEFAULT_TASK",
    "PROG",
    "ModelSpec",
    "Session",
    "build_parser",
    "cmd_eval",
    "cmd_forget",
    "cmd_ingest",
    "cmd_profile_build",
    "cmd_profile_edit",
    "cmd_profile_export",
    "cmd_profile_import",
    "cmd_profile_rollback",
    "cmd_profile_show",
    "cmd_query",
    "cmd_users",
    "main",
    "run_demo",
]

_LAZY: dict[str, str] = {
    "Session": "session",
    "run_demo": "commands",
    **{name: "commands" for name in __all__ if name.startswith("cmd_")},
}
"""The names imported on first use and their modules: the parser alone answers ``--help``
and usage errors, without loading the models and stores the commands use."""

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)


# --------------------------------------------------------------------- entry point
def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failure(err: BaseException, debug: bool) -> tuple[int, str]:
    """The exit code and one-line message of an error: 2 for bad input (an error class that
    sets ``user_error``, see :mod:`langchain_stepback_profile.errors`), else 1."""
    if isinstance(err, StepBackProfileError) and err.user_error:
        return 2, _one_line(str(err))
    if isinstance(err, KeyboardInterrupt):
        return 130, "interrupted"
    message = f"{type(err).__name__}: {_one_line(str(err))}"
    return 1, message if debug else f"{message} (run with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    # the rest loads only for a command that runs: --help and usage errors exit above
    import logging
    import traceback

    debug = getattr(args, "debug", False)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    if debug:
        logging.getLogger("langchain_stepback_profile").setLevel(logging.DEBUG)
    try:
        from langchain_stepback_profile.cli import commands
        from langchain_stepback_profile.cli.session import Session

        if args.handler == "run_demo":
            return commands.run_demo(args)
        handler = getattr(commands, args.handler)
        out = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):  # library prints stay off stdout
            session = Session(args, out)
            try:
                handler(session, args)
            finally:
                session.close()
        return 0
    except (Exception, KeyboardInterrupt) as err:
        if debug:
            traceback.print_exc()
        code, message = _failure(err, debug)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
