"""Faults that must stay contained: forgotten text left on disk, emptied or damaged files,
concurrent refreshes in one process, a user whose profile never parses."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_stepback_profile import ProfileMemory, StoreError
from langchain_stepback_profile.errors import (
    ProfileBuildError,
    ProfileGenerationError,
)

from .workers import damage_trials, load_store, open_memory, run_load, text_of


def distinctive(user: str, n: int) -> list[str]:
    return [f"zq{user}secret{k:03d}xw and its words" for k in range(n)]


def test_forget_leaves_no_text_of_the_user_in_any_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    memory = open_memory(store)
    secrets = distinctive("gone", 50)
    memory.add("gone", secrets)
    memory.add("kept", distinctive("kept", 5))
    memory.refresh()
    memory.forget("gone")  # files are read while the store is still open
    found = [
        (path.name, secret)
        for path in store.rglob("*")
        if path.is_file()
        for secret in secrets
        if secret[:16].encode() in path.read_bytes()
    ]
    assert found == []
    assert memory.users() == ["kept"]
    memory.close()


def test_secure_delete_is_set_by_the_store_itself(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "store")
    assert memory.store._conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    memory.close()


def test_an_emptied_database_beside_index_files_is_an_error_not_an_empty_store(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    with open_memory(store) as memory:
        memory.add("alice", ["one thing", "another thing"])
    for suffix in ("", "-wal", "-shm"):
        path = store / f"store.sqlite3{suffix}"
        if path.exists():
            path.write_bytes(b"")
    with pytest.raises(StoreError, match="holds index files but its database is empty"):
        open_memory(store)


def test_concurrent_refreshes_in_one_process_all_succeed(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "store")
    memory.add("alice", [text_of("alice", str(i)) for i in range(6)])

    def refresh(_: int) -> str:
        report = memory.refresh(["alice"])
        return report.builds["alice"].mode

    with ThreadPoolExecutor(max_workers=6) as pool:
        modes = list(pool.map(refresh, range(12)))
    assert modes.count("built") == 1 and modes.count("unchanged") == 11
    assert [p.version for p in memory.profile_versions("alice")] == [1]
    memory.close()


@pytest.mark.parametrize("face", ["sync", "async"])
def test_one_user_whose_profile_never_parses_blocks_nobody(tmp_path: Path, face: str) -> None:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage

    embeddings = open_memory(tmp_path / "e").embeddings
    memory = ProfileMemory(tmp_path / "store", embeddings=embeddings, profile_strategy="llm")
    for user in ("ann", "bad", "cy"):
        memory.add(user, [f"{user} writes about {user}-things", f"more of {user}'s writing"])

    class PerUser(FakeMessagesListChatModel):
        """Answers a valid profile unless the prompt is about the user 'bad'."""

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
            from langchain_core.outputs import ChatGeneration, ChatResult

            prompt = " ".join(str(m.content) for m in messages)
            text = (
                "this is not a profile"
                if "bad writes" in prompt or "bad's" in prompt
                else '{"interests": ["t"], "keywords": ["k"], "summary": "Writes."}'
            )
            return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    llm = PerUser(responses=[AIMessage("unused")])
    if face == "sync":
        with pytest.raises(ProfileBuildError, match=r"1 of 3 profiles failed.*'bad'") as err:
            memory.refresh(llm=llm)
        report = err.value.report
    else:
        report = asyncio.run(memory.arefresh(llm=llm, on_error="report"))
    assert sorted(report.builds) == ["ann", "cy"]
    assert list(report.failures) == ["bad"]
    assert "ProfileGenerationError" in report.failures["bad"]
    assert memory.get_profile("ann") is not None and memory.get_profile("cy") is not None
    assert memory.get_profile("bad") is None
    # asked for alone, the user's own error is raised
    with pytest.raises(ProfileGenerationError):
        memory.refresh(["bad"], llm=llm)
    memory.close()


@pytest.mark.slow
def test_random_damage_to_store_files_gives_right_answers_or_package_errors(
    tmp_path: Path,
) -> None:
    outcomes = Counter(outcome for _, outcome in damage_trials(tmp_path, 500, seed=3))
    assert outcomes["wrong"] == 0 and outcomes["raw error"] == 0, outcomes
    assert outcomes["right"] > 0 and outcomes["package error"] > 0, outcomes
    assert sum(outcomes.values()) == 500


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_refresh_timeout_bounds_each_user_and_keeps_the_others(tmp_path: Path, face: str) -> None:
    import threading
    import time

    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from langchain_stepback_profile.errors import ProfileTimeoutError

    answered = threading.Event()  # set when a slow answer finally comes

    class SlowFor(FakeMessagesListChatModel):
        """Answers at once, except for prompts about 'slow', which take 30 s."""

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
            prompt = " ".join(str(m.content) for m in messages)
            if "slow writes" in prompt:
                time.sleep(30)
                answered.set()
            text = '{"interests": ["t"], "keywords": ["k"], "summary": "Writes."}'
            return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
            prompt = " ".join(str(m.content) for m in messages)
            if "slow writes" in prompt:
                await asyncio.sleep(30)
                answered.set()
            return self._generate(messages)

    memory = ProfileMemory(
        tmp_path / "store", embeddings=open_memory(tmp_path / "e").embeddings,
        profile_strategy="llm",
    )  # fmt: skip
    for user in ("fast", "slow"):
        memory.add(user, [f"{user} writes about {user} things", f"more by {user}"])
    llm = SlowFor(responses=[AIMessage("unused")])
    if face == "sync":
        report = memory.refresh(llm=llm, timeout=1.5, on_error="report")
    else:
        report = asyncio.run(memory.arefresh(llm=llm, timeout=1.5, on_error="report"))
    assert not answered.is_set()  # the refresh returned without waiting for the slow answer
    assert list(report.builds) == ["fast"] and list(report.failures) == ["slow"]
    assert "not built within 1.5 s" in report.failures["slow"]
    assert isinstance(report.errors["slow"], ProfileTimeoutError)
    assert memory.get_profile("slow") is None and memory.get_profile("fast") is not None


def test_concurrent_async_retrieval_over_many_users_has_no_error_and_no_leak(
    tmp_path: Path,
) -> None:
    users = load_store(tmp_path / "store", users=300, items_each=5)
    found = asyncio.run(run_load(tmp_path / "store", users, concurrency=50, seconds=3))
    assert found["calls"] > 50, found  # the clients ran
    assert found["errors"] == 0, found
    assert found["cross_user_results"] == 0, found
