"""Profile builds split between worker processes through one PostgreSQL database (a real
server), against a chat server with a fixed latency per call that logs every call: each user
built exactly once by 4 processes, a worker killed mid-build whose user another builds, a
second machine joining a running build from the command line, the schema upgrade, forget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from langchain_stepback_profile import InvalidArgumentError, StoreError
from langchain_stepback_profile.build_jobs import WORKER_ENV
from langchain_stepback_profile.errors import BuildJobError
from langchain_stepback_profile.postgres_store import SCHEMA_VERSION, PostgresProfileStore

from .build_worker_procs import (
    calls_per_user,
    chat_model,
    chat_server,
    context,
    dump,
    open_memory,
    seed,
    worker,
)

pytestmark = pytest.mark.slow

WAIT = 300.0  # seconds: the bound of every wait on the child processes


def start_workers(url: str, base_url: str, count: int, job: str = "profile-build"):
    """``count`` worker processes, all ready before any starts claiming; returns them, the
    queue they report on and their pids."""
    ctx = context()
    go, results = ctx.Event(), ctx.Queue()
    children = [
        ctx.Process(target=worker, args=(url, base_url, job, 1, go, results)) for _ in range(count)
    ]
    for child in children:
        child.start()
    pids = [results.get(timeout=WAIT)["pid"] for _ in children]
    go.set()
    return children, results, pids


def finish(children, results, expected: int) -> list[dict]:
    reports = [results.get(timeout=WAIT) for _ in range(expected)]
    for child in children:
        child.join(timeout=60)
    return reports


def test_four_worker_processes_build_every_user_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    users = [f"u{n:02d}" for n in range(24)]
    seed(postgres_url, users)
    log = tmp_path / "calls.jsonl"
    with chat_server().running("--latency-ms", "300", "--log", str(log)) as base_url:
        children, results, pids = start_workers(postgres_url, base_url, 4)
        reports = finish(children, results, 4)
        with open_memory(postgres_url) as memory:
            report = memory.build_job_report()  # every worker's results
            versions = {u: len(memory.profile_versions(u)) for u in users}
            # the next build is a new run: nothing changed, so no model call
            again = memory.enqueue_build(strategy="llm")
            rerun = memory.run_build_worker(again, chat_model(base_url))
            assert memory.build_job_report().count("unchanged") == len(users)
    assert [c.exitcode for c in children] == [0] * 4
    assert sum(r["started"] for r in reports) == 1  # one started the build, three joined it
    assert all(r["users"] == len(users) for r in reports)
    built = [u for r in reports for u in r["built"]]
    assert sorted(built) == users, dump(reports)  # every user by one worker, none twice
    assert all(r["built"] for r in reports), dump(reports)  # each of the 4 built some
    assert calls_per_user(log) == dict.fromkeys(users, 1)  # one model call per user
    assert versions == dict.fromkeys(users, 1)
    assert list(report.builds) == users and not report.errors and not report.pending
    assert report.count("built") == len(users) and report.llm_calls == len(users)
    by_pid = {u: int(w.rsplit(":", 1)[1]) for u, w in report.built_by.items()}
    assert by_pid == {u: r["pid"] for r in reports for u in r["built"]}
    assert set(by_pid.values()) == set(pids)
    assert again.started and rerun.count("unchanged") == len(users) and rerun.llm_calls == 0


def test_a_killed_worker_s_user_is_built_by_another(postgres_url: str, tmp_path: Path) -> None:
    users = [f"k{n:02d}" for n in range(9)]
    seed(postgres_url, users)
    log = tmp_path / "calls.jsonl"
    victim = "k03"
    options = ["--latency-ms", "200", "--log", str(log), "--hang-user", victim]
    with chat_server().running(*options, "--hang-seconds", "600") as base_url:
        children, results, pids = start_workers(postgres_url, base_url, 3)
        deadline = time.monotonic() + WAIT
        hung = []
        while not hung:  # the first call for the victim is held by the server
            hung = [r for r in chat_server().read_log(log) if r["event"] == "hang"]
            assert time.monotonic() < deadline, "no worker asked for the victim's profile"
            time.sleep(0.1)
        killed = int(hung[0]["pid"])
        os.kill(killed, signal.SIGKILL)  # mid-build: its claim's transaction is open
        reports = finish(children, results, 2)
    exit_codes = {c.pid: c.exitcode for c in children}
    assert exit_codes[killed] == -signal.SIGKILL
    assert [code for pid, code in exit_codes.items() if pid != killed] == [0, 0]
    built = [u for r in reports for u in r["built"]]  # the killed one's users not included
    assert victim in built and len(built) == len(set(built)), dump(reports)
    calls = calls_per_user(log)
    assert calls == dict.fromkeys(users, 1)  # the killed call was never answered
    with open_memory(postgres_url) as memory:
        report = memory.build_job_report()
        assert sorted(report.builds) == users and not report.errors
        assert report.count("built") == len(users)
        assert int(report.built_by[victim].rsplit(":", 1)[1]) in set(pids) - {killed}
        assert set(built) == {u for u, w in report.built_by.items() if f":{killed}" not in w}
        assert all(len(memory.profile_versions(u)) == 1 for u in users)


def cli(*args: str | Path, cwd: Path, machine: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if machine is not None:
        env[WORKER_ENV] = machine  # the name of this "machine" in the reports
    return subprocess.Popen(
        [sys.executable, "-m", "langchain_stepback_profile.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def claims_of(url: str, machine: str) -> int:
    """How many users the workers of ``machine`` hold now (their claim connections)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"stepback-profile build {machine}:%",),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_second_machine_joins_a_running_build_from_the_command_line(
    postgres_url: str, tmp_path: Path
) -> None:
    users = [f"user{n:02d}" for n in range(12)]
    tag = chat_server().tag
    history = tmp_path / "history.jsonl"
    history.write_text(
        "".join(
            json.dumps({"user_id": u, "id": f"{u}-{k}", "text": f"{tag(u)} note {k}"}) + "\n"
            for u in users
            for k in range(2)
        )
    )
    log, release = tmp_path / "calls.jsonl", tmp_path / "release"
    # after 2 answers every call waits for the release file: builds held in flight until the
    # second machine has joined and holds users of its own
    options = ["--latency-ms", "100", "--log", str(log), "--hold-after", "2"]
    with chat_server().running(*options, "--release", str(release)) as base_url:
        common = ["--store", postgres_url, "--embeddings", "openai:stub", "--base-url", base_url]
        ingest = cli("ingest", history, *common, cwd=tmp_path)
        assert ingest.wait(WAIT) == 0, ingest.communicate()[1]
        build = ["profile", "build", *common, "--llm", "openai:stub", "--profile-strategy"]
        build += ["llm", "--workers", "2", "--concurrency", "1", "--json"]
        first = cli(*build, cwd=tmp_path, machine="machine-a")
        second = None
        try:
            deadline = time.monotonic() + WAIT
            while sum(calls_per_user(log).values()) < 2:  # the first machine is at work
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first machine built nothing"
                time.sleep(0.1)
            second = cli(*build, cwd=tmp_path, machine="machine-b")  # the same command
            while claims_of(postgres_url, "machine-b") == 0:  # it joined and holds users
                assert second.poll() is None, second.communicate()
                assert time.monotonic() < deadline, "the second machine claimed nothing"
                time.sleep(0.1)
            release.touch()
            outputs = [p.communicate(timeout=WAIT) for p in (first, second)]
        finally:
            release.touch()
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
    assert [first.returncode, second.returncode] == [0, 0], outputs
    one, two = (json.loads(out) for out, _ in outputs)
    assert calls_per_user(log) == dict.fromkeys(users, 1)  # each user built once in all
    for report in (one, two):  # both print the whole build: every worker's users
        assert report["job"] == "profile-build"
        assert sorted(report["users"]) == users and report["built"] == len(users)
        assert report["llm_calls"] == len(users) and report["failed"] == {}
        assert sorted(report["built_by"]) == users
        assert sum(w["built"] for w in report["workers"].values()) == len(users)
    assert one["built_by"] == two["built_by"]
    machines = {w.rsplit(":", 1)[0] for w in one["built_by"].values()}
    assert machines == {"machine-a", "machine-b"}, one["workers"]


