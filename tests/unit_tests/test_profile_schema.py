"""Custom profile schemas and instructions: any pydantic model shapes the profile that every
LLM strategy writes; it is validated, bounded, rendered, checked against the history, cached
by a hash of schema and instructions, and edited like the built-in one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import DeterministicFakeEmbedding
from pydantic import BaseModel, Field

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileDraft,
    ProfileMemory,
    StepBackProfiler,
    StepBackProfileRetriever,
    UserProfile,
)
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.profile import CUT_MARK, MAX_TERMS

from .test_distill import ScriptedChat, ToolChat, tool_call


class Contact(BaseModel):
    channel: str = Field(default="", description="the channel they prefer")
    hours: str = Field(default="", description="when they can be reached")


class CustomerProfile(BaseModel):
    """A support agent's view of a customer."""

    preferences: list[str] = Field(default_factory=list, description="what the customer likes")
    constraints: list[str] = Field(default_factory=list, description="what they rule out")
    contact: Contact = Field(default_factory=Contact)
    summary: str = Field(default="", description="one sentence about the customer")


CHATS = [
    {"id": "c1", "text": "Please email me the invoice, I never answer phone calls."},
    {"id": "c2", "text": "Email works best; my budget for the upgrade is tight."},
    {"id": "c3", "text": "I only work mornings, so send the invoice by email before noon."},
]
INSTRUCTIONS = "Note the contact channel the customer prefers and any budget limit."


def customer_answer(**fields: Any) -> str:
    base = {
        "preferences": ["email", "invoices by email"],
        "constraints": ["no phone calls", "tight budget"],
        "contact": {"channel": "email", "hours": "mornings"},
        "summary": "A customer who wants email contact in the morning.",
    }
    return json.dumps({**base, **fields})


def open_memory(path: Path, llm: Any = None, **options: Any) -> ProfileMemory:
    return ProfileMemory(
        path, embeddings=DeterministicFakeEmbedding(size=16), llm=llm, task="generic", **options
    )


@pytest.fixture
def memory(tmp_path: Path) -> ProfileMemory:
    memory = open_memory(
        tmp_path / "store",
        ScriptedChat(script=[customer_answer()] * 3),
        profile_schema=CustomerProfile,
        instructions=INSTRUCTIONS,
    )
    memory.add("cust-1", CHATS)
    return memory


def test_every_llm_prompt_carries_the_schema_and_the_instructions(memory: ProfileMemory) -> None:
    memory.refresh(strategy="llm")
    llm = memory.llm
    assert isinstance(llm, ScriptedChat)
    prompt = llm.human_prompts()[0]
    assert INSTRUCTIONS in prompt
    assert "preferences (what the customer likes)" in prompt
    assert '"constraints": ["<what they rule out>"' in prompt  # the answer's template
    assert "interests" not in prompt  # no built-in field leaks into a custom schema


def test_a_custom_profile_is_stored_typed_rendered_and_served(memory: ProfileMemory) -> None:
    memory.refresh(strategy="llm")
    profile = memory.get_profile("cust-1")
    assert profile is not None and profile.schema_name == "CustomerProfile"
    assert profile.data is not None and profile.data["contact"]["channel"] == "email"
    assert (profile.interests, profile.keywords, profile.summary) == ([], [], "")
    typed = memory.get_typed_profile("cust-1")
    assert isinstance(typed, CustomerProfile) and typed.constraints[0] == "no phone calls"
    text = profile.render()
    assert "Preferences: email; invoices by email" in text
    assert "Contact: channel email; hours mornings" in text
    # claims are checked against the history: the chats never mention a "tight budget" term
    # being invented, but every claim gets a score
    assert set(profile.support) >= {"email", "no phone calls", "mornings"}
    assert profile.support["email"] == 1.0
    docs = StepBackProfileRetriever(memory=memory, user_ids=["cust-1"], k=1).invoke("invoice")
    assert "Preferences: email" in docs[0].page_content


def test_an_invented_claim_is_left_out_of_prompts(tmp_path: Path) -> None:
    invented = customer_answer(preferences=["email", "quantum chromodynamics"])
    memory = open_memory(
        tmp_path / "s", ScriptedChat(script=[invented]), profile_schema=CustomerProfile
    )
    memory.add("cust-1", CHATS)
    memory.refresh(strategy="llm")
    profile = memory.get_profile("cust-1")
    assert profile is not None
    assert "quantum chromodynamics" in profile.unsupported()
    assert "quantum" not in profile.render(supported_only=True)
    assert "quantum" in profile.render()


