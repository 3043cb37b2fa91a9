"""LangChainLLM: any LangChain chat model as a LlamaIndex LLM, so it can serve LlamaIndex agents.

By default it wraps the embedded local model (SmolLM2-135M-Instruct through llama.cpp), so a
LlamaIndex agent runs offline with no server.

Example:
    ```python
    from llama_index.core.agent.workflow import ReActAgent
    agent = ReActAgent(llm=LangChainLLM(), tools=[])
    await agent.run("Suggest a title for: ...", memory=memory)
    ```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from langchain_stepback_profile.distill import model_id
from langchain_stepback_profile.errors import InvalidArgumentError
from llamaindex_integration.messages import (
    to_langchain_messages,
    to_llamaindex_message,
    tool_selections,
)

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool


def _embedded_model() -> BaseChatModel:
    from langchain_stepback_profile.llms import default_chat_model

    return default_chat_model()


def _response(message: AIMessage, delta: str | None = None) -> ChatResponse:
    """A LangChain answer as a LlamaIndex ``ChatResponse`` (usage in OpenAI's key names)."""
    usage = message.usage_metadata
    counts = (
        {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
        }
        if usage
        else {}
    )
    return ChatResponse(
        message=to_llamaindex_message(message),
        delta=delta,
        raw=message.response_metadata,
        additional_kwargs=counts,
    )


class LangChainLLM(FunctionCallingLLM):
    """A LlamaIndex LLM that answers with a LangChain chat model (default: the embedded one).

    Chat, completion, streaming and async all go through the chat model's ``invoke``,
    ``ainvoke``, ``stream`` and ``astream``. Chat models with tool calling (``bind_tools``, as
    ``ChatOpenAI`` has) are reported as function-calling models and run LlamaIndex's
    ``FunctionAgent`` with tools; the others (the embedded model) run ``ReActAgent``, which
    needs plain chat only. Extra call arguments (``max_tokens=32``...) go to the chat model.

    Args:
        chat_model: any LangChain chat model; default the embedded SmolLM2-135M-Instruct.

    Example:
        ```python
        from langchain_stepback_profile.llms import default_chat_model
        llm = LangChainLLM(chat_model=default_chat_model(max_tokens=32))
        llm.complete("Name one colour.").text
        # -> 'The most obvious example of a colour is red.'
        ```
    """

    chat_model: BaseChatModel = Field(
        default_factory=_embedded_model, description="The LangChain chat model that answers."
    )

    @classmethod
    def class_name(cls) -> str:
        return "LangChainLLM"

    @property
    def metadata(self) -> LLMMetadata:
        model = self.chat_model
        return LLMMetadata(
            context_window=getattr(model, "context_tokens", None) or DEFAULT_CONTEXT_WINDOW,
            num_output=getattr(model, "max_tokens", None) or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=type(model).bind_tools is not BaseChatModel.bind_tools,
            model_name=model_id(model),
        )

    # ----------------------------------------------------------------- chat
    def _model(self, tools: list[dict] | None, tool_choice: str | None) -> Any:
        """The chat model, bound to the tools of a ``chat_with_tools`` call if there are any."""
        if not tools:
            return self.chat_model
        if not self.metadata.is_function_calling_model:
            raise InvalidArgumentError(
                f"{type(self.chat_model).__name__} cannot call tools: run the tools with a "
                "ReActAgent, or give LangChainLLM a chat model with tool calling (bind_tools)"
            )
        return self.chat_model.bind_tools(tools, tool_choice=tool_choice)

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        model = self._model(kwargs.pop("tools", None), kwargs.pop("tool_choice", None))
        return _response(model.invoke(to_langchain_messages(messages), **kwargs))

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        model = self._model(kwargs.pop("tools", None), kwargs.pop("tool_choice", None))
        return _response(await model.ainvoke(to_langchain_messages(messages), **kwargs))

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        model = self._model(kwargs.pop("tools", None), kwargs.pop("tool_choice", None))
        chunks: Iterator[AIMessageChunk] = model.stream(to_langchain_messages(messages), **kwargs)

        def gen() -> ChatResponseGen:
            total: AIMessageChunk | None = None
            for chunk in chunks:
                total = chunk if total is None else total + chunk
                yield _response(total, delta=chunk.text)

        return gen()

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        model = self._model(kwargs.pop("tools", None), kwargs.pop("tool_choice", None))
        chunks: AsyncIterator[AIMessageChunk] = model.astream(
            to_langchain_messages(messages), **kwargs
        )

        async def gen() -> ChatResponseAsyncGen:
            total: AIMessageChunk | None = None
            async for chunk in chunks:
                total = chunk if total is None else total + chunk
                yield _response(total, delta=chunk.text)

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self._astream_chat(messages, **kwargs)

    # ----------------------------------------------------------------- completion
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self._astream_chat)(prompt, **kwargs)

    # ----------------------------------------------------------------- tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": [tool.metadata.to_openai_tool() for tool in tools],
            "tool_choice": tool_choice or ("any" if tool_required and tools else None),
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls are allowed."""
        if not allow_parallel_tool_calls:
            calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
            extra = {id(b) for b in calls[1:]}
            response.message.blocks = [b for b in response.message.blocks if id(b) not in extra]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = tool_selections(response.message)
        if not calls and error_on_no_tool_call:
            raise InvalidArgumentError(
                "the model answered without calling a tool; pass error_on_no_tool_call=False "
                "to accept plain answers"
            )
        return calls
