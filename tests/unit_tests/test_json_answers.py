"""Malformed profile answers mended without a repair call: the fixture of
``malformed_answers.json`` (22 answers of the kinds small chat models give in JSON mode) and
how many of them give a usable profile with no second LLM call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.utils.json import parse_json_markdown

from langchain_stepback_profile import StepBackProfiler
from langchain_stepback_profile.distill import parse_draft
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.profile import ProfileDraft

FIXTURE = Path(__file__).with_name("malformed_answers.json")
ANSWERS = json.loads(FIXTURE.read_text(encoding="utf-8"))["answers"]
VALID = json.dumps({"interests": ["repaired"], "summary": "Answered again."})

RECOVERED = 21
"""With json-repair behind the JSON scan: every answer but the YAML one."""
RECOVERED_BY_PARSE_JSON_MARKDOWN = 6
"""langchain_core's ``parse_json_markdown`` alone (the comparison in
docs/benchmarks/text_tools.md)."""


def _recovered(draft: object, interest: str) -> bool:
    return isinstance(draft, ProfileDraft) and interest in draft.interests


def _by_parse_draft(answer: str) -> object:
    try:
        return parse_draft(answer)
    except ValueError:
        return None


def _by_parse_json_markdown(answer: str) -> object:
    try:
        value = parse_json_markdown(answer)
        return ProfileDraft.model_validate(value) if isinstance(value, dict) else None
    except Exception:  # any failure of the parser or the validation: not recovered
        return None


def test_the_fixture_has_the_failure_kinds() -> None:
    names = [row["name"] for row in ANSWERS]
    assert len(names) == len(set(names)) == 22
    for kind in ("trailing commas", "single quotes", "unquoted keys", "missing closing brace"):
        assert kind in names


def test_recovered_count_without_a_repair_call() -> None:
    recovered = [
        row["name"]
        for row in ANSWERS
        if _recovered(_by_parse_draft(row["answer"]), row["interest"])
    ]
    assert len(recovered) == RECOVERED
    assert {row["name"] for row in ANSWERS} - set(recovered) == {"YAML instead of JSON"}
    markdown_only = [
        row["name"]
        for row in ANSWERS
        if _recovered(_by_parse_json_markdown(row["answer"]), row["interest"])
    ]
    assert len(markdown_only) <= RECOVERED_BY_PARSE_JSON_MARKDOWN < RECOVERED
    assert set(markdown_only) <= set(recovered)


@pytest.mark.parametrize("row", ANSWERS, ids=[row["name"] for row in ANSWERS])
def test_a_build_makes_one_call_for_a_mendable_answer(row: dict) -> None:
    llm = GenericFakeChatModel(messages=iter([row["answer"], VALID]))
    build = StepBackProfiler(llm).build("alice", [HistoryItem(id="1", text="Parsing treebanks.")])
    if row["name"] == "YAML instead of JSON":
        assert build.llm_calls == 2 and build.profile.interests == ["repaired"]
    else:
        assert build.llm_calls == 1
        assert row["interest"] in build.profile.interests
