"""FAISS history index: one id-mapped inner-product index per user over unit vectors (cosine).

Each user's index is a separate file, so a query only ever touches the asking user's
vectors and costs what that user's history costs. Files are written atomically
(temporary file, fsync, rename) in FAISS's own format followed by a trailer: a magic tag and
the SHA-256 of the FAISS bytes, verified before the bytes reach FAISS. A file that fails the
check is never loaded: the index starts empty and the memory rebuilds it from the store.

Two kinds of index, chosen per user (``kind``):

- ``"flat"``: ``IndexIDMap2`` over ``IndexFlatIP``: exact search, cost linear in the history.
- ``"hnsw"``: ``IndexIDMap2`` over ``IndexHNSWFlat`` (inner product): approximate search,
  about a millisecond at a million items (docs/benchmarks/ann_index.md). HNSW cannot delete,
  so a removed item's slot becomes a tombstone: its vector is overwritten with zeros and its
  id with ``-1`` (both in memory and in the next saved file), searches skip ``-1`` through a
  FAISS id selector, and the index is rebuilt from its live vectors once tombstones pass
  :data:`REBUILD_DEAD_SHARE` of it.
- ``"auto"`` (the default): flat while a user's history holds at most ``hnsw_above`` items,
  HNSW past it (and flat again at a write that finds at most half of that).

An index changes kind at a write (an add, or a removal that rebuilds it), never at a search.

Example:
    >>> import tempfile, numpy as np
    >>> index = HistoryIndex(tempfile.mkdtemp(), dim=2)
    >>> index.add("alice", [7], np.array([[1.0, 0.0]], dtype="float32"))
    >>> index.search("alice", np.array([1.0, 0.0], dtype="float32"), k=1)
    [(7, 1.0)]
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import faiss
import numpy as np

from langchain_stepback_profile.errors import InvalidArgumentError, StoreError

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw"]
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)
AUTO_HNSW_ABOVE = 50_000
"""``"auto"`` makes a user's index HNSW past this many items (docs/benchmarks/ann_index.md)."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 256
"""Default ``efSearch``: candidates kept per HNSW search (raised to ``k`` when smaller)."""
REBUILD_DEAD_SHARE = 0.2
"""An HNSW index is rebuilt from its live vectors once tombstones pass this share of it."""

_MAGIC = b"SBPIDX01"
_DIGEST = hashlib.sha256().digest_size
_TRAILER = len(_MAGIC) + _DIGEST
_DEAD = -1  # the id of a removed slot of an HNSW index
_LIVE = faiss.IDSelectorRange(0, 2**63 - 1)  # every id >= 0: what a search may return


def check_index_kind(kind: Any) -> IndexKind:
    """``kind`` if it names an index kind, else :class:`InvalidArgumentError` naming them."""
    if not isinstance(kind, str) or kind not in INDEX_KINDS:
        raise InvalidArgumentError(
            f"index must be one of {', '.join(map(repr, INDEX_KINDS))}, got {kind!r}"
        )
    return cast("IndexKind", kind)


def check_ef_search(ef_search: Any) -> int:
    if isinstance(ef_search, bool) or not isinstance(ef_search, (int, np.integer)):
        raise InvalidArgumentError(f"ef_search must be a positive integer, got {ef_search!r}")
    if ef_search <= 0:
        raise InvalidArgumentError(f"ef_search must be a positive integer, got {ef_search!r}")
    return int(ef_search)


def seal(data: bytes) -> bytes:
    """FAISS bytes with the checksum trailer that :func:`unseal` verifies."""
    return data + _trailer(data)


def _trailer(data: Any) -> bytes:
    return _MAGIC + hashlib.sha256(data).digest()


def _unseal_view(blob: bytes) -> memoryview | None:
    view = memoryview(blob)
    if len(view) < _TRAILER or view[-_TRAILER : -_TRAILER + len(_MAGIC)] != _MAGIC:
        return None
    data = view[:-_TRAILER]
    return data if hashlib.sha256(data).digest() == view[-_DIGEST:] else None


