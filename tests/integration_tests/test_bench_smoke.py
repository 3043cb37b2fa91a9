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
    # two encoder variants keep the precision rows in the smoke run (bf16 is emulated here, slow)
    _script(name).main(["--quick", "--precisions", "fp32,onnx", "--out", str(tmp_path)])
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


def test_backends_compares_sqlite_and_postgres(tmp_path: Path) -> None:
    pytest.importorskip("pgserver")
    _script("backends").main(
        [
            "--sizes", "200",
            "--users", "20",
            "--queries", "30",
            "--minilm-queries", "3",
            "--minilm-docs", "4",
            "--clients", "2",
            "--client-queries", "10",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    report = json.loads((tmp_path / "backends.json").read_text())
    result = report["results"]["200"]
    backends = ("sqlite_faiss", "postgres_pgvector")
    assert result["items_per_user"] == 10 and not report["sizes_not_run"]
    for name in backends:
        assert result["ingest_add_histories"][name]["items_per_s"] > 0
        assert result["ingest_bulk"][name]["items_per_s"] > 0
        assert result["recall_at_10"][name] == {"queries": 30, "min": 1.0, "mean": 1.0}
        assert result["search_with_minilm_ms"][name]["n"] == 3
        assert {c["queries"] for c in result["clients"][name].values()} == {10, 20}
    assert result["same_ids_both_backends"] == 30
    table = (tmp_path / "backends.md").read_text()
    assert "| 200 (10) | PostgreSQL + pgvector |" in table and "Reproduce" in table
    assert (tmp_path / "backends.png").read_bytes().startswith(b"\x89PNG")


def test_startup_times_every_variant_and_names_no_heavy_module(tmp_path: Path) -> None:
    _script("startup").main(["--runs", "2", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "startup.json").read_text())
    results = report["results"]
    assert {"python -c pass", "stepback-profile --help", "stepback-profile query --help"} <= set(
        results
    )
    assert all(r["n"] == 2 and r["p50"] > 0 for r in results.values())
    for name in report["targets"]:  # the help and error variants load only the parser
        assert results[name]["heavy"] == [], name
    assert "numpy" in results["import ...cli.commands (a command that runs)"]["heavy"]
    table = (tmp_path / "startup.md").read_text()
    assert "| stepback-profile query (argument error) |" in table and "Reproduce" in table
