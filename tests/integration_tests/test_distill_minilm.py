"""StepBackProfiler through ProfileMemory on a real store (MiniLM embeddings): caching,
incremental updates, rebuilds, strategies, async refreshes; one test lets the embedded
local model write the profiles.

Every chat model but that one is a fake that records what it was sent. The profiler tests
that need no store are in tests/unit_tests/test_distill.py."""

from __future__ import annotations

import pytest
from langchain_core.language_models import GenericFakeChatModel

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileDraft,
    ProfileGenerationError,
    ProfileMemory,
)
from tests.unit_tests.test_distill import (
    ScriptedChat,
    long_items,
    old_json,
    papers,
    small_profiler,
    words,
)

pytestmark = pytest.mark.slow


def test_refresh_on_unchanged_history_makes_no_llm_call(memory: ProfileMemory) -> None:
    llm = ScriptedChat()
    memory.add("alice", papers(0, 3))
    first = memory.refresh(llm=llm)
    assert first.llm_calls == 1
    assert first.count("built") == 1

    second = memory.refresh(llm=llm)
    assert second.llm_calls == 0
    assert second.tokens == 0
    assert second.count("unchanged") == 1
    assert len(llm.prompts) == 1
    assert memory.get_profile("alice").version == 1
    assert len(memory.profile_versions("alice")) == 1

    # adding items that are already stored changes nothing either
    memory.add("alice", papers(0, 3))
    assert memory.refresh(llm=llm).llm_calls == 0


def test_without_a_model_the_embedded_local_model_writes_profiles(memory: ProfileMemory) -> None:
    from langchain_stepback_profile.llms import LocalChatModel

    assert memory.llm is None
    profiler = memory.profiler(strategy="hybrid")
    assert isinstance(profiler.llm, LocalChatModel)
    assert profiler.model == "llama-cpp-local:SmolLM2-135M-Instruct.Q4_1"
    assert memory.profiler(llm=ScriptedChat()).llm is not profiler.llm  # a given model wins


def test_refresh_with_another_model_rebuilds(memory: ProfileMemory) -> None:
    memory.add("alice", papers(0, 2))
    memory.refresh(llm=ScriptedChat(model_name="a"))
    report = memory.refresh(llm=ScriptedChat(model_name="b"))
    assert report.count("built") == 1
    assert report.llm_calls == 1
    assert memory.get_profile("alice").version == 2


def test_refresh_after_add_updates_incrementally(memory: ProfileMemory) -> None:
    llm = ScriptedChat()
    memory.add("alice", papers(0, 3))
    memory.refresh(llm=llm)
    old = memory.get_profile("alice")
    memory.add("alice", papers(3, 1))
    llm.prompts.clear()

    report = memory.refresh(llm=llm)

    assert report.count("updated") == 1
    assert report.llm_calls == 1
    [prompt] = llm.human_prompts()
    assert old_json(old) in prompt
    assert "Abstract number 3 " in prompt
    assert "Abstract number 0 " not in prompt
    new = memory.get_profile("alice")
    assert new.version == old.version + 1
    assert set(old.item_ids) < set(new.item_ids)
    assert [p.version for p in memory.profile_versions("alice")] == [1, 2]


def test_removing_an_item_rebuilds_from_scratch(memory: ProfileMemory) -> None:
    llm = ScriptedChat()
    memory.add("alice", papers(0, 4))
    memory.refresh(llm=llm)
    old = memory.get_profile("alice")
    assert memory.remove("alice", ["p1"]) == 1
    llm.prompts.clear()

    report = memory.refresh(llm=llm)

    assert report.count("built") == 1
    assert report.llm_calls == 1
    [prompt] = llm.human_prompts()
    assert old_json(old) not in prompt
    assert "Abstract number 1 " not in prompt
    for i in (0, 2, 3):
        assert f"Abstract number {i} " in prompt
    new = memory.get_profile("alice")
    assert new.version == 2
    assert new.item_ids == ["p0", "p2", "p3"]


def test_edited_profile_is_kept_then_updated_not_replaced(memory: ProfileMemory) -> None:
    llm = ScriptedChat()
    memory.add("alice", papers(0, 2))
    memory.refresh(llm=llm)
    edited = memory.set_profile(
        "alice", ProfileDraft(interests=["hand-written interest"], summary="Edited by hand.")
    )
    assert edited.edited and edited.version == 2
    llm.prompts.clear()

    assert memory.refresh(llm=llm).llm_calls == 0
    assert memory.get_profile("alice").summary == "Edited by hand."

    memory.add("alice", papers(2, 1))
    report = memory.refresh(llm=llm)
    assert report.count("updated") == 1
    [prompt] = llm.human_prompts()
    assert "hand-written interest" in prompt
    assert "Abstract number 0 " not in prompt