def test_the_cache_key_covers_schema_and_instructions(tmp_path: Path) -> None:
    path = tmp_path / "store"
    llm = ScriptedChat(script=[customer_answer()] * 5)
    first = open_memory(path, llm, profile_schema=CustomerProfile, instructions=INSTRUCTIONS)
    first.add("cust-1", CHATS)
    assert first.refresh(strategy="llm").llm_calls == 1
    assert first.refresh(strategy="llm").llm_calls == 0  # unchanged: reused
    first.close()
    other = open_memory(path, llm, profile_schema=CustomerProfile, instructions="Be brief.")
    report = other.refresh(strategy="llm")
    assert report.llm_calls == 1 and report.builds["cust-1"].mode == "built"
    assert "Be brief." in llm.human_prompts()[-1]


def test_builtin_schema_with_instructions_reaches_the_prompt(tmp_path: Path) -> None:
    llm = ScriptedChat()
    memory = open_memory(tmp_path / "s", llm, instructions="Mention the languages studied.")
    memory.add("ann", [{"id": "p1", "text": "Parsing Chinese with neural networks"}])
    memory.refresh(strategy="llm")
    assert "Mention the languages studied." in llm.human_prompts()[0]
    profile = memory.get_profile("ann")
    assert profile is not None and profile.data is None and profile.interests
    assert profile.prompt_version.startswith("2+")


def test_hybrid_fills_the_custom_schema_from_the_evidence_in_one_call(tmp_path: Path) -> None:
    llm = ScriptedChat(script=[customer_answer()])
    memory = open_memory(tmp_path / "s", llm, profile_schema=CustomerProfile)
    memory.add("cust-1", CHATS)
    report = memory.refresh(strategy="hybrid")
    assert report.llm_calls == 1
    assert "Recurring keywords" in llm.human_prompts()[0]
    typed = memory.get_typed_profile("cust-1")
    assert isinstance(typed, CustomerProfile) and typed.contact.hours == "mornings"


def test_tool_calling_models_get_the_custom_schema_as_the_tool() -> None:
    llm = ToolChat(script=[tool_call(json.loads(customer_answer()), name="CustomerProfile")])
    profiler = StepBackProfiler(llm, profile_schema=CustomerProfile)
    build = profiler.build("cust-1", [HistoryItem(id="c1", text=CHATS[0]["text"])])
    assert llm.bound_tools[0][0]["function"]["name"] == "CustomerProfile"
    assert build.profile.data is not None and build.profile.data["preferences"][0] == "email"
    assert build.llm_calls == 1


def test_an_answer_that_breaks_the_schema_is_repaired_once(tmp_path: Path) -> None:
    wrong = json.dumps({"preferences": "email", "contact": "by phone"})  # contact is an object
    llm = ScriptedChat(script=[wrong, customer_answer()])
    memory = open_memory(tmp_path / "s", llm, profile_schema=CustomerProfile)
    memory.add("cust-1", CHATS)
    assert memory.refresh(strategy="llm").llm_calls == 2
    assert "could not be used" in llm.human_prompts()[1]


def test_placeholders_are_dropped_and_sizes_bounded(tmp_path: Path) -> None:
    copied = customer_answer(
        preferences=["<what the customer likes>", "email", *[f"p{i}" for i in range(40)]],
        summary="word " * 1000,
    )
    memory = open_memory(
        tmp_path / "s", ScriptedChat(script=[copied]), profile_schema=CustomerProfile
    )
    memory.add("cust-1", CHATS)
    memory.refresh(strategy="llm")
    typed = memory.get_typed_profile("cust-1")
    assert isinstance(typed, CustomerProfile)
    assert typed.preferences[0] == "email" and len(typed.preferences) == MAX_TERMS
    assert typed.summary.endswith(CUT_MARK)


def test_hand_edits_of_a_custom_profile_survive_refreshes(memory: ProfileMemory) -> None:
    memory.refresh(strategy="llm")
    edited = memory.set_profile("cust-1", {"constraints": ["never call before 9"]})
    assert edited.edited_fields == ["constraints"]
    assert edited.data is not None and edited.data["preferences"] == ["email", "invoices by email"]
    assert edited.support["never call before 9"] == 1.0  # a person's word counts as supported
    memory.add("cust-1", [{"id": "c4", "text": "Chat is fine too for quick questions."}])
    memory.refresh(strategy="llm")
    after = memory.get_typed_profile("cust-1")
    assert isinstance(after, CustomerProfile) and after.constraints == ["never call before 9"]
    memory.set_profile("cust-1", CustomerProfile(summary="Prefers email."), replace=True)
    replaced = memory.get_typed_profile("cust-1")
    assert isinstance(replaced, CustomerProfile) and replaced.preferences == []


