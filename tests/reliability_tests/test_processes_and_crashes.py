"""Several real processes on one store, and writers SIGKILLed at random points.

Bounded loops that run in CI in about a minute; ``bench/reliability_soak.py`` runs the same
checks longer for the figures in docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langchain_stepback_profile.index import HistoryIndex

from .workers import DIM, iter_kills, open_memory, run_churn, text_of

pytestmark = pytest.mark.slow


def test_four_processes_see_each_others_writes_and_forgets(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rounds = 30
    found, _ = run_churn(store, tmp_path / "logs", procs=4, rounds=rounds)
    assert sum(r["checked"] for r in found) > 1000  # the checks ran
    assert [r["stale"] for r in found] == [0] * 4, found
    assert [r["leaks"] for r in found] == [0] * 4, found
    assert [r["refresh_errors"] for r in found] == [0] * 4, found
    assert [r["other_errors"] for r in found] == [0] * 4, found
    with open_memory(store) as memory:
        shared = {i.id for i in memory.items("shared")}
        assert shared == {"seed"} | {f"s{me}-{n}" for me in range(4) for n in range(rounds)}
        for me in range(4):
            assert len(memory.items(f"p{me}")) == rounds
        # the forgotten user came back with the one item added after the forget, not its 20
        assert [i.id for i in memory.items("doomed")] == ["again"]
        assert memory.check_integrity() == dict.fromkeys(memory.users(), "ok")
        index = HistoryIndex(store / "indexes", DIM)
        assert index.count("doomed") == 1
        profile = memory.get_profile("shared")
        assert profile is not None
        assert len({p.version for p in memory.profile_versions("shared")}) == len(
            memory.profile_versions("shared")
        )


def test_writers_killed_at_random_points_lose_and_resurrect_nothing(tmp_path: Path) -> None:
    store, journal = tmp_path / "store", tmp_path / "journal.jsonl"
    users = ["alice", "bob", "a/b", "Ren\u00e9"]
    kills = 0
    repaired = 0
    for findings in iter_kills(store, journal, kills=40, seed=7, users=users):
        kills += 1
        assert findings["lost"] == {}, findings
        assert findings["resurrected"] == {}, findings
        assert findings["leftovers_after_open"] == [], findings
        assert findings["index_mismatch"] == [], findings
        repaired += len(findings["repaired"])
    assert kills == 40
    with open_memory(store) as memory:
        assert set(memory.users()) <= set(users)
        for user in memory.users():
            for item in memory.items(user):
                assert item.text == text_of(user, item.id)
            vids = np.sort(np.asarray(memory.store.vids(user)))
            assert np.array_equal(np.sort(HistoryIndex(store / "indexes", DIM).ids(user)), vids)
