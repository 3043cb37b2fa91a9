"""Work done in child processes by the reliability tests and ``bench/reliability_soak.py``.

Children come from a forkserver that has imported the package once, so a child starts in
milliseconds and hundreds of them fit in a test. They use a deterministic hash embedder: what
is tested is the storage (SQLite, index files, locks, caches), not the embedding model.
Every operation a child finishes is appended to its journal (one JSON line, flushed and
fsynced) only after the call returned: a journal line is a promise the store must keep.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile.errors import StepBackProfileError, UnknownUserError
from langchain_stepback_profile.index import HistoryIndex
from langchain_stepback_profile.locking import LOCK_NAME
from langchain_stepback_profile.memory import ProfileMemory

DIM = 32


def open_memory(path: Path) -> ProfileMemory:
    return ProfileMemory(
        path, embeddings=DeterministicFakeEmbedding(size=DIM), profile_strategy="extractive"
    )


def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def text_of(user: str, item_id: str) -> str:
    """An item's text names its user: a result whose text names another user is a leak."""
    return f"{user} wrote item {item_id} about topic {zlib.crc32(item_id.encode()) % 97}"


def owned_by(text: str, user: str) -> bool:
    return text.startswith(f"{user} wrote item ")


class Journal:
    """An append-only JSON-lines file, each line on disk before the next operation starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, **event: Any) -> None:
        event["at"] = time.time_ns()  # orders the journals of several processes
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: a line cut by a kill was not promised."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return events


def expected_state(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The items each user must have after these journaled operations.

    A remove or forget is journaled as an intent before the call and as done after it; one that
    a kill interrupted may or may not have happened, so its items are no longer required.
    """
    state: dict[str, set[str]] = {}
    for event in events:
        user = event["user"]
        if event["op"] == "add":
            state.setdefault(user, set()).update(event["ids"])
        elif event["op"] in ("remove", "remove-intent"):
            state.get(user, set()).difference_update(event["ids"])
        elif event["op"] in ("forget", "forget-intent"):
            state.pop(user, None)
    return {user: ids for user, ids in state.items() if ids}


def crash_worker(path: str, journal: str, seed: int, users: list[str]) -> None:
    """Random adds, removes, refreshes and forgets until killed."""
    rng = random.Random(seed)
    memory = open_memory(Path(path))
    log = Journal(Path(journal))
    counter = 0
    while True:
        user = rng.choice(users)
        op = rng.choices(["add", "remove", "refresh", "forget"], [6, 2, 1, 1])[0]
        try:
            if op == "add":
                ids = [f"s{seed}-{counter + n}" for n in range(rng.randint(1, 4))]
                counter += len(ids)
                memory.add(user, [{"id": i, "text": text_of(user, i)} for i in ids])
                log.write(op="add", user=user, ids=ids)
            elif op == "remove":
                have = [i.id for i in memory.items(user)]
                gone = rng.sample(have, min(len(have), rng.randint(1, 2)))
                log.write(op="remove-intent", user=user, ids=gone)
                memory.remove(user, gone)
                log.write(op="remove", user=user, ids=gone)
            elif op == "refresh":
                memory.refresh([user])
            else:
                log.write(op="forget-intent", user=user)
                memory.forget(user)
                log.write(op="forget", user=user)
        except UnknownUserError:
            continue


