"""The benchmark scripts still run and report every figure (``--quick``; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the scripts share bench/_benchlib.py
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize(
    ("name", "targets"),
    [
        ("retrieval_latency", {"faiss_within_1_5x_of_bare"}),  # quick: small stores only
        ("ingestion_throughput", {"throughput_ge_90pct_of_raw_encode"}),
    ],
)
def test_quick_run_writes_json_and_markdown(tmp_path: Path, name: str, targets: set[str]) -> None:
    _script(name).main(["--quick", "--out", str(tmp_path)])
    report = json.loads((tmp_path / f"{name}.json").read_text())
    assert targets <= set(report["targets"])
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
    assert report["results"]
    table = (tmp_path / f"{name}.md").read_text()
    assert "| " in table and "Reproduce" in table


def test_title_candidates_reports_every_selection(tmp_path: Path) -> None:
    _script("title_candidates").main(
        ["--limit", "2", "--store", str(tmp_path / "store"), "--out", str(tmp_path)]
    )
    report = json.loads((tmp_path / "title_candidates.json").read_text())
    labels = [row["selection"] for row in report["rows"]]
    assert labels[0] == "greedy (n = 1)"
    assert "best of 3, temperature 0.8" in labels and len(labels) == 13
    assert all(0.0 <= row["rouge1"] <= 1.0 for row in report["rows"])
    assert all(len(outputs) == 2 for outputs in report["outputs"].values())
    assert "| best of 4, temperature 0.5 |" in (tmp_path / "title_candidates.md").read_text()
