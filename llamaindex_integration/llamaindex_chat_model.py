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

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.llms import LLM
from pydantic import ConfigDict

from llamaindex_integration.messages import to_llamaindex_messages


class LlamaIndexChatModel(BaseChatModel):
    """A LangChain chat model that answers with a LlamaIndex ``LLM`` (``chat``/``achat``).

    Text in, text out: profiles are written in the profiler's validated-JSON mode. Extra call
    arguments go to the LLM's ``chat``; ``stop`` strings cut the answer after it is generated.
    The LLM's context window (``llm.metadata.context_window``) sizes the profiler's chunks,
    and the token counts it reports (OpenAI-style ``prompt_tokens``/``completion_tokens``)
    become the message's usage.

    Args:
        llm: any LlamaIndex LLM, e.g. ``OpenAILike`` against an OpenAI-compatible server.

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

    @property
    def _llm_type(self) -> str:
        return "llamaindex"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.llm.metadata.model_name, "llm_class": self.llm.class_name()}

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
        return self._result(response, stop)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = await self.llm.achat(to_llamaindex_messages(messages), **kwargs)
        return self._result(response, stop)

    def _result(self, response: ChatResponse, stop: list[str] | None) -> ChatResult:
        text = response.message.content or ""
        cuts = [i for i in (text.find(s) for s in stop or [] if s) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        counts = response.additional_kwargs
        usage = None
        if "prompt_tokens" in counts and "completion_tokens" in counts:
            inputs, outputs = int(counts["prompt_tokens"]), int(counts["completion_tokens"])
            usage = {
                "input_tokens": inputs,
                "output_tokens": outputs,
                "total_tokens": inputs + outputs,
            }
        message = AIMessage(
            text,
            usage_metadata=usage,
            response_metadata={"model_name": self.llm.metadata.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
