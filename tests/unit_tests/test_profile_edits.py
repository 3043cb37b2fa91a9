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

from .test_distill import ScriptedChat

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
