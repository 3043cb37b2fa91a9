"""StepBackProfileMemoryBlock: step-back profiles as a LlamaIndex ``Memory`` block.

Example:
    ```python
    from llama_index.core.memory import Memory
    block = StepBackProfileMemoryBlock(memory=ProfileMemory("./profiles"), user_ids="alice")
    chat_memory = Memory.from_defaults(session_id="alice", memory_blocks=[block])
    ```
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import LLM
from llama_index.core.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.chains import render_context
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, check_user_id
from langchain_stepback_profile.retriever import StepBackProfileRetriever, normalize_user_ids
from llamaindex_integration.llamaindex_chat_model import LlamaIndexChatModel

logger = logging.getLogger(__name__)

_SHOWN = 16  # recent contents kept so that atruncate can drop their items one by one


def _user_text(message: ChatMessage) -> str:
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock)).strip()


def _drop_order(docs: Sequence[Document]) -> list[int]:
    """Indexes of ``docs`` in the order truncation drops them: history items, least similar
    first (the last author's first on ties), then profiles from the last author to the first."""
    seen: dict[str, int] = {}
    history: list[tuple[int, int, int]] = []
    profiles: list[tuple[int, int]] = []
    for index, doc in enumerate(docs):
        position = doc.metadata["position"]
        if doc.metadata["kind"] == "profile":
            profiles.append((position, index))
        else:
            rank = seen.get(doc.metadata["user_id"], 0)  # 0 = the user's most similar item
            seen[doc.metadata["user_id"]] = rank + 1
            history.append((rank, position, index))
    return [i for *_, i in sorted(history, reverse=True)] + [i for _, i in sorted(profiles)[::-1]]


class StepBackProfileMemoryBlock(BaseMemoryBlock[str]):
    """A memory block that shows the model who it is talking to: the user's step-back profile
    (or an ordered group's profiles) and the user's history items most similar to the latest
    messages, rendered exactly as the LangChain face renders them.

    Reading (``aget``): the latest user message(s) are the query; the profiles and top-``k``
    items come from the LangChain :class:`StepBackProfileRetriever` over the same
    :class:`ProfileMemory`. Users without history yet are skipped, so a new user gets an empty
    block rather than an error.

    Writing (``aput``, which ``Memory`` calls with the messages it moves out of its short-term
    queue): what the user wrote (``user`` messages only) is added to the history of
    ``record_user_id`` (default the first of ``user_ids``), never to anyone else's. The
    profile is rewritten when ``refresh_every`` items are not yet in it, or on demand with
    :meth:`arefresh` (``refresh_every=None``).

    Priority and token limits work as for LlamaIndex's own blocks: priority 0 (the default) is
    never truncated; otherwise ``Memory`` may ask the block to shrink, and it drops the least
    similar history items first, then the profiles from the last author on (the first author
    leads), and disappears only when nothing fits. Give it the ``tokenizer_fn`` of the
    ``Memory`` if that is not LlamaIndex's default.

    Args:
        memory: the store of histories and profiles.
        user_ids: the user, or the ordered group of users, this conversation is about.
        record_user_id: whose history the user's messages go to; one of ``user_ids``.
        k: history items retrieved per user.
        retrieval_context_window: how many of the latest user messages make the query.
        refresh_every: rewrite the profile once this many new items are not in it; ``None``
            means only when :meth:`arefresh` is called.
        llm: the model that writes profiles: a LangChain chat model or any LlamaIndex LLM;
            default the memory's own (the embedded local model).

    Example:
        ```python
        from llama_index.core.agent.workflow import FunctionAgent
        from llama_index.core.memory import Memory
        block = StepBackProfileMemoryBlock(memory=profiles, user_ids=["alice"], refresh_every=5)
        memory = Memory.from_defaults(session_id="alice-chat", memory_blocks=[block])
        await FunctionAgent(llm=llm, tools=[]).run("Suggest a title for ...", memory=memory)
        ```
    """

    name: str = Field(default="StepBackProfile", description="The name of the memory block.")
    description: str | None = Field(
        default="Step-back profiles of the user (or of the authors, in order) and their earlier "
        "items most similar to the conversation.",
        description="A description of the memory block.",
    )
    memory: ProfileMemory = Field(exclude=True, description="The store of users' histories.")
    user_ids: list[str] = Field(description="The user, or the ordered group of users.")
    record_user_id: str = Field(description="Whose history the user's messages are added to.")
    k: int = Field(default=3, gt=0, description="History items retrieved per user.")
    retrieval_context_window: int = Field(
        default=1, gt=0, description="How many of the latest user messages make the query."
    )
    refresh_every: int | None = Field(
        default=None, gt=0, description="New items that trigger a profile rewrite; None: never."
    )
    llm: BaseChatModel | None = Field(
        default=None, exclude=True, description="The model that writes profiles."
    )
    tokenizer_fn: Callable[[str], list] = Field(
        default_factory=get_tokenizer, exclude=True, description="Counts tokens for truncation."
    )

    _shown: OrderedDict[str, list[Document]] = PrivateAttr(default_factory=OrderedDict)

    def __init__(
        self,
        *,
        memory: ProfileMemory,
        user_ids: Sequence[str] | str,
        record_user_id: str | None = None,
        llm: BaseChatModel | LLM | None = None,
        **data: Any,
    ) -> None:
        users = normalize_user_ids(user_ids)
        record = users[0] if record_user_id is None else check_user_id(record_user_id)
        if record not in users:
            raise InvalidArgumentError(
                f"record_user_id={record!r} is not one of user_ids={users}: the block adds "
                "messages only to the history of one of its own users; add them to user_ids "
                "or record for one of these"
            )
        if isinstance(llm, LLM):
            llm = LlamaIndexChatModel(llm=llm)
        # mypy types super().__init__ by BaseMemoryBlock's own fields, not this class's
        fields: dict[str, Any] = {
            "memory": memory,
            "user_ids": users,
            "record_user_id": record,
            "llm": llm,
        }
        super().__init__(**fields, **data)

    # ----------------------------------------------------------------- reading
    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The profiles and the items most similar to the latest user messages, as text."""
        texts = [_user_text(m) for m in messages or [] if m.role == MessageRole.USER]
        query = "\n".join([t for t in texts if t][-self.retrieval_context_window :])
        users = await off_loop(self.memory.known_users, self.user_ids)
        if not users:
            return ""
        retriever = StepBackProfileRetriever(
            memory=self.memory, k=self.k, include_history=bool(query)
        )
        docs = await retriever.ainvoke(query, user_ids=users)
        return self._show(docs)

    def _show(self, docs: list[Document]) -> str:
        text = render_context(docs)
        if text:
            self._shown[text] = docs
            self._shown.move_to_end(text)
            while len(self._shown) > _SHOWN:
                self._shown.popitem(last=False)
        return text

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """The content with items (then profiles) dropped until it is ``tokens_to_truncate``
        tokens shorter; ``None`` when nothing fits."""
        docs = self._shown.get(content)
        if docs is None:
            return None
        target = len(self.tokenizer_fn(content)) - tokens_to_truncate
        kept = list(range(len(docs)))
        for index in _drop_order(docs):
            kept.remove(index)
            smaller = [docs[i] for i in kept]
            text = render_context(smaller)
            if text and len(self.tokenizer_fn(text)) <= target:
                return self._show(smaller)
        return None

    # ----------------------------------------------------------------- writing
    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Add what the user wrote to ``record_user_id``'s history (then maybe refresh)."""
        texts = [_user_text(m) for m in messages if m.role == MessageRole.USER]
        texts = [t for t in texts if t]
        if not texts:
            return
        await self.memory.aadd(self.record_user_id, texts)
        if self.refresh_every is not None:
            pending = await self.memory.apending_changes(self.record_user_id)
            if pending >= self.refresh_every:
                report = await self.memory.arefresh(
                    [self.record_user_id], llm=self.llm, on_error="report"
                )
                for user, why in report.failures.items():  # never raised into the chat turn
                    logger.warning("profile refresh of user %r failed: %s", user, why)

    async def arefresh(self) -> RefreshReport:
        """Build or update the recorded user's profile now (0 LLM calls if nothing changed).

        Example:
            ```python
            report = await block.arefresh()
            report.count("updated")
            # -> 1
            ```
        """
        return await self.memory.arefresh([self.record_user_id], llm=self.llm)
