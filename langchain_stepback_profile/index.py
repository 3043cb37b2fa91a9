"""FAISS history index: one id-mapped inner-product index per user over unit vectors (cosine).

Each user's index is a separate file, so a query only ever touches the asking user's
vectors and costs what that user's history costs. Files are written atomically
(temporary file, fsync, rename) in FAISS's own format followed by a trailer: a magic tag and
the SHA-256 of the FAISS bytes, verified before the bytes reach FAISS. A file that fails the
check is never loaded: the index starts empty and the memory rebuilds it from the store.

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
from pathlib import Path

import faiss
import numpy as np

from langchain_stepback_profile.errors import StoreError

logger = logging.getLogger(__name__)


_MAGIC = b"SBPIDX01"
_DIGEST = hashlib.sha256().digest_size
_TRAILER = len(_MAGIC) + _DIGEST


def seal(data: bytes) -> bytes:
    """FAISS bytes with the checksum trailer that :func:`unseal` verifies."""
    return data + _MAGIC + hashlib.sha256(data).digest()


def unseal(blob: bytes) -> bytes | None:
    """The FAISS bytes of a sealed file, or ``None`` when the trailer or checksum is wrong."""
    if len(blob) < _TRAILER or blob[-_TRAILER : -_TRAILER + len(_MAGIC)] != _MAGIC:
        return None
    data = blob[:-_TRAILER]
    return data if hashlib.sha256(data).digest() == blob[-_DIGEST:] else None


def user_key(user_id: str) -> str:
    """File-safe key of a user id (no user input ever becomes a path)."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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


class HistoryIndex:
    """Per-user FAISS indexes (``IndexIDMap2`` over ``IndexFlatIP``) kept in one folder.

    Vectors must be L2-normalised so inner product is cosine similarity. Indexes load
    lazily and stay in memory; :meth:`save` persists one user's index.
    """

    def __init__(self, folder: str | Path, dim: int, *, search_threads: int | None = 1) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        # One OpenMP thread per single-query search: on small machines FAISS's threads spin
        # against each other and the embedder (measured in docs/benchmarks); parallelism comes
        # from concurrent queries instead. None keeps FAISS's own setting.
        self.search_threads = search_threads
        self._indexes: dict[str, faiss.IndexIDMap2] = {}
        self._user_locks: dict[str, threading.RLock] = {}
        self._lock = threading.RLock()

    def _guard(self, user_id: str) -> threading.RLock:
        """The user's own lock: one user's writes never wait for another user's searches."""
        with self._lock:
            return self._user_locks.setdefault(user_id, threading.RLock())

    def path(self, user_id: str) -> Path:
        return self.folder / f"{user_key(user_id)}.faiss"

    def _new(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def get(self, user_id: str) -> faiss.IndexIDMap2:
        """The user's index, loaded from disk on first use (empty if there is none)."""
        with self._lock:
            index = self._indexes.get(user_id)
            if index is None:
                index = self._load(user_id)
                self._indexes[user_id] = index
            return index

    def _load(self, user_id: str) -> faiss.IndexIDMap2:
        path = self.path(user_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return self._new()
        data = unseal(blob)
        if data is None:
            logger.warning("index file %s fails its checksum; it will be rebuilt", path)
            return self._new()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, MemoryError) as err:
            logger.warning("index file %s is unreadable (%s); it will be rebuilt", path, err)
            return self._new()
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self.dim:
            raise StoreError(
                f"index file {path} holds a {type(index).__name__} of dimension "
                f"{getattr(index, 'd', '?')}, expected IndexIDMap2 of dimension {self.dim}; "
                "the store was written by other software or another embedding model"
            )
        return index

    def reload(self, user_id: str) -> None:
        """Forget the in-memory copy of the user's index: the next use reads the file."""
        with self._guard(user_id), self._lock:
            self._indexes.pop(user_id, None)

    def ids(self, user_id: str) -> np.ndarray:
        """The vector ids in the user's index (a repeated id appears as often as it is there)."""
        index = self.get(user_id)
        with self._guard(user_id):
            return faiss.vector_to_array(index.id_map).astype(np.int64)

    def count(self, user_id: str) -> int:
        return int(self.get(user_id).ntotal)

    def add(self, user_id: str, vids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise StoreError(f"vectors of shape {vectors.shape} do not match dimension {self.dim}")
        index = self.get(user_id)
        with self._guard(user_id):
            index.add_with_ids(vectors, np.asarray(vids, dtype=np.int64))

    def remove(self, user_id: str, vids: Sequence[int]) -> int:
        if not len(vids):
            return 0
        index = self.get(user_id)
        with self._guard(user_id):
            # faiss's stub types only IDSelector; its Python wrapper also takes an int64 array.
            ids = np.asarray(vids, dtype=np.int64)
            return int(index.remove_ids(ids))  # type: ignore[arg-type]

    def search(self, user_id: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k ``(vid, cosine)`` pairs of the user's vectors, best first."""
        index = self.get(user_id)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._guard(user_id):
            if index.ntotal == 0:
                return []
            if self.search_threads is None:
                scores, vids = index.search(query, min(k, index.ntotal))
            else:
                before = faiss.omp_get_max_threads()  # a per-thread OpenMP setting
                faiss.omp_set_num_threads(self.search_threads)
                try:
                    scores, vids = index.search(query, min(k, index.ntotal))
                finally:
                    faiss.omp_set_num_threads(before)
        return [(v, s) for v, s in zip(vids[0].tolist(), scores[0].tolist(), strict=True) if v >= 0]

    def save(self, user_id: str) -> None:
        index = self.get(user_id)
        with self._guard(user_id):
            data = faiss.serialize_index(index).tobytes()
            atomic_write_bytes(self.path(user_id), seal(data))

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
