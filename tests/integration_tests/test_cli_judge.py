"""`stepback-profile eval --judge`: a real run with the embedded model, judged by the embedded
model, through the CLI's own entry point; and the judge's bad options (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_stepback_profile.cli import main
from tests.conftest import DATA

pytestmark = pytest.mark.slow

EVAL = ["eval", "--task", "PSW-title", "--data", str(DATA / "PSW_like"), "--limit", "2"]


def test_eval_with_a_judge_writes_the_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main([*EVAL, "--methods", "first-words,non-personalized", "--judge", "local",
                 "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    judged = shown["judge"]
    assert judged["methods"] == ["first-words", "non-personalized"] and judged["n_items"] == 2
    assert sum(judged["wins"].values()) == 2 and len(judged["verdicts"]) == 2
    assert json.loads((out / "judge.json").read_text())["n_items"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "attribution", "--judge", "local"], "has none"),
        (["--methods", "first-words,non-personalized", "--judge", "local",
          "--judge-methods", "first-words,step-back"], "names two of --methods"),
    ],
)  # fmt: skip
def test_bad_judge_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main([*EVAL, *extra, "--out", str(tmp_path / "run")])
    assert code == 2 and message in capsys.readouterr().err
