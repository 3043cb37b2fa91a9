"""End to end with every real part: LaMP-5-like papers, MiniLM, FAISS, SQLite and the embedded
SmolLM2 model writing profiles and titles."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_stepback_profile import (
    ProfileMemory,
    StepBackProfileRetriever,
    UserProfile,
    create_personalized_chain,
)
from langchain_stepback_profile.llms import default_chat_model
from langchain_stepback_profile.usage import LLMUsage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slice_(lamp5_questions: list[dict]) -> dict[str, list[dict]]:
    """Two users, three earlier papers each, and one held-out query of the first user."""
    chosen: dict[str, dict] = {}
    for question in lamp5_questions:
        if len(question["profile"]) >= 3 and question["user"] not in chosen:
            chosen[question["user"]] = question
        if len(chosen) == 2:
            break
    return {user: q for user, q in chosen.items()}


def test_profiles_and_generation_with_the_local_model(
    tmp_path: Path, embeddings, slice_: dict[str, dict]
) -> None:
    llm = default_chat_model()
    users = list(slice_)
    with ProfileMemory(
        tmp_path / "store",
        embeddings=embeddings,
        llm=llm,
        task="scholarly_title",
        profile_strategy="hybrid",  # the model writes each summary (auto: extractive, no call)
    ) as memory:
        for user, question in slice_.items():
            memory.add(user, question["profile"][:3])

        report = memory.refresh()
        assert report.count("built") == 2
        assert report.llm_calls >= 2
        for user in users:
            profile = memory.get_profile(user)
            assert isinstance(profile, UserProfile)
            assert not profile.is_empty()
            assert profile.model == "llama-cpp-local:SmolLM2-135M-Instruct.Q4_1"
            assert sorted(profile.item_ids) == sorted(p["id"] for p in slice_[user]["profile"][:3])

        assert memory.refresh().llm_calls == 0  # unchanged histories cost nothing

        query = slice_[users[0]]["input"]
        retriever = StepBackProfileRetriever(memory=memory, k=2)
        config = {"configurable": {"user_ids": users}}
        # the default for a small model: three answers (one more if none is usable)
        chain = create_personalized_chain(llm, retriever, task="scholarly_title")
        usage = LLMUsage()
        title = chain.invoke(query, config={**config, "callbacks": [usage]})
        assert usage.calls in (3, 4)
        assert isinstance(title, str) and title.strip()
        # one greedy answer: the first of the three above, so one call when it was usable
        greedy = create_personalized_chain(
            llm, retriever, task="scholarly_title", candidates=1, return_context=True
        )
        usage = LLMUsage()
        result = greedy.invoke(query, config={**config, "callbacks": [usage]})
        assert usage.calls == len(result["control"]["verdicts"]) in (1, 2)
        assert result["output"].strip()

    # reopening the store gives the same profiles and needs no LLM call
    with ProfileMemory(tmp_path / "store", embeddings=embeddings, llm=llm) as again:
        assert again.refresh().llm_calls == 0  # the store remembers its task
        assert again.get_profile(users[0]).version == 1


def test_two_stage_group_with_the_local_model(
    tmp_path: Path, embeddings, slice_: dict[str, dict]
) -> None:
    llm = default_chat_model()
    users = list(slice_)
    with ProfileMemory(
        tmp_path / "store",
        embeddings=embeddings,
        llm=llm,
        task="scholarly_title",
        profile_strategy="extractive",
    ) as memory:
        for user, question in slice_.items():
            memory.add(user, question["profile"][:3])
        memory.refresh()
        retriever = StepBackProfileRetriever(memory=memory, k=2)
        chain = create_personalized_chain(
            llm, retriever, task="scholarly_title", group_mode="two_stage", return_context=True
        )
        usage = LLMUsage()
        result = chain.invoke(
            slice_[users[0]]["input"],
            config={"configurable": {"user_ids": users}, "callbacks": [usage]},
        )
    control = result["control"]
    assert len(control["proposals"]) == 2 and all(p.strip() for p in control["proposals"])
    assert usage.calls == control["llm_calls"] >= 3  # two proposals and the merge
    assert result["output"].strip()
    assert control["fallback"] or result["output"] not in control["proposals"][1:]
