"""StepBackProfileRetriever on real MiniLM embeddings, FAISS and SQLite (``memory`` fixture)."""

from __future__ import annotations

import logging

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileDraft,
    ProfileMemory,
    StepBackProfileRetriever,
    UnknownUserError,
)
from langchain_stepback_profile.retriever import document_id

pytestmark = pytest.mark.slow

HISTORIES = {
    "alice": [
        {
            "id": "a1",
            "title": "Neural Machine Translation",
            "abstract": "Translating text with "
            "encoder-decoder networks and attention between languages.",
        },
        {
            "id": "a2",
            "title": "Better BLEU",
            "abstract": "Evaluating machine translation output against human references.",
        },
        {
            "id": "a3",
            "title": "Low-resource MT",
            "abstract": "Translation for languages with "
            "little parallel data using back-translation.",
        },
        {"id": "a4", "title": "Parsing Chinese", "abstract": "A dependency parser for Chinese."},
        {"id": "a5", "title": "Speech Tagging", "abstract": "Part-of-speech tagging of tweets."},
    ],
    "bob": [
        "Slow-cooked beef stew with red wine and thyme.",
        "A quick weeknight pasta with garlic and chili.",
        "Sourdough bread: feeding the starter and proofing overnight.",
        "Translating grandmother's recipes from Italian into English.",
    ],
    "carol": [
        "The football world cup final went to penalties.",
        "Marathon training plan for beginners.",
        "Tennis serve mechanics explained.",
    ],
}
QUERY = "machine translation between languages"


@pytest.fixture
def store(memory: ProfileMemory) -> ProfileMemory:
    memory.add_histories(HISTORIES, show_progress=False)
    memory.set_profile(
        "alice", ProfileDraft(interests=["machine translation"], summary="Alice works on MT.")
    )
    memory.set_profile(
        "bob", ProfileDraft(interests=["cooking"], keywords=["stew"], summary="Bob cooks.")
    )
    return memory


def kinds(docs: list[Document]) -> list[tuple[str, str]]:
    return [(d.metadata["user_id"], d.metadata["kind"]) for d in docs]


def users_of(docs: list[Document]) -> list[str]:
    history = [d for d in docs if d.metadata["kind"] == "history"]
    return list(dict.fromkeys(d.metadata["user_id"] for d in history))


# --------------------------------------------------------------------------- layout


def test_profiles_in_user_order_then_history_grouped_by_user(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=2)
    docs = retriever.invoke(QUERY, user_ids=["bob", "alice"])

    assert kinds(docs) == [
        ("bob", "profile"),
        ("alice", "profile"),
        ("bob", "history"),
        ("bob", "history"),
        ("alice", "history"),
        ("alice", "history"),
    ]
    assert docs[0].page_content == store.get_profile("bob").render()
    assert docs[1].page_content == store.get_profile("alice").render()
    assert "Summary: Bob cooks." in docs[0].page_content


def test_every_document_carries_its_metadata(store: ProfileMemory) -> None:
    docs = StepBackProfileRetriever(memory=store, k=3).invoke(QUERY, user_ids=["alice", "bob"])
    own = {u: {i.id for i in store.items(u)} for u in ("alice", "bob")}
    for doc in docs:
        assert doc.metadata["user_id"] in ("alice", "bob")
        assert doc.metadata["kind"] in ("profile", "history")
        assert doc.metadata["position"] == ["alice", "bob"].index(doc.metadata["user_id"])
        if doc.metadata["kind"] == "profile":
            version = store.get_profile(doc.metadata["user_id"]).version
            assert doc.metadata["profile_version"] == version
            continue
        assert doc.metadata["item_id"] in own[doc.metadata["user_id"]]
        assert doc.id == document_id(doc.metadata["user_id"], doc.metadata["item_id"])
        assert isinstance(doc.metadata["score"], float)
        assert -1.0 <= doc.metadata["score"] <= 1.0 + 1e-6
    for user in ("alice", "bob"):
        scores = [
            d.metadata["score"]
            for d in docs
            if d.metadata["user_id"] == user and d.metadata["kind"] == "history"
        ]
        assert scores == sorted(scores, reverse=True)


