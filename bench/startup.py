"""Start-up time of the command line and of the package import, each a fresh process.

Variants, run in alternating order (each round shuffles them, seeded) so that the machine's
load falls on all of them alike:
- ``python -c pass``: the interpreter floor (the venv's site, the editable install's finder);
- ``import langchain_stepback_profile``;
- ``stepback-profile --help``, ``stepback-profile query --help``,
  ``stepback-profile eval --help``: the installed script;
- ``stepback-profile query``: an argument error (exit 2);
- ``import langchain_stepback_profile.cli.commands``: what a command that runs loads before it
  does any work (every command's module: LangChain, FAISS, NumPy, rich), for reference.

Wall time is measured around the child process (``perf_counter`` before the spawn and after
it exits). One more run of each with ``-X importtime`` counts the modules it imported and
names the heavy ones (LangChain, NumPy, FAISS, torch, pydantic, rich, the evaluation package).
Target: a median under 500 ms for the help and error variants.

Usage:
    .venv/bin/python bench/startup.py               # 30 rounds
    .venv/bin/python bench/startup.py --runs 3      # smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import ROOT, machine_info, machine_md, md_table, report_head, stats_ms, write_json

NAME = "startup"
TARGET_MS = 500.0
HEAVY = (
    "faiss",
    "langchain_core",
    "numpy",
    "torch",
    "sentence_transformers",
    "pydantic",
    "rich",
    "langchain_stepback_profile.evaluation",
)


def _script() -> list[str]:
    """The installed ``stepback-profile`` script, else the module it runs."""
    script = Path(sys.executable).with_name("stepback-profile")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "langchain_stepback_profile.cli"]
    )


def variants() -> dict[str, tuple[list[str], int, bool]]:
    """Name -> (command, expected exit code, held to the target)."""
    cli = _script()
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], 0, False),
        "import langchain_stepback_profile": (
            [sys.executable, "-c", "import langchain_stepback_profile"],
            0,
            False,
        ),
        "stepback-profile --help": ([*cli, "--help"], 0, True),
        "stepback-profile query --help": ([*cli, "query", "--help"], 0, True),
        "stepback-profile eval --help": ([*cli, "eval", "--help"], 0, True),
        "stepback-profile query (argument error)": ([*cli, "query"], 2, True),
        "import ...cli.commands (a command that runs)": (
            [sys.executable, "-c", "import langchain_stepback_profile.cli.commands"],
            0,
            False,
        ),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str], code: int, env: dict[str, str]) -> tuple[float, float, str]:
    """One fresh process: its wall seconds, its CPU seconds (user + system) and its stderr."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != code:
        raise SystemExit(f"{command} exited {proc.returncode}, not {code}:\n{proc.stderr[-2000:]}")
    return seconds, _children_cpu() - cpu, proc.stderr


def imports(command: list[str], code: int, env: dict[str, str]) -> dict[str, Any]:
    """The modules one run imports (``-X importtime``) and the heavy ones among them."""
    *_, stderr = run_once(command, code, {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line and "self [us]" not in line
    ]
    heavy = sorted({h for h in HEAVY for n in names if n == h or n.startswith(h + ".")})
    return {"modules": len(names), "heavy": heavy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds of every variant (30)")
    parser.add_argument("--seed", type=int, default=0, help="the order of each round")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    machine = machine_info()
    runs = variants()
    for command, code, _ in runs.values():  # warm the file cache: every variant once
        run_once(command, code, env)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    rng = random.Random(args.seed)
    for round_ in range(args.runs):
        order = list(runs)
        rng.shuffle(order)
        for name in order:
            command, code, _ = runs[name]
            wall, used, _ = run_once(command, code, env)
            seconds[name].append(wall)
            cpu[name].append(used)
        print(f"round {round_ + 1}/{args.runs}", file=sys.stderr, flush=True)
    floor = stats_ms(seconds["python -c pass"])["p50"]
    results: dict[str, Any] = {}
    for name, (command, code, held) in runs.items():
        stats = stats_ms(seconds[name])
        results[name] = {
            "command": [Path(command[0]).name, *command[1:]],
            "exit_code": code,
            **stats,
            "p50_above_floor": round(stats["p50"] - floor, 2),
            "cpu_ms": stats_ms(cpu[name]),
            **imports(command, code, env),
            "target_ms": TARGET_MS if held else None,
            "met": stats["p50"] < TARGET_MS if held else None,
        }
    payload = {
        **report_head(NAME, argv, machine),
        "runs": args.runs,
        "results": results,
        "targets": {
            name: {"p50_under_ms": TARGET_MS, "met": r["met"]}
            for name, r in results.items()
            if r["met"] is not None
        },
        "machine": machine,
    }
    write_json(args.out / f"{NAME}.json", payload)
    rows = [
        (
            name,
            r["p50"],
            r["p90"],
            r["p50_above_floor"],
            r["cpu_ms"]["p50"],
            r["modules"],
            ", ".join(r["heavy"]) or "none",
            "-" if r["met"] is None else ("met" if r["met"] else "NOT met"),
        )
        for name, r in results.items()
    ]
    table = md_table(
        (
            "variant",
            "median (ms)",
            "p90 (ms)",
            "median above floor (ms)",
            "median CPU (ms)",
            "modules imported",
            "heavy modules",
            "< 500 ms",
        ),
        rows,
    )
    (args.out / f"{NAME}.md").write_text(
        "# Command start-up\n\n"
        f"Each variant is a fresh process, timed around the spawn; {args.runs} rounds with the "
        "variants in a shuffled order each round (medians and 90th percentiles of the wall "
        "time; CPU is the child's user + system time, which a loaded machine inflates less). "
        "The floor is `python -c pass` with this venv. `--help` and usage errors are answered "
        "by the parser alone (`langchain_stepback_profile.names` holds every choice, and each "
        "command's function is imported only when the command runs); the last row is what a "
        "command that runs imports before it starts working; before the parser named its "
        "handlers, `--help` and every usage error imported at least those modules too.\n\n"
        f"{table}\n\n"
        "Heavy modules: any of " + ", ".join(f"`{h}`" for h in HEAVY) + " (and submodules), "
        "from one more run with `-X importtime`.\n\n"
        f"## Reproduce\n\n`{payload['command']}`\n\n{machine_md(machine)}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