def test_a_joiner_with_other_settings_is_refused(postgres_url: str) -> None:
    seed(postgres_url, ["a", "b"])
    with open_memory(postgres_url) as memory, open_memory(postgres_url) as other:
        job = memory.enqueue_build(["a"], strategy="llm")
        with pytest.raises(BuildJobError, match=r"strategy 'llm', not 'hybrid'.*another job"):
            other.enqueue_build(["b"], strategy="hybrid")
        assert isinstance(BuildJobError("x"), InvalidArgumentError)  # exit 2 in the CLI
        joined = other.enqueue_build(["b"])  # no settings: it takes the running build's
        assert (joined.run, joined.started, joined.users) == (job.run, False, 2)
        assert joined.settings.strategy == "llm"
        report = memory.build_job_report(wait=False)
        assert report.pending == ["a", "b"] and not report.builds
        memory.forget("b")  # forgetting a user removes it from the build too
        assert memory.build_job_report(wait=False).pending == ["a"]
        with pytest.raises(BuildJobError, match="no build job 'other'"):
            memory.build_job_report("other")


def test_a_version_1_database_is_upgraded_and_keeps_everything(postgres_url: str) -> None:
    seed(postgres_url, ["alice", "bob"])
    with open_memory(postgres_url) as memory:
        memory.refresh(strategy="extractive")
        before = {u: (memory.items(u), memory.profile_versions(u)) for u in memory.users()}
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as version 1 left it
        conn.execute("DROP TABLE stepback_profile.build_tasks, stepback_profile.build_runs")
        conn.execute("UPDATE stepback_profile.store_info SET schema_version = 1")
    with open_memory(postgres_url) as memory:
        assert {u: (memory.items(u), memory.profile_versions(u)) for u in memory.users()} == (
            before
        )
        assert memory.supports_build_jobs
        memory.run_build_worker(memory.enqueue_build(strategy="extractive"))
        assert memory.build_job_report().count("unchanged") == 2
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SELECT schema_version FROM stepback_profile.store_info")
        assert version.fetchone() == (SCHEMA_VERSION,)
        conn.execute("UPDATE stepback_profile.store_info SET schema_version = %s", (3,))
    with pytest.raises(StoreError, match=r"schema version 3.*upgrades version 1"):
        PostgresProfileStore(postgres_url)
