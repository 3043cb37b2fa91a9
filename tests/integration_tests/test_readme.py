"""The README's quick start runs as written, with the embedded model, in a fresh folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, python_blocks

pytestmark = pytest.mark.slow


def test_the_quick_start_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the quick start writes ./profiles
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md quick start", "exec"), namespace)
    title = capsys.readouterr().out.strip()
    assert title and "\n" not in title  # one generated title line
    memory = namespace["memory"]
    assert memory.users() == ["alice", "bob"]
    assert all(memory.get_profile(user) is not None for user in ("alice", "bob"))
    assert (tmp_path / "profiles" / "store.sqlite3").exists()
