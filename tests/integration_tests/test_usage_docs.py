"""docs/usage.md runs as written where it stands alone: the memory's first example, the
custom-schema example, the style-gist example, the author group's writing tasks and profile
attribution, with the default embeddings and the embedded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langchain_stepback_profile.output_control import sentences
from langchain_stepback_profile.tasks import get_task
from tests.conftest import ROOT, python_blocks

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "usage.md"


def test_the_standalone_examples_of_the_usage_page_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the examples write ./profiles, ./customers and ./papers, and read ../shared/data
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    (tmp_path / "work").mkdir()
    tmp_path = tmp_path / "work"
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) == 5
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

    gists = namespace["report"].gists
    assert gists.items == 2 and gists.written + gists.failed == 2
    result = namespace["result"]
    assert result["control"]["gist_calls"] == gists.failed  # only a failed one is tried again
    assert result["messages"][0].content.count("\nStyle note: ") == sum(
        "style_gist" in d.metadata for d in result["documents"]
    )

    # the group's writing tasks: a list, and an abstract in one paragraph
    assert (tmp_path / "group" / "store.sqlite3").exists()
    points = namespace["points"]
    assert points and all(line.startswith("- ") for line in points.splitlines())
    written = namespace["written"]
    spec = get_task("abstract")
    assert written["output"] and "\n" not in written["output"]
    assert len(sentences(written["output"])) <= spec.max_sentences
    assert set(written["control"]["shown"]) <= {d.id for d in written["documents"]}

    # profile attribution: the references are what they are, the report is written
    rows = namespace["attribution"].rows
    assert rows["chance"]["metrics"]["MRR"]["value"] == pytest.approx(0.2929, abs=1e-4)
    assert 0.0 <= rows["extractive"]["metrics"]["acc@1"]["value"] <= 1.0
    assert rows["centroid"]["metrics"]["MRR"]["value"] > 0.2929  # the history knows its user
    assert (tmp_path / "attribution-PSW-10" / "report.md").exists()
