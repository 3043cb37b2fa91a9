"""The ``eval`` command end to end with the embedded SmolLM2-135M and MiniLM: two items of each
real data set (LaMP-7, LaMP-5-like, PSW-like titles), a few methods each, in subprocesses.

A second call on the same folder must resume: nothing is recomputed and the report is the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
ENV = {
    **{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
RUNS = {
    "LaMP-7": ("LaMP_7", "copy-input,non-personalized,few-shot,few-shot-other", []),
    "LaMP-5": ("LaMP_5_like", "first-words,non-personalized,step-back", []),
    "PSW-title": ("PSW_like", "first-words,first-author,shuffled", ["--k", "1"]),
}


def _eval(task: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    folder, methods, options = RUNS[task]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_stepback_profile.cli",
            "eval",
            "--task",
            task,
            "--data",
            str(DATA / folder),
            "--limit",
            "2",
            "--methods",
            methods,
            "--out",
            str(out),
            *options,
            *extra,
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("task", list(RUNS))
def test_eval_command_on_real_data(task: str, tmp_path: Path) -> None:
    out = tmp_path / task
    # PSW profiles are extractive here to keep the test short; the others use the model
    extra = ["--profile-strategy", "extractive"] if task == "PSW-title" else []
    result = _eval(task, out, *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    methods = RUNS[task][1].split(",")
    assert f"| {methods[-1]} |" in result.stdout  # the results table

    report = json.loads((out / "report.json").read_text())
    assert report["n_items"] == 2 and list(report["rows"]) == methods
    for name, row in report["rows"].items():
        for cell in row["metrics"].values():
            assert 0.0 <= cell["low"] <= cell["value"] <= cell["high"] <= 1.0
        calls = row["cost"]["llm_calls"]
        assert calls == 0 if name in ("copy-input", "first-words") else calls >= 1
    if task == "LaMP-7":  # copying the tweet is its own ROUGE calibration
        assert report["rows"]["copy-input"]["metrics"]["rouge-1"]["value"] > 0.2
    assert (out / "metrics.png").stat().st_size > 0 and (out / "cost.png").exists()
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(methods)

    again = _eval(task, out, *extra, "--json")  # resumes: nothing left to run
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == report["rows"]
    assert (out / "results.jsonl").read_text().splitlines() == lines
