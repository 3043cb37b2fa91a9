"""StepBackProfiler: prompts, caching, incremental updates, chunking, parsing, tools, async.

Every test uses a fake chat model that records what it was sent, so the number of calls
and the content of every prompt can be checked exactly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from langchain_stepback_profile import (
    InvalidArgumentError,
    ProfileGenerationError,
    StepBackProfiler,
    TaskSpec,
    get_task,
)
from langchain_stepback_profile import distill as distill_module
from langchain_stepback_profile.distill import parse_draft
from langchain_stepback_profile.history import HistoryItem, to_history_item
from langchain_stepback_profile.usage import LLMUsage

# --------------------------------------------------------------------------- fakes


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def default_answer(messages: list[BaseMessage]) -> str:
    """A valid profile that depends only on the prompt (so build and abuild can be compared)."""
    prompt = _text(messages[-1])
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:10]
    topics = sorted(set(re.findall(r"\btopic\w+", prompt)))[:6] or ["general"]
    return json.dumps(
        {
            "interests": topics,
            "keywords": [f"kw-{digest}"],
            "style": {"tone": "formal"},
            "summary": f"Profile {digest}.",
        }
    )


Step = str | AIMessage | Callable[[list[BaseMessage]], str | AIMessage]


class ScriptedChat(BaseChatModel):
    """Records every prompt; answers from ``script`` (in order), then with ``default_answer``.

    ``delay`` makes async calls sleep so concurrency can be observed (``max_active``).
    ``usage`` is attached to every answer as ``usage_metadata``.
    """

    model_name: str = "scripted"
    script: list[Any] = Field(default_factory=list)
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, int] | None = None
    delay: float = 0.0
    active: int = 0
    max_active: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def _answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ChatResult:
        self.prompts.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        step: Step = self.script.pop(0) if self.script else default_answer
        answer = step(messages) if callable(step) else step
        if not isinstance(answer, AIMessage):
            answer = AIMessage(answer)
        if self.usage is not None:
            answer = answer.model_copy(update={"usage_metadata": dict(self.usage)})
        return ChatResult(generations=[ChatGeneration(message=answer)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        return self._answer(messages, kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            return self._answer(messages, kwargs)
        finally:
            self.active -= 1

    # helpers for assertions
    def human_prompts(self) -> list[str]:
        return [_text(p[-1]) for p in self.prompts]


class ToolChat(ScriptedChat):
    """A fake chat model with tool calling: answers are tool calls of the bound schema."""

    model_name: str = "tool-scripted"
    bound_tools: list[list[dict[str, Any]]] = Field(default_factory=list)

    def bind_tools(self, tools, *, tool_choice: Any = None, **kwargs: Any):
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        self.bound_tools.append(formatted)
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)


def tool_call(args: dict[str, Any], name: str = "ProfileDraft") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": "call-1"}])


def answer(**fields: Any) -> str:
    base = {"interests": ["machine translation"], "summary": "Works on MT."}
    return json.dumps({**base, **fields})


def words(text: str) -> int:
    """A deterministic token counter: one token per whitespace-separated word."""
    return len(text.split())


# --------------------------------------------------------------------------- data


def papers(start: int, count: int) -> list[HistoryItem]:
    return [
        to_history_item(
            {
                "id": f"p{i}",
                "title": f"Title {i} about topic{i}",
                "abstract": f"Abstract number {i} studies topic{i} with method{i} and data{i}.",
            }
        )
        for i in range(start, start + count)
    ]


def long_items(count: int, length: int = 40) -> list[HistoryItem]:
    return [
        HistoryItem(id=f"d{i}", text=" ".join(f"topic{i}w{j}" for j in range(length)))
        for i in range(count)
    ]


def prompt_tokens(messages: list[BaseMessage], counter: Callable[[str], int]) -> int:
    return sum(counter(_text(m)) for m in messages)


def old_json(profile) -> str:
    return json.dumps(profile.draft().model_dump(), ensure_ascii=False)


# --------------------------------------------------------------------------- prompt plumbing


def test_prompt_holds_task_description_focus_and_every_item() -> None:
    llm = ScriptedChat(script=[answer()])
    profiler = StepBackProfiler(llm, task="scholarly_title")
    items = [*papers(0, 3), HistoryItem(id="note", text="A plain note on topicnote.")]

    build = profiler.build("alice", items)

    assert build.mode == "built"
    assert build.llm_calls == 1
    assert build.chunks == 1
    [messages] = llm.prompts
    assert isinstance(messages[0], SystemMessage)
    assert isinstance(messages[-1], HumanMessage)
    prompt = _text(messages[-1])
    spec = get_task("scholarly_title")
    assert spec.history in prompt
    assert spec.focus in prompt
    for item in items[:3]:
        # pairs are rendered with their labels, output first
        assert f"Title: {item.output}\nAbstract: {item.input}" in prompt
    assert "A plain note on topicnote." in prompt
    assert "This is part" not in prompt  # one chunk: no part marker


def test_custom_task_spec_reaches_the_prompt_and_the_profile() -> None:
    spec = TaskSpec(
        name="recipes",
        history="recipes the user cooked, with their names",
        instruction="Name the following recipe:",
        output_name="name",
        focus="cuisines, spice habits and naming style",
    )
    llm = ScriptedChat(script=[answer()])
    build = StepBackProfiler(llm, task=spec).build("bob", papers(0, 2))
    prompt = llm.human_prompts()[0]
    assert spec.history in prompt
    assert spec.focus in prompt
    assert build.profile.task == "recipes"


def test_profile_carries_answer_and_provenance() -> None:
    llm = ScriptedChat(script=[answer(keywords=["NMT", "BLEU"], style={"tone": "formal"})])
    profiler = StepBackProfiler(llm, task="scholarly_title")
    items = papers(0, 3)
    build = profiler.build("alice", items)
    profile = build.profile
    assert profile.user_id == "alice"
    assert profile.interests == ["machine translation"]
    assert profile.keywords == ["NMT", "BLEU"]
    assert profile.style.tone == "formal"
    assert profile.summary == "Works on MT."
    assert profile.version == 1
    assert profile.item_ids == ["p0", "p1", "p2"]
    assert profile.task == "scholarly_title"
    assert profile.model == profiler.model
    assert "scripted" in profiler.model
    assert profile.prompt_version == distill_module.PROMPT_VERSION
    assert profile.edited is False


def test_unknown_task_name_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown task"):
        StepBackProfiler(ScriptedChat(), task="no-such-task")


# --------------------------------------------------------------------------- caching


def test_second_build_on_same_items_costs_nothing() -> None:
    llm = ScriptedChat()
    profiler = StepBackProfiler(llm)
    items = papers(0, 4)
    first = profiler.build("alice", items)
    second = profiler.build("alice", items, first.profile)
    shuffled = profiler.build("alice", list(reversed(items)), first.profile)

    assert len(llm.prompts) == 1
    for again in (second, shuffled):
        assert again.mode == "unchanged"
        assert again.llm_calls == 0
        assert again.profile == first.profile
        assert again.profile.version == 1


def test_model_change_forces_full_rebuild() -> None:
    items = papers(0, 3)
    first = StepBackProfiler(ScriptedChat(model_name="model-a")).build("alice", items)
    llm_b = ScriptedChat(model_name="model-b")
    profiler_b = StepBackProfiler(llm_b)
    assert profiler_b.model != first.profile.model

    rebuilt = profiler_b.build("alice", items, first.profile)

    assert rebuilt.mode == "built"
    assert rebuilt.llm_calls == 1
    assert rebuilt.profile.model == profiler_b.model
    assert rebuilt.profile.version == 2
    prompt = llm_b.human_prompts()[0]
    assert old_json(first.profile) not in prompt
    assert all(item.input in prompt for item in items)


def test_task_change_forces_full_rebuild() -> None:
    items = papers(0, 3)
    llm = ScriptedChat()
    first = StepBackProfiler(llm, task="generic").build("alice", items)
    rebuilt = StepBackProfiler(llm, task="scholarly_title").build("alice", items, first.profile)
    assert rebuilt.mode == "built"
    assert rebuilt.llm_calls == 1
    assert rebuilt.profile.task == "scholarly_title"
    assert get_task("scholarly_title").focus in llm.human_prompts()[-1]


def test_prompt_version_change_forces_full_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    items = papers(0, 2)
    llm = ScriptedChat()
    first = StepBackProfiler(llm).build("alice", items)
    monkeypatch.setattr(distill_module, "PROMPT_VERSION", "test-next")
    rebuilt = StepBackProfiler(llm).build("alice", items, first.profile)
    assert rebuilt.mode == "built"
    assert rebuilt.profile.prompt_version == "test-next"


# --------------------------------------------------------------------------- incremental


def test_added_items_update_the_profile_with_one_call_on_new_items_only() -> None:
    llm = ScriptedChat()
    profiler = StepBackProfiler(llm)
    old_items, new_items = papers(0, 3), papers(3, 2)
    first = profiler.build("alice", old_items)
    llm.prompts.clear()

    update = profiler.build("alice", [*old_items, *new_items], first.profile)

    assert update.mode == "updated"
    assert update.llm_calls == 1
    [prompt] = llm.human_prompts()
    assert old_json(first.profile) in prompt
    for item in new_items:
        assert item.output in prompt and item.input in prompt
    for item in old_items:
        assert item.output not in prompt and item.input not in prompt
    assert update.profile.version == 2
    assert update.profile.item_ids == ["p0", "p1", "p2", "p3", "p4"]


# --------------------------------------------------------------------------- chunking


def small_profiler(llm: BaseChatModel, room: int = 150, **options: Any) -> StepBackProfiler:
    """A profiler whose history budget is about ``room`` words."""
    probe = StepBackProfiler(llm, context_tokens=100_000, max_output_tokens=50, token_counter=words)
    overhead = probe.context_tokens - probe.max_output_tokens - probe.chunk_tokens
    return StepBackProfiler(
        llm,
        context_tokens=overhead + 50 + room,
        max_output_tokens=50,
        token_counter=words,
        **options,
    )


def map_prompts(llm: ScriptedChat) -> list[str]:
    return [p for p in llm.human_prompts() if "Partial profile" not in p]


def merge_prompts(llm: ScriptedChat) -> list[str]:
    return [p for p in llm.human_prompts() if "Partial profile" in p]


def test_long_history_is_mapped_in_chunks_and_merged_without_dropping_items() -> None:
    llm = ScriptedChat()
    profiler = small_profiler(llm)
    items = long_items(12, length=40)

    build = profiler.build("alice", items)

    maps, merges = map_prompts(llm), merge_prompts(llm)
    assert build.chunks > 2
    assert len(maps) == build.chunks
    assert len(merges) >= 1
    assert build.llm_calls == len(maps) + len(merges)
    for number, prompt in enumerate(maps, start=1):
        assert f"This is part {number} of {build.chunks} of the history." in prompt
    joined = "\n".join(maps)
    for item in items:
        assert item.text in joined, f"item {item.id} was dropped"
    # every partial profile reaches a merge; the last merge gives the final profile
    assert build.profile.keywords == json.loads(default_answer(llm.prompts[-1]))["keywords"]
    for prompt in llm.prompts:
        assert prompt_tokens(prompt, words) <= profiler.context_tokens - profiler.max_output_tokens
    assert build.profile.item_ids == [item.id for item in items]


def test_many_partials_merge_in_several_levels() -> None:
    llm = ScriptedChat()
    profiler = small_profiler(llm, room=110)
    build = profiler.build("alice", long_items(30, length=45))
    merges = merge_prompts(llm)
    assert build.chunks >= 10
    assert len(merges) >= 2
    # the final call merges partial profiles and nothing follows it
    assert "Partial profile" in llm.human_prompts()[-1]
    for prompt in llm.prompts:
        assert prompt_tokens(prompt, words) <= profiler.context_tokens - profiler.max_output_tokens


def test_oversized_item_is_split_into_parts_and_keeps_every_word() -> None:
    llm = ScriptedChat()
    profiler = small_profiler(llm)
    giant = HistoryItem(id="giant", text=" ".join(f"gw{j}" for j in range(600)))
    items = [HistoryItem(id="small", text="a small topicsmall note"), giant]

    build = profiler.build("alice", items)

    maps = map_prompts(llm)
    assert build.chunks >= 4
    joined = "\n".join(maps)
    assert "(part 1)" in joined and "(part 2)" in joined
    found = re.findall(r"\bgw(\d+)\b", joined)
    assert [int(n) for n in found] == list(range(600))  # every word, once, in order
    assert "a small topicsmall note" in joined
    for prompt in llm.prompts:
        assert prompt_tokens(prompt, words) <= profiler.context_tokens - profiler.max_output_tokens


def test_prompts_fit_the_context_with_the_default_token_estimate() -> None:
    """Without a tokenizer the profiler estimates tokens; its prompts must still fit."""
    from langchain_stepback_profile.distill import _approximate_tokens

    for context in (1300, 2000, 4096):
        llm = ScriptedChat()
        profiler = StepBackProfiler(llm, context_tokens=context, max_output_tokens=256)
        items = [
            HistoryItem(id=str(i), text=" ".join(f"word{i}_{j}" for j in range(120)))
            for i in range(40)
        ]
        profiler.build("alice", items)
        for prompt in llm.prompts:
            used = prompt_tokens(prompt, _approximate_tokens)
            assert used <= context - 256, (context, used)


def test_incremental_update_with_many_new_items_maps_only_the_new_ones() -> None:
    llm = ScriptedChat()
    profiler = small_profiler(llm)
    old_items, new_items = long_items(2, length=20), long_items(14, length=40)[2:]
    first = profiler.build("alice", old_items)
    llm.prompts.clear()

    update = profiler.build("alice", [*old_items, *new_items], first.profile)

    assert update.mode == "updated"
    assert update.chunks > 1
    joined = "\n".join(llm.human_prompts())
    for item in old_items:
        assert item.text not in joined
    for item in new_items:
        assert item.text in joined
    # the old profile is merged with the partial profiles of the new items
    assert any(old_json(first.profile) in p for p in merge_prompts(llm))
    assert update.profile.version == 2
    assert update.profile.item_ids == [item.id for item in [*old_items, *new_items]]
    for prompt in llm.prompts:
        assert prompt_tokens(prompt, words) <= profiler.context_tokens - profiler.max_output_tokens


def test_single_chunk_update_with_a_full_budget_fits_the_context() -> None:
    llm = ScriptedChat()
    profiler = small_profiler(llm)
    first = profiler.build("alice", long_items(1, length=5))
    budget = profiler.chunk_tokens - words(old_json(first.profile))
    # items of 10 words render as "Item N" + 10 words and cost 2 more tokens each
    new_items = [
        HistoryItem(id=f"n{i}", text=" ".join(f"topicn{i}w{j}" for j in range(10)))
        for i in range(budget // 14)
    ]
    llm.prompts.clear()
    update = profiler.build("alice", [*long_items(1, length=5), *new_items], first.profile)
    assert update.mode == "updated"
    assert update.llm_calls == 1
    [prompt] = llm.prompts
    assert old_json(first.profile) in _text(prompt[-1])
    assert prompt_tokens(prompt, words) <= profiler.context_tokens - profiler.max_output_tokens


def test_model_errors_propagate_as_they_are() -> None:
    def refused(messages: list[BaseMessage]) -> str:
        raise ValueError("invalid request: unknown parameter")  # not worth a retry

    llm = ScriptedChat(script=[refused])
    with pytest.raises(ValueError, match="invalid request"):
        StepBackProfiler(llm).build("alice", papers(0, 1))
    assert len(llm.prompts) == 1
    # an exhausted fake model raises StopIteration: it must not be mistaken for the end
    # of the build (which once surfaced as "cannot unpack NoneType"); through the retry
    # wrapper's generator Python turns it into a RuntimeError
    with pytest.raises((StopIteration, RuntimeError)):
        StepBackProfiler(GenericFakeChatModel(messages=iter([]))).build("alice", papers(0, 1))


def test_too_small_a_context_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="context_tokens"):
        StepBackProfiler(ScriptedChat(), context_tokens=300)
    with pytest.raises(InvalidArgumentError, match="max_output_tokens"):
        StepBackProfiler(ScriptedChat(), context_tokens=2048, max_output_tokens=1024)


def test_context_is_read_from_the_model_when_it_says() -> None:
    class SmallContextChat(ScriptedChat):
        context_tokens: int = 3000

    assert StepBackProfiler(SmallContextChat()).context_tokens == 3000
    assert StepBackProfiler(ScriptedChat()).context_tokens == 8192


# --------------------------------------------------------------------------- JSON answers


@pytest.mark.parametrize(
    "raw",
    [
        "Sure! Here is the profile:\n```json\n" + answer() + "\n```\nHope this helps.",
        "```\n" + answer() + "\n```",
        "Note {this is not JSON} and then " + answer(),
        '{"note": 1} ' + answer(),  # the first object is not a profile
    ],
)
def test_json_with_chatter_and_fences_is_parsed(raw: str) -> None:
    llm = ScriptedChat(script=[raw])
    build = StepBackProfiler(llm).build("alice", papers(0, 1))
    assert build.llm_calls == 1
    assert build.profile.interests == ["machine translation"]
    assert build.profile.summary == "Works on MT."


def test_lenient_fields_are_accepted() -> None:
    draft = parse_draft(
        '{"interests": "parsing, machine translation; dialogue", "keywords": "NMT\\nBLEU",'
        ' "style": "formal and terse", "summary": "Works on MT."}'
    )
    assert draft.interests == ["parsing", "machine translation", "dialogue"]
    assert draft.keywords == ["NMT", "BLEU"]
    assert draft.style.tone == "formal and terse"
    draft = parse_draft(
        '{"interests": ["a"], "style": {"tone": ["formal", "dry"], "length": null}}'
    )
    assert draft.style.tone == "formal, dry"
    assert draft.style.length == ""


def test_a_bad_answer_is_repaired_once() -> None:
    original_ok = answer(summary="Second try.")
    llm = ScriptedChat(script=["I am sorry, I cannot write JSON today.", original_ok])
    build = StepBackProfiler(llm).build("alice", papers(0, 2))

    assert build.llm_calls == 2
    assert build.profile.summary == "Second try."
    first, repair = llm.prompts
    assert repair[: len(first)] == first  # the repair continues the same conversation
    assert isinstance(repair[-2], AIMessage)
    assert "I cannot write JSON" in _text(repair[-2])
    assert isinstance(repair[-1], HumanMessage)
    assert "could not be used" in _text(repair[-1])
    assert "no usable JSON profile" in _text(repair[-1])  # the error is named


def test_an_empty_profile_is_repaired_with_the_reason() -> None:
    llm = ScriptedChat(script=['{"interests": [], "summary": ""}', answer()])
    build = StepBackProfiler(llm).build("alice", papers(0, 1))
    assert build.llm_calls == 2
    assert "no interests, keywords or summary" in llm.human_prompts()[1]


def test_two_bad_answers_raise_profile_generation_error() -> None:
    llm = ScriptedChat(script=["nope", "still nope"])
    with pytest.raises(ProfileGenerationError, match="repair") as caught:
        StepBackProfiler(llm).build("alice", papers(0, 1))
    assert "still nope" in str(caught.value)
    assert len(llm.prompts) == 2


# --------------------------------------------------------------------------- tool mode


def test_tool_mode_reads_the_tool_call() -> None:
    args = {"interests": ["parsing"], "keywords": "CKY, PCFG", "summary": "Parses."}
    llm = ToolChat(script=[tool_call(args)])
    build = StepBackProfiler(llm).build("alice", papers(0, 2))

    assert build.llm_calls == 1
    assert build.profile.interests == ["parsing"]
    assert build.profile.keywords == ["CKY", "PCFG"]
    [[tool]] = llm.bound_tools
    assert tool["function"]["name"] == "ProfileDraft"
    assert llm.call_kwargs[0]["tools"][0]["function"]["name"] == "ProfileDraft"


def test_tool_mode_falls_back_to_json_text_and_repairs() -> None:
    llm = ToolChat(script=[AIMessage("no tool call here"), AIMessage(answer())])
    build = StepBackProfiler(llm, structured="tool").build("alice", papers(0, 1))
    assert build.llm_calls == 2
    assert build.profile.interests == ["machine translation"]

    llm = ToolChat(script=[AIMessage("plain text " + answer(summary="From text."))])
    build = StepBackProfiler(llm).build("alice", papers(0, 1))
    assert build.llm_calls == 1
    assert build.profile.summary == "From text."


def test_tool_mode_gives_up_after_one_repair() -> None:
    llm = ToolChat(script=[tool_call({"interests": []}), tool_call({"summary": " "})])
    with pytest.raises(ProfileGenerationError):
        StepBackProfiler(llm, structured="tool").build("alice", papers(0, 1))
    assert len(llm.prompts) == 2


def test_forcing_tools_on_a_model_without_them_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="structured='json'"):
        StepBackProfiler(ScriptedChat(), structured="tool")


def test_json_mode_can_be_forced_on_a_tool_model() -> None:
    llm = ToolChat(script=[answer()])
    build = StepBackProfiler(llm, structured="json").build("alice", papers(0, 1))
    assert build.profile.interests == ["machine translation"]
    assert llm.bound_tools == []
    assert "tools" not in llm.call_kwargs[0]


def test_generic_fake_chat_model_works_in_json_mode() -> None:
    llm = GenericFakeChatModel(messages=iter([answer()]))
    build = StepBackProfiler(llm).build("alice", papers(0, 1))
    assert build.profile.summary == "Works on MT."


# --------------------------------------------------------------------------- async


async def test_abuild_runs_map_calls_concurrently_and_matches_build() -> None:
    items = long_items(12, length=40)
    sync_llm = ScriptedChat()
    expected = small_profiler(sync_llm).build("alice", items)

    async_llm = ScriptedChat(delay=0.02)
    got = await small_profiler(async_llm).abuild("alice", items)

    assert got.mode == expected.mode == "built"
    assert got.profile.draft() == expected.profile.draft()
    assert got.profile.item_ids == expected.profile.item_ids
    assert got.llm_calls == expected.llm_calls
    assert got.chunks == expected.chunks
    assert sorted(async_llm.human_prompts()) == sorted(sync_llm.human_prompts())
    assert async_llm.max_active > 1  # the map calls of one level overlapped


async def test_abuild_unchanged_and_update_modes() -> None:
    llm = ScriptedChat()
    profiler = StepBackProfiler(llm)
    first = await profiler.abuild("alice", papers(0, 2))
    again = await profiler.abuild("alice", papers(0, 2), first.profile)
    assert again.mode == "unchanged" and again.llm_calls == 0
    update = await profiler.abuild("alice", papers(0, 3), first.profile)
    assert update.mode == "updated" and update.llm_calls == 1
    assert old_json(first.profile) in llm.human_prompts()[-1]


async def test_abuild_repairs_a_bad_answer() -> None:
    llm = ScriptedChat(script=["garbage", answer()])
    build = await StepBackProfiler(llm).abuild("alice", papers(0, 1))
    assert build.llm_calls == 2


# --------------------------------------------------------------------------- usage


def test_usage_counts_calls_and_tokens_reported_by_the_model() -> None:
    usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    llm = ScriptedChat(script=["bad", answer()], usage=usage)
    build = StepBackProfiler(llm).build("alice", papers(0, 1))
    assert build.llm_calls == 2
    assert build.input_tokens == 200
    assert build.output_tokens == 40

    counter = LLMUsage()
    llm.invoke("hello", config={"callbacks": [counter]})
    assert counter.as_dict() == {"llm_calls": 1, "input_tokens": 100, "output_tokens": 20}
    assert counter.total_tokens == 120


def test_usage_is_zero_when_the_model_reports_none() -> None:
    build = StepBackProfiler(ScriptedChat()).build("alice", papers(0, 1))
    assert (build.llm_calls, build.input_tokens, build.output_tokens) == (1, 0, 0)


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="profile strategy"):
        StepBackProfiler(None, strategy="magic")
    with pytest.raises(InvalidArgumentError, match="needs a chat model"):
        StepBackProfiler(None, strategy="hybrid")


class OfflineTokenizerChat(ScriptedChat):
    """A model whose tokenizer needs a download (as ChatOpenAI's tiktoken does offline)."""

    model_name: str = "offline-tokenizer"

    def get_num_tokens(self, text: str) -> int:
        raise OSError("cannot download the tokenizer")


def test_failed_token_counting_is_estimated_and_said_once_per_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [HistoryItem(id=str(i), text=f"paper {i} on parsing") for i in range(3)]
    llm, other = OfflineTokenizerChat(), OfflineTokenizerChat()
    with caplog.at_level("WARNING", logger="langchain_stepback_profile.distill"):
        for user in ("alice", "bob", "carol"):  # a profiler per user, as refresh makes them
            build = StepBackProfiler(llm).build(user, items)
            assert build.profile.user_id == user
        StepBackProfiler(other).build("dave", items)  # another model object is tried anew
    warnings = [r for r in caplog.records if "token counting with the model failed" in r.message]
    assert len(warnings) == 2
    assert id(llm) in distill_module._UNCOUNTABLE and id(other) in distill_module._UNCOUNTABLE


def test_a_transient_model_failure_is_retried_then_reported_by_name() -> None:
    from langchain_stepback_profile.errors import ProfileModelError

    items = [HistoryItem(id="1", text="NMT paper about topicmt")]

    def down(messages: list[BaseMessage]) -> str:
        raise ConnectionError("connection refused")

    flaky = ScriptedChat(script=[down, down])  # two failures, then a valid answer
    build = StepBackProfiler(flaky, structured="json").build("alice", items)
    assert len(flaky.prompts) == 3 and "topicmt" in build.profile.interests

    dead = ScriptedChat(script=[down] * 10)
    with pytest.raises(ProfileModelError, match=r"scripted-chat:scripted failed 3 times.*refused"):
        StepBackProfiler(dead, structured="json").build("alice", items)
    assert len(dead.prompts) == 3


async def test_a_transient_failure_is_retried_in_async_builds_too() -> None:
    from langchain_stepback_profile.errors import ProfileModelError

    def down(messages: list[BaseMessage]) -> str:
        raise TimeoutError("read timed out")

    dead = ScriptedChat(script=[down] * 10)
    with pytest.raises(ProfileModelError, match="TimeoutError: read timed out"):
        await StepBackProfiler(dead, structured="json").abuild(
            "alice", [HistoryItem(id="1", text="x y z")]
        )
    assert len(dead.prompts) == 3


ALMOST_JSON = {
    "trailing comma": '{"interests": ["parsing", "MT",], "summary": "Works on MT.",}',
    "single quotes": "{'interests': ['parsing'], 'summary': 'Works on MT.'}",
    "truncated string": '{"interests": ["parsing", "MT"], "summary": "Works on machine transl',
    "truncated list": '{"interests": ["parsing", "MT"',
    "unquoted keys": '{interests: ["parsing"], summary: "Works on MT."}',
    "python literals": '{"interests": ["parsing"], "keywords": None, "summary": "MT."}',
    "fence and chatter": 'Sure! ```json\n{"interests": ["parsing"], "summary": "MT.",}\n```',
    "comment inside": '{"interests": ["parsing"], // topics\n "summary": "MT."}',
}


@pytest.mark.parametrize("case", list(ALMOST_JSON))
def test_almost_json_answers_are_mended_without_a_repair_call(case: str) -> None:
    llm = ScriptedChat(script=[ALMOST_JSON[case]])
    build = StepBackProfiler(llm, structured="json").build("alice", papers(0, 1))
    assert len(llm.prompts) == 1  # no repair call
    assert "parsing" in build.profile.interests


def test_an_answer_with_no_profile_in_it_still_fails_after_one_repair() -> None:
    llm = ScriptedChat(script=["I cannot help with that.", "Still no."])
    with pytest.raises(ProfileGenerationError):
        StepBackProfiler(llm, structured="json").build("alice", papers(0, 1))
    assert len(llm.prompts) == 2


def test_auto_picks_by_profile_attribution_for_small_models() -> None:
    """``auto``: extractive for a small model (0 calls; its summaries pick out their user less
    well), hybrid when a custom schema needs a model to fill it, llm for any other model."""
    from pydantic import BaseModel

    class Topics(BaseModel):
        topics: list[str]

    small = ScriptedChat(model_name="SmolLM2-135M-Instruct")
    assert StepBackProfiler(small, strategy="auto").strategy == "extractive"
    assert StepBackProfiler(small, strategy="auto").build("alice", papers(0, 2)).llm_calls == 0
    assert StepBackProfiler(small, strategy="auto", profile_schema=Topics).strategy == "hybrid"
    assert StepBackProfiler(ScriptedChat(), strategy="auto").strategy == "llm"
