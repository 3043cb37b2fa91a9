"""create_personalized_chain / build_messages over a real store (MiniLM embeddings): one LLM
call, the paper's prompt layout, with the user's retrieved history in it.

The chain tests that retrieve nothing are in tests/unit_tests/test_chains.py."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileDraft,
    ProfileMemory,
    StepBackProfileRetriever,
    UnknownUserError,
    build_messages,
    create_personalized_chain,
    get_task,
)
from langchain_stepback_profile.usage import LLMUsage
from tests.unit_tests.test_chains import ABSTRACT, TITLE_TASK, RecordingChat, SeededSmallChat

pytestmark = pytest.mark.slow


@pytest.fixture
def store(memory: ProfileMemory) -> ProfileMemory:
    memory.add_histories(
        {
            "alice": [
                {
                    "id": "a1",
                    "title": "Neural Machine Translation for Everyone",
                    "abstract": "Encoder-decoder networks with attention translate text.",
                },
                {
                    "id": "a2",
                    "title": "Back-Translation Revisited",
                    "abstract": "Synthetic parallel data for low-resource translation.",
                },
                {"id": "a3", "title": "Parsing Tweets", "abstract": "A parser for tweets."},
            ],
            "bob": [
                "Cross-lingual embeddings align the vocabularies of two languages.",
                "A cooking blog post about sourdough bread.",
            ],
        },
        show_progress=False,
    )
    memory.set_profile(
        "alice",
        ProfileDraft(interests=["machine translation"], keywords=["NMT"], summary="Alice: MT."),
    )
    memory.set_profile(
        "bob", ProfileDraft(interests=["cross-lingual NLP"], summary="Bob: embeddings.")
    )
    return memory


def user_text(messages: list[BaseMessage]) -> str:
    last = messages[-1]
    assert isinstance(last, HumanMessage)
    return last.content


def test_one_llm_call_per_query_with_profiles_and_history_in_the_prompt(
    store: ProfileMemory,
) -> None:
    llm = RecordingChat()
    retriever = StepBackProfileRetriever(memory=store, k=2)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title")
    usage = LLMUsage()

    out = chain.invoke(
        ABSTRACT, config={"configurable": {"user_ids": ["bob", "alice"]}, "callbacks": [usage]}
    )

    assert out == "A Personalized Title"
    assert usage.calls == 1
    [messages] = llm.prompts
    assert len(messages) == 1  # everything in one user turn
    prompt = user_text(messages)

    # P_U in author order: bob first, then alice
    bob = f"Author 1 (bob):\n{store.get_profile('bob').render()}"
    alice = f"Author 2 (alice):\n{store.get_profile('alice').render()}"
    assert bob in prompt and alice in prompt
    assert prompt.index(bob) < prompt.index(alice)

    # the retrieved items, grouped by author in the same order
    docs = retriever.invoke(ABSTRACT, user_ids=["bob", "alice"])
    history = [d for d in docs if d.metadata["kind"] == "history"]
    assert len(history) == 4
    positions = []
    for doc in history:
        if doc.metadata.get("output"):
            block = f"[Author 2] Abstract: {doc.metadata['input']}\nTitle: {doc.metadata['output']}"
        else:
            block = f"[Author 1] {doc.page_content}"
        assert block in prompt
        positions.append(prompt.index(block))
    assert positions == sorted(positions)
    assert prompt.index(alice) < min(positions)

    # the instruction sits right before the input, after profiles and history
    request = f"{TITLE_TASK.instruction} {ABSTRACT}"
    assert request in prompt
    assert prompt.index(request) > max(positions)
    assert prompt.count(TITLE_TASK.instruction) == 1
    tail = prompt[prompt.index(request) + len(request) :]
    assert "Author" not in tail
    assert TITLE_TASK.output_name in tail


def test_each_query_costs_exactly_one_call(store: ProfileMemory) -> None:
    llm = RecordingChat()
    chain = create_personalized_chain(
        llm, StepBackProfileRetriever(memory=store, k=1, user_ids=["alice"])
    )
    usage = LLMUsage()
    for query in ("translation", "parsing tweets", "bread"):
        chain.invoke(query, config={"callbacks": [usage]})
    assert usage.calls == 3
    assert len(llm.prompts) == 3
    results = chain.batch(["a", "b"], config={"callbacks": [usage]})
    assert results == ["A Personalized Title"] * 2
    assert usage.calls == 5


def test_per_input_users_in_batch(store: ProfileMemory) -> None:
    llm = RecordingChat()
    chain = create_personalized_chain(llm, StepBackProfileRetriever(memory=store, k=1))
    chain.batch(
        ["translation", "translation"],
        config=[
            {"configurable": {"user_ids": ["alice"]}},
            {"configurable": {"user_ids": ["bob"]}},
        ],
    )
    prompts = sorted(user_text(p) for p in llm.prompts)
    assert sum("Author 1 (alice)" in p for p in prompts) == 1
    assert sum("Author 1 (bob)" in p for p in prompts) == 1
    assert not any("(alice)" in p and "(bob)" in p for p in prompts)


async def test_ainvoke(store: ProfileMemory) -> None:
    llm = RecordingChat(reply="Async Title")
    chain = create_personalized_chain(llm, StepBackProfileRetriever(memory=store, k=1))
    usage = LLMUsage()
    out = await chain.ainvoke(
        {"input": ABSTRACT}, config={"configurable": {"user_ids": ["alice"]}, "callbacks": [usage]}
    )
    assert out == "Async Title"
    assert usage.calls == 1
    assert ABSTRACT in user_text(llm.prompts[0])


def test_dict_input_is_accepted(store: ProfileMemory) -> None:
    llm = RecordingChat()
    chain = create_personalized_chain(
        llm, StepBackProfileRetriever(memory=store, k=1, user_ids=["bob"])
    )
    assert chain.invoke({"input": ABSTRACT}) == "A Personalized Title"
    assert ABSTRACT in user_text(llm.prompts[0])


def test_return_context_shape(store: ProfileMemory) -> None:
    llm = RecordingChat()
    retriever = StepBackProfileRetriever(memory=store, k=2, user_ids=["alice", "bob"])
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)

    result = chain.invoke(ABSTRACT)

    assert set(result) == {"output", "documents", "messages", "control"}
    assert result["control"]["llm_calls"] == 1
    assert result["output"] == "A Personalized Title"
    assert all(isinstance(d, Document) for d in result["documents"])
    expected = retriever.invoke(ABSTRACT)
    assert [d.page_content for d in result["documents"]] == [d.page_content for d in expected]
    assert result["messages"] == llm.prompts[0]
    assert result["messages"] == build_messages(ABSTRACT, result["documents"], TITLE_TASK)
    assert len(llm.prompts) == 1


def test_missing_users_and_unknown_users_surface(store: ProfileMemory) -> None:
    llm = RecordingChat()
    chain = create_personalized_chain(llm, StepBackProfileRetriever(memory=store))
    with pytest.raises(InvalidArgumentError, match="user_ids"):
        chain.invoke(ABSTRACT)
    with pytest.raises(UnknownUserError):
        chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["mallory"]}})
    assert llm.prompts == []


# ----------------------------------------------------------------- layouts and output control
def test_few_shot_layout_turns_pairs_into_turns_first_author_last(store: ProfileMemory) -> None:
    llm = RecordingChat(reply="Low-Resource Translation with Attention")
    retriever = StepBackProfileRetriever(memory=store, k=2)
    chain = create_personalized_chain(
        llm, retriever, task="scholarly_title", prompt_layout="few_shot"
    )
    chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice", "bob"]}})
    messages = llm.prompts[0]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai", "human"]
    # alice's pairs only (bob's items are plain texts); the best match sits right before the query
    assert messages[-2].content in {
        "Back-Translation Revisited",
        "Neural Machine Translation for Everyone",
    }
    assert messages[-1].content == f"{TITLE_TASK.instruction} {ABSTRACT}"
    assert "Alice: MT." not in "".join(str(m.content) for m in messages)  # profile stays out


def test_a_chatty_answer_is_regenerated_then_falls_back(store: ProfileMemory) -> None:
    llm = RecordingChat(reply="I'm ready to assist you with this abstract.")
    retriever = StepBackProfileRetriever(memory=store, k=1)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    usage = LLMUsage()
    result = chain.invoke(
        ABSTRACT, config={"configurable": {"user_ids": ["alice"]}, "callbacks": [usage]}
    )
    assert usage.calls == 2  # the answer, then one regeneration with the plain prompt
    assert result["control"]["verdicts"] == ["chat", "chat"]
    assert result["control"]["fallback"] is True
    # a headline from the abstract's first sentence, its opening ("We") removed, cut near
    # alice's typical title length
    assert result["output"] == "Translate low-resource"


def test_an_answer_that_repeats_the_input_is_a_copy(store: ProfileMemory) -> None:
    llm = RecordingChat(reply=ABSTRACT)
    retriever = StepBackProfileRetriever(memory=store, k=1)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    result = chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
    assert result["control"]["verdicts"][0] == "copy"


def test_a_long_answer_is_cut_near_the_lead_authors_typical_length(store: ProfileMemory) -> None:
    long_title = (
        "Back-Translation and Attention for Low-Resource Languages in the Wild at Scale Today"
    )
    llm = RecordingChat(reply=long_title)
    retriever = StepBackProfileRetriever(memory=store, k=2)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    result = chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
    assert "cut to length" in result["control"]["actions"]
    assert len(result["output"].split()) < len(long_title.split())
    assert long_title.startswith(result["output"])


def test_control_can_be_turned_off(store: ProfileMemory) -> None:
    llm = RecordingChat(reply="Sure! Here it is: X")
    retriever = StepBackProfileRetriever(memory=store, k=1)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", control=False)
    assert (
        chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
        == "Sure! Here it is: X"
    )


def test_style_layout_rewrites_the_input_in_the_users_forms_without_an_llm_call(
    memory: ProfileMemory,
) -> None:
    from langchain_stepback_profile.llms import LocalChatModel
    from langchain_stepback_profile.prompting import resolve_strategy

    tweets = get_task("tweet_paraphrase")
    assert resolve_strategy("auto", LocalChatModel.model_construct(), tweets) == "style"
    assert resolve_strategy("auto", RecordingChat(), tweets) == "paper"
    with pytest.raises(InvalidArgumentError, match="only rewrites"):
        resolve_strategy("style", RecordingChat(), TITLE_TASK)

    memory.add("u", ["im so tired lol", "dont care lol", "im out of here", "dont ask lol"])
    memory.refresh(strategy="extractive")
    llm = RecordingChat()
    retriever = StepBackProfileRetriever(memory=memory, k=2)
    chain = create_personalized_chain(
        llm, retriever, task=tweets, prompt_layout="style", return_context=True
    )
    result = chain.invoke(
        "I am tired and I do not care", config={"configurable": {"user_ids": ["u"]}}
    )
    assert llm.prompts == []  # no LLM call at all
    assert result["output"] == "im tired and i dont care"  # forms and lower case of the user
    assert result["control"]["llm_calls"] == 0


def test_a_paraphrase_that_drifts_from_its_input_falls_back_to_the_input(
    memory: ProfileMemory,
) -> None:
    memory.add("u", ["so tired today", "need coffee now"])
    llm = RecordingChat(reply="Coffee is a popular drink around the world.")
    retriever = StepBackProfileRetriever(memory=memory, k=1, include_profiles=False)
    chain = create_personalized_chain(
        llm, retriever, task="tweet_paraphrase", prompt_layout="paper", return_context=True
    )
    tweet = "I really need some sleep tonight"
    result = chain.invoke(tweet, config={"configurable": {"user_ids": ["u"]}})
    assert result["control"]["verdicts"] == ["drift", "drift"]
    assert result["output"] == tweet


GROUNDED_REPLIES = {
    0: "A Quantum Theory of Sourdough",  # greedy: invents every word
    1: "I'm ready to assist you with back-translation and attention.",  # chat: never chosen
    2: "Back-Translation with Attention for Low-Resource Languages",
}


def test_a_small_model_draws_three_candidates_and_keeps_the_best_grounded(
    store: ProfileMemory,
) -> None:
    llm = SeededSmallChat(replies=GROUNDED_REPLIES)
    retriever = StepBackProfileRetriever(memory=store, k=2)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    usage = LLMUsage()
    result = chain.invoke(
        ABSTRACT, config={"configurable": {"user_ids": ["alice"]}, "callbacks": [usage]}
    )
    assert usage.calls == 3
    assert [(c.get("temperature"), c.get("seed")) for c in llm.calls] == [
        (None, None),
        (0.8, 1),
        (0.8, 2),
    ]
    assert result["control"]["candidates"] == 3
    assert result["control"]["verdicts"] == ["ok", "chat", "ok"]
    assert result["control"]["answers"][:2] == [GROUNDED_REPLIES[0], GROUNDED_REPLIES[1]]
    assert result["control"]["chosen"] == 2
    assert result["output"].startswith("Back-Translation with Attention")


async def test_candidates_are_drawn_concurrently_and_chosen_alike_async(
    store: ProfileMemory,
) -> None:
    llm = SeededSmallChat(replies=GROUNDED_REPLIES)
    retriever = StepBackProfileRetriever(memory=store, k=2)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    result = await chain.ainvoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
    assert sorted(c.get("seed", 0) for c in llm.calls) == [0, 1, 2]
    assert result["control"]["chosen"] == 2


def test_equally_grounded_candidates_keep_the_first(store: ProfileMemory) -> None:
    same = "Low-Resource Languages with Attention"
    llm = SeededSmallChat(replies={0: same, 1: "Attention for Languages", 2: same})
    retriever = StepBackProfileRetriever(memory=store, k=1)
    chain = create_personalized_chain(llm, retriever, task="scholarly_title", return_context=True)
    result = chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
    assert result["control"]["chosen"] == 0


def test_the_old_strategy_name_of_the_prompt_layout_still_works_with_a_warning(
    store: ProfileMemory,
) -> None:
    from langchain_stepback_profile.chains import Personalizer

    retriever = StepBackProfileRetriever(memory=store, k=1)
    with pytest.warns(DeprecationWarning, match="now prompt_layout="):
        chain = create_personalized_chain(RecordingChat(), retriever, strategy="plain")
    with pytest.warns(DeprecationWarning, match="now prompt_layout="):
        assert Personalizer(RecordingChat(), TITLE_TASK, strategy="paper").layout == "paper"
    assert chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
