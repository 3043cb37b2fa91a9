"""Where items and profiles live: one storage interface, SQLite by default.

Vector ids (``vid``) are integers handed out by the store; the FAISS index keys its
vectors by them, so the store stays the single source of truth for what a user has.

Example:
    >>> import tempfile, pathlib
    >>> store = SQLiteProfileStore(pathlib.Path(tempfile.mkdtemp()) / "store.sqlite3")
    >>> store.users()
    []
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from langchain_stepback_profile.errors import ProfileVersionConflictError, StoreError
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.names import is_store_url as is_store_url
from langchain_stepback_profile.profile import UserProfile

if TYPE_CHECKING:  # numpy loads with the stores that use vectors, not with this module
    import numpy as np

STORE_FORMAT = "stepback-profile-store/1"


@dataclass(frozen=True)
class StoredItem:
    """A history item with the integer id its vector has in the user's index."""

    vid: int
    item: HistoryItem


@dataclass(frozen=True)
class ItemAnnotation:
    """A short text written about one history item (a style gist), cached by the store.

    ``item_hash`` is the item's content hash, so an edited item has no annotation; ``setup``
    names what wrote it (prompt and model), so another setup writes it again.
    """

    item_hash: str
    setup: str
    text: str


@dataclass(frozen=True)
class ForgetReport:
    """What :meth:`ProfileStore.delete_user` removed."""

    items: int
    profile_versions: int


def damaged(path: Path, cause: object) -> StoreError:
    """The error for a store file that cannot be read as it should (corrupt, locked...)."""
    if isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause):
        return StoreError(
            f"{path} stayed locked by another process for 30 s ({cause}); retry when its "
            "write is done"
        )
    return StoreError(
        f"{path} is damaged ({cause}); restore it from a backup, or move the store folder away "
        "and ingest the histories again (the index files are rebuilt from the database)"
    )


def profile_version_taken(profile: UserProfile) -> ProfileVersionConflictError:
    """The error every store raises when a profile version is already stored."""
    return ProfileVersionConflictError(
        f"profile version {profile.version} of user {profile.user_id!r} already exists: "
        "another process updated this profile; reopen the store and refresh again"
    )


