"""StepBackProfileLlamaIndexRetriever: profiles plus top-k history of an ordered group of users,
as LlamaIndex nodes.

Example:
    ```python
    retriever = StepBackProfileLlamaIndexRetriever(memory, user_ids=["alice", "bob"], k=2)
    nodes = await retriever.aretrieve("an abstract...")
    [(n.metadata["user_id"], n.metadata["kind"]) for n in nodes]
    # -> [('alice', 'profile'), ('bob', 'profile'), ('alice', 'history'), ...]
    ```
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from langchain_stepback_profile.memory import ProfileMemory, check_k
from langchain_stepback_profile.retriever import (
    StepBackProfileRetriever,
    document_id,
    normalize_user_ids,
)


def document_to_node(doc: Document) -> NodeWithScore:
    """A retrieved Document as a ``NodeWithScore`` with the same text and metadata.

    Nodes keep the document's globally unique id (``user/item`` for history, with their cosine
    score; ``user#profile`` for profiles, without a score; see
    :func:`~langchain_stepback_profile.retriever.document_id`). Only ``user_id`` is shown to the
    LLM next to the text and no metadata is embedded.

    Example:
        ```python
        docs = StepBackProfileRetriever(memory=memory, k=2).invoke("MT", user_ids=["alice"])
        document_to_node(docs[0]).node.node_id
        # -> 'alice#profile'
        ```
    """
    metadata = dict(doc.metadata)
    node = TextNode(
        id_=doc.id or document_id(metadata["user_id"], metadata.get("item_id")),
        text=doc.page_content,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[key for key in metadata if key != "user_id"],
    )
    return NodeWithScore(node=node, score=metadata.get("score"))


class StepBackProfileLlamaIndexRetriever(BaseRetriever):
    """A LlamaIndex retriever over a :class:`ProfileMemory`: P_U, then each user's top-k items.

    It asks the LangChain :class:`StepBackProfileRetriever` and converts its Documents, so both
    faces return the same things in the same order: the profiles in user order (metadata
    ``kind="profile"``, ``position``, ``profile_version``), then each user's k most similar
    history items, grouped in user order (``kind="history"``, ``item_id``, ``score``, and
    ``input``/``output`` for items that have them).

    Args:
        memory: the store of histories and profiles.
        user_ids: one user id, or an ordered group (the first author leads).
        k: history items per user.
        include_profiles: return the profiles.
        include_history: return the retrieved history items.

    Example:
        ```python
        retriever = StepBackProfileLlamaIndexRetriever(memory, user_ids="alice", k=3)
        retriever.retrieve("neural machine translation")[0].node.metadata["kind"]
        # -> 'profile'
        ```
    """

    def __init__(
        self,
        memory: ProfileMemory,
        user_ids: Sequence[str] | str,
        *,
        k: int = 4,
        include_profiles: bool = True,
        include_history: bool = True,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self._retriever = StepBackProfileRetriever(
            memory=memory,
            k=check_k(k),
            include_profiles=include_profiles,
            include_history=include_history,
            user_ids=normalize_user_ids(user_ids),
        )
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def user_ids(self) -> list[str]:
        """The users retrieved for, in order."""
        return list(self._retriever.user_ids or [])

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [document_to_node(d) for d in self._retriever.invoke(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        docs = await self._retriever.ainvoke(query_bundle.query_str)
        return [document_to_node(d) for d in docs]
