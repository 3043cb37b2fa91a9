"""The pairwise judge: verdict parsing, both orders cancelling position bias, win rates and
agreement with ROUGE, over a run folder of real PSW-like items (scripted judges, no model)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from langchain_stepback_profile import InvalidArgumentError
from langchain_stepback_profile.evaluation.datasets import load_items, select
from langchain_stepback_profile.evaluation.judge import (
    JUDGE_JSON,
    JUDGE_MD,
    judge_run,
    parse_verdict,
)
from tests.conftest import DATA

LIMIT = 12


class ScriptedJudge(BaseChatModel):
    """Answers each question with ``rule(prompt)``; records the prompts."""

    mode: str = "first"
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-judge"

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any
    ) -> ChatResult:
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        if self.mode == "first":
            answer = "A"  # a judge that only picks a position
        elif self.mode == "gold":  # prefers the candidate that is the reference itself
            reference = re.search(r"Reference written by the authors: (.*)\n", prompt)
            shown_a = re.search(r"Candidate A: (.*)\n", prompt)
            assert reference and shown_a
            answer = "A" if shown_a.group(1) == reference.group(1) else "B"
        else:
            answer = "I cannot tell."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])


def run_folder(out: Path, limit: int = LIMIT) -> Path:
    """A run folder as run_eval writes it, over ``limit`` real PSW-like items: method 'gold'
    outputs the reference, 'head' the input's first words."""
    out.mkdir()
    config = {"task": "PSW-title", "data": str(DATA / "PSW_like"), "limit": limit, "seed": 0,
              "methods": ["gold", "head"]}  # fmt: skip
    (out / "run.json").write_text(json.dumps(config))
    lines = []
    for item in select(load_items("PSW-title", DATA / "PSW_like"), limit, 0):
        lines.append({"method": "gold", "item_id": item.id, "output": item.gold})
        head = " ".join(item.input_text.split()[:8])
        lines.append({"method": "head", "item_id": item.id, "output": head})
    (out / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return out


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return run_folder(tmp_path / "run")


@pytest.mark.parametrize(
    ("text", "letter"),
    [("A", "A"), (" b) because", "B"), ("T", "T"), ("It's a tie.", "T"), ("Neither", "?"),
     ("Candidate A is better", "A")],
)  # fmt: skip
def test_parse_verdict(text: str, letter: str) -> None:
    assert parse_verdict(text) == letter


def test_a_judge_that_picks_a_position_wins_nothing(run: Path) -> None:
    judge = ScriptedJudge(mode="first")
    report = judge_run(run, judge, show_progress=False)
    assert len(judge.prompts) == 2 * LIMIT  # both orders of every item
    assert report.wins == {"a": 0, "tie": LIMIT, "b": 0}
    assert report.win_rate["value"] == 0.5
    assert report.first_position_share == 1.0 and report.consistent_share == 0.0
    assert (run / JUDGE_JSON).exists() and "first-position share" in (run / JUDGE_MD).read_text()


def test_a_judge_that_reads_the_outputs_picks_the_gold_and_agrees_with_rouge(run: Path) -> None:
    report = judge_run(run, ScriptedJudge(mode="gold"), show_progress=False)
    assert report.wins == {"a": LIMIT, "tie": 0, "b": 0}
    assert report.win_rate["value"] == 1.0 and report.first_position_share == 0.5
    assert report.consistent_share == 1.0
    assert report.rouge_agreement["all"] == 1.0  # ROUGE-1 also prefers the reference
    swapped = judge_run(run, ScriptedJudge(mode="gold"), ["head", "gold"], show_progress=False)
    assert swapped.wins == {"a": 0, "tie": 0, "b": LIMIT}


def test_unparseable_answers_are_counted_and_tie(run: Path) -> None:
    report = judge_run(run, ScriptedJudge(mode="mute"), show_progress=False)
    assert report.invalid_answers == 2 * LIMIT and report.wins["tie"] == LIMIT


def test_the_judge_sees_task_gold_and_both_candidates(run: Path) -> None:
    judge = ScriptedJudge(mode="first")
    judge_run(run, judge, show_progress=False)
    first = judge.prompts[0]
    assert "Task: Generate a title" in first and "Reference written by the authors:" in first
    assert first.count("Candidate ") == 2


def test_bad_requests_are_refused_with_the_fix(run: Path, tmp_path: Path) -> None:
    judge = ScriptedJudge()
    with pytest.raises(InvalidArgumentError, match="holds no evaluation run"):
        judge_run(tmp_path / "nothing", judge)
    with pytest.raises(InvalidArgumentError, match=r"no outputs of method 'few-shot'"):
        judge_run(run, judge, ["gold", "few-shot"])
    with pytest.raises(InvalidArgumentError, match="two different methods"):
        judge_run(run, judge, ["gold", "gold"])
    with pytest.raises(InvalidArgumentError, match="exactly two methods"):
        judge_run(run, judge, ["gold"])
