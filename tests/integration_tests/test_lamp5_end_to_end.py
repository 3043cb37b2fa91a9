"""End to end on the LaMP-5-like data: real MiniLM, FAISS and SQLite, four real authors.

Each author's history is the profile of their query with the most earlier papers. Profiles
are written by a deterministic fake chat model (the most frequent capitalised words of the
papers it is shown), so the test does not depend on a local LLM.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from langchain_stepback_profile import (
    MiniLMEmbeddings,
    ProfileMemory,
    StepBackProfileRetriever,
    create_personalized_chain,
    get_task,
)
from langchain_stepback_profile.usage import LLMUsage

pytestmark = pytest.mark.slow

PREFIX = get_task("scholarly_title").instruction + " "
OUTPUTS = Path(__file__).resolve().parents[2].parent / "shared/data/LaMP_5_like/outputs.json"
N_USERS = 4
K = 3
_STOP = {
    "The",
    "This",
    "These",
    "That",
    "Our",
    "We",
    "In",
    "For",
    "With",
    "From",
    "And",
    "To",
    "On",
    "By",
    "As",
    "An",
    "It",
    "Its",
    "Item",
    "Title",
    "Abstract",
    "Here",
    "Below",
    "Step",
    "Focus",
    "Write",
    "Answer",
    "Describe",
    "Update",
    "Merge",
    "Partial",
    "JSON",
    "However",
    "Finally",
    "Experiments",
    "Results",
    "Moreover",
    "Furthermore",
    "Using",
    "Which",
    "When",
    "Both",
}


def capitalised(text: str) -> list[str]:
    return [w for w in re.findall(r"\b[A-Z][A-Za-z]{2,}\b", text) if w not in _STOP]


def _profile_objects(prompt: str) -> list[dict[str, Any]]:
    """Profiles quoted in a merge or update prompt (not the empty answer template)."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r'\{"interests"', prompt):
        try:
            value, _ = decoder.raw_decode(prompt, match.start())
        except json.JSONDecodeError:
            continue
        if value.get("interests") != ["..."]:
            found.append(value)
    return found


class CapitalWordsChat(BaseChatModel):
    """Deterministic profile writer: the most frequent capitalised words of the items shown,
    plus the interests of any profile quoted in the prompt (merges and updates)."""

    model_name: str = "capital-words-v1"
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "capital-words-chat"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        counts: Counter[str] = Counter()
        for quoted in _profile_objects(prompt):
            for rank, word in enumerate(quoted.get("interests", [])):
                counts[word] += 10 - rank
        start, end = prompt.find("Item "), prompt.rfind("\n\nWrite ")
        if start >= 0:
            counts.update(capitalised(prompt[start:end]))
        top = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        answer = {
            "interests": top[:5] or ["research"],
            "keywords": top[:8] or ["research"],
            "style": {"tone": "technical", "length": "short titles"},
            "summary": f"Writes about {', '.join(top[:3]) or 'research'}.",
        }
        message = AIMessage(json.dumps(answer))
        return ChatResult(generations=[ChatGeneration(message=message)])


def abstract_of(question: dict[str, Any]) -> str:
    text = question["input"]
    assert text.startswith(PREFIX)
    return text[len(PREFIX) :]


@pytest.fixture(scope="module")
def lamp(
    tmp_path_factory: pytest.TempPathFactory,
    lamp5_questions: list[dict[str, Any]],
    embeddings: MiniLMEmbeddings,
) -> Iterator[dict[str, Any]]:
    """A store with the four authors whose largest query profiles are the biggest."""
    best: dict[str, dict[str, Any]] = {}
    for question in lamp5_questions:
        user = question["user"]
        if user not in best or len(question["profile"]) > len(best[user]["profile"]):
            best[user] = question
    chosen = sorted(best.values(), key=lambda q: (-len(q["profile"]), q["user"]))[:N_USERS]
    users = [q["user"] for q in chosen]
    path = tmp_path_factory.mktemp("lamp5") / "store"
    memory = ProfileMemory(path, embeddings=embeddings, task="scholarly_title")
    memory.add_histories({q["user"]: q["profile"] for q in chosen}, show_progress=False)
    llm = CapitalWordsChat()
    report = memory.refresh(llm=llm)
    state = {
        "memory": memory,
        "path": path,
        "users": users,
        "chosen": {q["user"]: q for q in chosen},
        "own": {q["user"]: {p["id"] for p in q["profile"]} for q in chosen},
        "queries": {u: [q for q in lamp5_questions if q["user"] == u] for u in users},
        "report": report,
        "llm": llm,
    }
    yield state
    state["memory"].close()


def groups(users: list[str]) -> list[list[str]]:
    """Group shapes: everyone, everyone reversed, pairs in both orders, a single user."""
    return [
        users,
        list(reversed(users)),
        [users[2], users[0]],
        [users[1], users[3]],
        [users[3], users[2]],
        [users[0], users[1]],
        [users[3]],
    ]


def check_layout(docs: list[Document], group: list[str], k: int) -> None:
    """Profiles in group order, then each user's k items, grouped in the same order."""
    profiles = [d for d in docs if d.metadata["kind"] == "profile"]
    history = [d for d in docs if d.metadata["kind"] == "history"]
    assert docs == profiles + history
    assert [d.metadata["user_id"] for d in profiles] == group
    assert [d.metadata["position"] for d in profiles] == list(range(len(group)))
    assert [d.metadata["user_id"] for d in history] == [u for u in group for _ in range(k)]
    for doc in history:
        assert doc.metadata["position"] == group.index(doc.metadata["user_id"])


# --------------------------------------------------------------------------- tests