def test_edits_are_checked_against_the_schema(memory: ProfileMemory) -> None:
    memory.refresh(strategy="llm")
    with pytest.raises(InvalidArgumentError, match=r"unknown: \['interests'\]"):
        memory.set_profile("cust-1", {"interests": ["x"]})
    with pytest.raises(InvalidArgumentError, match="invalid profile edit"):
        memory.set_profile("cust-1", {"contact": "by phone"})
    with pytest.raises(InvalidArgumentError, match="CustomerProfile or a dict of its fields"):
        memory.set_profile("cust-1", ProfileDraft(summary="x"))


def test_a_store_keeps_its_schema_unless_another_is_given(memory: ProfileMemory) -> None:
    memory.refresh(strategy="llm")
    memory.close()
    reopened = open_memory(memory.path, ScriptedChat())
    with pytest.raises(InvalidArgumentError, match=r"profile_schema=CustomerProfile"):
        reopened.refresh(strategy="llm")
    with pytest.raises(InvalidArgumentError, match=r"open the memory with .*CustomerProfile"):
        reopened.set_profile("cust-1", {"summary": "x"})  # never half a profile in another shape
    text = reopened.get_profile("cust-1").render()  # readable without the class
    assert "Constraints: no phone calls" in text
    reopened.close()
    builtin = open_memory(memory.path, ScriptedChat(), profile_schema=UserProfile)
    assert builtin.refresh(strategy="llm").builds["cust-1"].mode == "built"
    rebuilt = builtin.get_profile("cust-1")
    assert rebuilt is not None and rebuilt.data is None and rebuilt.interests


def test_extractive_profiles_keep_the_builtin_fields(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "s", profile_schema=CustomerProfile)
    memory.add("cust-1", CHATS)
    memory.refresh(strategy="extractive")
    profile = memory.get_profile("cust-1")
    assert profile is not None and profile.data is None and profile.keywords


@pytest.mark.parametrize(
    ("schema", "instructions", "message"),
    [
        (dict, None, "must be a pydantic model class"),
        (type("Empty", (BaseModel,), {}), None, "has no fields"),
        (CustomerProfile, 42, "instructions must be a string"),
        (CustomerProfile, "x" * 5000, "keep them under"),
    ],
)
def test_bad_schema_arguments_are_refused_with_the_fix(
    tmp_path: Path, schema: Any, instructions: Any, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        open_memory(tmp_path / "s", profile_schema=schema, instructions=instructions)
    with pytest.raises(InvalidArgumentError, match=message):
        StepBackProfiler(ScriptedChat(), profile_schema=schema, instructions=instructions)


class RunRecorder(BaseCallbackHandler):
    """Records chain runs (name, metadata, parent) and each chat model call's parent run."""

    def __init__(self) -> None:
        self.chains: dict[UUID, tuple[str, dict[str, Any]]] = {}
        self.parents: dict[UUID, UUID | None] = {}
        self.model_parents: list[UUID | None] = []

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs) -> None:
        self.chains[run_id] = (kwargs.get("name") or "", dict(kwargs.get("metadata") or {}))
        self.parents[run_id] = parent_run_id

    def build_run_of(self, run_id: UUID | None) -> UUID | None:
        """The ``stepback_profile`` run above ``run_id``."""
        while run_id is not None and self.chains[run_id][0] != "stepback_profile":
            run_id = self.parents[run_id]
        return run_id

    def on_chat_model_start(
        self, serialized, messages, *, run_id, parent_run_id=None, **kw
    ) -> None:
        self.model_parents.append(parent_run_id)


@pytest.mark.parametrize("run_async", [False, True])
def test_refresh_config_reaches_every_build_as_one_run_per_user(
    tmp_path: Path, run_async: bool
) -> None:
    memory = open_memory(tmp_path / "s", ScriptedChat(), profile_schema=None)
    for user in ("ann", "bob"):
        memory.add(user, [{"id": "p1", "text": f"Parsing Chinese text, by {user}"}])
    recorder = RunRecorder()
    config: Any = {"callbacks": [recorder], "tags": ["nightly"], "metadata": {"team": "nlp"}}
    if run_async:
        report = asyncio.run(memory.arefresh(strategy="llm", config=config))
    else:
        report = memory.refresh(strategy="llm", config=config)
    assert report.llm_calls == 2  # the package's own usage counter still counts
    runs = {
        rid: meta for rid, (name, meta) in recorder.chains.items() if name == "stepback_profile"
    }
    assert sorted(meta["user_id"] for meta in runs.values()) == ["ann", "bob"]
    assert all(meta["team"] == "nlp" for meta in runs.values())
    assert len(recorder.model_parents) == 2
    assert {recorder.build_run_of(parent) for parent in recorder.model_parents} == set(runs)
    assert all(recorder.parents[run] is None for run in runs)  # one top-level run per user
    with pytest.raises(InvalidArgumentError, match="RunnableConfig dict"):
        memory.refresh(config=["not", "a", "config"])  # type: ignore[arg-type]
