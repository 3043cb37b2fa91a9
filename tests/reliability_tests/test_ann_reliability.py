"""The several-process, crash and damage checks of test_processes_and_crashes.py and
test_faults.py on stores whose indexes are HNSW (the store remembers the kind, so every worker
opens it as HNSW)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile.index import HistoryIndex
from langchain_stepback_profile.memory import ProfileMemory

from .workers import DIM, damage_trials, iter_kills, open_memory, run_churn

pytestmark = pytest.mark.slow


def make_hnsw_store(path: Path) -> None:
    ProfileMemory(path, embeddings=DeterministicFakeEmbedding(size=DIM), index="hnsw").close()


def test_hnsw_writers_killed_at_random_points_lose_and_resurrect_nothing(tmp_path: Path) -> None:
    store, journal = tmp_path / "store", tmp_path / "journal.jsonl"
    make_hnsw_store(store)
    users = ["alice", "bob", "a/b"]
    kills = 0
    for findings in iter_kills(store, journal, kills=20, seed=11, users=users):
        kills += 1
        assert findings["lost"] == {}, findings
        assert findings["resurrected"] == {}, findings
        assert findings["leftovers_after_open"] == [], findings
        assert findings["index_mismatch"] == [], findings
    assert kills == 20
    with open_memory(store) as memory:
        assert memory.store.get_meta("index_kind") == "hnsw"
        index = HistoryIndex(store / "indexes", DIM)
        for user in memory.users():
            if memory.store.vids(user):
                assert index.kind_of(user) == "hnsw"
            vids = np.sort(np.asarray(memory.store.vids(user)))
            assert np.array_equal(np.sort(index.ids(user)), vids)


def test_random_damage_to_hnsw_store_files_gives_right_answers_or_package_errors(
    tmp_path: Path,
) -> None:
    make_hnsw_store(tmp_path / "pristine")
    outcomes = Counter(outcome for _, outcome in damage_trials(tmp_path, 200, seed=5))
    assert outcomes["wrong"] == 0 and outcomes["raw error"] == 0, outcomes
    assert outcomes["right"] > 0 and outcomes["package error"] > 0, outcomes


def test_four_processes_on_an_hnsw_store_see_each_others_writes_and_forgets(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    make_hnsw_store(store)
    found, _ = run_churn(store, tmp_path / "logs", procs=4, rounds=15)
    assert sum(r["checked"] for r in found) > 300  # the checks ran
    for key in ("stale", "leaks", "refresh_errors", "other_errors"):
        assert [r[key] for r in found] == [0] * 4, found
    with open_memory(store) as memory:
        assert [i.id for i in memory.items("doomed")] == ["again"]
        assert memory.check_integrity() == dict.fromkeys(memory.users(), "ok")
        assert HistoryIndex(store / "indexes", DIM).kind_of("shared") == "hnsw"
