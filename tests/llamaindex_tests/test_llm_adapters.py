"""The two LLM adapters: LlamaIndex LLMs writing profiles through the core profiler, and
LangChain chat models answering LlamaIndex (FunctionAgent with real tools included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.tools import FunctionTool
from pydantic import Field

from langchain_stepback_profile import InvalidArgumentError, MiniLMEmbeddings, ProfileMemory
from langchain_stepback_profile.llms import LocalChatModel
from langchain_stepback_profile.usage import LLMUsage
from llamaindex_integration import LangChainLLM, LlamaIndexChatModel
from llamaindex_integration.messages import to_langchain_messages, to_llamaindex_messages
from tests.llamaindex_tests.helpers import ProfileWriterLLM


class CountingLLM(CustomLLM):
    """A LlamaIndex LLM that reports OpenAI-style token counts."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, model_name="counting")

    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role="assistant", content="Short answer. STOP and more"),
            additional_kwargs={"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        )

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise AssertionError("chat is used")

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise AssertionError("chat is used")


class MultiplyingChat(BaseChatModel):
    """A LangChain chat model with tool calling: it calls ``multiply`` on a user turn, and
    answers with the tool's result once it has one."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "multiplying-chat"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=tools, tool_choice=tool_choice)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.seen.append(messages)
        last = messages[-1]
        if isinstance(last, ToolMessage):
            message = AIMessage(f"The product is {last.content}.")
        else:
            assert [t["function"]["name"] for t in kw["tools"]] == ["multiply"]
            message = AIMessage(
                "", tool_calls=[{"name": "multiply", "args": {"a": 6, "b": 7}, "id": "call-1"}]
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


# ----------------------------------------------------------------- LlamaIndex -> LangChain


async def test_a_llamaindex_llm_answers_as_a_langchain_chat_model() -> None:
    chat = LlamaIndexChatModel(llm=CountingLLM())
    usage = LLMUsage()
    answer = await chat.ainvoke("hi", stop=[" STOP"], config={"callbacks": [usage]})
    assert answer.content == "Short answer."
    assert answer.usage_metadata == {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 11, 5)
    assert chat.invoke([HumanMessage("hi")]).content == "Short answer. STOP and more"
    assert chat.context_tokens == 4096
    assert LlamaIndexChatModel(llm=MockLLM(max_tokens=2)).invoke("x").content == "text text"


class StreamingLLM(CountingLLM):
    """CountingLLM's answer streamed in pieces, the token counts on the last response."""

    def stream_chat(self, messages: Any, **kwargs: Any) -> Any:
        pieces, text = ["Short ans", "wer. ST", "OP and more"], ""
        for i, piece in enumerate(pieces):
            text += piece
            counts = {"prompt_tokens": 11, "completion_tokens": 5} if i == len(pieces) - 1 else {}
            yield ChatResponse(
                message=ChatMessage(role="assistant", content=text),
                delta=piece,
                additional_kwargs=counts,
            )

    async def astream_chat(self, messages: Any, **kwargs: Any) -> Any:
        async def gen() -> Any:
            for response in self.stream_chat(messages, **kwargs):
                yield response

        return gen()


async def test_a_llamaindex_llm_streams_as_a_langchain_chat_model() -> None:
    chat = LlamaIndexChatModel(llm=StreamingLLM())
    chunks = list(chat.stream("hi"))
    assert [c.content for c in chunks] == ["Short ans", "wer. ST", "OP and more", ""]
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].usage_metadata == {
        "input_tokens": 11,
        "output_tokens": 5,
        "total_tokens": 16,
    }
    # a stop string split across pieces ends the stream before it, held-back text included
    cut = [c.content for c in chat.stream("hi", stop=[" STOP"])]
    assert "".join(cut) == "Short answer."
    assert cut[0] == "Short ans"  # given out as it came, up to what may begin the stop
    acut = [c.content async for c in chat.astream("hi", stop=["STOP"])]
    assert "".join(acut) == "Short answer. "
    assert "".join(c.content for c in chat.stream("hi", stop=["ST"])) == "Short answer. "
    mock = LlamaIndexChatModel(llm=MockLLM(max_tokens=3))
    assert "".join(str(c.content) for c in mock.stream("x")) == mock.invoke("x").content


