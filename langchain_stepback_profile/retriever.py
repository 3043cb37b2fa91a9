"""StepBackProfileRetriever: profiles plus top-k history of an ordered group of users, as Documents.

Example:
    ```python
    retriever = StepBackProfileRetriever(memory=memory, k=2)
    docs = retriever.invoke("an abstract...", user_ids=["alice", "bob"])
    [(d.metadata["user_id"], d.metadata["kind"]) for d in docs]
    # -> [('alice', 'profile'), ('bob', 'profile'), ('alice', 'history'), ...]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, ensure_config
from pydantic import ConfigDict, Field, ValidationError, field_validator

from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.errors import InvalidArgumentError, explain
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.memory import ProfileMemory, SearchResult, check_k, check_user_id
from langchain_stepback_profile.style_gists import StyleGist, StyleGists

logger = logging.getLogger(__name__)


def document_id(user_id: str, item_id: str | None = None) -> str:
    """The globally unique id of a history item's Document (``user/item``), or of a profile's
    (``user#profile``) when ``item_id`` is None.

    ``%`` and ``/`` inside the ids are escaped (``%25``, ``%2F``), so the one unescaped ``/``
    tells user from item: user ``a`` with item ``b/c`` is ``a/b%2Fc``, user ``a/b`` with item
    ``c`` is ``a%2Fb/c``, and a profile id, which has no unescaped ``/``, is never an item's.

    Example:
        >>> document_id("a", "b/c"), document_id("a/b", "c"), document_id("alice")
        ('a/b%2Fc', 'a%2Fb/c', 'alice#profile')
    """

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("/", "%2F")

    return (
        f"{escape(user_id)}#profile" if item_id is None else f"{escape(user_id)}/{escape(item_id)}"
    )


def profile_document(user_id: str, position: int, memory: ProfileMemory) -> Document | None:
    """The user's profile as a Document, or None (with a warning) before it is built."""
    profile = memory.get_profile(user_id)
    if profile is None:
        logger.warning("user %r has no profile yet; run memory.refresh() to build it", user_id)
        return None
    return Document(
        page_content=profile.render(supported_only=True),
        id=document_id(user_id),
        metadata={
            "user_id": user_id,
            "kind": "profile",
            "position": position,
            "profile_version": profile.version,
            "stats": profile.stats,
        },
    )


def history_document(
    result: SearchResult, position: int, gist: StyleGist | None = None
) -> Document:
    """A retrieved item as a Document; with ``gist``, its style gist in ``style_gist`` (when
    it was written) and where it came from in ``style_gist_source``."""
    item = result.item
    gist_fields: dict[str, Any] = {}
    if gist is not None:
        gist_fields["style_gist_source"] = gist.source
        if gist.text:
            gist_fields["style_gist"] = gist.text
    return Document(
        page_content=item.text,
        id=document_id(result.user_id, item.id),  # unique across users and items
        metadata={
            "user_id": result.user_id,
            "kind": "history",
            "position": position,
            "item_id": item.id,
            "score": result.score,
            **(
                {
                    "input": item.input,
                    "output": item.output,
                    "input_label": item.input_label,
                    "output_label": item.output_label,
                }
                if item.output
                else {}
            ),
            **gist_fields,
        },
    )


def normalize_user_ids(user_ids: Any) -> list[str]:
    """An ordered, de-duplicated list of user ids from a string or a sequence."""
    if isinstance(user_ids, str):
        user_ids = [user_ids]
    if not isinstance(user_ids, Sequence) or not user_ids:
        raise InvalidArgumentError(
            "no users given: pass user_ids=[...] to the retriever, to invoke(), or in "
            'config={"configurable": {"user_ids": [...]}}'
        )
    return list(dict.fromkeys(check_user_id(u) for u in user_ids))


class StepBackProfileRetriever(BaseRetriever):
    """Retrieves P_U (one profile per user, in order) then each user's top-k history items.

    The users of a query come from, first to last wins: ``user_ids`` given here, then
    ``config={"configurable": {"user_ids": [...]}}``, then ``invoke(query, user_ids=[...])``.
    Author order matters and is kept: profiles first (user order), then history grouped by
    user in the same order (the paper's x~ = [x; R_1,k; ...; R_n,k]).

    With ``style_gists=True`` each history item carries its style gist (metadata
    ``style_gist``: a one-line note of its tone, length and structure), written by
    ``gist_llm`` (default the memory's model, else the embedded one) and cached in the store:
    k items per user cost k LLM calls the first time, 0 once cached (see
    :mod:`~langchain_stepback_profile.style_gists`; at most ``gist_concurrency`` calls in
    flight). An item whose gist fails is returned without one.

    Example:
        ```python
        retriever = StepBackProfileRetriever(memory=ProfileMemory("./profiles"), k=3)
        retriever.invoke("abstract...", config={"configurable": {"user_ids": ["alice"]}})
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: ProfileMemory
    k: int = Field(default=4, gt=0)
    include_profiles: bool = True
    include_history: bool = True
    user_ids: list[str] | None = None
    style_gists: bool = False
    gist_llm: BaseChatModel | None = None
    gist_concurrency: int = Field(default=4, gt=0)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise InvalidArgumentError(
                f"{explain(err)}; e.g. StepBackProfileRetriever(memory=ProfileMemory(path), k=4, "
                "user_ids=['alice', 'bob'])"
            ) from None

    @field_validator("user_ids", mode="before")
    @classmethod
    def _one_user(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # one id, as invoke() takes it

    def _with_config_users(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict:
        configurable = ensure_config(config).get("configurable", {})
        if "user_ids" not in kwargs:
            users = configurable.get("user_ids", configurable.get("user_id"))
            if users is not None:
                kwargs["user_ids"] = users
        return kwargs

    def invoke(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        return super().invoke(input, config, **self._with_config_users(config, kwargs))

    async def ainvoke(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        return await super().ainvoke(input, config, **self._with_config_users(config, kwargs))

    def _resolve(self, user_ids: Any, k: Any) -> tuple[list[str], int]:
        users = normalize_user_ids(user_ids if user_ids is not None else self.user_ids)
        return users, check_k(self.k if k is None else k)

    def _documents(
        self,
        users: list[str],
        hits: dict[str, list[SearchResult]] | None,
        gists: dict[tuple[str, str], StyleGist] | None = None,
    ) -> list[Document]:
        docs: list[Document] = []
        if self.include_profiles:
            for position, user_id in enumerate(users):
                doc = profile_document(user_id, position, self.memory)
                if doc is not None:
                    docs.append(doc)
        for position, user_id in enumerate(users):
            docs.extend(
                history_document(hit, position, (gists or {}).get((user_id, hit.item.content_hash)))
                for hit in (hits or {}).get(user_id, [])
            )
        return docs

    def _gists(self) -> StyleGists | None:
        if not (self.style_gists and self.include_history):
            return None
        return StyleGists(self.memory, self.gist_llm, max_concurrency=self.gist_concurrency)

    @staticmethod
    def _wanted(hits: dict[str, list[SearchResult]]) -> dict[str, list[HistoryItem]]:
        return {user_id: [hit.item for hit in found] for user_id, found in hits.items()}

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        user_ids: Sequence[str] | str | None = None,
        k: int | None = None,
    ) -> list[Document]:
        users, k = self._resolve(user_ids, k)
        hits = self.memory.search_many(users, query, k) if self.include_history else None
        writer = self._gists()
        if writer is None or not hits:
            return self._documents(users, hits)
        gists = writer.write(self._wanted(hits), {"callbacks": run_manager.get_child()})
        return self._documents(users, hits, gists)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        user_ids: Sequence[str] | str | None = None,
        k: int | None = None,
    ) -> list[Document]:
        users, k = self._resolve(user_ids, k)
        hits = await self.memory.asearch_many(users, query, k) if self.include_history else None
        writer = self._gists()
        if writer is None or not hits:
            return await off_loop(self._documents, users, hits)
        gists = await writer.awrite(self._wanted(hits), {"callbacks": run_manager.get_child()})
        return await off_loop(self._documents, users, hits, gists)
