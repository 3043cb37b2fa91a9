"""The judge end to end against a real model server: the embedded model served by
llama_cpp.server judges two methods of a run folder of real PSW-like items, with the authors'
profiles read from the run's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_openai import ChatOpenAI

from langchain_stepback_profile import ProfileDraft, ProfileMemory
from langchain_stepback_profile.evaluation.datasets import load_items, select
from langchain_stepback_profile.evaluation.judge import JUDGE_MD, judge_run
from tests.conftest import DATA

from ..unit_tests.test_eval_judge import run_folder

pytestmark = pytest.mark.slow

ITEMS = 4


class Prompts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen += [str(m.content) for batch in messages for m in batch]


def test_a_served_judge_compares_two_methods_of_a_run(openai_server: str, tmp_path: Path) -> None:
    run = run_folder(tmp_path / "run", ITEMS)
    items = select(load_items("PSW-title", DATA / "PSW_like"), ITEMS, 0)
    with ProfileMemory(run / "store", embeddings=DeterministicFakeEmbedding(size=8)) as memory:
        for item in items:
            for user in item.store_ids:
                memory.add(user, [f"A paper by {user}."])
                memory.set_profile(user, ProfileDraft(summary=f"{user} writes short titles."))
    prompts = Prompts()
    judge = ChatOpenAI(base_url=openai_server, api_key="none", model="local", temperature=0,
                       callbacks=[prompts])  # fmt: skip
    report = judge_run(run, judge, show_progress=False)
    assert report.n_items == ITEMS and sum(report.wins.values()) == ITEMS
    assert 0.0 <= report.win_rate["low"] <= report.win_rate["value"] <= report.win_rate["high"]
    assert 0.0 <= report.first_position_share <= 1.0 and len(report.verdicts) == ITEMS
    shown = "\n".join(prompts.seen)
    assert shown.count("Reference written by the authors:") == 2 * ITEMS  # both orders
    assert f"{items[0].store_ids[0]} writes short titles." in shown  # profiles reach the judge
    assert "win rate" in (run / JUDGE_MD).read_text()