def unseal(blob: bytes) -> bytes | None:
    """The FAISS bytes of a sealed file, or ``None`` when the trailer or checksum is wrong."""
    data = _unseal_view(blob)
    return None if data is None else data.tobytes()


def user_key(user_id: str) -> str:
    """File-safe key of a user id (no user input ever becomes a path)."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]


def atomic_write_bytes(path: Path, data: bytes | Sequence[Any]) -> None:
    """Write ``data`` (bytes, or buffers written one after the other) to ``path`` so a crash
    leaves either the old or the new file."""
    parts: Sequence[Any] = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in parts:
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def index_kind(index: faiss.IndexIDMap2) -> str:
    """``"flat"`` or ``"hnsw"``: what a user's ``IndexIDMap2`` holds."""
    return "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat) else "flat"


def _id_view(index: faiss.IndexIDMap2) -> np.ndarray:
    """The index's id map as a writable array over FAISS's own memory (no copy)."""
    size = index.id_map.size()
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return faiss.rev_swig_ptr(index.id_map.data(), size)


def _vector_view(index: faiss.IndexIDMap2) -> np.ndarray:
    """The stored vectors (``ntotal x d``) as a writable array over FAISS's own memory."""
    flat = faiss.downcast_index(index.index)
    if isinstance(flat, faiss.IndexHNSWFlat):
        flat = faiss.downcast_index(flat.storage)
    assert isinstance(flat, faiss.IndexFlat)  # what _load lets through
    if flat.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


@dataclass
class _Entry:
    """A user's index in memory and how many of its slots are tombstones (id ``-1``)."""

    index: faiss.IndexIDMap2
    dead: int = 0

    @property
    def live(self) -> int:
        return int(self.index.ntotal) - self.dead


