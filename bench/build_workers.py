"""``profile build --workers N`` on one PostgreSQL store: speed-up for 1, 2 and 4 worker processes.

The model is a chat server with a **fixed latency** per call (``bench/_chat_server.py`` on
127.0.0.1: it sleeps ``--latency-ms`` and answers a valid profile; it uses no CPU while it
waits, like a remote model server with spare capacity). A private PostgreSQL 16 + pgvector
(``pgserver``, unix socket) holds USERS users of 2 short items each (embedded by the same
server); every run starts from a copy of that database (``CREATE DATABASE ... TEMPLATE``), so
every user needs one model call (``--profile-strategy llm``). Each run is the real command
in a subprocess, timed from start to exit; the server's log gives the model phase (first answer
to last answer) and checks that every user was built exactly once.

    .venv/bin/python bench/build_workers.py [--users 48 --latency-ms 500 --workers 1,2,4]

Writes docs/benchmarks/build_workers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import _chat_server as chat
import psycopg
from _benchlib import ROOT, Progress, machine_info, md_table, report_head, write_json
from psycopg import sql

log = Progress()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, str, str, int]:
    """The command in a subprocess: (seconds, stdout, stderr, exit code)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "langchain_stepback_profile.cli", *args],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, **(env or {})},
        cwd=tempfile.gettempdir(),
    )
    return time.perf_counter() - start, done.stdout, done.stderr, done.returncode


def copy_database(admin: str, template: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def run_one(
    server: Any,
    admin: str,
    base_url: str,
    calls_log: Path,
    users: int,
    workers: int,
    concurrency: int,
    number: int,
    llm: str,
) -> dict[str, Any]:
    name = f"run_{number}"
    copy_database(admin, "template_store", name)
    url = server.get_uri(name)
    calls_log.write_text("")
    common = ["--store", url, "--embeddings", "openai:stub", "--base-url", base_url]
    args = ["profile", "build", *common, "--llm", llm, "--profile-strategy", "llm"]
    args += ["--workers", str(workers), "--concurrency", str(concurrency), "--json"]
    seconds, out, err, code = cli(*args)
    if code != 0:
        raise SystemExit(f"profile build failed ({code}): {err[-2000:]}")
    report = json.loads(out)
    calls = [r for r in chat.read_log(calls_log) if r["event"] == "call"]
    per_user: dict[str, int] = {}
    for record in calls:
        for user in record["users"]:
            per_user[user] = per_user.get(user, 0) + 1
    row = {
        "users": users,
        "workers": workers,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "built": report["built"],
        "llm_calls": report["llm_calls"],
        "workers_that_built": sum(1 for w in report["workers"].values() if w["built"]),
        "per_worker_built": sorted((w["built"] for w in report["workers"].values()), reverse=True),
        "every_user_once": len(per_user) == users and set(per_user.values()) == {1},
    }
    if calls:
        times = sorted(r["t"] for r in calls)
        row["model_phase_s"] = round(times[-1] - times[0], 2)
    log(f"workers {workers} x concurrency {concurrency}: {row}")
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--quick", action="store_true", help="12 users, 1 and 2 workers")
    parser.add_argument(
        "--append", action="store_true", help="add these rows to the report's earlier ones"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.workers, args.concurrency = 12, "1,2", "1"
    workers = [int(w) for w in args.workers.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    machine = machine_info()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

        folder = Path(tempfile.mkdtemp(prefix="bench-build-workers-"))
        server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    rows: list[dict[str, Any]] = []
    try:
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE template_store")
        calls_log = folder / "calls.jsonl"
        latency = ["--latency-ms", str(args.latency_ms), "--log", str(calls_log)]
        with chat.running(*latency) as base_url:
            history = folder / "history.jsonl"
            with history.open("w") as out:
                for n in range(args.users):
                    user = f"user{n:03d}"
                    for k in range(2):
                        text = f"{chat.tag(user)} note {k}: a short text of {user}"
                        out.write(json.dumps({"user_id": user, "id": f"{k}", "text": text}))
                        out.write("\n")
            template = server.get_uri("template_store")
            common = ["--store", template, "--embeddings", "openai:stub", "--base-url", base_url]
            seconds, _, err, code = cli("ingest", str(history), *common)
            if code != 0:
                raise SystemExit(f"ingest failed: {err[-2000:]}")
            log(f"ingested {args.users} users in {seconds:.1f} s")
            number = 0
            for concurrency in concurrencies:
                for count in workers:
                    number += 1
                    rows.append(
                        run_one(
                            server,
                            admin,
                            base_url,
                            calls_log,
                            args.users,
                            count,
                            concurrency,
                            number,
                            "openai:stub",
                        )
                    )
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        row["latency_ms"] = args.latency_ms
    earlier = args.out / "build_workers.json"
    if args.append and earlier.exists():
        rows = json.loads(earlier.read_text())["rows"] + rows
    for row in rows:
        base = next(
            r
            for r in rows
            if (r["concurrency"], r["latency_ms"], r["users"])
            == (row["concurrency"], row["latency_ms"], row["users"])
            and r["workers"] == 1
        )
        row["speedup"] = round(base["seconds"] / row["seconds"], 2)
        if "model_phase_s" in row and base.get("model_phase_s"):
            row["model_phase_speedup"] = round(base["model_phase_s"] / row["model_phase_s"], 2)
    payload = {
        **report_head("build_workers", argv if argv is not None else sys.argv[1:], machine),
        "model": "bench/_chat_server.py, a fixed latency per call (latency_ms of each row)",
        "rows": rows,
        "machine": machine,
    }
    write_json(args.out / "build_workers.json", payload)
    table = md_table(
        [
            "latency ms",
            "users",
            "workers",
            "concurrency per worker",
            "wall s (command)",
            "speed-up",
            "model phase s",
            "model-phase speed-up",
            "users per worker",
            "each user built once",
        ],
        [
            [
                r["latency_ms"],
                r["users"],
                r["workers"],
                r["concurrency"],
                r["seconds"],
                r["speedup"],
                r.get("model_phase_s"),
                r.get("model_phase_speedup"),
                "/".join(map(str, r["per_worker_built"])),
                "yes" if r["every_user_once"] else "NO",
            ]
            for r in rows
        ],
    )
    (args.out / "build_workers.md").write_text(
        "# `profile build --workers N`: speed-up\n\n"
        f"`{payload['command']}`, generated {time.strftime('%Y-%m-%d')}. Users of 2 short "
        "items each, `--profile-strategy llm` (one model call per user), a chat server with "
        "a fixed latency per call on 127.0.0.1 "
        "(`bench/_chat_server.py`; it waits without using CPU), a private PostgreSQL 16 "
        "(pgserver, unix socket) on the same machine, a fresh copy of the store per row. "
        "Wall time is the whole command (start-up, the forkserver and its workers, the "
        "report); the model phase runs from the first model answer to the last. Speed-ups "
        "are against 1 worker with the same latency, users and concurrency.\n\n"
        f"{table}\n\n"
        f"Load average at start / end: {machine['loadavg_at_start']} / "
        f"{machine['loadavg_at_end']} ({machine['nproc']} CPUs, {machine['cpu_model']}).\n"
    )
    log(f"wrote {args.out / 'build_workers.md'}")


if __name__ == "__main__":
    main()
