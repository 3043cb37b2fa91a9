"""The attribution task end to end on real LaMP-5-like users: MiniLM, extractive profiles and
hybrid ones written by the embedded model, through the eval command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_stepback_profile.cli import main
from tests.conftest import DATA

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::langchain_stepback_profile.errors.FewItemsWarning"),
]


def test_attribution_command_on_real_users(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    args = ["eval", "--task", "attribution", "--data", str(DATA / "LaMP_5_like"), "--limit", "8"]
    args += ["--n-candidates", "5", "--methods", "chance,centroid,extractive,hybrid"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_items"] == 8 and report["config"]["source"] == "LaMP-5"
    assert report["config"]["llm"] and "SmolLM2" in report["config"]["llm"]
    rows = report["rows"]
    assert list(rows) == [
        "chance",
        "centroid",
        "extractive",
        "extractive-topics",
        "hybrid",
        "hybrid-topics",
    ]
    assert rows["chance"]["metrics"]["acc@1"]["value"] == pytest.approx(0.2)
    for name in ("centroid", "extractive", "hybrid"):
        cell = rows[name]["metrics"]["MRR"]
        assert 0.2 <= cell["value"] <= 1.0 and cell["low"] <= cell["value"] <= cell["high"]
    hybrid = rows["hybrid"]["profile"]
    assert hybrid["strategy"] == "hybrid" and hybrid["llm_calls_per_user"] >= 1
    assert hybrid["words"] > 5 and 0 <= hybrid["faithfulness"] <= 1
    assert rows["extractive"]["profile"]["llm_calls_per_user"] == 0
    assert "| hybrid-topics |" in (out / "report.md").read_text()
    assert (out / "metrics.png").stat().st_size > 1000
