"""docs/llamaindex.md runs as written: every ``python`` block, in order, in one namespace, with
the embedded model and a local llama.cpp server where the page points at 127.0.0.1:8000."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from langchain_stepback_profile import ProfileMemory
from tests.conftest import python_blocks

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "llamaindex.md"
SERVER_IN_DOC = "http://127.0.0.1:8000/v1"


async def test_the_five_minute_guide_runs_as_written(
    server_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # the guide's store is ./profiles
    text = DOC.read_text()
    assert SERVER_IN_DOC in text
    blocks = python_blocks(text)
    assert len(blocks) == 7
    namespace: dict[str, Any] = {}
    for number, block in enumerate(blocks, 1):
        source = block.replace(SERVER_IN_DOC, server_url)
        code = compile(
            source,
            f"{DOC.name}, python block {number}",
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        )
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result
    printed = capsys.readouterr().out

    profiles: ProfileMemory = namespace["profiles"]
    try:
        assert str(namespace["response"]).strip()
        alice = profiles.get_profile("alice")
        assert alice is not None and alice.model.startswith("llama-cpp-local:")
        assert alice.version == 2  # rewritten after the recorded message
        assert profiles.items("alice")[-1].text == "Speech translation without transcripts."
        assert set(alice.item_ids) == {i.id for i in profiles.items("alice")}
        assert [i.text for i in profiles.items("bob")] == [
            "Slow-cooked beef stew with red wine.",
            "Sourdough: feeding the starter.",
        ]
        assert profiles.get_profile("bob").model == "llamaindex:SmolLM2-135M-Instruct"
        assert "Profiles of the authors" in printed and "Author 1 (alice)" in printed
        assert "profile alice None\nprofile bob None\nhistory alice" in printed
        assert printed.rstrip().endswith("0")
    finally:
        profiles.close()
