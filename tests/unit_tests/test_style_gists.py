"""Style gists with a fake chat model: one call per item the first time, 0 once cached; a new
prompt or model writes them again; removal, forget and isolation; failures; batch bounds;
the chain and refresh faces."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import Field, PrivateAttr

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileMemory,
    StepBackProfileRetriever,
    StyleGists,
    create_personalized_chain,
)
from langchain_stepback_profile.style_gists import (
    GIST_KIND,
    GIST_WORDS,
    clean_tone,
    compose_gist,
    measured_style,
)
from tests.unit_tests.fakes import HashEmbeddings

PAPERS = [
    {"id": "p1", "title": "Neural MT for Low-Resource Languages", "abstract": "We translate."},
    {"id": "p2", "title": "Attention for Translation", "abstract": "We attend to words."},
    {"id": "p3", "title": "Parsing Tweets", "abstract": "We parse noisy tweets."},
]
ABSTRACT = "We translate low-resource languages with back-translation."


class GistChat(BaseChatModel):
    """Answers gist prompts with a style line and anything else with a title; records the
    gist prompts, fails on those that hold ``fail_on``, counts the calls in flight."""

    model_name: str = "fake-gist-model"
    fail_on: str | None = None
    delay: float = 0.0
    gist_prompts: list[str] = Field(default_factory=list)
    other_prompts: list[str] = Field(default_factory=list)
    most_in_flight: int = 0
    _in_flight: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "gist-chat"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        text = str(messages[-1].content)
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            time.sleep(self.delay)
            if not isinstance(messages[0], SystemMessage):
                self.other_prompts.append(text)
                reply = "A Personalized Title"
            else:
                self.gist_prompts.append(text)
                if self.fail_on and self.fail_on in text:
                    raise ConnectionError("the model server went away")
                reply = 'Tone: "Formal, precise"\nmore chatter'
        finally:
            with self._lock:
                self._in_flight -= 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


@pytest.fixture
def memory(tmp_path: Path) -> ProfileMemory:
    mem = ProfileMemory(tmp_path / "store", embeddings=HashEmbeddings(), task="scholarly_title")
    mem.add("alice", PAPERS)
    mem.add("bob", PAPERS[:2])  # the same contents as two of alice's
    return mem


def retriever(memory: ProfileMemory, llm: GistChat, **kwargs: Any) -> StepBackProfileRetriever:
    return StepBackProfileRetriever(
        memory=memory, k=2, include_profiles=False, style_gists=True, gist_llm=llm, **kwargs
    )


def history(docs: list[Any]) -> list[Any]:
    return [d for d in docs if d.metadata["kind"] == "history"]


def test_gists_are_written_once_and_then_read_from_the_store(memory: ProfileMemory) -> None:
    llm = GistChat()
    docs = history(retriever(memory, llm).invoke(ABSTRACT, user_ids=["alice"]))
    assert len(docs) == 2 and len(llm.gist_prompts) == 2  # k items: k calls
    assert {d.metadata["style_gist_source"] for d in docs} == {"written"}
    # the model's tone, then the item's measured length and structure
    gists = {d.metadata["style_gist"] for d in docs}
    assert gists <= {
        "formal, precise; 5 words; Title Case; acronyms",
        "formal, precise; 3 words; Title Case",
        "formal, precise; 2 words; Title Case",
    }
    titles = {p["title"] for p in PAPERS}
    # the user's own output is described, not the abstract it was written for
    assert all(any(t in p for t in titles) and "We " not in p for p in llm.gist_prompts)

    again = history(retriever(memory, llm).invoke(ABSTRACT, user_ids=["alice"]))
    assert len(llm.gist_prompts) == 2  # cached: 0 calls
    assert [d.metadata["style_gist"] for d in again] == [d.metadata["style_gist"] for d in docs]
    assert {d.metadata["style_gist_source"] for d in again} == {"cached"}
    # a new handle on the same folder reads the same cache
    reopened = ProfileMemory(memory.path, embeddings=HashEmbeddings())
    retriever(reopened, llm).invoke(ABSTRACT, user_ids=["alice"])
    assert len(llm.gist_prompts) == 2


def test_another_prompt_or_model_writes_the_gists_again(memory: ProfileMemory) -> None:
    llm = GistChat()
    items = {"alice": memory.items("alice")}
    StyleGists(memory, llm).write(items)
    assert len(llm.gist_prompts) == 3
    StyleGists(memory, llm).write(items)
    assert len(llm.gist_prompts) == 3
    changed = "Describe the writing style of this {label}, briefly.\n\n{Label}: {text}"
    StyleGists(memory, llm, prompt=changed).write(items)
    assert len(llm.gist_prompts) == 6
    other_model = GistChat(model_name="another-model")
    StyleGists(memory, other_model, prompt=changed).write(items)
    assert len(other_model.gist_prompts) == 3
    with pytest.raises(InvalidArgumentError, match="placeholder"):
        StyleGists(memory, llm, prompt="no text here")


def test_an_edited_item_gets_a_new_gist(memory: ProfileMemory) -> None:
    llm = GistChat()
    gists = StyleGists(memory, llm)
    gists.write({"alice": memory.items("alice")})
    memory.remove("alice", ["p3"])
    memory.add("alice", [{"id": "p3", "title": "Parsing Noisy Tweets", "abstract": "We parse."}])
    written = gists.write({"alice": memory.items("alice")})
    assert len(llm.gist_prompts) == 4  # only the changed item
    assert sorted(g.source for g in written.values()) == ["cached", "cached", "written"]


def test_removed_items_and_forgotten_users_leave_no_gist(memory: ProfileMemory) -> None:
    llm = GistChat()
    StyleGists(memory, llm).write({u: memory.items(u) for u in ("alice", "bob")})
    hashes = [i.content_hash for i in memory.items("alice")]
    assert len(memory.get_annotations("alice", GIST_KIND, hashes)) == 3
    memory.remove("alice", ["p3"])
    assert len(memory.get_annotations("alice", GIST_KIND, hashes)) == 2
    memory.forget("alice")
    memory.add("alice", PAPERS)  # the same items again: nothing of before is left
    assert memory.get_annotations("alice", GIST_KIND, hashes) == {}
    assert len(memory.get_annotations("bob", GIST_KIND, hashes)) == 2  # bob's are his own


def test_one_users_gists_never_serve_another(memory: ProfileMemory) -> None:
    llm = GistChat()
    retriever(memory, llm).invoke(ABSTRACT, user_ids=["alice"])
    assert len(llm.gist_prompts) == 2
    hashes = [i.content_hash for i in memory.items("bob")]
    assert memory.get_annotations("bob", GIST_KIND, hashes) == {}
    docs = history(retriever(memory, llm).invoke(ABSTRACT, user_ids=["bob"]))
    assert len(llm.gist_prompts) == 4  # bob's items cost bob's own calls
    assert {d.metadata["style_gist_source"] for d in docs} == {"written"}


def test_a_failed_gist_leaves_its_item_without_one(
    memory: ProfileMemory, caplog: pytest.LogCaptureFixture
) -> None:
    llm = GistChat(fail_on="Parsing Tweets")
    wanted = {"alice": memory.items("alice")}
    with caplog.at_level(logging.WARNING, logger="langchain_stepback_profile.style_gists"):
        written = StyleGists(memory, llm).write(wanted)
    by_source = sorted(g.source for g in written.values())
    assert by_source == ["failed", "written", "written"]
    assert "p3" in caplog.text and "ConnectionError" in caplog.text
    failed = next(g for g in written.values() if g.source == "failed")
    assert failed.text is None
    # the failure was not cached: the next use tries that one item again
    llm.fail_on = None
    StyleGists(memory, llm).write(wanted)
    assert len(llm.gist_prompts) == 4


def test_a_gist_is_the_models_tone_and_the_measured_style() -> None:
    title = "Neural MT for Low-Resource Languages"
    assert compose_gist("The tone of this title is formal and objective, with a hint", title) == (
        "formal and objective; 5 words; Title Case; acronyms"
    )
    # an empty answer, a tone that echoes the item, one with no content word: measured only
    for answer in ("   \n  ", "Neural, low-resource", "The tone of this title is one that"):
        assert compose_gist(answer, title) == "5 words; Title Case; acronyms"
    assert clean_tone("- Style: 'terse'") == "terse"
    assert clean_tone(" ".join(["word"] * 40)) == " ".join(["word"] * 6)
    assert measured_style("so happy!! cant wait lol 😀") == (
        "6 words; all lower case; '!'; emoticons; writes cant, lol"
    )
    long = "We parse tweets. It works well. " * 5
    assert measured_style(long).startswith("30 words; 10 sentences")
    assert len(compose_gist("formal " * 10, long * 3).split()) <= GIST_WORDS


def test_batch_keeps_to_the_concurrency_bound(memory: ProfileMemory) -> None:
    memory.add("carol", [f"note number {n} about parsing" for n in range(8)])
    llm = GistChat(delay=0.05)
    report = StyleGists(memory, llm, max_concurrency=2).precompute(["carol"])
    assert report.written == 8 and report.llm_calls == 8
    assert llm.most_in_flight == 2

    async def run() -> None:
        memory.add("dave", [f"note number {n} about tagging" for n in range(8)])
        await StyleGists(memory, llm, max_concurrency=3).aprecompute(["dave"])

    llm.most_in_flight = 0
    asyncio.run(run())
    assert len(llm.gist_prompts) == 16 and 1 < llm.most_in_flight <= 3


def test_async_retrieval_writes_then_reads_the_cache(memory: ProfileMemory) -> None:
    llm = GistChat()

    async def run() -> tuple[list[Any], list[Any]]:
        first = await retriever(memory, llm).ainvoke(ABSTRACT, user_ids=["alice", "bob"])
        second = await retriever(memory, llm).ainvoke(ABSTRACT, user_ids=["alice", "bob"])
        return history(first), history(second)

    first, second = asyncio.run(run())
    assert len(llm.gist_prompts) == 4  # 2 users x k=2, then nothing
    assert {d.metadata["style_gist_source"] for d in first} == {"written"}
    assert {d.metadata["style_gist_source"] for d in second} == {"cached"}


def test_the_chain_shows_gists_beside_the_items(memory: ProfileMemory) -> None:
    llm = GistChat()
    plain = StepBackProfileRetriever(memory=memory, k=2, include_profiles=False)
    chain = create_personalized_chain(
        llm, plain, task="scholarly_title", prompt_layout="paper", style_gists=True,
        return_context=True,
    )  # fmt: skip
    config = {"configurable": {"user_ids": ["alice"]}}
    result = chain.invoke(ABSTRACT, config=config)
    assert result["output"] == "A Personalized Title"
    assert result["control"]["gist_calls"] == 2 and len(llm.gist_prompts) == 2
    prompt = result["messages"][0].content
    for doc in history(result["documents"]):
        assert (
            f"Title: {doc.metadata['output']}\nStyle note: {doc.metadata['style_gist']}" in prompt
        )
    assert chain.invoke(ABSTRACT, config=config)["control"]["gist_calls"] == 0
    assert len(llm.gist_prompts) == 2

    async def arun() -> dict[str, Any]:
        return await chain.ainvoke(ABSTRACT, config=config)

    assert asyncio.run(arun())["control"]["gist_calls"] == 0
    # without the option, nothing changes
    off = create_personalized_chain(llm, plain, prompt_layout="paper", return_context=True)
    result = off.invoke(ABSTRACT, config=config)
    assert "Style note:" not in result["messages"][0].content
    assert "gist_calls" not in result["control"]


def test_layouts_that_do_not_show_gists_write_none(memory: ProfileMemory) -> None:
    llm = GistChat()
    plain = StepBackProfileRetriever(memory=memory, k=2, include_profiles=False)
    with pytest.warns(UserWarning, match="'paper' prompt layout only"):
        chain = create_personalized_chain(
            llm, plain, prompt_layout="few_shot", style_gists=True, return_context=True
        )
    result = chain.invoke(ABSTRACT, config={"configurable": {"user_ids": ["alice"]}})
    assert llm.gist_prompts == [] and result["control"]["gist_calls"] == 0
    with pytest.raises(InvalidArgumentError, match="needs a StepBackProfileRetriever"):
        create_personalized_chain(llm, RunnableLambda(lambda q: []), style_gists=True)


def test_refresh_writes_the_gists_ahead_of_queries(memory: ProfileMemory) -> None:
    llm = GistChat()
    report = memory.refresh(llm=llm, strategy="extractive", style_gists=True)
    assert report.gists is not None and report.gists.written == 5  # alice's 3 and bob's 2
    assert report.llm_calls == 5 and "5 written" in str(report)
    retriever(memory, llm).invoke(ABSTRACT, user_ids=["alice", "bob"])
    assert len(llm.gist_prompts) == 5  # queries cost 0 gist calls

    async def again() -> Any:
        return await memory.arefresh(llm=llm, strategy="extractive", style_gists=True)

    report = asyncio.run(again())
    assert report.gists is not None and report.gists.cached == 5 and report.llm_calls == 0


def test_the_generation_commands_take_style_gists() -> None:
    from langchain_stepback_profile.cli.parser import build_parser

    args = build_parser().parse_args(["query", "--users", "a", "--style-gists", "x"])
    assert args.style_gists is True
    assert build_parser().parse_args(["query", "--users", "a", "x"]).style_gists is False


def test_a_postgres_store_made_before_annotations_gets_their_table(postgres_url: str) -> None:
    import psycopg

    from langchain_stepback_profile.history import HistoryItem
    from langchain_stepback_profile.postgres_store import PostgresProfileStore
    from langchain_stepback_profile.store import ItemAnnotation

    item = HistoryItem(id="a", text="hello")
    with_table = PostgresProfileStore(postgres_url)
    with_table.add_items("alice", [item])
    with_table.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE stepback_profile.annotations")
    store = PostgresProfileStore(postgres_url)
    try:
        note = ItemAnnotation(item.content_hash, "s", "terse")
        assert store.put_annotations("alice", GIST_KIND, [note]) == 1
        assert store.get_annotations("alice", GIST_KIND, [item.content_hash]) == {
            item.content_hash: note
        }
    finally:
        store.close()


def test_a_long_precompute_goes_in_chunks_with_a_progress_bar(
    memory: ProfileMemory, capsys: pytest.CaptureFixture[str]
) -> None:
    memory.add("erin", [f"note number {n} about chunking" for n in range(20)])
    llm = GistChat()
    report = StyleGists(memory, llm, max_concurrency=1).precompute(["erin"], show_progress=True)
    assert (report.items, report.written) == (20, 20)  # in chunks of 8: every item once
    assert len(llm.gist_prompts) == 20
    err = capsys.readouterr().err
    assert "style gists" in err and "20/20" in err
