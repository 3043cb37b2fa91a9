"""Four real processes on one PostgreSQL database, as four machines would be: adds to their own,
a shared and the very same items at once, a forget in one seen by all, refreshes of one user
from several processes. Bounded: about half a minute on 2 cores."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from .pg_workers import open_memory, run_machines

pytestmark = pytest.mark.slow

PROCS, ROUNDS = 4, 25


def test_four_processes_on_one_database(postgres_url: str, tmp_path: Path) -> None:
    found, _ = run_machines(postgres_url, tmp_path / "logs", procs=PROCS, rounds=ROUNDS)
    assert sum(f["checked"] for f in found) > 1000  # the visibility checks ran
    assert [f["errors"] for f in found] == [[]] * PROCS
    assert [f["stale"] for f in found] == [[]] * PROCS
    assert [f["leaks"] for f in found] == [0] * PROCS
    assert [f["forget_seen_late"] for f in found] == [0] * PROCS
    assert [f["refresh_failures"] for f in found] == [0] * PROCS
    with open_memory(postgres_url) as memory:
        shared = [i.id for i in memory.items("shared")]
        expected = {"seed"} | {f"s{me}-{n}" for me in range(PROCS) for n in range(ROUNDS)}
        assert sorted(shared) == sorted(expected)  # no lost item, none twice
        assert sorted(i.id for i in memory.items("same")) == sorted(f"d{n}" for n in range(ROUNDS))
        for f in found:  # each item kept the vector id it was given
            stored, _ = memory.store.lookup(f"p{f['me']}", list(f["vids"]), [])
            assert {i: s.vid for i, s in stored.items()} == f["vids"]
        vids = [v for user in memory.users() for v in memory.store.vids(user)]
        assert len(vids) == len(set(vids))
        assert not memory.has_user("doomed")
        # refreshes never interleave: versions are unique and each covers the one before
        versions = memory.profile_versions("shared")
        assert [p.version for p in versions] == list(range(1, len(versions) + 1))
        for older, newer in itertools.pairwise(versions):
            assert set(older.item_ids) <= set(newer.item_ids)
        assert memory.check_integrity() == dict.fromkeys(memory.users(), "ok")