def test_history_is_the_most_similar_of_the_users_own_items(store: ProfileMemory) -> None:
    docs = StepBackProfileRetriever(memory=store, k=1, include_profiles=False).invoke(
        QUERY, user_ids=["alice", "bob"]
    )
    assert docs[0].metadata["item_id"] in {"a1", "a2", "a3"}
    assert "Translating grandmother" in docs[1].page_content


def test_pair_items_keep_their_input_and_output(store: ProfileMemory) -> None:
    [doc] = StepBackProfileRetriever(memory=store, k=1, include_profiles=False).invoke(
        "dependency parser for Chinese", user_ids=["alice"]
    )
    assert doc.metadata["item_id"] == "a4"
    assert doc.metadata["output"] == "Parsing Chinese"
    assert doc.metadata["input"] == "A dependency parser for Chinese."
    assert doc.metadata["output_label"] == "title"
    assert doc.metadata["input_label"] == "abstract"
    assert "Parsing Chinese" in doc.page_content


# --------------------------------------------------------------------------- k and flags


def test_k_in_constructor_and_as_invoke_kwarg(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(
        memory=store, k=3, include_profiles=False, user_ids=["alice"]
    )
    assert len(retriever.invoke(QUERY)) == 3
    assert len(retriever.invoke(QUERY, k=1)) == 1
    assert len(retriever.invoke(QUERY, k=5)) == 5
    # k larger than the history returns the whole history, no padding
    assert len(retriever.invoke(QUERY, k=50)) == 5
    assert len(retriever.invoke(QUERY, user_ids=["alice", "carol"], k=2)) == 4


def test_default_k_is_four(store: ProfileMemory) -> None:
    docs = StepBackProfileRetriever(memory=store, include_profiles=False).invoke(
        QUERY, user_ids=["alice"]
    )
    assert len(docs) == 4


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k_is_refused(store: ProfileMemory, k: int) -> None:
    retriever = StepBackProfileRetriever(memory=store, user_ids=["alice"])
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        retriever.invoke(QUERY, k=k)
    with pytest.raises(ValueError):
        StepBackProfileRetriever(memory=store, k=k, user_ids=["alice"])


@pytest.mark.parametrize("k", [1.5, "2", True])
def test_k_of_the_wrong_type_is_refused(store: ProfileMemory, k: object) -> None:
    retriever = StepBackProfileRetriever(memory=store, user_ids=["alice"])
    with pytest.raises(InvalidArgumentError):
        retriever.invoke(QUERY, k=k)


def test_include_flags(store: ProfileMemory) -> None:
    users = ["alice", "bob"]
    only_history = StepBackProfileRetriever(memory=store, k=2, include_profiles=False)
    assert {d.metadata["kind"] for d in only_history.invoke(QUERY, user_ids=users)} == {"history"}
    only_profiles = StepBackProfileRetriever(memory=store, k=2, include_history=False)
    assert kinds(only_profiles.invoke(QUERY, user_ids=users)) == [
        ("alice", "profile"),
        ("bob", "profile"),
    ]
    nothing = StepBackProfileRetriever(memory=store, include_history=False, include_profiles=False)
    assert nothing.invoke(QUERY, user_ids=users) == []


# --------------------------------------------------------------------------- users


def test_users_from_the_constructor(store: ProfileMemory) -> None:
    docs = StepBackProfileRetriever(memory=store, k=1, user_ids=["bob"]).invoke(QUERY)
    assert kinds(docs) == [("bob", "profile"), ("bob", "history")]


def test_users_from_config(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1, include_profiles=False)
    docs = retriever.invoke(QUERY, config={"configurable": {"user_ids": ["carol", "alice"]}})
    assert users_of(docs) == ["carol", "alice"]
    # a single id as a string, and the singular key, work too
    docs = retriever.invoke(QUERY, config={"configurable": {"user_ids": "bob"}})
    assert users_of(docs) == ["bob"]
    docs = retriever.invoke(QUERY, config={"configurable": {"user_id": "carol"}})
    assert users_of(docs) == ["carol"]


def test_users_from_invoke_kwarg(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1, include_profiles=False)
    assert users_of(retriever.invoke(QUERY, user_ids=["bob", "carol"])) == ["bob", "carol"]
    assert users_of(retriever.invoke(QUERY, user_ids="alice")) == ["alice"]


@pytest.mark.parametrize(
    ("constructor", "configured", "kwarg", "expected"),
    [
        (["alice"], None, None, ["alice"]),
        (["alice"], ["bob"], None, ["bob"]),
        (["alice"], None, ["carol"], ["carol"]),
        (None, ["bob"], ["carol"], ["carol"]),
        (["alice"], ["bob"], ["carol"], ["carol"]),
        (None, ["bob", "alice"], None, ["bob", "alice"]),
    ],
)
def test_user_precedence_constructor_then_config_then_kwarg(
    store: ProfileMemory,
    constructor: list[str] | None,
    configured: list[str] | None,
    kwarg: list[str] | None,
    expected: list[str],
) -> None:
    retriever = StepBackProfileRetriever(
        memory=store, k=1, include_profiles=False, user_ids=constructor
    )
    config = {"configurable": {"user_ids": configured}} if configured else None
    kwargs = {"user_ids": kwarg} if kwarg else {}
    assert users_of(retriever.invoke(QUERY, config=config, **kwargs)) == expected


async def test_user_precedence_holds_for_ainvoke(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(
        memory=store, k=1, include_profiles=False, user_ids=["alice"]
    )
    config = {"configurable": {"user_ids": ["bob"]}}
    assert users_of(await retriever.ainvoke(QUERY)) == ["alice"]
    assert users_of(await retriever.ainvoke(QUERY, config=config)) == ["bob"]
    assert users_of(await retriever.ainvoke(QUERY, config=config, user_ids=["carol"])) == ["carol"]


def test_config_users_flow_through_a_whole_chain(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1, user_ids=["carol"])
    chain = RunnableLambda(lambda text: text.strip()) | retriever | RunnableLambda(users_of)
    config = {"configurable": {"user_ids": ["bob", "alice"]}}
    assert chain.invoke(f"  {QUERY}  ", config=config) == ["bob", "alice"]
    assert chain.invoke(QUERY) == ["carol"]


def test_duplicate_users_are_kept_once_in_first_order(store: ProfileMemory) -> None:
    docs = StepBackProfileRetriever(memory=store, k=1).invoke(
        QUERY, user_ids=["bob", "alice", "bob"]
    )
    assert kinds(docs) == [
        ("bob", "profile"),
        ("alice", "profile"),
        ("bob", "history"),
        ("alice", "history"),
    ]


@pytest.mark.parametrize("users", [None, []])
def test_no_users_says_how_to_pass_them(store: ProfileMemory, users: list | None) -> None:
    retriever = StepBackProfileRetriever(memory=store)
    with pytest.raises(InvalidArgumentError) as caught:
        retriever.invoke(QUERY, **({} if users is None else {"user_ids": users}))
    message = str(caught.value)
    assert "user_ids" in message
    assert "configurable" in message


@pytest.mark.parametrize("bad", [[""], ["  "], [3], [None]])
def test_bad_user_ids_are_refused(store: ProfileMemory, bad: list) -> None:
    with pytest.raises(InvalidArgumentError):
        StepBackProfileRetriever(memory=store).invoke(QUERY, user_ids=bad)


def test_unknown_user_is_an_error(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store)
    with pytest.raises(UnknownUserError, match="mallory"):
        retriever.invoke(QUERY, user_ids=["alice", "mallory"])
    with pytest.raises(UnknownUserError):
        StepBackProfileRetriever(memory=store, include_history=False).invoke(
            QUERY, user_ids=["mallory"]
        )


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(store: ProfileMemory, query: str) -> None:
    with pytest.raises(InvalidArgumentError):
        StepBackProfileRetriever(memory=store, user_ids=["alice"]).invoke(query)


def test_user_without_profile_gives_no_profile_doc_and_a_warning(
    store: ProfileMemory, caplog: pytest.LogCaptureFixture
) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1)
    with caplog.at_level(logging.WARNING, logger="langchain_stepback_profile"):
        docs = retriever.invoke(QUERY, user_ids=["alice", "carol"])
    assert kinds(docs) == [("alice", "profile"), ("alice", "history"), ("carol", "history")]
    # positions stay those of the user order, even with a profile missing
    assert docs[-1].metadata["position"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("carol" in r.getMessage() and "refresh" in r.getMessage() for r in warnings)


# --------------------------------------------------------------------------- async and batch


async def test_ainvoke_matches_invoke(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=2)
    sync_docs = retriever.invoke(QUERY, user_ids=["alice", "bob"])
    async_docs = await retriever.ainvoke(QUERY, user_ids=["alice", "bob"])
    assert [(d.page_content, d.metadata["user_id"]) for d in async_docs] == [
        (d.page_content, d.metadata["user_id"]) for d in sync_docs
    ]
    for a, s in zip(async_docs, sync_docs, strict=True):
        if a.metadata["kind"] == "history":
            assert a.metadata["score"] == pytest.approx(s.metadata["score"], abs=1e-6)


async def test_ainvoke_errors(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store)
    with pytest.raises(InvalidArgumentError):
        await retriever.ainvoke(QUERY)
    with pytest.raises(UnknownUserError):
        await retriever.ainvoke(QUERY, user_ids=["mallory"])


def test_batch_with_per_input_config(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1, include_profiles=False)
    results = retriever.batch(
        [QUERY, "bread and pasta"],
        config=[
            {"configurable": {"user_ids": ["alice"]}},
            {"configurable": {"user_ids": ["bob", "carol"]}},
        ],
    )
    assert [users_of(docs) for docs in results] == [["alice"], ["bob", "carol"]]


def test_batch_with_shared_users(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=2, user_ids=["alice", "bob"])
    results = retriever.batch([QUERY, "bread and pasta"])
    assert len(results) == 2
    for docs in results:
        assert kinds(docs)[:2] == [("alice", "profile"), ("bob", "profile")]
        assert len(docs) == 6


async def test_abatch(store: ProfileMemory) -> None:
    retriever = StepBackProfileRetriever(memory=store, k=1, include_profiles=False)
    results = await retriever.abatch(
        [QUERY, QUERY], config={"configurable": {"user_ids": ["carol"]}}
    )
    assert [users_of(docs) for docs in results] == [["carol"], ["carol"]]


def test_document_ids_are_unique_across_users_whatever_the_ids(memory: ProfileMemory) -> None:
    # user "a" with item "b/c" and user "a/b" with item "c" once shared the id "a/b/c"
    memory.add("a", [{"id": "b/c", "text": "the same words about translation"}])
    memory.add("a/b", [{"id": "c", "text": "the same words about translation"}])
    memory.add("a%2Fb", [{"id": "c", "text": "the same words about translation"}])
    for user in memory.users():
        memory.set_profile(user, ProfileDraft(summary=f"profile of {user}"))
    retriever = StepBackProfileRetriever(memory=memory, k=1)
    docs = retriever.invoke("translation", user_ids=["a", "a/b", "a%2Fb"])
    ids = [d.id for d in docs]
    assert len(ids) == 6 and len(set(ids)) == 6, ids
    assert document_id("a", "b/c") != document_id("a/b", "c")
    assert {document_id(u) for u in memory.users()}.isdisjoint(
        document_id(u, "profile") for u in memory.users()
    )
