"""Profiles and history metadata in any LangGraph ``BaseStore`` (InMemoryStore, PostgresStore,
the LangGraph platform's store).

A deployment that already runs a LangGraph store keeps profiles there: give
``ProfileMemory`` a :class:`LangGraphProfileStore` instead of its default SQLite file. The
FAISS vectors stay in the memory's folder; a folder that is new or behind is rebuilt from the
store on first use.

Layout, under a namespace prefix (default ``("stepback_profile",)``), one namespace per user::

    (*prefix, "meta")                     key      -> {"value": str}
    (*prefix, "counters")                 "vid"    -> {"next": int}
    (*prefix, "users", USER, "items")     vid      -> {"vid", "item_id", "content_hash", "item"}
    (*prefix, "users", USER, "profiles")  version  -> {"version", "profile"}
    (*prefix, "users", USER, "annotations")  KIND:HASH -> {"kind", "item_hash", "setup", "text"}

``USER`` is the user id percent-encoded (also ``.``), so every id is a valid namespace label
and no two ids share a namespace.

Example:
    ```python
    from langgraph.store.memory import InMemoryStore  # or PostgresStore, the platform's store

    store = LangGraphProfileStore(InMemoryStore())
    memory = ProfileMemory("./vectors", store=store)
    memory.add("alice", ["I write about machine translation."])
    ```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import quote, unquote

from langchain_stepback_profile.aio import caller_loop
from langchain_stepback_profile.errors import DuplicateItemError, InvalidArgumentError
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.profile import UserProfile
from langchain_stepback_profile.store import (
    ForgetReport,
    ItemAnnotation,
    ProfileStore,
    StoredItem,
    profile_version_taken,
)

require_extra("agents", "langgraph", feature="LangGraphProfileStore")

from langgraph.store.base import (  # noqa: E402
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

_PAGE = 1000  # rows per search call; every listing pages until a short page
_ITEMS = "items"
_PROFILES = "profiles"
_ANNOTATIONS = "annotations"


def user_label(user_id: str) -> str:
    """The namespace label of a user id: percent-encoded, dots included (labels forbid them).

    Example:
        >>> user_label("ada.lovelace@example.org")
        'ada%2Elovelace%40example%2Eorg'
    """
    return quote(user_id, safe="").replace(".", "%2E")


class LangGraphProfileStore(ProfileStore):
    """A :class:`~langchain_stepback_profile.store.ProfileStore` over a LangGraph ``BaseStore``.

    Each user's items and profile versions live in their own namespaces, so a read for one
    user is a read of that user's namespace only, and :meth:`delete_user` removes every row of
    theirs. Vector ids come from a counter in the store; they are reserved before the items are
    written, so a crash leaves a gap, never a reused id. The rows of one call are written in one
    ``batch``; checks and writes are serialised within a process, but a ``BaseStore`` has no
    transactions, so let one process at a time write to a store. Adding or removing items
    reads the user's item rows once (ids and contents are checked here, not by the store).
    Called through the memory's async twins (``aadd``, ``asearch``, ``arefresh``...), every
    operation goes through the wrapped store's ``abatch`` on the caller's event loop, so an
    async-only store (``AsyncPostgresStore``) works; sync calls use ``batch``.

    Args:
        store: any LangGraph ``BaseStore``; it stays the caller's (``close()`` leaves it open).
        prefix: the namespace prefix of everything this store writes (one label or several).

    Example:
        ```python
        from langgraph.store.postgres import PostgresStore

        with PostgresStore.from_conn_string("postgresql://...") as pg:
            pg.setup()
            memory = ProfileMemory("./vectors", store=LangGraphProfileStore(pg))
        ```
    """

    def __init__(self, store: BaseStore, *, prefix: str | Sequence[str] = "stepback_profile"):
        labels = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        if (
            not labels
            or not all(isinstance(label, str) and label and "." not in label for label in labels)
            or labels[0] == "langgraph"
        ):
            raise InvalidArgumentError(
                f"prefix must be non-empty labels without dots, not starting with 'langgraph'; "
                f"got {prefix!r} (e.g. prefix='stepback_profile' or ('myapp', 'profiles'))"
            )
        self.store = store
        self.prefix = labels
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- I/O
    def _batch(self, ops: Sequence[Op]) -> list[Result]:
        """Every read and write goes through here: the store's ``abatch`` on the caller's loop
        inside an async twin (see :mod:`~langchain_stepback_profile.aio`), ``batch`` otherwise."""
        loop = caller_loop()
        if loop is None:
            return self.store.batch(ops)
        return asyncio.run_coroutine_threadsafe(self.store.abatch(ops), loop).result()

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        return cast("Item | None", self._batch([GetOp(namespace, key)])[0])

    # ----------------------------------------------------------------- namespaces
    def _ns(self, user_id: str, kind: str) -> tuple[str, ...]:
        return (*self.prefix, "users", user_label(user_id), kind)

    def _scan(self, namespace: tuple[str, ...]) -> list[Item]:
        """Every row of one namespace (paged; rows of other namespaces are dropped, since some
        stores match a namespace prefix as text)."""
        rows: dict[str, Item] = {}
        offset = 0
        while True:
            page = cast(
                "list[SearchItem]",
                self._batch([SearchOp(namespace, limit=_PAGE, offset=offset)])[0],
            )
            rows.update((row.key, row) for row in page if row.namespace == namespace)
            if len(page) < _PAGE:
                return list(rows.values())
            offset += len(page)

    def _stored(self, user_id: str) -> list[StoredItem]:
        rows = self._scan(self._ns(user_id, _ITEMS))
        stored = [
            StoredItem(row.value["vid"], HistoryItem.model_validate(row.value["item"]))
            for row in rows
        ]
        return sorted(stored, key=lambda s: s.vid)

    # ----------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        row = self._get((*self.prefix, "meta"), key)
        return row.value["value"] if row is not None else None

    def set_meta(self, key: str, value: str) -> None:
        self._batch([_put((*self.prefix, "meta"), key, {"value": value})])

    # ----------------------------------------------------------------- users
    def users(self) -> list[str]:
        root = (*self.prefix, "users")
        labels: set[str] = set()
        offset = 0
        while True:
            op = ListNamespacesOp(
                match_conditions=(MatchCondition("prefix", root),),
                max_depth=len(root) + 1,
                limit=_PAGE,
                offset=offset,
            )
            page = cast("list[tuple[str, ...]]", self._batch([op])[0])
            labels.update(ns[-1] for ns in page if ns[:-1] == root)
            if len(page) < _PAGE:
                break
            offset += len(page)
        # A namespace can outlive its rows (InMemoryStore keeps empty ones): keep users with data.
        candidates = sorted(map(unquote, labels))
        return [
            u for u, known in zip(candidates, self._have_data(candidates), strict=True) if known
        ]

    def has_user(self, user_id: str) -> bool:
        return self._have_data([user_id])[0]

    def _have_data(self, user_ids: Sequence[str]) -> list[bool]:
        """For each user, whether they have an item or a profile (one ``batch`` call)."""
        namespaces = [self._ns(u, kind) for u in user_ids for kind in (_ITEMS, _PROFILES)]
        if not namespaces:
            return []
        # batch() answers each op in order: a SearchOp with a list of SearchItem.
        pages = cast(
            "list[list[SearchItem]]",
            self._batch([SearchOp(namespace, limit=1) for namespace in namespaces]),
        )
        found = [
            any(row.namespace == namespace for row in page)
            for namespace, page in zip(namespaces, pages, strict=True)
        ]
        return [found[2 * i] or found[2 * i + 1] for i in range(len(user_ids))]

    # ----------------------------------------------------------------- items
    def count_items(self, user_id: str) -> int:
        return len(self._scan(self._ns(user_id, _ITEMS)))

    def vids(self, user_id: str) -> list[int]:
        return [s.vid for s in self._stored(user_id)]

    def get_items(self, user_id: str) -> list[StoredItem]:
        return self._stored(user_id)

    def items_by_vid(self, user_id: str, vids: Sequence[int]) -> dict[int, HistoryItem]:
        namespace = self._ns(user_id, _ITEMS)
        keys = list(dict.fromkeys(str(int(v)) for v in vids))
        # batch() answers each op in order: a GetOp with an Item, or None when the key is absent.
        rows = cast(
            "list[Item | None]",
            self._batch([GetOp(namespace, key) for key in keys]) if keys else [],
        )
        return {
            row.value["vid"]: HistoryItem.model_validate(row.value["item"])
            for row in rows
            if row is not None
        }

    def lookup(
        self, user_id: str, item_ids: Iterable[str], hashes: Iterable[str]
    ) -> tuple[dict[str, StoredItem], dict[str, StoredItem]]:
        wanted_ids, wanted_hashes = set(item_ids), set(hashes)
        by_id: dict[str, StoredItem] = {}
        by_hash: dict[str, StoredItem] = {}
        if not (wanted_ids or wanted_hashes):
            return by_id, by_hash
        for stored in self._stored(user_id):  # oldest first, so the first match wins
            if stored.item.id in wanted_ids:
                by_id.setdefault(stored.item.id, stored)
            if stored.item.content_hash in wanted_hashes:
                by_hash.setdefault(stored.item.content_hash, stored)
        return by_id, by_hash

    def add_items(self, user_id: str, items: Sequence[HistoryItem]) -> list[int]:
        if not items:
            return []
        namespace = self._ns(user_id, _ITEMS)
        with self._lock:
            taken, _ = self.lookup(user_id, [i.id for i in items], [])
            seen: set[str] = set()
            for item in items:
                if item.id in taken or item.id in seen:
                    raise DuplicateItemError(
                        f"item id {item.id!r} is used twice for user {user_id!r} (item ids are "
                        "unique per user); nothing of this batch was written: give each item "
                        "its own id"
                    )
                seen.add(item.id)
            vids = self._reserve_vids(len(items))
            self._batch(
                [
                    _put(
                        namespace,
                        str(vid),
                        {
                            "vid": vid,
                            "item_id": item.id,
                            "content_hash": item.content_hash,
                            "item": item.model_dump(mode="json"),
                        },
                    )
                    for vid, item in zip(vids, items, strict=True)
                ]
            )
        return vids

    def _reserve_vids(self, count: int) -> list[int]:
        """``count`` new vector ids; the counter is written before any item uses them."""
        namespace = (*self.prefix, "counters")
        row = self._get(namespace, "vid")
        first = row.value["next"] if row is not None else 1
        self._batch([_put(namespace, "vid", {"next": first + count})])
        return list(range(first, first + count))

    def remove_items(self, user_id: str, item_ids: Sequence[str]) -> list[int]:
        namespace = self._ns(user_id, _ITEMS)
        with self._lock:
            found, _ = self.lookup(user_id, item_ids, [])
            vids = [stored.vid for stored in found.values()]
            if vids:
                self._batch([_put(namespace, str(vid), None) for vid in vids])
                kept = {s.item.content_hash for s in self._stored(user_id)}
                notes = self._scan(self._ns(user_id, _ANNOTATIONS))
                gone = [row for row in notes if row.value["item_hash"] not in kept]
                if gone:  # annotations of contents the user no longer has
                    self._batch([_put(row.namespace, row.key, None) for row in gone])
        return vids

    # ----------------------------------------------------------------- annotations
    def get_annotations(
        self, user_id: str, kind: str, item_hashes: Iterable[str]
    ) -> dict[str, ItemAnnotation]:
        namespace = self._ns(user_id, _ANNOTATIONS)
        hashes = list(dict.fromkeys(item_hashes))
        rows = cast(
            "list[Item | None]",
            self._batch([GetOp(namespace, f"{kind}:{h}") for h in hashes]) if hashes else [],
        )
        return {
            row.value["item_hash"]: ItemAnnotation(
                row.value["item_hash"], row.value["setup"], row.value["text"]
            )
            for row in rows
            if row is not None
        }

    def put_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        if not annotations:
            return 0
        namespace = self._ns(user_id, _ANNOTATIONS)
        with self._lock:
            _, present = self.lookup(user_id, [], [a.item_hash for a in annotations])
            kept = [a for a in annotations if a.item_hash in present]
            if kept:
                self._batch(
                    [
                        _put(
                            namespace,
                            f"{kind}:{a.item_hash}",
                            {
                                "kind": kind,
                                "item_hash": a.item_hash,
                                "setup": a.setup,
                                "text": a.text,
                            },
                        )
                        for a in kept
                    ]
                )
        return len(kept)

    # ----------------------------------------------------------------- profiles
    def _profiles(self, user_id: str) -> list[UserProfile]:
        rows = self._scan(self._ns(user_id, _PROFILES))
        return [
            UserProfile.model_validate(row.value["profile"])
            for row in sorted(rows, key=lambda r: r.value["version"])
        ]

    def get_profile(self, user_id: str) -> UserProfile | None:
        versions = self._profiles(user_id)
        return versions[-1] if versions else None

    def profile_versions(self, user_id: str) -> list[UserProfile]:
        return self._profiles(user_id)

    def put_profile(self, profile: UserProfile) -> None:
        namespace = self._ns(profile.user_id, _PROFILES)
        key = str(profile.version)
        with self._lock:
            if self._get(namespace, key) is not None:
                raise profile_version_taken(profile)
            self._batch(
                [
                    _put(
                        namespace,
                        key,
                        {"version": profile.version, "profile": profile.model_dump(mode="json")},
                    )
                ]
            )

    # ----------------------------------------------------------------- forgetting
    def delete_user(self, user_id: str) -> ForgetReport:
        with self._lock:
            rows = {
                kind: self._scan(self._ns(user_id, kind))
                for kind in (_ITEMS, _PROFILES, _ANNOTATIONS)
            }
            deletes = [
                _put(row.namespace, row.key, None) for found in rows.values() for row in found
            ]
            if deletes:
                self._batch(deletes)
        return ForgetReport(items=len(rows[_ITEMS]), profile_versions=len(rows[_PROFILES]))


def _put(namespace: tuple[str, ...], key: str, value: dict[str, Any] | None) -> PutOp:
    """A write (``value``) or a delete (``None``) for one ``batch`` call; never indexed for
    the store's own semantic search (FAISS does the searching)."""
    return PutOp(namespace, key, value, index=False)