class HistoryIndex:
    """Per-user FAISS indexes (``IndexIDMap2`` over ``IndexFlatIP`` or ``IndexHNSWFlat``)
    kept in one folder.

    Vectors must be L2-normalised so inner product is cosine similarity. Indexes load
    lazily and stay in memory; :meth:`save` persists one user's index.

    Args:
        folder: where the index files are.
        dim: the vectors' dimension.
        search_threads: OpenMP threads of one search (``None``: FAISS's own setting).
        kind: ``"auto"`` (flat up to ``hnsw_above`` items, then HNSW), ``"flat"`` or ``"hnsw"``.
        ef_search: HNSW ``efSearch`` (higher: better recall, slower); an attribute that may be
            changed at any time.
        hnsw_above: the size past which ``"auto"`` builds HNSW.
    """

    def __init__(
        self,
        folder: str | Path,
        dim: int,
        *,
        search_threads: int | None = 1,
        kind: IndexKind = "auto",
        ef_search: int = HNSW_EF_SEARCH,
        hnsw_above: int = AUTO_HNSW_ABOVE,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        # One OpenMP thread per single-query search: on small machines FAISS's threads spin
        # against each other and the embedder (measured in docs/benchmarks); parallelism comes
        # from concurrent queries instead. None keeps FAISS's own setting.
        self.search_threads = search_threads
        self.kind = check_index_kind(kind)
        self.ef_search = check_ef_search(ef_search)
        self.hnsw_above = hnsw_above
        self._indexes: dict[str, _Entry] = {}
        self._user_locks: dict[str, threading.RLock] = {}
        self._lock = threading.RLock()

    def _guard(self, user_id: str) -> threading.RLock:
        """The user's own lock: one user's writes never wait for another user's searches."""
        with self._lock:
            return self._user_locks.setdefault(user_id, threading.RLock())

    def path(self, user_id: str) -> Path:
        return self.folder / f"{user_key(user_id)}.faiss"

    def _new(self, kind: str) -> faiss.IndexIDMap2:
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(inner)
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _kind_for(self, current: str | None, live: int) -> str:
        """The kind a user's index of ``live`` items should be (``current``: what it is)."""
        if self.kind != "auto":
            return self.kind
        if live > self.hnsw_above or (current == "hnsw" and live > self.hnsw_above // 2):
            return "hnsw"
        return "flat"

    def _entry(self, user_id: str) -> _Entry:
        with self._lock:
            entry = self._indexes.get(user_id)
            if entry is None:
                entry = self._load(user_id)
                self._indexes[user_id] = entry
            return entry

    def get(self, user_id: str) -> faiss.IndexIDMap2:
        """The user's index, loaded from disk on first use (empty if there is none)."""
        return self._entry(user_id).index

    def kind_of(self, user_id: str) -> str:
        """``"flat"`` or ``"hnsw"``: the kind of the user's index as it is now."""
        return index_kind(self.get(user_id))

    def _load(self, user_id: str) -> _Entry:
        path = self.path(user_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return _Entry(self._new(self._kind_for(None, 0)))
        data = _unseal_view(blob)
        if data is None:
            logger.warning("index file %s fails its checksum; it will be rebuilt", path)
            return _Entry(self._new(self._kind_for(None, 0)))
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, MemoryError) as err:
            logger.warning("index file %s is unreadable (%s); it will be rebuilt", path, err)
            return _Entry(self._new(self._kind_for(None, 0)))
        del blob, data
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self.dim:
            raise StoreError(
                f"index file {path} holds a {type(index).__name__} of dimension "
                f"{getattr(index, 'd', '?')}, expected IndexIDMap2 of dimension {self.dim}; "
                "the store was written by other software or another embedding model"
            )
        inner = faiss.downcast_index(index.index)
        if (
            not isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSWFlat))
            or inner.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise StoreError(
                f"index file {path} holds an IndexIDMap2 over a {type(inner).__name__} of metric "
                f"{inner.metric_type}, expected IndexFlatIP or IndexHNSWFlat of inner product; "
                "the store was written by other software"
            )
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = self.ef_search
        return _Entry(index, int(np.count_nonzero(_id_view(index) == _DEAD)))

    def reload(self, user_id: str) -> None:
        """Forget the in-memory copy of the user's index: the next use reads the file."""
        with self._guard(user_id), self._lock:
            self._indexes.pop(user_id, None)

    def ids(self, user_id: str) -> np.ndarray:
        """The vector ids in the user's index (a repeated id appears as often as it is there)."""
        entry = self._entry(user_id)
        with self._guard(user_id):
            ids = faiss.vector_to_array(entry.index.id_map).astype(np.int64)
            return ids[ids != _DEAD] if entry.dead else ids

    def count(self, user_id: str) -> int:
        """How many vectors the user's index holds (tombstones not counted)."""
        return self._entry(user_id).live

    def add(self, user_id: str, vids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise StoreError(f"vectors of shape {vectors.shape} do not match dimension {self.dim}")
        ids = np.asarray(vids, dtype=np.int64)
        entry = self._entry(user_id)
        with self._guard(user_id):
            current = index_kind(entry.index)
            wanted = self._kind_for(current, entry.live + len(ids))
            if wanted != current:
                self._rebuild(user_id, entry, wanted, ids, vectors)
            else:
                entry.index.add_with_ids(vectors, ids)

    def remove(self, user_id: str, vids: Sequence[int]) -> int:
        """Remove every copy of the given ids; returns how many vectors went."""
        if not len(vids):
            return 0
        entry = self._entry(user_id)
        with self._guard(user_id):
            ids = np.asarray(vids, dtype=np.int64)
            if index_kind(entry.index) == "flat" and not entry.dead:
                # faiss's stub types only IDSelector; its Python wrapper also takes an int64 array.
                return int(entry.index.remove_ids(ids))  # type: ignore[arg-type]
            slots = _id_view(entry.index)
            gone = np.flatnonzero(np.isin(slots, ids[ids != _DEAD]))
            if not len(gone):
                return 0
            _vector_view(entry.index)[gone] = 0.0  # the removed vectors are gone, not hidden
            slots[gone] = _DEAD
            entry.index.construct_rev_map()
            entry.dead += len(gone)
            if entry.dead > REBUILD_DEAD_SHARE * entry.index.ntotal:
                kind = self._kind_for(index_kind(entry.index), entry.live)
                self._rebuild(user_id, entry, kind)
            return len(gone)

    def _rebuild(
        self,
        user_id: str,
        entry: _Entry,
        kind: str,
        ids: np.ndarray | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        """Rebuild ``entry`` as ``kind`` from its live vectors (and the new ones given)."""
        slots = _id_view(entry.index)
        live = slots != _DEAD
        old_ids, old_vectors = slots[live].copy(), _vector_view(entry.index)[live]
        if ids is not None and vectors is not None:
            old_ids = np.concatenate([old_ids, ids])
            old_vectors = np.concatenate([old_vectors, vectors])
        logger.info(
            "rebuilding the index of user %r as %s (%d vectors, %d removed slots dropped)",
            user_id,
            kind,
            len(old_ids),
            entry.dead,
        )
        index = self._new(kind)
        if len(old_ids):
            index.add_with_ids(np.ascontiguousarray(old_vectors), old_ids)
        entry.index, entry.dead = index, 0

    def search(self, user_id: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k ``(vid, cosine)`` pairs of the user's vectors, best first."""
        entry = self._entry(user_id)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._guard(user_id):
            live = entry.live
            if live == 0:
                return []
            k = min(k, live)
            params: Any = None
            if index_kind(entry.index) == "hnsw":
                # faiss's stubs lack SearchParametersHNSW; the module has it
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = max(self.ef_search, k)
            elif entry.dead:
                params = faiss.SearchParameters()
            if entry.dead and params is not None:
                params.sel = _LIVE
            if self.search_threads is None:
                scores, vids = entry.index.search(query, k, params=params)
            else:
                before = faiss.omp_get_max_threads()  # a per-thread OpenMP setting
                faiss.omp_set_num_threads(self.search_threads)
                try:
                    scores, vids = entry.index.search(query, k, params=params)
                finally:
                    faiss.omp_set_num_threads(before)
        return [(v, s) for v, s in zip(vids[0].tolist(), scores[0].tolist(), strict=True) if v >= 0]

    def save(self, user_id: str) -> None:
        index = self.get(user_id)
        with self._guard(user_id):
            data = faiss.serialize_index(index)  # a uint8 array, written without copies
            atomic_write_bytes(self.path(user_id), [data.data, _trailer(data)])

    def delete(self, user_id: str) -> bool:
        """Drop the user's index from memory and disk, with any temporary file a killed save
        left; True if an index file was removed."""
        with self._guard(user_id), self._lock:
            self._indexes.pop(user_id, None)
            path = self.path(user_id)
            existed = path.exists()
            path.unlink(missing_ok=True)
            for leftover in self.folder.glob(f"{path.name}*.tmp"):
                leftover.unlink(missing_ok=True)
            return existed

    def remove_orphans(self, user_ids: Sequence[str]) -> int:
        """Delete the index files of users not in ``user_ids`` (the store's users); call it
        holding the store's write lock. Returns how many were removed."""
        users = set(user_ids)
        keep = {self.path(user_id).name for user_id in users}
        orphans = [p for p in self.folder.glob("*.faiss") if p.name not in keep]
        with self._lock:
            for orphan in orphans:
                orphan.unlink(missing_ok=True)
            self._indexes = {u: i for u, i in self._indexes.items() if u in users}
        return len(orphans)

    def remove_leftovers(self) -> int:
        """Delete the temporary files of saves that were killed; call it holding the store's
        write lock (a live save's file is in use). Returns how many were removed."""
        leftovers = list(self.folder.glob("*.faiss*.tmp"))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        return len(leftovers)