def test_failed_refresh_keeps_the_stored_profile(memory: ProfileMemory) -> None:
    memory.add("alice", papers(0, 2))
    memory.refresh(llm=ScriptedChat())
    before = memory.get_profile("alice")
    memory.add("alice", papers(2, 1))

    with pytest.raises(ProfileGenerationError):
        memory.refresh(llm=ScriptedChat(script=["bad", "worse"]))

    after = memory.get_profile("alice")
    assert after.version == before.version
    assert after.model_dump() == before.model_dump()
    assert len(memory.profile_versions("alice")) == 1
    assert memory.store.get_profile("alice").model_dump() == before.model_dump()
    # a later good refresh still updates from the kept profile
    report = memory.refresh(llm=ScriptedChat())
    assert report.count("updated") == 1
    assert memory.get_profile("alice").version == before.version + 1


async def test_failed_arefresh_keeps_the_stored_profile(memory: ProfileMemory) -> None:
    memory.add("alice", papers(0, 2))
    await memory.arefresh(llm=ScriptedChat())
    before = memory.get_profile("alice")
    memory.add("alice", papers(2, 1))
    with pytest.raises(ProfileGenerationError):
        await memory.arefresh(llm=ScriptedChat(script=["bad", "worse"]))
    assert memory.get_profile("alice").model_dump() == before.model_dump()


async def test_arefresh_builds_many_users_with_bounded_concurrency(memory: ProfileMemory) -> None:
    users = [f"user{n}" for n in range(8)]
    memory.add_histories({u: papers(10 * n, 2) for n, u in enumerate(users)}, show_progress=False)
    llm = ScriptedChat(delay=0.05)

    report = await memory.arefresh(llm=llm, max_concurrency=3)

    assert list(report.builds) == users
    assert report.count("built") == 8
    assert report.llm_calls == 8
    assert 2 <= llm.max_active <= 3
    for u in users:
        assert memory.get_profile(u) is not None

    again = await memory.arefresh(llm=llm, max_concurrency=3)
    assert again.llm_calls == 0
    assert again.count("unchanged") == 8


async def test_arefresh_bound_holds_for_chunked_histories(memory: ProfileMemory) -> None:
    """max_concurrency bounds the LLM calls in flight, even when one history needs many."""
    users = ["u0", "u1", "u2"]
    memory.add_histories({u: long_items(12, length=40) for u in users}, show_progress=False)
    llm = ScriptedChat(delay=0.02)
    memory.profiler_options = {
        "context_tokens": small_profiler(llm).context_tokens,
        "max_output_tokens": 50,
        "token_counter": words,
    }

    report = await memory.arefresh(llm=llm, max_concurrency=2)

    assert report.count("built") == 3
    assert all(b.chunks > 1 for b in report.builds.values())
    assert llm.max_active <= 2


async def test_arefresh_rejects_a_bad_limit(memory: ProfileMemory) -> None:
    memory.add("alice", papers(0, 1))
    with pytest.raises(InvalidArgumentError):
        await memory.arefresh(llm=ScriptedChat(), max_concurrency=0)


def test_refresh_report_sums_tokens(memory: ProfileMemory) -> None:
    usage = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    memory.add_histories({"a": papers(0, 1), "b": papers(1, 1)}, show_progress=False)
    report = memory.refresh(llm=ScriptedChat(usage=usage))
    assert report.llm_calls == 2
    assert report.tokens == 20
    assert "2 built" in str(report)


# ----------------------------------------------------------------- profile strategies
def test_extractive_profile_needs_no_llm_and_is_fully_supported(memory: ProfileMemory) -> None:
    memory.add("alice", [p.model_dump() for p in papers(0, 6)])
    report = memory.refresh(strategy="extractive")
    assert report.llm_calls == 0
    profile = memory.get_profile("alice")
    assert profile.strategy == "extractive" and profile.model == "extractive"
    assert profile.interests or profile.keywords
    assert profile.stats["items"] == 6
    assert profile.faithfulness == 1.0
    assert memory.refresh(strategy="extractive").count("unchanged") == 1


def test_hybrid_profile_makes_one_short_call_and_marks_unsupported_claims(
    memory: ProfileMemory,
) -> None:
    memory.add("alice", [p.model_dump() for p in papers(0, 6)])
    llm = GenericFakeChatModel(
        messages=iter(["Here you go:\nThe author studies quantum gravity. They write titles."])
    )
    report = memory.refresh(llm=llm, strategy="hybrid")
    assert report.llm_calls == 1
    profile = memory.get_profile("alice")
    assert profile.strategy == "hybrid"
    assert profile.summary.startswith("The author studies quantum gravity")
    assert "The author studies quantum gravity." in profile.unsupported()
    assert profile.faithfulness is not None and profile.faithfulness < 1.0
    assert "quantum" not in profile.render(supported_only=True)
    assert "quantum" in profile.render()


def test_switching_strategy_rebuilds(memory: ProfileMemory) -> None:
    memory.add("alice", [p.model_dump() for p in papers(0, 4)])
    memory.refresh(strategy="extractive")
    report = memory.refresh(
        llm=GenericFakeChatModel(messages=iter(["Works on MT."])), strategy="hybrid"
    )
    assert report.count("built") == 1
    assert memory.get_profile("alice").version == 2
