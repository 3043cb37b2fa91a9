"""``--help`` and usage errors answer from the parser alone: they import no LangChain, NumPy,
FAISS, model, console or evaluation code (the reason ``stepback-profile --help`` is fast).

Checked on the modules a fresh interpreter holds afterwards, not on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from langchain_stepback_profile import names
from langchain_stepback_profile.cli import build_parser

HEAVY = (
    "faiss",
    "langchain",
    "langchain_core",
    "langsmith",
    "llama_cpp",
    "numpy",
    "pydantic",
    "rich",
    "sentence_transformers",
    "torch",
    "langchain_stepback_profile.cli.commands",
    "langchain_stepback_profile.cli.session",
    "langchain_stepback_profile.evaluation",
    "langchain_stepback_profile.memory",
)
"""Modules (and their submodules) a command loads only when it runs."""

_RUN = """
import json, sys
from langchain_stepback_profile.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as exit:
    code = exit.code
else:
    code = None
heavy = json.loads(sys.argv[2])
loaded = sorted({h for h in heavy for m in sys.modules if m == h or m.startswith(h + ".")})
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def run_parser_only(argv: list[str]) -> tuple[int | None, list[str], str]:
    """Run ``main(argv)`` in a fresh interpreter: its exit code, the heavy modules it loaded
    and its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"], result.stdout


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["query", "--help"], 0),
        (["profile", "build", "--help"], 0),
        (["eval", "--help"], 0),
        (["write", "--help"], 0),
        (["--version"], 0),
        (["query"], 2),
        (["query", "--users", "alice", "--strategy", "nope", "x"], 2),
        (["profile", "build", "--task", "haiku"], 2),
        (["forget", "alice "], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else f"exit {value}",
)
def test_help_and_usage_errors_load_nothing_heavy(argv: list[str], code: int) -> None:
    exit_code, loaded, out = run_parser_only(argv)
    assert exit_code == code
    assert loaded == []
    if argv == ["--version"]:
        assert out.startswith("stepback-profile ")


def handlers(parser: argparse.ArgumentParser) -> set[str]:
    """The handler names of every command under ``parser``."""
    found = {parser.get_default("handler")} - {None}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= handlers(sub)
    return found


def test_every_command_names_a_function_of_the_commands_module() -> None:
    from langchain_stepback_profile.cli import commands

    named = handlers(build_parser())
    assert {"cmd_query", "cmd_users", "run_demo"} <= named
    assert all(callable(getattr(commands, name)) for name in named)


def test_the_names_match_the_objects_behind_them() -> None:
    from langchain_stepback_profile.evaluation.methods import METHODS
    from langchain_stepback_profile.evaluation.tasks import EVAL_TASKS
    from langchain_stepback_profile.tasks import TASKS

    assert tuple(TASKS) == names.TASK_NAMES
    assert tuple(EVAL_TASKS) == names.EVAL_TASK_NAMES
    assert tuple(METHODS) == names.METHOD_NAMES