def verify_store(path: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Open the store after a crash and check it against the journal; returns findings."""
    memory = open_memory(path)
    leftovers_before = sorted(p.name for p in (path / "indexes").glob("*.tmp"))
    status = memory.check_integrity()
    findings: dict[str, Any] = {
        "leftovers_after_open": sorted(p.name for p in (path / "indexes").glob("*.tmp")),
        "leftovers_before_open": leftovers_before,
        "repaired": sorted(u for u, s in status.items() if s == "repaired"),
        "lost": {},
        "resurrected": {},
        "index_mismatch": [],
    }
    expected = expected_state(events)
    users = set(memory.users())
    for user, ids in expected.items():
        have = {i.id for i in memory.items(user)} if user in users else set()
        if ids - have:
            findings["lost"][user] = sorted(ids - have)
    forgotten = {e["user"] for e in events if e["op"] == "forget"}
    index = HistoryIndex(path / "indexes", DIM)  # the files as written, not repaired again
    for user in forgotten | users:
        on_file = np.sort(index.ids(user))
        in_store = np.sort(np.asarray(memory.store.vids(user), dtype=np.int64))
        if not np.array_equal(on_file, in_store):
            findings["index_mismatch"].append(user)
        if user not in users and len(on_file):
            findings["resurrected"][user] = len(on_file)
    memory.close()
    return findings


def churn_worker(
    path: str, me: int, rounds: int, log_dir: str, results: multiprocessing.Queue
) -> None:
    """One of several processes on one store: writes its own and a shared user, checks that
    everything the others journaled is visible at its next call, refreshes the shared user."""
    memory = open_memory(Path(path))
    folder = Path(log_dir)
    log = Journal(folder / f"{me}.jsonl")
    rng = random.Random(me)
    leaks = refresh_errors = other_errors = checked = 0
    misses: list[str] = []
    memory.search("doomed", "load this user's index into memory", k=1)
    revived = False
    for number in range(rounds):
        others = sorted(
            (e for p in folder.glob("*.jsonl") if p.stem != str(me) for e in read_journal(p)),
            key=lambda e: e["at"],
        )
        expected = expected_state(others)
        forgotten = {e["user"] for e in others if e["op"] == "forget"}
        for user, ids in expected.items():
            try:
                have = {i.id for i in memory.items(user)}
            except UnknownUserError:
                have = set()
            if ids - have:
                misses.append(f"round {number}: {user} lacks {sorted(ids - have)[:3]}")
            checked += len(ids)
            probe = rng.choice(sorted(ids))
            hits = memory.search(user, text_of(user, probe), k=3)
            leaks += sum(1 for h in hits if h.user_id != user or not owned_by(h.item.text, user))
            if not hits or hits[0].item.id != probe:  # its own text ranks first
                misses.append(f"round {number}: {user} search for {probe} gave {hits[:1]}")
        for user in forgotten:  # what was there before the forget never comes back
            back = [i.id for i in memory.items(user)] if memory.has_user(user) else []
            if set(back) - expected.get(user, set()) - {"again"}:
                misses.append(f"round {number}: forgotten {user} has {back[:3]}")
        if me == 1 and "doomed" in forgotten and not revived:
            # this process still holds the forgotten user's vectors in memory: adding must
            # not write them back
            memory.add("doomed", [{"id": "again", "text": text_of("doomed", "again")}])
            log.write(op="add", user="doomed", ids=["again"])
            revived = True
        try:
            own = f"p{me}"
            ids = [f"{own}-{number}"]
            memory.add(own, [{"id": ids[0], "text": text_of(own, ids[0])}])
            log.write(op="add", user=own, ids=ids)
            shared = [f"s{me}-{number}"]
            memory.add("shared", [{"id": shared[0], "text": text_of("shared", shared[0])}])
            log.write(op="add", user="shared", ids=shared)
            if me == 0 and number == rounds // 2:
                memory.forget("doomed")
                log.write(op="forget", user="doomed")
        except StepBackProfileError:
            other_errors += 1
        if number % 4 == me % 4:
            report = memory.refresh(["shared"], on_error="report")
            refresh_errors += len(report.failures)
    results.put(
        {
            "me": me,
            "stale": len(misses),
            "misses": misses[:5],
            "checked": checked,
            "leaks": leaks,
            "refresh_errors": refresh_errors,
            "other_errors": other_errors,
        }
    )


def iter_kills(
    path: Path, journal: Path, kills: int, seed: int, users: list[str]
) -> Iterator[dict[str, Any]]:
    """Start a crash worker, SIGKILL it after a random short time, verify; ``kills`` times."""
    ctx = context()
    rng = random.Random(seed)
    for kill in range(kills):
        child = ctx.Process(
            target=crash_worker, args=(str(path), str(journal), seed * 1000 + kill, users)
        )
        child.start()
        child.join(timeout=rng.uniform(0.05, 0.6))
        child.kill()
        child.join()
        yield verify_store(path, read_journal(journal))


def run_churn(
    store: Path, logs: Path, procs: int, rounds: int
) -> tuple[list[dict[str, Any]], float]:
    """Seed a store (a user to forget mid-run, a shared user), run ``procs`` churn workers on
    it for ``rounds`` rounds each; returns their findings and the seconds it took."""
    logs.mkdir(parents=True, exist_ok=True)
    with open_memory(store) as memory:
        doomed = [f"d{i}" for i in range(20)]
        memory.add("doomed", [{"id": i, "text": text_of("doomed", i)} for i in doomed])
        memory.add("shared", [{"id": "seed", "text": text_of("shared", "seed")}])
    ctx = context()
    results = ctx.Queue()
    start = time.perf_counter()
    children = [
        ctx.Process(target=churn_worker, args=(str(store), me, rounds, str(logs), results))
        for me in range(procs)
    ]
    for child in children:
        child.start()
    found = [results.get(timeout=3600) for _ in children]
    for child in children:
        child.join(timeout=60)
        if child.exitcode != 0:
            raise RuntimeError(f"churn worker exited with {child.exitcode}")
    return found, time.perf_counter() - start


MUTATIONS = ("flip", "zero run", "truncate", "duplicate chunk", "random bytes")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage: a flipped bit, a zeroed run, a cut, a repeated chunk, noise."""
    kind = rng.choice(MUTATIONS)
    if not data:
        return bytes(rng.randrange(256) for _ in range(64))
    at = rng.randrange(len(data))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    if kind == "zero run":
        n = rng.randint(1, 256)
        return data[:at] + bytes(min(n, len(data) - at)) + data[at + n :]
    if kind == "truncate":
        return data[:at]
    if kind == "duplicate chunk":
        n = rng.randint(16, 512)
        return data[:at] + data[at : at + n] + data[at:]
    return data[:at] + bytes(rng.randrange(256) for _ in range(32)) + data[at + 32 :]


def damage_trials(folder: Path, trials: int, seed: int) -> Iterator[tuple[str, str]]:
    """Damage one random file of a copy of a small store per trial, then search every user
    for one of their items; yields (file kind, outcome): ``right`` (the item first, nothing of
    another user), ``wrong``, ``package error`` or ``raw error`` (an exception that is not the
    package's)."""
    users = {u: [f"i{k}" for k in range(8)] for u in ("alice", "bob", "alicex")}
    pristine = folder / "pristine"
    with open_memory(pristine) as memory:
        for user, ids in users.items():
            memory.add(user, [{"id": i, "text": text_of(user, i)} for i in ids])
        memory.refresh()
    rng = random.Random(seed)
    files = [  # every file with data (the empty lock file holds none)
        p.relative_to(pristine)
        for p in sorted(pristine.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME
    ]
    for trial in range(trials):
        case = folder / f"case{trial % 4}"
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(pristine, case)
        target = case / rng.choice(files)
        kind = "index file" if target.suffix == ".faiss" else target.name
        target.write_bytes(mutate(target.read_bytes(), rng))
        try:
            with open_memory(case) as memory:
                right = True
                for user, ids in users.items():
                    probe = rng.choice(ids)
                    hits = memory.search(user, text_of(user, probe), k=2)
                    right &= bool(hits) and hits[0].item.id == probe
                    right &= all(owned_by(h.item.text, user) for h in hits)
                    profile = memory.get_profile(user)
                    right &= profile is None or profile.user_id == user
            yield kind, "right" if right else "wrong"
        except StepBackProfileError:
            yield kind, "package error"
        except (sqlite3.Error, ValueError, UnicodeError, RuntimeError, MemoryError):
            yield kind, "raw error"


def load_store(path: Path, users: int, items_each: int) -> list[str]:
    """A store of ``users`` users with ``items_each`` items and a profile each."""
    from langchain_stepback_profile.profile import ProfileDraft

    names = [f"user{n:04d}" for n in range(users)]
    with open_memory(path) as memory:
        memory.add_histories(
            {u: [{"id": f"i{k}", "text": text_of(u, f"i{k}")} for k in range(items_each)]
             for u in names},
            show_progress=False,
        )  # fmt: skip
        for name in names:
            memory.set_profile(name, ProfileDraft(summary=f"{name} wrote item profile."))
    return names


async def run_load(
    path: Path, users: list[str], concurrency: int, seconds: float, seed: int = 0
) -> dict[str, Any]:
    """``concurrency`` clients calling the retriever's ``ainvoke`` for random groups of 1-3
    users for ``seconds``; counts errors and results of users outside the group."""
    from langchain_stepback_profile.retriever import StepBackProfileRetriever

    memory = open_memory(path)
    retriever = StepBackProfileRetriever(memory=memory, k=3)
    rng = random.Random(seed)
    latencies: list[float] = []
    errors: list[str] = []
    foreign = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal foreign
        while time.perf_counter() < deadline:
            group = rng.sample(users, rng.randint(1, 3))
            query = text_of(group[0], f"i{rng.randrange(5)}")
            start = time.perf_counter()
            try:
                docs = await retriever.ainvoke(query, user_ids=group)
            except Exception as err:  # counted, never hidden
                errors.append(f"{type(err).__name__}: {err}")
                continue
            latencies.append(time.perf_counter() - start)
            for doc in docs:
                owner = doc.metadata["user_id"]
                foreign += owner not in group or f"{owner} wrote item" not in doc.page_content

    await asyncio.gather(*(client() for _ in range(concurrency)))
    memory.close()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "users": len(users),
        "concurrency": concurrency,
        "seconds": seconds,
        "calls": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "cross_user_results": foreign,
        "p50_ms": pct(0.5) if ordered else None,
        "p99_ms": pct(0.99) if ordered else None,
    }
