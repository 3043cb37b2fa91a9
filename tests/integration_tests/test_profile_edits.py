"""Profiles belong to the user: hand edits survive refreshes of every strategy, set_profile
keeps what was measured, and what a caller passes wins over what the store remembers."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_stepback_profile import (
    InvalidArgumentError,
    MiniLMEmbeddings,
    ProfileDraft,
    ProfileMemory,
)
from tests.unit_tests.test_distill import ScriptedChat

pytestmark = pytest.mark.slow

PAPERS = [
    {
        "id": f"p{i}",
        "title": f"Parsing {topic} with neural networks",
        "abstract": f"We parse {topic}.",
    }
    for i, topic in enumerate(["Chinese", "tweets", "speech", "legal text"])
]
LATER = [
    {
        "id": "p9",
        "title": "Machine translation of low-resource languages",
        "abstract": "We translate.",
    }
]
EDIT = ProfileDraft(summary="Writes about parsing; prefers short titles.", interests=["parsing"])


@pytest.fixture
def memory(tmp_path: Path, embeddings: MiniLMEmbeddings) -> ProfileMemory:
    memory = ProfileMemory(tmp_path / "store", embeddings=embeddings, task="scholarly_title")
    memory.add("ann", PAPERS)
    return memory


@pytest.mark.parametrize("strategy", ["extractive", "hybrid", "llm"])
def test_hand_edits_survive_a_refresh_with_new_items(memory: ProfileMemory, strategy: str) -> None:
    llm = None if strategy == "extractive" else ScriptedChat()
    memory.refresh(llm=llm, strategy=strategy)
    built = memory.get_profile("ann")
    assert built is not None
    edited = memory.set_profile("ann", EDIT)
    assert edited.edited_fields == ["interests", "summary"]
    assert edited.stats == built.stats and edited.stats["median_words"]  # measured, kept
    assert edited.strategy == built.strategy and edited.keywords == built.keywords
    assert edited.support and "parsing" in edited.support

    memory.add("ann", LATER)
    report = memory.refresh(llm=llm, strategy=strategy)
    after = memory.get_profile("ann")
    assert after is not None and report.builds["ann"].mode in ("built", "updated")
    assert (after.summary, after.interests) == (EDIT.summary, EDIT.interests)
    assert after.edited and after.edited_fields == ["interests", "summary"]
    assert "p9" in after.item_ids and after.version == edited.version + 1
    assert after.strategy == strategy
    # and the usage.md sequence: an edited profile renders and has its measured length
    assert after.typical_words and "prefers short titles" in after.render(supported_only=False)

    again = memory.refresh(llm=llm, strategy=strategy, overwrite_edits=True)
    assert again.builds["ann"].mode == "built"
    overwritten = memory.get_profile("ann")
    assert overwritten is not None and overwritten.summary != EDIT.summary
    assert not overwritten.edited and overwritten.edited_fields == []


def test_an_edited_profile_is_rebuilt_for_another_strategy(memory: ProfileMemory) -> None:
    memory.refresh(llm=ScriptedChat(), strategy="llm")
    memory.set_profile("ann", EDIT)
    report = memory.refresh(strategy="extractive")
    assert report.builds["ann"].mode == "built"
    profile = memory.get_profile("ann")
    assert profile is not None and profile.strategy == "extractive"
    assert profile.summary == EDIT.summary  # the edit is kept
    assert memory.refresh(strategy="extractive").builds["ann"].mode == "unchanged"


def test_an_explicit_model_wins_over_the_remembered_strategy(memory: ProfileMemory) -> None:
    memory.refresh(strategy="extractive")
    llm = ScriptedChat()
    report = memory.refresh(llm=llm)
    assert report.llm_calls > 0 and llm.prompts
    profile = memory.get_profile("ann")
    assert profile is not None and profile.strategy == "llm"


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        ({}, "sets some of interests"),
        ({"summery": "typo"}, "unknown: \\['summery'\\]"),
        ("just text", "must be a ProfileDraft or a dict"),
        ({"interests": 5}, "invalid profile edit"),
    ],
)
def test_a_bad_edit_is_refused_and_stores_nothing(
    memory: ProfileMemory, draft: object, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        memory.set_profile("ann", draft)  # type: ignore[arg-type]
    assert memory.profile_versions("ann") == []


def test_a_dict_edit_changes_only_its_fields(memory: ProfileMemory) -> None:
    memory.refresh(strategy="extractive")
    before = memory.get_profile("ann")
    assert before is not None
    after = memory.set_profile("ann", {"summary": "Only this changes."})
    assert after.summary == "Only this changes." and after.interests == before.interests
    replaced = memory.set_profile("ann", ProfileDraft(summary="All new."), replace=True)
    assert replaced.interests == [] and replaced.edited_fields == sorted(ProfileDraft.model_fields)


def test_profile_size_is_bounded_with_a_visible_mark(memory: ProfileMemory) -> None:
    from langchain_stepback_profile.profile import CUT_MARK, MAX_SUMMARY_CHARS, MAX_TERMS

    huge = ProfileDraft.model_validate(
        {
            "interests": [f"topic {i}" for i in range(500)],
            "keywords": ["word " * 10_000],
            "style": {"tone": "dry " * 10_000},
            "summary": "A sentence about parsing. " * 200_000,  # about 5 MB
        }
    )
    assert len(huge.interests) == MAX_TERMS
    assert len(huge.summary) <= MAX_SUMMARY_CHARS and huge.summary.endswith(CUT_MARK)
    assert huge.keywords[0].endswith(CUT_MARK) and huge.style.tone.endswith(CUT_MARK)
    stored = memory.set_profile("ann", huge)
    assert len(stored.model_dump_json()) < 20_000
    # an extractive profile never copies a huge item whole into every prompt
    memory.add("ann", [{"id": "huge", "title": "Parsing " * 200_000, "abstract": "x " * 10}])
    memory.refresh(strategy="extractive", overwrite_edits=True)
    profile = memory.get_profile("ann")
    assert profile is not None and len(profile.render()) < 20_000


def test_profiles_export_import_round_trip_and_roll_back(
    memory: ProfileMemory, tmp_path: Path, embeddings: MiniLMEmbeddings
) -> None:
    import json

    memory.refresh(strategy="extractive")
    memory.set_profile("ann", EDIT)
    data = json.loads(json.dumps(memory.export_profiles()))  # it is plain JSON
    assert [v["version"] for v in data["profiles"]["ann"]] == [1, 2]

    other = ProfileMemory(tmp_path / "other", embeddings=embeddings)
    assert other.import_profiles(data) == {"ann": 2}
    assert [p.model_dump() for p in other.profile_versions("ann")] == [
        p.model_dump() for p in memory.profile_versions("ann")
    ]
    # into a store that has profiles, the exported latest comes on top as a new version
    assert memory.import_profiles(data) == {"ann": 1}
    latest = memory.get_profile("ann")
    assert latest is not None and latest.version == 3 and latest.summary == EDIT.summary

    back = memory.rollback_profile("ann", 1)
    assert back.version == 4 and back.summary == memory.profile_versions("ann")[0].summary
    assert not back.edited
    with pytest.raises(InvalidArgumentError, match=r"no profile version 9.*\[1, 2, 3, 4\]"):
        memory.rollback_profile("ann", 9)
    with pytest.raises(InvalidArgumentError, match="not a profile export"):
        memory.import_profiles({"profiles": {}})
    bad = {**data, "profiles": {"bob": data["profiles"]["ann"]}}
    with pytest.raises(InvalidArgumentError, match="names another user"):
        other.import_profiles(bad)
    other.close()
