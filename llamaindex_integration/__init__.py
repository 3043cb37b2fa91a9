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

from langchain_stepback_profile.extras import require_extra

require_extra("llamaindex", feature="llamaindex_integration")

from llamaindex_integration.langchain_llm import LangChainLLM  # noqa: E402
from llamaindex_integration.llamaindex_chat_model import LlamaIndexChatModel  # noqa: E402
from llamaindex_integration.memory_block import StepBackProfileMemoryBlock  # noqa: E402
from llamaindex_integration.retriever import (  # noqa: E402
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
