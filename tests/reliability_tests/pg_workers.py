"""Work done in child processes by the PostgreSQL reliability tests: several processes (standing
in for machines) on one database, each with its own ProfileMemory and connection pool.

Children come from a forkserver that has imported this module once. They use a deterministic
hash embedder: what is tested is the storage (transactions, locks, vector ids), not the model.
Each finished write is journaled (one fsynced JSON line) after the call returned, so a line is
a promise every other process must see kept at its next call.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile.errors import StepBackProfileError, UnknownUserError
from langchain_stepback_profile.memory import ProfileMemory

from .workers import DIM, Journal, expected_state, owned_by, read_journal, text_of


def open_memory(url: str) -> ProfileMemory:
    return ProfileMemory(
        url, embeddings=DeterministicFakeEmbedding(size=DIM), profile_strategy="extractive"
    )


def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def machine(url: str, me: int, rounds: int, log_dir: str, results: multiprocessing.Queue) -> None:
    """One process: its own user, a shared user, the same items as every other process for the
    user ``same``; checks what the others journaled, refreshes the shared user now and then."""
    memory = open_memory(url)
    folder = Path(log_dir)
    log = Journal(folder / f"{me}.jsonl")
    rng = random.Random(me)
    found: dict[str, Any] = {"me": me, "stale": [], "leaks": 0, "checked": 0, "errors": []}
    found.update(forget_seen_late=0, refresh_failures=0, vids={})
    for number in range(rounds):
        others = sorted(
            (e for p in folder.glob("*.jsonl") if p.stem != str(me) for e in read_journal(p)),
            key=lambda e: e["at"],
        )
        for user, ids in expected_state(others).items():
            try:
                have = {i.id for i in memory.items(user)}
            except UnknownUserError:
                have = set()
            if ids - have:
                found["stale"].append(f"round {number}: {user} lacks {sorted(ids - have)[:3]}")
            found["checked"] += len(ids)
            probe = rng.choice(sorted(ids))
            hits = memory.search(user, text_of(user, probe), k=3)
            found["leaks"] += sum(not owned_by(h.item.text, user) for h in hits)
            if not hits or hits[0].item.id != probe:
                found["stale"].append(f"round {number}: search {user}/{probe} gave {hits[:1]}")
        if any(e["op"] == "forget" for e in others) and memory.has_user("doomed"):
            found["forget_seen_late"] += 1
        try:
            own, item = f"p{me}", f"p{me}-{number}"
            memory.add(own, [{"id": item, "text": text_of(own, item)}])
            log.write(op="add", user=own, ids=[item])
            shared = f"s{me}-{number}"
            memory.add("shared", [{"id": shared, "text": text_of("shared", shared)}])
            log.write(op="add", user="shared", ids=[shared])
            same = f"d{number}"  # every process adds this very item at about the same time
            assert memory.add("same", [{"id": same, "text": text_of("same", same)}]) == [same]
            log.write(op="add", user="same", ids=[same])
            by_id, _ = memory.store.lookup(own, [item], [])
            found["vids"][item] = by_id[item].vid
            if me == 0 and number == rounds // 2:
                memory.forget("doomed")
                log.write(op="forget", user="doomed")
        except (StepBackProfileError, AssertionError) as err:
            found["errors"].append(f"{type(err).__name__}: {err}")
        if number % 3 == me % 3:
            report = memory.refresh(["shared"], on_error="report")
            found["refresh_failures"] += len(report.failures)
    memory.close()
    results.put(found)


def run_machines(url: str, logs: Path, procs: int, rounds: int) -> tuple[list[dict], float]:
    """Seed the database (a user to forget mid-run, a shared user) and run ``procs`` machine
    processes on it; returns what each found and the seconds the run took."""
    logs.mkdir(parents=True, exist_ok=True)
    with open_memory(url) as memory:
        memory.add(
            "doomed", [{"id": f"x{i}", "text": text_of("doomed", f"x{i}")} for i in range(20)]
        )
        memory.add("shared", [{"id": "seed", "text": text_of("shared", "seed")}])
    ctx = context()
    results = ctx.Queue()
    children = [
        ctx.Process(target=machine, args=(url, me, rounds, str(logs), results))
        for me in range(procs)
    ]
    start = time.perf_counter()
    for child in children:
        child.start()
    found = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join(timeout=60)
        if child.exitcode != 0:
            raise RuntimeError(f"a machine process exited with {child.exitcode}")
    return found, time.perf_counter() - start
