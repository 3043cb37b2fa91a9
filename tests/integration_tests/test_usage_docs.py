"""docs/usage.md runs as written where it stands alone: the memory's first example and the
custom-schema example, with the default embeddings and the embedded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, python_blocks

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "usage.md"


def test_the_standalone_examples_of_the_usage_page_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write ./profiles and ./customers
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) == 2
    namespace: dict[str, Any] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{PAGE.name} block {number}", "exec"), namespace)

    assert namespace["memory"].users() == []  # the first example ends by forgetting alice
    customer = namespace["customer"]
    assert type(customer).__name__ == "CustomerProfile"
    profile = namespace["support"].get_profile("cust-42")
    assert profile.schema_name == "CustomerProfile" and profile.edited_fields == ["constraints"]
    printed = capsys.readouterr().out
    assert "Constraints: no calls; tight budget" in printed
    assert (tmp_path / "customers" / "store.sqlite3").exists()
