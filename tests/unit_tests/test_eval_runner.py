"""run_eval with a recording chat model: results, resume after an interruption, report files,
scoring of label tasks, and the eval command's errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_stepback_profile import MiniLMEmbeddings
from langchain_stepback_profile.cli import main
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation import get_eval_task, load_items, run_eval
from langchain_stepback_profile.evaluation.methods import resolve_methods
from langchain_stepback_profile.evaluation.scoring import EvalReport, score
from tests.unit_tests.eval_data import EchoChat, write_lamp3, write_lamp5, write_psw

LAMP5_METHODS = ["first-words", "non-personalized", "step-back", "step-back-other", "few-shot"]


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _run(data: Path, out: Path, llm: EchoChat, embeddings: MiniLMEmbeddings, **kw) -> EvalReport:
    options = {"methods": LAMP5_METHODS, "k": 1, "profile_strategy": "extractive"} | kw
    return run_eval(
        "LaMP-5", data, llm=llm, embeddings=embeddings, out_dir=out, show_progress=False, **options
    )


def test_a_torn_last_line_is_dropped(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    _run(data, out, EchoChat(), embeddings, methods=["first-words"])
    with (out / "results.jsonl").open("a") as f:
        f.write('{"method": "first-words", "item_id": "q')  # killed mid-write
    report = _run(data, out, EchoChat(), embeddings, methods=["first-words", "non-personalized"])
    assert report.n_items == 3
    assert len(_lines(out)) == 6


def test_other_settings_are_not_mixed_into_a_folder(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> None:
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    _run(data, out, EchoChat(), embeddings, methods=["first-words"])
    with pytest.raises(InvalidArgumentError, match=r"another run \(k: 1 -> 3\)"):
        _run(data, out, EchoChat(), embeddings, methods=["first-words"], k=3)


# ---------------------------------------------------------------- scoring
def test_rating_task_scoring(tmp_path: Path) -> None:
    task = get_eval_task("LaMP-3")
    items = load_items(task, write_lamp3(tmp_path))
    methods = resolve_methods(task, ["non-personalized", "step-back"])
    records = {
        ("non-personalized", "r1"): {"output": "I'd say 4", "llm_calls": 1, "seconds": 1.0},
        ("non-personalized", "r2"): {"output": "Hard to say.", "llm_calls": 1, "seconds": 1.0},
        ("step-back", "r1"): {"output": "5", "llm_calls": 1, "seconds": 2.0},
        ("step-back", "r2"): {
            "output": "1",
            "llm_calls": 2,
            "seconds": 2.0,
            "control": {"verdicts": ["chat", "ok"], "fallback": False},
        },
    }
    report = score(task, items, methods, records)
    plain = report.rows["non-personalized"]
    # r1: |4-5| = 1; r2 unreadable -> worst rating 5, |5-1| = 4
    assert plain["metrics"]["MAE"]["value"] == pytest.approx(2.5)
    assert plain["metrics"]["RMSE"]["value"] == pytest.approx((17 / 2) ** 0.5, abs=1e-4)
    assert plain["diagnostics"]["unparseable"] == 0.5
    assert plain["diagnostics"]["rejected"] == 0.0
    step = report.rows["step-back"]
    assert step["metrics"]["MAE"]["value"] == 0
    assert step["vs_non_personalized"]["MAE"]["diff"] == pytest.approx(-2.5)
    assert step["cost"]["llm_calls"] == 1.5
    assert step["diagnostics"]["rejected"] == 0.5 and step["diagnostics"]["fallback"] == 0


def test_classification_scoring_only_counts_complete_items(tmp_path: Path) -> None:
    task = get_eval_task("LaMP-1")
    prompt = 'For an author who has written the paper with the title "T", which reference ...'
    (tmp_path / "questions.json").write_text(
        json.dumps(
            [
                {"id": n, "input": prompt, "profile": [{"id": "p", "title": "T", "abstract": "A"}]}
                for n in ("c1", "c2", "c3")
            ]
        )
    )
    (tmp_path / "outputs.json").write_text(
        json.dumps(
            {
                "task": "LaMP_1",
                "golds": [
                    {"id": "c1", "output": "[1]"},
                    {"id": "c2", "output": "[2]"},
                    {"id": "c3", "output": "[1]"},
                ],
            }
        )
    )
    items = load_items(task, tmp_path)
    methods = resolve_methods(task, ["non-personalized"])
    records = {
        ("non-personalized", "c1"): {"output": "[1]"},
        ("non-personalized", "c2"): {"output": "The answer is 1."},
    }
    report = score(task, items, methods, records)
    assert report.n_items == 2
    row = report.rows["non-personalized"]
    assert row["metrics"]["accuracy"]["value"] == 0.5
    # [1]: P = 1/2, R = 1 -> 2/3; [2]: 0 -> macro 1/3
    assert row["metrics"]["macro-F1"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert report.config == {"labels": ["[1]", "[2]"]}


# ---------------------------------------------------------------- the command
def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    psw = write_psw(tmp_path / "psw")
    cases = [
        (["--task", "LaMP-5", "--data", str(tmp_path / "nope")], "no such folder"),
        (["--task", "LaMP-5", "--data", str(psw)], "use --task PSW-title or PSW-abstract"),
        (["--task", "PSW-title", "--data", str(psw), "--methods", "copy-input"], "does not apply"),
    ]
    for args, message in cases:
        assert main(["eval", *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_cli_unknown_task_in_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_stepback_profile.cli",
            "eval",
            "--task",
            "LaMP-9",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "invalid choice: 'LaMP-9'" in result.stderr and "PSW-title" in result.stderr