def test_a_llamaindex_llm_writes_profiles_through_the_core_profiler(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> None:
    writer = ProfileWriterLLM()
    with ProfileMemory(tmp_path / "store", embeddings=embeddings) as memory:
        memory.add("alice", ["Parsing morphology of Hebrew.", "Morphology-aware parsing."])
        report = memory.refresh(llm=LlamaIndexChatModel(llm=writer))
        profile = memory.get_profile("alice")
        assert report.count("built") == 1 and len(writer.prompts) == 1
        assert "Parsing morphology of Hebrew." in writer.prompts[0]
        assert "morphology" in profile.interests
        assert profile.model == "llamaindex:profile-writer"
        assert memory.refresh(llm=LlamaIndexChatModel(llm=ProfileWriterLLM())).llm_calls == 0


# ----------------------------------------------------------------- LangChain -> LlamaIndex


async def test_a_langchain_chat_model_answers_llamaindex_in_every_mode() -> None:
    def llm() -> LangChainLLM:
        return LangChainLLM(chat_model=GenericFakeChatModel(messages=iter(["Two words"])))

    messages = [ChatMessage(role="user", content="hi")]
    assert llm().chat(messages).message.content == "Two words"
    assert (await llm().achat(messages)).message.content == "Two words"
    assert llm().complete("hi").text == "Two words"
    assert (await llm().acomplete("hi")).text == "Two words"
    streamed = list(llm().stream_chat(messages))
    assert "".join(r.delta for r in streamed) == "Two words"
    assert streamed[-1].message.content == "Two words"
    astreamed = [r async for r in await llm().astream_chat(messages)]
    assert astreamed[-1].message.content == "Two words"
    completions = [r async for r in await llm().astream_complete("hi")]
    assert completions[-1].text == "Two words"


def test_metadata_comes_from_the_chat_model() -> None:
    local = LangChainLLM(chat_model=LocalChatModel(max_tokens=32, n_ctx=1024))  # not loaded
    assert local.metadata.context_window == 1024
    assert local.metadata.num_output == 32
    assert local.metadata.model_name == "llama-cpp-local:SmolLM2-135M-Instruct.Q4_1"
    assert local.metadata.is_chat_model
    assert not local.metadata.is_function_calling_model
    assert LangChainLLM(chat_model=MultiplyingChat()).metadata.is_function_calling_model


def test_tools_need_a_chat_model_with_tool_calling() -> None:
    tool = FunctionTool.from_defaults(fn=lambda a, b: a * b, name="multiply")
    llm = LangChainLLM(chat_model=LocalChatModel())
    with pytest.raises(InvalidArgumentError, match="cannot call tools: run the tools with a ReAct"):
        llm.chat_with_tools([tool], user_msg="6 * 7?")


async def test_a_function_agent_calls_real_tools_through_the_adapter() -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    chat = MultiplyingChat()
    agent = FunctionAgent(
        llm=LangChainLLM(chat_model=chat), tools=[FunctionTool.from_defaults(fn=multiply)]
    )
    result = await agent.run(user_msg="What is 6 times 7?")
    assert str(result) == "The product is 42."
    assert [t.tool_name for t in result.tool_calls] == ["multiply"]
    first, second = chat.seen
    assert [type(m) for m in first] == [HumanMessage]
    assert [type(m) for m in second] == [HumanMessage, AIMessage, ToolMessage]
    assert second[1].tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert second[2].tool_call_id == "call-1" and second[2].content == "42"


def test_only_the_first_tool_call_is_kept_unless_parallel_calls_are_allowed() -> None:
    llm = LangChainLLM(chat_model=MultiplyingChat())
    calls = [ToolCallBlock(tool_call_id=str(i), tool_name="multiply") for i in range(2)]
    response = ChatResponse(message=ChatMessage(role="assistant", blocks=list(calls)))
    both = llm._validate_chat_with_tools_response(response, [], allow_parallel_tool_calls=True)
    assert len(llm.get_tool_calls_from_response(both)) == 2
    one = llm._validate_chat_with_tools_response(response, [], allow_parallel_tool_calls=False)
    assert [c.tool_id for c in llm.get_tool_calls_from_response(one)] == ["0"]
    with pytest.raises(InvalidArgumentError, match="without calling a tool"):
        llm.get_tool_calls_from_response(ChatResponse(message=ChatMessage(content="no")))


# --------------------------------------------------------------------------- messages


def test_messages_round_trip_with_roles_and_tool_calls() -> None:
    original = [
        SystemMessage("Be brief."),
        HumanMessage("6 * 7?"),
        AIMessage("", tool_calls=[{"name": "multiply", "args": {"a": 6}, "id": "c1"}]),
        ToolMessage("42", tool_call_id="c1"),
        AIMessage("42."),
    ]
    converted = to_llamaindex_messages(original)
    assert [m.role for m in converted] == [
        MessageRole.SYSTEM,
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    back = to_langchain_messages(converted)
    assert [(type(m), m.content) for m in back] == [(type(m), m.content) for m in original]
    assert back[2].tool_calls == original[2].tool_calls
    assert back[3].tool_call_id == "c1"


def test_content_that_cannot_be_passed_on_is_refused() -> None:
    image = ChatMessage(
        role="user", blocks=[TextBlock(text="look"), ImageBlock(url="http://x.invalid/a.png")]
    )
    with pytest.raises(InvalidArgumentError, match="image content"):
        to_langchain_messages([image])
    with pytest.raises(InvalidArgumentError, match="tool_call_id"):
        to_langchain_messages([ChatMessage(role="tool", content="42")])
