"""Time and memory of the demo (the README's first command), as a user runs it.

Each run is a fresh process: ``python -m langchain_stepback_profile.demo --store S``.
- cold: a new, empty store (ingest 28 papers, build 3 profiles, 3 titles);
- warm: the same store again (profiles reused: 0 profile calls; 3 titles).
Wall time is measured around the process (imports and model loading included); peak RSS is
the child's own ``ru_maxrss`` from ``wait4``. Median of ``--runs`` runs each.
Targets: under 30 s and under 1 GB RSS on the 2-core machine.

Usage:
    .venv/bin/python bench/demo_footprint.py              # 3 cold + 3 warm runs
    .venv/bin/python bench/demo_footprint.py --runs 1 --quick
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import ROOT, command_line, machine_info, machine_md, md_table, write_json

NAME = "demo_footprint"
TARGET_SECONDS = 30.0
TARGET_RSS_MIB = 1024.0


def run_once(store: Path) -> dict[str, Any]:
    """One demo process: wall seconds, peak RSS (MiB), profile LLM calls, the titles."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_stepback_profile.demo", "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the demo failed (exit {proc.returncode}):\n{out[-2000:]}")
    calls = re.search(r"Profiles: .*?; (\d+) LLM calls", out)
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "profile_llm_calls": int(calls.group(1)) if calls else None,
        "titles": re.findall(r"^Title, (.*)$", out, re.M),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": runs,
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--quick", action="store_true", help="one cold and one warm run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    info = machine_info()

    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            store = Path(tmp) / f"store{i}"
            cold.append(run_once(store))
            warm.append(run_once(store))
            print(f"run {i + 1}: cold {cold[-1]}, warm {warm[-1]}", file=sys.stderr)
    result = {
        "benchmark": NAME,
        "command": command_line("demo_footprint.py", argv or sys.argv[1:]),
        "machine": info,
        "cold": summarize(cold),
        "warm": summarize(warm),
        "targets": {"seconds": TARGET_SECONDS, "peak_rss_mib": TARGET_RSS_MIB},
    }
    write_json(args.out / f"{NAME}.json", result)
    rows = [
        (
            kind,
            result[kind]["median_seconds"],
            result[kind]["max_peak_rss_mib"],
            result[kind]["runs"][0]["profile_llm_calls"],
            "met" if result[kind]["median_seconds"] < TARGET_SECONDS else "NOT met",
            "met" if result[kind]["max_peak_rss_mib"] < TARGET_RSS_MIB else "NOT met",
        )
        for kind in ("cold", "warm")
    ]
    table = md_table(
        ("run", "median wall (s)", "peak RSS (MiB)", "profile LLM calls", "< 30 s", "< 1 GiB"),
        rows,
    )
    titles = "\n".join(f"- {t}" for t in cold[0]["titles"])
    (args.out / f"{NAME}.md").write_text(
        f"# Demo time and memory\n\n`{result['command']}` ({runs} cold and {runs} warm runs, "
        f"each a fresh process; wall time includes imports and model loading).\n\n{table}\n\n"
        f"Titles printed by the first cold run:\n\n{titles}\n\n{machine_md(info)}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
