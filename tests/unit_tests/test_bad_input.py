"""Wrong types and look-alike input at the public entry points give the package's errors,
naming the fix, and write nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile import (
    InvalidArgumentError,
    InvalidItemError,
    ProfileMemory,
    StepBackProfileError,
    StepBackProfileRetriever,
    UnknownUserError,
)


@pytest.fixture
def memory(tmp_path: Path) -> ProfileMemory:
    memory = ProfileMemory(tmp_path / "store", embeddings=DeterministicFakeEmbedding(size=8))
    memory.add("alice", ["hello world", "more text"])
    memory.add("bob", ["other words"])
    return memory


CASES: dict[str, tuple[Callable[[ProfileMemory], Any], type[Exception], str]] = {
    "add None": (lambda m: m.add("u", None), InvalidItemError, "got NoneType"),
    "add a number": (lambda m: m.add("u", 5), InvalidItemError, "a list of them, got int"),
    "add bytes": (lambda m: m.add("u", b"x"), InvalidItemError, "got bytes"),
    "metadata not JSON": (
        lambda m: m.add("u", [{"text": "x", "metadata": {"a": object()}}]),
        InvalidItemError,
        "metadata must hold JSON values",
    ),
    "llm as a string": (
        lambda m: m.refresh(llm="gpt-4o"),
        InvalidArgumentError,
        "llm must be a LangChain chat model",
    ),
    "user ids as a number": (lambda m: m.refresh(5), InvalidArgumentError, "got int"),
    "remove None": (lambda m: m.remove("alice", None), InvalidArgumentError, "item_ids must"),
    "wrong case": (lambda m: m.search("Alice", "x"), UnknownUserError, "did you mean 'alice'"),
    "ids in one string": (
        lambda m: m.search_many("alice,bob", "x"),
        UnknownUserError,
        r"several users in one string: pass a list, \['alice', 'bob'\]",
    ),
    "unknown on_error": (
        lambda m: m.refresh(strategy="extractive", on_error="ignore"),
        InvalidArgumentError,
        "on_error must be",
    ),
    "no concurrency": (
        lambda m: asyncio.run(m.arefresh(max_concurrency=0, strategy="extractive")),
        InvalidArgumentError,
        "positive integer",
    ),
    "retriever k=0": (
        lambda m: StepBackProfileRetriever(memory=m, k=0),
        InvalidArgumentError,
        "k: Input should be greater than 0",
    ),
    "retriever memory missing": (
        lambda m: StepBackProfileRetriever(k=2),
        InvalidArgumentError,
        "memory: Field required",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_the_package_error_and_writes_nothing(
    memory: ProfileMemory, case: str
) -> None:
    call, error, message = CASES[case]
    before = {u: [i.id for i in memory.items(u)] for u in memory.users()}
    with pytest.raises(error, match=message) as raised:
        call(memory)
    assert isinstance(raised.value, StepBackProfileError)
    assert {u: [i.id for i in memory.items(u)] for u in memory.users()} == before
    assert all(memory.get_profile(u) is None for u in memory.users())


def test_an_unknown_task_is_refused_before_the_store_remembers_it(tmp_path: Path) -> None:
    embeddings = DeterministicFakeEmbedding(size=8)
    with pytest.raises(InvalidArgumentError, match="unknown task 'scholarly_titel'"):
        ProfileMemory(tmp_path / "s", embeddings=embeddings, task="scholarly_titel")
    with ProfileMemory(tmp_path / "s", embeddings=embeddings) as memory:
        assert memory.task is None


def test_a_retriever_given_one_user_as_a_string_takes_it_as_one_user(
    memory: ProfileMemory,
) -> None:
    retriever = StepBackProfileRetriever(memory=memory, user_ids="alice", include_profiles=False)
    assert {d.metadata["user_id"] for d in retriever.invoke("hello")} == {"alice"}
    with pytest.raises(UnknownUserError, match="several users in one string"):
        StepBackProfileRetriever(memory=memory, user_ids="alice,bob").invoke("hello")


def test_every_public_operation_has_an_async_twin_that_agrees(memory: ProfileMemory) -> None:
    public = {
        name
        for name in dir(ProfileMemory)
        if not name.startswith(("_", "a")) and callable(getattr(ProfileMemory, name))
    }
    public -= {"close", "profiler"}  # no I/O of their own
    missing = sorted(name for name in public if not hasattr(ProfileMemory, f"a{name}"))
    assert missing == []

    async def scenario() -> None:
        assert await memory.ausers() == memory.users()
        assert await memory.aknown_users(["bob", "nobody"]) == ["bob"]
        await memory.aadd_histories({"carol": ["a note"]})
        assert [i.text for i in await memory.aitems("carol")] == ["a note"]
        profile = await memory.aset_profile("carol", {"summary": "Carol."})
        assert (await memory.aget_profile("carol")) == profile
        assert await memory.aremove("carol", [profile.item_ids[0]]) == 1
        exported = await memory.aexport_profiles(["carol"])
        assert await memory.aimport_profiles(exported) == {"carol": 1}
        assert (await memory.arollback_profile("carol", 1)).version == 3
        assert [p.version for p in await memory.aprofile_versions("carol")] == [1, 2, 3]
        assert (await memory.acheck_integrity())["alice"] == "ok"
        assert (await memory.aforget("carol"))["profile_versions"] == 3
        assert not await memory.ahas_user("carol")

    asyncio.run(scenario())
