"""Longer runs of the reliability tests, for the figures in docs/reliability.md.

- crash safety: a child process adding, removing, refreshing and forgetting is SIGKILLed at a
  random point, then the store is opened and checked against the child's journal (``--kills``);
- many processes: ``--procs`` processes share one store for ``--rounds`` rounds each, checking at
  every call that everything the others committed is visible, never another user's item;
- damage: ``--mutations`` random mutations of the store's files (index files and SQLite
  database), each followed by searches that must return the right item or a package error;
- load: 50 concurrent async retrieval clients over 1,000 users for ``--load-seconds``.

The embedder is a deterministic hash (what is measured is the storage, not the model), so the
latencies are those of SQLite, FAISS and the retriever alone.

Writes docs/benchmarks/reliability_soak.json and .md.

Usage:
    .venv/bin/python bench/reliability_soak.py      # 250 kills, 4 x 120 rounds, 1000 mutations
    .venv/bin/python bench/reliability_soak.py --kills 40 --rounds 30 --mutations 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _benchlib import command_line, write_json  # noqa: E402

from tests.reliability_tests.workers import (  # noqa: E402
    damage_trials,
    iter_kills,
    load_store,
    open_memory,
    run_churn,
    run_load,
)

OUT = ROOT / "docs" / "benchmarks"
NAME = "reliability_soak"


def crashes(folder: Path, kills: int) -> dict[str, Any]:
    store, journal = folder / "crash-store", folder / "journal.jsonl"
    totals = {"kills": 0, "lost_items": 0, "resurrected_users": 0, "leftover_files_after_open": 0}
    totals |= {"index_mismatches": 0, "repaired_users": 0, "leftover_files_before_open": 0}
    users = ["alice", "bob", "a/b", "Ren\u00e9", "alice2"]
    for found in tqdm(iter_kills(store, journal, kills, 11, users), total=kills, desc="kills"):
        totals["kills"] += 1
        totals["lost_items"] += sum(len(ids) for ids in found["lost"].values())
        totals["resurrected_users"] += len(found["resurrected"])
        totals["leftover_files_after_open"] += len(found["leftovers_after_open"])
        totals["leftover_files_before_open"] += len(found["leftovers_before_open"])
        totals["index_mismatches"] += len(found["index_mismatch"])
        totals["repaired_users"] += len(found["repaired"])
    return totals


def processes(folder: Path, procs: int, rounds: int) -> dict[str, Any]:
    store = folder / "churn-store"
    found, seconds = run_churn(store, folder / "logs", procs, rounds)
    with open_memory(store) as memory:
        lost = procs * rounds + 1 - len(memory.items("shared"))
        doomed = [i.id for i in memory.items("doomed")]
        integrity = memory.check_integrity()
    return {
        "processes": procs,
        "rounds_each": rounds,
        "seconds": round(seconds, 1),
        "visibility_checks": sum(r["checked"] for r in found),
        "stale_misses": sum(r["stale"] for r in found),
        "cross_user_results": sum(r["leaks"] for r in found),
        "failed_refreshes": sum(r["refresh_errors"] for r in found),
        "failed_writes": sum(r["other_errors"] for r in found),
        "lost_writes": lost,
        "forgotten_items_back": len(set(doomed) - {"again"}),
        "users_repaired_at_the_end": sum(1 for s in integrity.values() if s != "ok"),
    }


def damage(folder: Path, mutations: int) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    for kind, outcome in tqdm(damage_trials(folder, mutations, 5), total=mutations, desc="damage"):
        outcomes[outcome] += 1
        by_file[kind] += 1
    return {
        "mutations": mutations,
        "right_answers": outcomes["right"],
        "package_errors": outcomes["package error"],
        "wrong_answers": outcomes["wrong"],
        "raw_exceptions": outcomes["raw error"],
        "mutated_files": dict(by_file),
    }


def load(folder: Path, users: int, concurrency: int, seconds: float) -> dict[str, Any]:
    names = load_store(folder / "load-store", users, items_each=5)
    return asyncio.run(run_load(folder / "load-store", names, concurrency, seconds))


def markdown(payload: dict[str, Any]) -> str:
    def table(section: dict[str, Any]) -> str:
        rows = "\n".join(
            f"| {key.replace('_', ' ')} | {value} |"
            for key, value in section.items()
            if not isinstance(value, dict)
        )
        return f"| measure | value |\n| --- | --- |\n{rows}"

    return f"""# Reliability soak

Generated {payload["generated_at"]} by `{payload["command"]}` ({payload["seconds"]} s).

## Writers SIGKILLed at random points

{table(payload["crashes"])}

## Processes sharing one store

{table(payload["processes"])}

## Random damage to the store's files

{table(payload["damage"])}

## Concurrent async retrieval

{table(payload["load"])}

Mutated files: {", ".join(f"{k} {v}" for k, v in payload["damage"]["mutated_files"].items())}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=250)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument("--load-seconds", type=float, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        payload = {
            "crashes": crashes(folder, args.kills),
            "processes": processes(folder, args.procs, args.rounds),
            "damage": damage(folder, args.mutations),
            "load": load(folder, 1000, 50, args.load_seconds),
        }
    payload = {
        "command": command_line(f"{NAME}.py", sys.argv[1:]),
        "seconds": round(time.perf_counter() - start, 1),
        **payload,
    }
    write_json(OUT / f"{NAME}.json", payload)
    payload = json.loads((OUT / f"{NAME}.json").read_text())  # with its generated_at
    (OUT / f"{NAME}.md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