class ProfileStore(ABC):
    """Storage interface for history items, profiles and store metadata.

    Implementations must keep one user's rows unreachable from any other user id and
    make each method atomic (all of it is written, or none).
    """

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A store-level setting (format, embedding model...)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Record a store-level setting."""

    @abstractmethod
    def users(self) -> list[str]:
        """Every user with at least one item or a profile, sorted."""

    @abstractmethod
    def has_user(self, user_id: str) -> bool:
        """True if the user has an item or a profile (cheap: no counting)."""

    @abstractmethod
    def count_items(self, user_id: str) -> int:
        """How many items the user has."""

    @abstractmethod
    def vids(self, user_id: str) -> list[int]:
        """The vector ids of the user's items."""

    @abstractmethod
    def get_items(self, user_id: str) -> list[StoredItem]:
        """All of the user's items, oldest first."""

    @abstractmethod
    def items_by_vid(self, user_id: str, vids: Sequence[int]) -> dict[int, HistoryItem]:
        """The user's items with these vector ids (others' ids are never returned)."""

    @abstractmethod
    def lookup(
        self, user_id: str, item_ids: Iterable[str], hashes: Iterable[str]
    ) -> tuple[dict[str, StoredItem], dict[str, StoredItem]]:
        """Existing items of the user by id and by content hash."""

    @abstractmethod
    def add_items(self, user_id: str, items: Sequence[HistoryItem]) -> list[int]:
        """Store new items in one transaction; returns their vector ids, in order."""

    @abstractmethod
    def remove_items(self, user_id: str, item_ids: Sequence[str]) -> list[int]:
        """Delete items; returns the vector ids that were removed."""

    @abstractmethod
    def get_profile(self, user_id: str) -> UserProfile | None:
        """The latest profile version, or ``None``."""

    @abstractmethod
    def profile_versions(self, user_id: str) -> list[UserProfile]:
        """Every stored version, oldest first."""

    @abstractmethod
    def put_profile(self, profile: UserProfile) -> None:
        """Store a new profile version (``profile.version`` must be new for that user)."""

    @abstractmethod
    def delete_user(self, user_id: str) -> ForgetReport:
        """Remove all of the user's rows (annotations included)."""

    def get_annotations(
        self, user_id: str, kind: str, item_hashes: Iterable[str]
    ) -> dict[str, ItemAnnotation]:
        """The user's stored annotations of one ``kind`` for these item content hashes, by hash.

        A store without annotation storage keeps none (the default): they are then written
        again on every use. Every store of this package keeps them.
        """
        return {}

    def put_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        """Store (or replace) annotations of the user's items; an annotation whose item the
        user no longer has is dropped. Returns how many were stored. Removing an item
        (:meth:`remove_items`) removes its annotations, :meth:`delete_user` all of them."""
        return 0

    def verify(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`StoreError` if the store's own structures are damaged; called before a
        repair trusts the store's view of a user."""

    def change_token(self) -> object | None:
        """A value that changes when another process commits to the store, read cheaply on
        every call so that cached state (indexes, profiles) is checked again; ``None`` when
        the store cannot tell (then only this process's own writes are seen at once)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class VectorProfileStore(ProfileStore):
    """A store that keeps each item's vector in the item's own row and searches them itself
    (:class:`~langchain_stepback_profile.postgres_store.PostgresProfileStore`).

    :class:`~langchain_stepback_profile.memory.ProfileMemory` then keeps no index files: it
    hands the vectors to :meth:`add_items` and each search to :meth:`search`, so every process
    that opens the same store searches the same vectors. Scores are inner products of unit
    vectors (cosine), as in :class:`~langchain_stepback_profile.index.HistoryIndex`.
    """

    location: str
    """Where the store is, for messages (never with a password)."""

    @property
    @abstractmethod
    def dimension(self) -> int | None:
        """The dimension of the store's vectors, ``None`` until the first vector is stored."""

    @abstractmethod
    def bind_dimension(self, dim: int) -> None:
        """Fix the dimension of the store's vectors (a store of another one raises
        :class:`StoreError`)."""

    @abstractmethod
    def add_items(
        self, user_id: str, items: Sequence[HistoryItem], vectors: np.ndarray | None = None
    ) -> list[int]:
        """Store new items, each with its row of ``vectors`` (shape ``(len(items), dim)``),
        in one transaction; returns their vector ids, in order."""

    @abstractmethod
    def search(self, user_id: str, vector: np.ndarray, k: int) -> list[tuple[StoredItem, float]]:
        """The user's k items whose vectors have the largest inner product with ``vector``,
        best first, with that score; items without a vector are left out."""

    @abstractmethod
    def vids_without_vectors(self, user_id: str) -> list[int]:
        """The vector ids of the user's items stored without a vector."""

    @abstractmethod
    def set_vectors(self, user_id: str, vids: Sequence[int], vectors: np.ndarray) -> None:
        """Store the vectors of the user's items with these vector ids."""


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages.

    Example:
        >>> mask_url("postgresql://app:secret@db:5432/profiles")
        'postgresql://app:***@db:5432/profiles'
    """
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    vid INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (user_id, item_id)
);
CREATE INDEX IF NOT EXISTS items_by_hash ON items (user_id, content_hash);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (user_id, version)
);
CREATE TABLE IF NOT EXISTS annotations (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_hash TEXT NOT NULL,
    setup TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, item_hash)
);
"""


class SQLiteProfileStore(ProfileStore):
    """The default store: one SQLite file, WAL journal, one transaction per write.

    Deleted rows are overwritten on disk (``secure_delete``, set here rather than left to how
    SQLite was built) and :meth:`delete_user` checkpoints and truncates the write-ahead log, so
    a forgotten user's text is in no file of the store once it returns.

    Example:
        >>> import tempfile, pathlib
        >>> store = SQLiteProfileStore(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite3")
        >>> store.add_items("alice", [HistoryItem(id="a", text="hello")])
        [1]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA busy_timeout=30000")  # other processes' writes
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise StoreError(
                    f"{self.path} is a SQLite database of other software (tables: "
                    f"{sorted(tables)[:5]}); use a new path for a stepback-profile store"
                )
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._conn.execute(statement)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as err:  # a damaged schema's text
            self._conn.close()
            raise StoreError(
                f"{self.path} is not a readable SQLite database ({err}); it is corrupt or not "
                "a stepback-profile store: restore it from a backup or use a new path"
            ) from None
        except StoreError:
            self._conn.close()
            raise

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn, self._lock, self.path)

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as err:
                raise damaged(self.path, err) from None

    def _item(self, data: str, digest: str) -> HistoryItem:
        """A stored row as an item, checked against the content hash stored beside it."""
        try:
            item = HistoryItem.model_validate_json(data)
        except ValueError as err:  # pydantic's ValidationError, bad JSON or text
            raise damaged(self.path, err) from None
        if item.content_hash != digest:
            raise damaged(self.path, "an item's text does not match its stored hash")
        return item

    def _profile(self, data: str) -> UserProfile:
        try:
            return UserProfile.model_validate_json(data)
        except ValueError as err:
            raise damaged(self.path, err) from None

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def users(self) -> list[str]:
        rows = self._query(
            "SELECT user_id FROM items UNION SELECT user_id FROM profiles ORDER BY 1"
        )
        return [r[0] for r in rows]

    def has_user(self, user_id: str) -> bool:
        return bool(
            self._query(
                "SELECT EXISTS (SELECT 1 FROM items WHERE user_id = ?) "
                "OR EXISTS (SELECT 1 FROM profiles WHERE user_id = ?)",
                (user_id, user_id),
            )[0][0]
        )

    def count_items(self, user_id: str) -> int:
        return self._query("SELECT COUNT(*) FROM items WHERE user_id = ?", (user_id,))[0][0]

    def vids(self, user_id: str) -> list[int]:
        return [r[0] for r in self._query("SELECT vid FROM items WHERE user_id = ?", (user_id,))]

    def get_items(self, user_id: str) -> list[StoredItem]:
        rows = self._query(
            "SELECT vid, data, content_hash FROM items WHERE user_id = ? ORDER BY vid", (user_id,)
        )
        return [StoredItem(vid, self._item(data, digest)) for vid, data, digest in rows]

    def items_by_vid(self, user_id: str, vids: Sequence[int]) -> dict[int, HistoryItem]:
        found: dict[int, HistoryItem] = {}
        vids = [int(v) for v in vids]
        for start in range(0, len(vids), 500):
            chunk = vids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # "+user_id" keeps SQLite on the primary key instead of scanning the user's rows
            rows = self._query(
                "SELECT vid, data, content_hash FROM items "
                f"WHERE +user_id = ? AND vid IN ({marks})",
                (user_id, *chunk),
            )
            found.update((vid, self._item(data, digest)) for vid, data, digest in rows)
        return found

    def lookup(
        self, user_id: str, item_ids: Iterable[str], hashes: Iterable[str]
    ) -> tuple[dict[str, StoredItem], dict[str, StoredItem]]:
        by_id: dict[str, StoredItem] = {}
        by_hash: dict[str, StoredItem] = {}
        searches = (("item_id", item_ids, by_id), ("content_hash", hashes, by_hash))
        for column, keys, found in searches:
            keys = list(dict.fromkeys(keys))
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._query(
                    f"SELECT vid, {column}, data, content_hash FROM items "
                    f"WHERE user_id = ? AND {column} IN ({marks})",
                    (user_id, *chunk),
                )
                for vid, key, data, digest in rows:
                    found.setdefault(key, StoredItem(vid, self._item(data, digest)))
        return by_id, by_hash

    def add_items(self, user_id: str, items: Sequence[HistoryItem]) -> list[int]:
        vids = []
        with self._transaction():
            for item in items:
                cursor = self._conn.execute(
                    "INSERT INTO items (user_id, item_id, content_hash, data) VALUES (?, ?, ?, ?)",
                    (user_id, item.id, item.content_hash, item.model_dump_json()),
                )
                assert cursor.lastrowid is not None  # set by every INSERT that succeeded
                vids.append(int(cursor.lastrowid))
        return vids

    def remove_items(self, user_id: str, item_ids: Sequence[str]) -> list[int]:
        with self._transaction():
            found, _ = self.lookup(user_id, item_ids, [])
            vids = [stored.vid for stored in found.values()]
            self._conn.executemany(
                "DELETE FROM items WHERE user_id = ? AND vid = ?", [(user_id, v) for v in vids]
            )
            if vids:  # annotations of contents the user no longer has
                self._conn.execute(
                    "DELETE FROM annotations WHERE user_id = ? AND item_hash NOT IN "
                    "(SELECT content_hash FROM items WHERE user_id = ?)",
                    (user_id, user_id),
                )
        return vids

    def get_annotations(
        self, user_id: str, kind: str, item_hashes: Iterable[str]
    ) -> dict[str, ItemAnnotation]:
        found: dict[str, ItemAnnotation] = {}
        hashes = list(dict.fromkeys(item_hashes))
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                "SELECT item_hash, setup, text FROM annotations "
                f"WHERE user_id = ? AND kind = ? AND item_hash IN ({marks})",
                (user_id, kind, *chunk),
            )
            found.update((h, ItemAnnotation(h, setup, text)) for h, setup, text in rows)
        return found

    def put_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        stored = 0
        with self._transaction():
            for note in annotations:
                stored += self._conn.execute(
                    "INSERT INTO annotations (user_id, kind, item_hash, setup, text) "
                    "SELECT ?, ?, ?, ?, ? WHERE EXISTS "
                    "(SELECT 1 FROM items WHERE user_id = ? AND content_hash = ?) "
                    "ON CONFLICT (user_id, kind, item_hash) DO UPDATE "
                    "SET setup = excluded.setup, text = excluded.text",
                    (user_id, kind, note.item_hash, note.setup, note.text, user_id, note.item_hash),
                ).rowcount
        return stored

    def get_profile(self, user_id: str) -> UserProfile | None:
        rows = self._query(
            "SELECT data FROM profiles WHERE user_id = ? ORDER BY version DESC LIMIT 1", (user_id,)
        )
        return self._profile(rows[0][0]) if rows else None

    def profile_versions(self, user_id: str) -> list[UserProfile]:
        rows = self._query(
            "SELECT data FROM profiles WHERE user_id = ? ORDER BY version", (user_id,)
        )
        return [self._profile(r[0]) for r in rows]

    def put_profile(self, profile: UserProfile) -> None:
        try:
            with self._transaction():
                self._conn.execute(
                    "INSERT INTO profiles (user_id, version, data) VALUES (?, ?, ?)",
                    (profile.user_id, profile.version, profile.model_dump_json()),
                )
        except sqlite3.IntegrityError:
            raise profile_version_taken(profile) from None

    def delete_user(self, user_id: str) -> ForgetReport:
        with self._transaction():
            items = self._conn.execute("DELETE FROM items WHERE user_id = ?", (user_id,)).rowcount
            versions = self._conn.execute(
                "DELETE FROM profiles WHERE user_id = ?", (user_id,)
            ).rowcount
            self._conn.execute("DELETE FROM annotations WHERE user_id = ?", (user_id,))
        # The log still holds the pages written before the delete: copy it into the database
        # (where secure_delete zeroed the rows) and truncate it.
        self._query("PRAGMA wal_checkpoint(TRUNCATE)")
        return ForgetReport(items=items, profile_versions=versions)

    def change_token(self) -> object | None:
        return self._query("PRAGMA data_version")[0][0]

    def verify(self) -> None:
        # integrity_check, not quick_check: a damaged index page can hide rows from the
        # indexed queries (vids) while the table's own pages look sound
        problems = [r[0] for r in self._query("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise damaged(self.path, "; ".join(map(str, problems)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error), holding the store lock."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self._conn = conn
        self._lock = lock
        self._path = path
        self._depth = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._conn.in_transaction:
            self._depth = 1  # nested: the outer transaction commits
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException as err:
            self._lock.release()  # __exit__ does not run when __enter__ raises
            if isinstance(err, sqlite3.DatabaseError):
                raise damaged(self._path, err) from None
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._depth:
                return
            try:
                self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
            except sqlite3.DatabaseError as err:
                raise damaged(self._path, err) from None
        finally:
            self._lock.release()
        # a write that failed because the file is damaged (a duplicate key is the caller's)
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.IntegrityError):
            raise damaged(self._path, exc) from None
