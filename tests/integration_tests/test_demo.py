"""The demo, run for real as the README runs it: embedded models, shipped sample, offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CHATTER = re.compile(r"\b(I'm|I am|assist|Sure|Here is|this abstract|The paper)\b", re.I)


def run_demo(store: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "langchain_stepback_profile.demo", "--store", str(store)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def titles(out: str) -> dict[str, str]:
    found = dict(re.findall(r"^Title, ([^,]+(?:, in order)?),\s+\d LLM calls?: (.*)$", out, re.M))
    return {label.split(" (")[0]: title for label, title in found.items()}


def test_demo_prints_profiles_and_three_acceptable_titles_then_reuses_profiles(
    tmp_path: Path,
) -> None:
    store = tmp_path / "demo"
    first = run_demo(store)
    assert "3 profiles: 3 built" in first
    for author in ("Jiwei Li", "Dan Jurafsky", "Mirella Lapata"):
        assert f"== {author} (profile v1, hybrid;" in first
    assert first.count("Research interests / topics:") == 3
    assert first.count("similar earlier paper of") == 4

    shown = titles(first)
    assert set(shown) == {"non-personalized", "first author", "both authors, in order"}
    for label, title in shown.items():
        words = title.removesuffix(" (fallback)").split()
        assert 2 <= len(words) <= 16, (label, title)  # a title, not a paragraph
        assert not CHATTER.search(title), (label, title)
        assert "\n" not in title
    # the personalized titles keep to the authors' typical length (8-9 words, cut at 1.3x)
    for label in ("first author", "both authors, in order"):
        assert len(shown[label].split()) <= 12

    second = run_demo(store)
    assert "0 LLM calls" in second and "3 unchanged" in second
    assert titles(second) == shown  # greedy decoding, same prompts: same titles
