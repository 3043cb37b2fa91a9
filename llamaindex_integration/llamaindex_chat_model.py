"""LlamaIndexChatModel: any LlamaIndex LLM as a LangChain chat model, so it can write profiles.

The core :class:`~langchain_stepback_profile.StepBackProfiler` takes a LangChain chat model;
this adapter lets the LLM a LlamaIndex application already runs write the profiles.

Example:
    ```python
    from llama_index.llms.openai_like import OpenAILike
    llm = OpenAILike(model="local", api_base="http://127.0.0.1:8000/v1", api_key="none",
                     is_chat_model=True, context_window=2048)
    memory.refresh(llm=LlamaIndexChatModel(llm=llm))
    ```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.llms import LLM
from pydantic import ConfigDict, Field, model_validator

from llamaindex_integration.messages import to_llamaindex_messages

_LLM_SETTINGS = ("temperature", "max_tokens", "timeout", "max_retries")
"""The standard chat model settings, which are fields of the LlamaIndex LLM itself."""


class LlamaIndexChatModel(BaseChatModel):
    """A LangChain chat model that answers with a LlamaIndex ``LLM`` (``chat``/``achat``).

    Text in, text out: profiles are written in the profiler's validated-JSON mode. Extra call
    arguments go to the LLM's ``chat`` (``stream_chat`` when streaming); ``stop`` strings cut
    the answer after it is generated (a stream ends at the first one).
    The LLM's context window (``llm.metadata.context_window``) sizes the profiler's chunks,
    and the token counts it reports (OpenAI-style ``prompt_tokens``/``completion_tokens``)
    become the message's usage.

    Args:
        llm: any LlamaIndex LLM, e.g. ``OpenAILike`` against an OpenAI-compatible server.
        temperature: set on the LLM (which must have a ``temperature`` setting, as OpenAI
            and OpenAILike have); ``None`` keeps the LLM's own.
        max_tokens: set on the LLM likewise (``max_tokens``).
        timeout: set on the LLM likewise: seconds one request may take (``timeout``).
        max_retries: set on the LLM likewise: how often it retries a failed request.
        stop: strings that end the answer (cut after generation); ``invoke(stop=...)``
            overrides.

    The four LLM settings are applied to a copy of ``llm`` when the chat model is created;
    the LLM you pass is not changed. Give them to an LLM that has made no calls yet: a client
    it already built keeps the settings it was built with.

    Example:
        ```python
        from llama_index.core.llms import MockLLM
        chat = LlamaIndexChatModel(llm=MockLLM(max_tokens=4))
        chat.invoke("hello").content
        # -> 'text text text text'
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: LLM
    temperature: float | None = Field(default=None, ge=0.0)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    stop: list[str] | None = None

    @model_validator(mode="after")
    def _apply_settings(self) -> LlamaIndexChatModel:
        settings = {
            name: getattr(self, name) for name in _LLM_SETTINGS if getattr(self, name) is not None
        }
        if not settings:
            return self
        fields = type(self.llm).model_fields
        missing = sorted(name for name in settings if name not in fields)
        if missing:
            raise ValueError(  # pydantic reports it as a ValidationError
                f"{type(self.llm).__name__} has no {', '.join(missing)} setting, so "
                "LlamaIndexChatModel cannot apply it: leave it out, or configure the "
                "LlamaIndex LLM itself"
            )
        if any(getattr(self.llm, name) != value for name, value in settings.items()):
            self.llm = self.llm.model_copy(update=settings)
        return self

    @property
    def _llm_type(self) -> str:
        return "llamaindex"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model_name": self.llm.metadata.model_name,
            "llm_class": self.llm.class_name(),
        }
        for name in ("temperature", "max_tokens"):  # the LLM's own, whoever set them
            if name in type(self.llm).model_fields:
                params[name] = getattr(self.llm, name)
        if self.stop:
            params["stop"] = self.stop
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="llamaindex", ls_model_type="chat")
        model = kwargs.get("model")
        params["ls_model_name"] = model if isinstance(model, str) else self._model_name
        temperature = kwargs.get("temperature", getattr(self.llm, "temperature", None))
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", getattr(self.llm, "max_tokens", None))
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        stops = stop if stop is not None else self.stop
        if stops:
            params["ls_stop"] = list(stops)
        return params

    @property
    def _model_name(self) -> str:
        return self.llm.metadata.model_name or self.llm.class_name()

    @property
    def context_tokens(self) -> int:
        """The LlamaIndex LLM's context window, in tokens."""
        return self.llm.metadata.context_window

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = self.llm.chat(to_llamaindex_messages(messages), **kwargs)
        return self._result(response, self.stop if stop is None else stop)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = await self.llm.achat(to_llamaindex_messages(messages), **kwargs)
        return self._result(response, self.stop if stop is None else stop)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        responses = self.llm.stream_chat(to_llamaindex_messages(messages), **kwargs)
        stream = _Stream(self.stop if stop is None else stop)
        try:
            for response in responses:
                if text := stream.add(response):
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                if stream.stopped:
                    break
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                close()
        yield from self._ending(stream)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        responses = await self.llm.astream_chat(to_llamaindex_messages(messages), **kwargs)
        stream = _Stream(self.stop if stop is None else stop)
        try:
            async for response in responses:
                if text := stream.add(response):
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                if stream.stopped:
                    break
        finally:
            aclose = getattr(responses, "aclose", None)
            if aclose is not None:
                await aclose()
        for chunk in self._ending(stream):
            yield chunk

    def _ending(self, stream: _Stream) -> Iterable[ChatGenerationChunk]:
        """The text held back as a possible stop string, then the last chunk with the usage."""
        if text := stream.rest():
            yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        message = AIMessageChunk(
            content="",
            usage_metadata=stream.usage,
            response_metadata={"model_name": self.llm.metadata.model_name},
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=message)

    def _result(self, response: ChatResponse, stop: list[str] | None) -> ChatResult:
        text = response.message.content or ""
        cuts = [i for i in (text.find(s) for s in stop or [] if s) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        message = AIMessage(
            text,
            usage_metadata=_usage(response),
            response_metadata={"model_name": self.llm.metadata.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _usage(response: ChatResponse) -> UsageMetadata | None:
    """The token counts a response reports in OpenAI's key names, as LangChain usage."""
    counts = response.additional_kwargs
    if "prompt_tokens" not in counts or "completion_tokens" not in counts:
        return None
    inputs, outputs = int(counts["prompt_tokens"]), int(counts["completion_tokens"])
    return UsageMetadata(input_tokens=inputs, output_tokens=outputs, total_tokens=inputs + outputs)


class _Stream:
    """A streamed answer cut at the first stop string: each response's new text is given out
    except an ending that could begin a stop string, held back until the next text decides."""

    def __init__(self, stops: Sequence[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.text = ""  # everything received
        self.given = 0  # how much of it was given out
        self.stopped = False
        self.usage: UsageMetadata | None = None

    def add(self, response: ChatResponse) -> str:
        """The text that ``response`` adds and that can be given out now."""
        self.usage = _usage(response) or self.usage
        content = response.message.content
        if response.delta is not None:
            self.text += response.delta
        elif content is not None and content.startswith(self.text):
            self.text = content  # no delta: the message so far
        cuts = [i for i in (self.text.find(s, max(0, self.given - len(s))) for s in self.stops)]
        found = [i for i in cuts if i >= 0]
        if found:
            self.stopped = True
            return self._give(min(found))
        held = max(
            (
                k
                for s in self.stops
                for k in range(min(len(s) - 1, len(self.text)), 0, -1)
                if self.text.endswith(s[:k])
            ),
            default=0,
        )
        return self._give(len(self.text) - held)

    def rest(self) -> str:
        """What is still held back once the stream ended (nothing after a stop string)."""
        return "" if self.stopped else self._give(len(self.text))

    def _give(self, end: int) -> str:
        end = max(end, self.given)
        text, self.given = self.text[self.given : end], end
        return text
