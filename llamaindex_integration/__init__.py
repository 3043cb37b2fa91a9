"""LlamaIndex face of langchain-stepback-profile: memory and retrieval over the same
``ProfileMemory`` core, and LLM adapters both ways.

Example:
    ```python
    from llama_index.core.memory import Memory
    from langchain_stepback_profile import ProfileMemory
    from llamaindex_integration import StepBackProfileMemoryBlock

    block = StepBackProfileMemoryBlock(memory=ProfileMemory("./profiles"), user_ids="alice")
    memory = Memory.from_defaults(session_id="alice-chat", memory_blocks=[block])
    ```
"""

from llamaindex_integration.langchain_llm import LangChainLLM
from llamaindex_integration.llamaindex_chat_model import LlamaIndexChatModel
from llamaindex_integration.memory_block import StepBackProfileMemoryBlock
from llamaindex_integration.retriever import (
    StepBackProfileLlamaIndexRetriever,
    document_to_node,
)

__all__ = [
    "LangChainLLM",
    "LlamaIndexChatModel",
    "StepBackProfileLlamaIndexRetriever",
    "StepBackProfileMemoryBlock",
    "document_to_node",
]
