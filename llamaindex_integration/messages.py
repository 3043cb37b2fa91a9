"""Chat messages between LangChain and LlamaIndex, both ways, for the two LLM adapters.

Text, roles, tool calls and tool results carry over; other content (images, audio...) is
refused with an error rather than dropped without a word.

Example:
    ```python
    from llama_index.core.llms import ChatMessage
    to_langchain_messages([ChatMessage(role="user", content="hi")])
    # -> [HumanMessage(content='hi')]
    ```
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import ChatMessage as LangChainChatMessage
from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from langchain_stepback_profile.errors import InvalidArgumentError

_SYSTEM = {MessageRole.SYSTEM, MessageRole.DEVELOPER}
_ASSISTANT = {MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL}
_FROM_LANGCHAIN: tuple[tuple[type[BaseMessage], MessageRole], ...] = (
    (SystemMessage, MessageRole.SYSTEM),
    (HumanMessage, MessageRole.USER),
    (AIMessage, MessageRole.ASSISTANT),  # and AIMessageChunk, from streams
    (ToolMessage, MessageRole.TOOL),
)


def _text(message: ChatMessage) -> str:
    """The message's text blocks, joined; non-text content is refused."""
    other = [
        block.block_type
        for block in message.blocks
        if not isinstance(block, (TextBlock, ToolCallBlock, ThinkingBlock, CachePoint))
    ]
    if other:
        raise InvalidArgumentError(
            f"a {message.role.value} message holds {', '.join(sorted(set(other)))} content, "
            "which this adapter cannot pass on: send text only"
        )
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock))


def to_langchain_message(message: ChatMessage) -> BaseMessage:
    """One LlamaIndex message as the LangChain message of the same role."""
    text = _text(message)
    role = message.role
    if role in _SYSTEM:
        return SystemMessage(text)
    if role == MessageRole.USER:
        return HumanMessage(text)
    if role in _ASSISTANT:
        calls = [
            {
                "name": block.tool_name,
                "args": tool_arguments(block.tool_kwargs),
                "id": block.tool_call_id,
                "type": "tool_call",
            }
            for block in message.blocks
            if isinstance(block, ToolCallBlock)
        ]
        return AIMessage(text, tool_calls=calls)
    call_id = message.additional_kwargs.get("tool_call_id")  # a tool (or function) result
    if not call_id:
        raise InvalidArgumentError(
            f"a {role.value} message has no additional_kwargs['tool_call_id']; give the id of "
            "the tool call it answers"
        )
    return ToolMessage(text, tool_call_id=str(call_id))


def to_langchain_messages(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    """LlamaIndex messages as LangChain messages, in the same order."""
    return [to_langchain_message(m) for m in messages]


def to_llamaindex_message(message: BaseMessage) -> ChatMessage:
    """One LangChain message as a LlamaIndex message (tool calls become ``ToolCallBlock``s)."""
    role: MessageRole | None
    if isinstance(message, LangChainChatMessage):
        try:
            role = MessageRole(message.role)
        except ValueError:
            raise InvalidArgumentError(
                f"a ChatMessage has role {message.role!r}, which LlamaIndex does not know; use "
                f"one of {[r.value for r in MessageRole]}"
            ) from None
    else:
        role = next((r for kind, r in _FROM_LANGCHAIN if isinstance(message, kind)), None)
        if role is None:
            raise InvalidArgumentError(
                f"a {type(message).__name__} cannot be sent to a LlamaIndex LLM; use system, "
                "human, ai or tool messages"
            )
    blocks: list = [TextBlock(text=message.text)] if message.text else []
    if isinstance(message, AIMessage):
        blocks += [
            ToolCallBlock(
                tool_call_id=call.get("id"), tool_name=call["name"], tool_kwargs=call["args"]
            )
            for call in message.tool_calls
        ]
    extra = {"tool_call_id": message.tool_call_id} if isinstance(message, ToolMessage) else {}
    return ChatMessage(role=role, blocks=blocks, additional_kwargs=extra)


def to_llamaindex_messages(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """LangChain messages as LlamaIndex messages, in the same order."""
    return [to_llamaindex_message(m) for m in messages]


def tool_arguments(kwargs: dict | str) -> dict:
    """A tool call's arguments as a dict (a JSON string, even a partial one, is parsed)."""
    if isinstance(kwargs, dict):
        return kwargs
    try:
        parsed = parse_partial_json(kwargs)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of an assistant message, as LlamaIndex agents read them."""
    return [
        ToolSelection(
            tool_id=block.tool_call_id or "",
            tool_name=block.tool_name,
            tool_kwargs=tool_arguments(block.tool_kwargs),
        )
        for block in message.blocks
        if isinstance(block, ToolCallBlock)
    ]
