"""docs/agents.md runs as written: every python block, in order, in one namespace."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tests.conftest import ROOT, python_blocks

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "agents.md"


PAGE_URL = "postgresql://user:pass@db:5432/app"


def test_every_example_of_the_agents_page_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_url: str,
) -> None:
    page_text = PAGE.read_text()
    assert PAGE_URL in page_text
    blocks = python_blocks(page_text.replace(PAGE_URL, postgres_url))  # a server of the tests
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)  # the examples write ./profiles and ./vectors
    page = types.ModuleType("agents_docs")  # a real module, as dataclasses need one
    monkeypatch.setitem(sys.modules, page.__name__, page)
    namespace = page.__dict__
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{PAGE.name} block {number}", "exec"), namespace)

    printed = capsys.readouterr().out
    assert "Notes on speech recognition for low-resource languages." in printed  # PostgresStore
    assert "this agent run names no user: pass context=UserContext" in printed
    assert "I am starting to work on speech translation." in printed
    found = namespace["result"]["messages"][2].content  # the scripted call asking for bob's data
    assert "[Author 1] Abstract:" in found and "Translation" in found and "Protein" not in found
    assert ("stepback_profile", "users", "carol", "items") in namespace["store"].list_namespaces(
        prefix=("stepback_profile",)
    )