def test_data_profiles_hold_only_earlier_papers(lamp5_questions: list[dict[str, Any]]) -> None:
    for question in lamp5_questions:
        assert question["id"] not in {p["id"] for p in question["profile"]}


def test_profiles_are_built_from_each_users_own_papers(lamp: dict[str, Any]) -> None:
    memory: ProfileMemory = lamp["memory"]
    report = lamp["report"]
    assert report.count("built") == N_USERS
    assert report.llm_calls >= N_USERS
    assert report.llm_calls == len(lamp["llm"].prompts)
    assert any(build.chunks > 1 for build in report.builds.values())  # long histories chunk
    for user in lamp["users"]:
        profile = memory.get_profile(user)
        assert profile is not None
        assert set(profile.item_ids) == lamp["own"][user]
        assert profile.task == "scholarly_title"
        assert profile.interests
        papers = " ".join(f"{p['title']} {p['abstract']}" for p in lamp["chosen"][user]["profile"])
        for word in profile.interests:
            assert word in papers, f"{user}'s profile mentions {word!r}, not in their papers"


def test_group_retrieval_keeps_order_and_never_leaks_other_users(lamp: dict[str, Any]) -> None:
    memory: ProfileMemory = lamp["memory"]
    own: dict[str, set[str]] = lamp["own"]
    retriever = StepBackProfileRetriever(memory=memory, k=K)
    checked = 0
    for user in lamp["users"]:
        # every query of the user, each with a group that holds them (rotating group shapes)
        candidates = [g for g in groups(lamp["users"]) if user in g]
        for number, question in enumerate(lamp["queries"][user]):
            group = candidates[number % len(candidates)]
            docs = retriever.invoke(
                abstract_of(question), config={"configurable": {"user_ids": group}}
            )
            check_layout(docs, group, K)
            for doc in docs:
                assert doc.metadata["user_id"] in group
                if doc.metadata["kind"] == "history":
                    assert doc.metadata["item_id"] in own[doc.metadata["user_id"]]
                    assert -1.0 <= doc.metadata["score"] <= 1.0 + 1e-5
            checked += 1
    assert checked == sum(len(q) for q in lamp["queries"].values())


def test_query_paper_is_never_in_its_own_retrieval(lamp: dict[str, Any]) -> None:
    memory: ProfileMemory = lamp["memory"]
    golds = {}
    if OUTPUTS.exists():
        golds = {g["id"]: g["output"] for g in json.loads(OUTPUTS.read_text())["golds"]}
    for user, question in lamp["chosen"].items():
        everything = len(lamp["own"][user])
        retriever = StepBackProfileRetriever(
            memory=memory, k=everything, include_profiles=False, user_ids=[user]
        )
        docs = retriever.invoke(abstract_of(question))
        assert len(docs) == everything
        assert question["id"] not in {d.metadata["item_id"] for d in docs}
        title = golds.get(question["id"])
        if title:
            assert all(d.metadata.get("output") != title for d in docs)
        # the query abstract itself was never stored, so nothing matches it exactly
        assert max(d.metadata["score"] for d in docs) < 0.999


def test_one_llm_call_per_query_on_real_data(lamp: dict[str, Any]) -> None:
    from langchain_core.language_models import GenericFakeChatModel

    users = lamp["users"][:2]
    question = lamp["chosen"][users[0]]
    llm = GenericFakeChatModel(messages=iter(["A Title"]))
    chain = create_personalized_chain(
        llm,
        StepBackProfileRetriever(memory=lamp["memory"], k=2),
        task="scholarly_title",
        return_context=True,
    )
    usage = LLMUsage()
    result = chain.invoke(
        abstract_of(question), config={"configurable": {"user_ids": users}, "callbacks": [usage]}
    )
    assert usage.calls == 1
    assert result["output"] == "A Title"
    prompt = result["messages"][-1].content
    first = prompt.index(f"Author 1 ({users[0]})")
    second = prompt.index(f"Author 2 ({users[1]})")
    assert first < second < prompt.index(f"{PREFIX}{abstract_of(question)}")


def test_reopened_store_gives_identical_documents_and_costs_no_llm_call(
    lamp: dict[str, Any], embeddings: MiniLMEmbeddings
) -> None:
    group = lamp["users"]
    questions = [lamp["chosen"][u] for u in group]

    def snapshot(memory: ProfileMemory) -> list[list[Document]]:
        retriever = StepBackProfileRetriever(memory=memory, k=K, user_ids=group)
        return [retriever.invoke(abstract_of(q)) for q in questions]

    before = snapshot(lamp["memory"])
    lamp["memory"].close()
    reopened = ProfileMemory(lamp["path"], embeddings=embeddings, task="scholarly_title")
    lamp["memory"] = reopened  # the fixture closes whatever is current

    llm = CapitalWordsChat()
    report = reopened.refresh(llm=llm)
    assert report.llm_calls == 0
    assert report.count("unchanged") == N_USERS
    assert llm.prompts == []

    after = snapshot(reopened)
    for docs_before, docs_after in zip(before, after, strict=True):
        assert len(docs_before) == len(docs_after)
        for a, b in zip(docs_before, docs_after, strict=True):
            assert (a.metadata["user_id"], a.metadata["kind"]) == (
                b.metadata["user_id"],
                b.metadata["kind"],
            )
            assert a.page_content == b.page_content
            if a.metadata["kind"] == "history":
                assert a.metadata["item_id"] == b.metadata["item_id"]
                assert a.metadata["score"] == pytest.approx(b.metadata["score"], abs=1e-6)
            else:
                assert a.metadata["profile_version"] == b.metadata["profile_version"]
