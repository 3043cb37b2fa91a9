"""run_eval over real stores (MiniLM embeddings) with a recording chat model: results, resume
after an interruption, report files, group runs.

The runner tests that embed nothing are in tests/unit_tests/test_eval_runner.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_stepback_profile import MiniLMEmbeddings
from langchain_stepback_profile.evaluation import run_eval
from langchain_stepback_profile.evaluation.scoring import EvalReport
from tests.unit_tests.eval_data import EchoChat, write_lamp5, write_psw
from tests.unit_tests.test_eval_runner import LAMP5_METHODS, _lines, _run

pytestmark = pytest.mark.slow


def test_run_writes_results_and_report(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    report = _run(data, out, EchoChat(), embeddings)
    assert report.n_items == 3
    assert list(report.rows) == LAMP5_METHODS
    lines = _lines(out)
    assert len(lines) == 3 * len(LAMP5_METHODS)
    assert {(r["method"], r["item_id"]) for r in lines} == {
        (m, q) for m in LAMP5_METHODS for q in ("q1", "q2", "q3")
    }
    step = report.rows["step-back"]
    assert set(step["metrics"]) == {"rouge-1", "rouge-L"}
    cell = step["metrics"]["rouge-1"]
    assert 0 <= cell["low"] <= cell["value"] <= cell["high"] <= 1
    assert cell["meaningful"] is False  # 3 items: the interval is marked, not trusted
    assert step["vs_compare_to"]["rouge-1"]["meaningful"] is False
    assert step["compare_to"] == "step-back-other"
    assert set(step["vs_compare_to"]) == {"rouge-1", "rouge-L"}
    assert (
        "vs_non_personalized" in step
        and "vs_non_personalized" not in report.rows["non-personalized"]
    )
    assert set(step["vs_baseline"]) == {"rouge-1", "rouge-L"}  # first-words
    assert "vs_baseline" not in report.rows["first-words"]
    assert step["cost"]["llm_calls"] >= 1 and step["cost"]["tokens_in"] >= 10
    assert report.rows["first-words"]["cost"]["llm_calls"] == 0
    assert step["diagnostics"]["gold_words"] == pytest.approx(11 / 3, abs=1e-3)
    assert report.profiles["users"] == 3 and report.profiles["llm_calls"] == 0  # extractive
    assert {tuple(e["users"]) for e in report.examples} == {("ada",), ("bob",), ("cy",)}
    assert report.examples[0]["profile"]

    on_disk = json.loads((out / "report.json").read_text())
    assert EvalReport.from_dict(on_disk).rows == report.rows
    markdown = (out / "report.md").read_text()
    assert "| method | layout | rouge-1 [95% CI]" in markdown and "## Examples" in markdown
    assert f"{cell['value']:.3f} [n/a]" in markdown and "intervals not meaningful" in markdown
    assert "vs calibration baseline" in markdown
    for png in ("metrics.png", "cost.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "run.json").read_text())["task"] == "LaMP-5"


def test_runs_are_deterministic(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    data = write_lamp5(tmp_path / "data")
    first = _run(data, tmp_path / "a", EchoChat(), embeddings, limit=2, seed=4)
    second = _run(data, tmp_path / "b", EchoChat(), embeddings, limit=2, seed=4)
    assert first.item_ids == second.item_ids
    assert [r["output"] for r in _lines(tmp_path / "a")] == [
        r["output"] for r in _lines(tmp_path / "b")
    ]
    assert first.rows["step-back"]["metrics"] == second.rows["step-back"]["metrics"]


def test_resume_after_interruption(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    full = EchoChat()
    _run(data, tmp_path / "full", full, embeddings)
    total = len(full.prompts)

    broken = EchoChat(fail_after=5)
    with pytest.raises(RuntimeError, match="went away"):
        _run(data, out, broken, embeddings)
    done = _lines(out)
    assert done and len(done) < 3 * len(LAMP5_METHODS)

    resumed = EchoChat()
    report = _run(data, out, resumed, embeddings)
    assert len(broken.prompts) + len(resumed.prompts) == total  # nothing computed twice
    lines = _lines(out)
    pairs = [(r["method"], r["item_id"]) for r in lines]
    assert len(pairs) == len(set(pairs)) == 3 * len(LAMP5_METHODS)
    assert lines[: len(done)] == done
    assert report.n_items == 3


def test_a_profile_the_model_cannot_write_is_recorded(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> None:
    """The echo model never answers with a profile: every build fails, the run goes on
    without profiles, and a resumed run does not try again."""
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    llm = EchoChat()
    report = _run(data, out, llm, embeddings, methods=["step-back"], profile_strategy="llm")
    assert report.profiles["failed"] == report.profiles["users"] == 3
    assert report.profiles["llm_calls"] >= 6  # each build and its repair were counted
    assert report.n_items == 3
    assert "no valid profile for 3 of them" in (out / "report.md").read_text()
    costs = json.loads((out / "profiles.json").read_text())["users"]
    assert {c["mode"] for c in costs.values()} == {"failed"}
    llm.prompts.clear()
    _run(data, out, llm, embeddings, methods=["step-back"], profile_strategy="llm")
    assert llm.prompts == []


def test_group_run(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    report = run_eval(
        "PSW-title",
        write_psw(tmp_path / "data"),
        methods=["non-personalized", "step-back", "shuffled", "first-author", "two-stage"],
        llm=EchoChat(),
        embeddings=embeddings,
        out_dir=tmp_path / "out",
        profile_strategy="extractive",
        show_progress=False,
    )
    assert report.n_items == 2
    assert report.rows["shuffled"]["compare_to"] == "step-back"
    # two authors: two proposals and the merge; one author: their proposal, no merge
    assert report.rows["two-stage"]["cost"]["llm_calls"] == pytest.approx((3 + 1) / 2)
