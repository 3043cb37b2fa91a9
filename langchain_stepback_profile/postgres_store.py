"""Items, their vectors and profiles in PostgreSQL with pgvector: one store that many
processes on many machines share, with no local files.

Give :class:`~langchain_stepback_profile.memory.ProfileMemory` a URL instead of a folder
(``ProfileMemory("postgresql://app@db/profiles")``) or a :class:`PostgresProfileStore`. Each
item's vector sits in the item's row (a pgvector ``vector(dim)`` column) and a search is one
exact query over the asking user's rows::

    SELECT ... FROM items WHERE user_id = $1 AND embedding IS NOT NULL
    ORDER BY embedding <#> $2, vid LIMIT $3

``<#>`` is pgvector's negative inner product: the score is the inner product of unit vectors
(cosine), as FAISS's ``IndexFlatIP`` computes it for the folder stores. The btree on
``(user_id, item_id)`` finds the user's rows; they are all scored, so a user's results never
depend on how the other users' vectors are spread (an approximate index filtered by user can
miss a small user's items).

Tables live in one PostgreSQL schema (default ``stepback_profile``)::

    store_info (schema_version, dimension)           one row: what this code reads and writes
    meta       (key, value)                          store settings (format, embedding model...)
    items      (vid identity, user_id, item_id, content_hash, data, embedding vector(dim))
    profiles   (user_id, version, data)
    annotations (user_id, kind, item_hash, setup, text)  per-item notes (style gists)
    build_runs  (run identity, job, settings, started_at)  shared profile builds (build_jobs)
    build_tasks (run, user_id, seq, state, worker, result, finished_at)  one row per user

User and item ids are ``bytea`` (UTF-8), so any id round-trips and users sort as in Python.
A schema of version 1 (before the build tables) is upgraded in place at its first open; one
written by a newer schema version, or holding vectors of another dimension than asked, is
refused before anything is written.

Example:
    ```python
    store = PostgresProfileStore("postgresql://app:secret@db:5432/profiles")
    memory = ProfileMemory("postgresql://app:secret@db:5432/profiles", store=store)
    memory.add("alice", ["I write about machine translation."])
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from langchain_stepback_profile.build_jobs import (
    DONE,
    FAILED,
    PENDING,
    BuildClaim,
    BuildJobStore,
    BuildSettings,
    TaskRow,
)
from langchain_stepback_profile.errors import DuplicateItemError, InvalidArgumentError, StoreError
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.names import is_store_url
from langchain_stepback_profile.profile import UserProfile
from langchain_stepback_profile.store import (
    ForgetReport,
    ItemAnnotation,
    StoredItem,
    VectorProfileStore,
    mask_url,
    profile_version_taken,
)

require_extra("postgres", feature="PostgresProfileStore")

import psycopg  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg_pool import ConnectionPool, PoolTimeout  # noqa: E402

SCHEMA_VERSION = 2
"""The layout of the tables this code reads and writes. Version 1 (no build tables) is upgraded
in place when opened; a newer version is refused (older code would not forget a user's rows
in the tables it does not know)."""

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_ANNOTATIONS = (
    "CREATE TABLE {s}.annotations (user_id bytea NOT NULL, kind text NOT NULL, "
    "item_hash text NOT NULL, setup text NOT NULL, text text NOT NULL, "
    "PRIMARY KEY (user_id, kind, item_hash))"
)
_BUILD_TABLES = (
    "CREATE TABLE {s}.build_runs (run bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "job text NOT NULL, settings text NOT NULL, started_at timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX build_runs_by_job ON {s}.build_runs (job, run)",
    "CREATE TABLE {s}.build_tasks (run bigint NOT NULL REFERENCES {s}.build_runs "
    "ON DELETE CASCADE, user_id bytea NOT NULL, seq integer NOT NULL, "
    "state text NOT NULL DEFAULT 'pending', worker text, result text, finished_at timestamptz, "
    "PRIMARY KEY (run, user_id))",
    "CREATE INDEX build_tasks_pending ON {s}.build_tasks (run, seq) WHERE state = 'pending'",
    "CREATE INDEX build_tasks_by_user ON {s}.build_tasks (user_id)",
)
_CLAIM_SESSION = (
    # the claim's transaction is idle while the model works: never end it for that, and notice
    # a vanished worker machine within about 25 s (10 s idle, then 3 probes 5 s apart)
    "SET idle_in_transaction_session_timeout = 0",
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for these parts."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _uid(user_id: str) -> bytes:
    return user_id.encode("utf-8")


class PostgresProfileStore(VectorProfileStore, BuildJobStore):
    """A :class:`~langchain_stepback_profile.store.ProfileStore` in a PostgreSQL database with
    the pgvector extension, for many processes on many machines.

    Every write is one transaction. Writes for one user also hold a transaction-level advisory
    lock on that user, so two processes adding to one user are applied one after the other
    (ids are checked against what the other committed); writes for different users run side by
    side. Vector ids come from an identity column: unique across processes, never reused.
    Connections come from a pool (``pool_size`` at most), shared by the threads of a process.

    Nothing is cached between calls: each call reads the database, so a write or a forget
    committed by any process is seen by every process at its next call.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:5432/database`` (the password may
            also come from ``PGPASSWORD`` or ``~/.pgpass``).
        schema: the PostgreSQL schema of the tables (created if missing); several stores can
            share a database under different schemas.
        dimension: the vectors' dimension, if known; a store that holds another one is refused.
            Without it the dimension is fixed by the first vectors stored.
        pool_size: the most connections this object opens.
        connect_timeout: seconds to wait for the server, when opening and for a connection.

    Example:
        ```python
        store = PostgresProfileStore("postgresql://app@db/profiles", dimension=384)
        store.add_items("alice", [HistoryItem(id="a", text="hello")])
        ```
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "stepback_profile",
        dimension: int | None = None,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
    ) -> None:
        if not is_store_url(url):
            raise InvalidArgumentError(
                f"url must be a PostgreSQL URL such as postgresql://user:password@host:5432/db, "
                f"got {url!r:.60}"
            )
        if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
            raise InvalidArgumentError(
                f"schema must be a lower-case PostgreSQL name (letters, digits, _), got {schema!r}"
            )
        if dimension is not None and (
            isinstance(dimension, bool) or not isinstance(dimension, int) or dimension <= 0
        ):
            raise InvalidArgumentError(f"dimension must be a positive integer, got {dimension!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size <= 0:
            raise InvalidArgumentError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.url = url
        self.schema = schema
        self.location = f"{mask_url(url)} (schema {schema})"
        self._timeout = float(connect_timeout)
        self._lock = threading.Lock()
        self._dimension: int | None = None
        conn = self._connect()
        try:
            self._dimension = self._set_up(conn, dimension)
        finally:
            conn.close()
        self._pool: ConnectionPool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self._timeout))},
            configure=register_vector,
            timeout=self._timeout,
            open=False,
            name=f"stepback-profile {schema}",
        )
        try:
            self._pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout:
            self._pool.close()
            raise self._unreachable("no connection within the timeout") from None

    # ----------------------------------------------------------------- connecting
    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except psycopg.OperationalError as err:
            raise self._refused(err) from None

    def _refused(self, err: psycopg.OperationalError) -> StoreError:
        reason = _first_line(err)
        if "authentication failed" in reason or ("role" in reason and "does not exist" in reason):
            return StoreError(
                f"PostgreSQL at {mask_url(self.url)} refused the login ({reason}); fix the user "
                "name and password in the URL (or PGPASSWORD / ~/.pgpass)"
            )
        if "database" in reason and "does not exist" in reason:
            return StoreError(
                f"PostgreSQL at {mask_url(self.url)} has no such database ({reason}); create it "
                "(createdb NAME, or CREATE DATABASE) or fix the database name in the URL"
            )
        return self._unreachable(reason)

    def _unreachable(self, reason: str) -> StoreError:
        return StoreError(
            f"cannot reach PostgreSQL at {mask_url(self.url)} ({reason}); check that the server "
            "is running and that the URL's host and port are right (or raise connect_timeout)"
        )

    def _failed(self, err: psycopg.Error) -> StoreError:
        if isinstance(err, psycopg.errors.InsufficientPrivilege):
            return StoreError(
                f"the PostgreSQL user of {self.location} lacks a privilege ({_first_line(err)}); "
                "grant it (CREATE on the database to make the tables, SELECT, INSERT, UPDATE "
                "and DELETE on them to use them), or have the database owner open the store once"
            )
        if isinstance(err, psycopg.OperationalError):
            return StoreError(
                f"the connection to PostgreSQL at {self.location} failed ({_first_line(err)}); "
                "check the server and the network, then retry the call"
            )
        return StoreError(
            f"PostgreSQL at {self.location} refused a query ({_first_line(err)}); the tables "
            "may have been changed by hand: restore them, or use a new schema= or database"
        )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit); database failures become :class:`StoreError`."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise self._unreachable(f"no free connection within {self._timeout:g} s") from None
        except psycopg.errors.UniqueViolation:
            raise  # the callers that can meet one turn it into their own error
        except psycopg.Error as err:
            raise self._failed(err) from None

    @contextmanager
    def _write(self, user_id: str | None = None) -> Iterator[psycopg.Cursor]:
        """One transaction; with ``user_id`` it holds that user's advisory lock until commit."""
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            if user_id is not None:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_key(self.schema, user_id),))
            yield cur

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(self._sql(query), params).fetchall()

    def _sql(self, query: str) -> sql.Composed:
        """``query`` with ``{s}`` standing for the store's schema, quoted."""
        return sql.SQL(query).format(s=sql.Identifier(self.schema))

    # ----------------------------------------------------------------- schema
    def _set_up(self, conn: psycopg.Connection, dimension: int | None) -> int | None:
        """Check (or create) the tables in one transaction; returns the stored dimension.
        A refusal rolls the transaction back: nothing is written."""
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(self.schema, "setup"),))
                tables = {
                    r[0]
                    for r in conn.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        (self.schema,),
                    )
                }
                if not tables:
                    self._create(conn, dimension)
                    return dimension
                if "store_info" not in tables:
                    raise StoreError(
                        f"the schema {self.schema!r} at {mask_url(self.url)} holds tables of "
                        f"other software ({', '.join(sorted(tables)[:5])}); pass another "
                        "schema= or use another database"
                    )
                info = self._sql("SELECT schema_version, dimension FROM {s}.store_info")
                row = conn.execute(info).fetchone()
                if row is None:
                    raise StoreError(
                        f"the store at {self.location} has no schema version row; restore it "
                        "from a backup, or use another schema= or database"
                    )
                version, stored = row
                if version not in (1, SCHEMA_VERSION):  # 1 is upgraded below
                    raise StoreError(
                        f"the store at {self.location} has schema version {version}, but this "
                        f"version of langchain-stepback-profile reads schema version "
                        f"{SCHEMA_VERSION} (and upgrades version 1); open it with the package "
                        "version that wrote it, or use another schema= or database"
                    )
                if dimension is not None and stored is not None and stored != dimension:
                    raise StoreError(
                        f"the store at {self.location} holds vectors of dimension {stored}, not "
                        f"{dimension}; open it with the embedding model it was built with, or "
                        "use another schema= or database (vectors of two models cannot be mixed)"
                    )
                if dimension is not None and stored is None:
                    self._fix_dimension(conn, dimension)
                    stored = dimension
                if "annotations" not in tables:  # a store written before they existed
                    conn.execute(self._sql(_ANNOTATIONS))
                if version == 1:  # add the build tables; every stored row stays as it is
                    for statement in _BUILD_TABLES:
                        conn.execute(self._sql(statement))
                    conn.execute(
                        self._sql("UPDATE {s}.store_info SET schema_version = %s"),
                        (SCHEMA_VERSION,),
                    )
                return stored
        except psycopg.Error as err:
            raise self._failed(err) from None

    def _create(self, conn: psycopg.Connection, dimension: int | None) -> None:
        try:
            with conn.transaction():  # a savepoint: its failure leaves the outer one usable
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as err:
            raise StoreError(
                f"the database at {mask_url(self.url)} lacks the pgvector extension and this "
                f"user may not create it ({_first_line(err)}); install pgvector on the server "
                "and run CREATE EXTENSION vector once as an owner of the database"
            ) from None
        column = f"vector({int(dimension)})" if dimension is not None else "vector"
        statements = [
            "CREATE SCHEMA IF NOT EXISTS {s}",
            "CREATE TABLE {s}.store_info (one boolean PRIMARY KEY DEFAULT true CHECK (one), "
            "schema_version integer NOT NULL, dimension integer)",
            "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
            "CREATE TABLE {s}.items (vid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "user_id bytea NOT NULL, item_id bytea NOT NULL, content_hash text NOT NULL, "
            f"data text NOT NULL, embedding {column}, UNIQUE (user_id, item_id))",
            "CREATE INDEX items_by_hash ON {s}.items (user_id, content_hash)",
            "CREATE TABLE {s}.profiles (user_id bytea NOT NULL, version integer NOT NULL, "
            "data text NOT NULL, PRIMARY KEY (user_id, version))",
            _ANNOTATIONS,
            *_BUILD_TABLES,
        ]
        for statement in statements:
            conn.execute(self._sql(statement))
        conn.execute(
            self._sql("INSERT INTO {s}.store_info (schema_version, dimension) VALUES (%s, %s)"),
            (SCHEMA_VERSION, dimension),
        )

    def _fix_dimension(self, conn: psycopg.Connection, dim: int) -> None:
        conn.execute(
            self._sql(f"ALTER TABLE {{s}}.items ALTER COLUMN embedding TYPE vector({int(dim)})")
        )
        conn.execute(self._sql("UPDATE {s}.store_info SET dimension = %s"), (dim,))

    @property
    def dimension(self) -> int | None:
        if self._dimension is None:  # another process may have stored the first vectors
            self._dimension = self._rows("SELECT dimension FROM {s}.store_info")[0][0]
        return self._dimension

    def bind_dimension(self, dim: int) -> None:
        if self.dimension == dim:
            return
        with self._lock, self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(self.schema, "setup"),))
            row = conn.execute(
                self._sql("SELECT dimension FROM {s}.store_info FOR UPDATE")
            ).fetchone()
            stored = row[0] if row else None
            if stored is None:
                self._fix_dimension(conn, dim)
                stored = dim
        self._dimension = stored
        if stored != dim:
            raise StoreError(
                f"the store at {self.location} holds vectors of dimension {stored}, not {dim}; "
                "use the embedding model the store was built with"
            )

    def verify(self) -> None:
        rows = self._rows("SELECT schema_version FROM {s}.store_info")
        if [r[0] for r in rows] != [SCHEMA_VERSION]:
            raise StoreError(
                f"the store at {self.location} no longer has schema version {SCHEMA_VERSION} "
                f"(found {[r[0] for r in rows]}); restore it from a backup"
            )

    def change_token(self) -> object | None:
        return object()  # nothing is cached: every call reads the database

    # ----------------------------------------------------------------- rows
    def _item(self, data: str, digest: str) -> HistoryItem:
        try:
            item = HistoryItem.model_validate_json(data)
        except ValueError as err:
            raise StoreError(f"an item row at {self.location} is damaged ({err})") from None
        if item.content_hash != digest:
            raise StoreError(
                f"an item row at {self.location} does not match its stored hash; restore the "
                "items table from a backup"
            )
        return item

    def _profile(self, data: str) -> UserProfile:
        try:
            return UserProfile.model_validate_json(data)
        except ValueError as err:
            raise StoreError(f"a profile row at {self.location} is damaged ({err})") from None

    # ----------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM {s}.meta WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (key, value),
            )

    # ----------------------------------------------------------------- users and items
    def users(self) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT user_id FROM {s}.items UNION SELECT user_id FROM {s}.profiles "
            "ORDER BY 1"
        )
        return [bytes(r[0]).decode("utf-8") for r in rows]

    def has_user(self, user_id: str) -> bool:
        uid = _uid(user_id)
        rows = self._rows(
            "SELECT EXISTS (SELECT 1 FROM {s}.items WHERE user_id = %s) "
            "OR EXISTS (SELECT 1 FROM {s}.profiles WHERE user_id = %s)",
            (uid, uid),
        )
        return bool(rows[0][0])

    def count_items(self, user_id: str) -> int:
        return int(
            self._rows("SELECT count(*) FROM {s}.items WHERE user_id = %s", (_uid(user_id),))[0][0]
        )

    def vids(self, user_id: str) -> list[int]:
        rows = self._rows("SELECT vid FROM {s}.items WHERE user_id = %s", (_uid(user_id),))
        return [int(r[0]) for r in rows]

    def get_items(self, user_id: str) -> list[StoredItem]:
        rows = self._rows(
            "SELECT vid, data, content_hash FROM {s}.items WHERE user_id = %s ORDER BY vid",
            (_uid(user_id),),
        )
        return [StoredItem(int(vid), self._item(data, digest)) for vid, data, digest in rows]

    def items_by_vid(self, user_id: str, vids: Sequence[int]) -> dict[int, HistoryItem]:
        wanted = [int(v) for v in vids]
        if not wanted:
            return {}
        rows = self._rows(
            "SELECT vid, data, content_hash FROM {s}.items WHERE user_id = %s AND vid = ANY(%s)",
            (_uid(user_id), wanted),
        )
        return {int(vid): self._item(data, digest) for vid, data, digest in rows}

    def lookup(
        self, user_id: str, item_ids: Iterable[str], hashes: Iterable[str]
    ) -> tuple[dict[str, StoredItem], dict[str, StoredItem]]:
        ids = [i.encode("utf-8") for i in dict.fromkeys(item_ids)]
        digests = list(dict.fromkeys(hashes))
        by_id: dict[str, StoredItem] = {}
        by_hash: dict[str, StoredItem] = {}
        if not (ids or digests):
            return by_id, by_hash
        rows = self._rows(
            "SELECT vid, item_id, data, content_hash FROM {s}.items WHERE user_id = %s "
            "AND (item_id = ANY(%s) OR content_hash = ANY(%s)) ORDER BY vid",
            (_uid(user_id), ids, digests),
        )
        wanted_ids, wanted_hashes = set(ids), set(digests)
        for vid, item_id, data, digest in rows:  # oldest first: the first match wins
            stored = StoredItem(int(vid), self._item(data, digest))
            if bytes(item_id) in wanted_ids:
                by_id.setdefault(stored.item.id, stored)
            if digest in wanted_hashes:
                by_hash.setdefault(digest, stored)
        return by_id, by_hash

    def _vectors(self, vectors: np.ndarray, rows: int) -> np.ndarray:
        """``vectors`` as float32 rows of the store's dimension (fixed by the first ones)."""
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != rows:
            raise InvalidArgumentError(
                f"vectors must have one row per item ({rows}), got shape {array.shape}"
            )
        self.bind_dimension(int(array.shape[1]))
        return array

    def add_items(
        self, user_id: str, items: Sequence[HistoryItem], vectors: np.ndarray | None = None
    ) -> list[int]:
        if not items:
            return []
        rows = self._vectors(vectors, len(items)) if vectors is not None else None
        uid = _uid(user_id)
        ids = [item.id.encode("utf-8") for item in items]
        insert = self._sql(
            "INSERT INTO {s}.items (user_id, item_id, content_hash, data, embedding) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING vid"
        )
        params = [
            (uid, key, item.content_hash, item.model_dump_json(), None if rows is None else rows[n])
            for n, (key, item) in enumerate(zip(ids, items, strict=True))
        ]
        try:
            with self._write(user_id) as cur:
                cur.execute(
                    self._sql(
                        "SELECT item_id FROM {s}.items WHERE user_id = %s AND item_id = ANY(%s)"
                    ),
                    (uid, ids),
                )
                taken = {bytes(r[0]) for r in cur.fetchall()}
                clash = next((k for n, k in enumerate(ids) if k in taken or k in ids[:n]), None)
                if clash is not None:
                    raise _clash(clash.decode("utf-8"), user_id)
                cur.executemany(insert, params, returning=True)
                vids: list[int] = []
                while True:
                    row = cur.fetchone()
                    assert row is not None  # each INSERT ... RETURNING returns its row
                    vids.append(int(row[0]))
                    if not cur.nextset():
                        break
        except psycopg.errors.UniqueViolation:  # cannot happen under the user's lock
            raise _clash("(written meanwhile)", user_id) from None
        return vids

    def remove_items(self, user_id: str, item_ids: Sequence[str]) -> list[int]:
        ids = [i.encode("utf-8") for i in item_ids]
        if not ids:
            return []
        with self._write(user_id) as cur:
            cur.execute(
                self._sql(
                    "DELETE FROM {s}.items WHERE user_id = %s AND item_id = ANY(%s) RETURNING vid"
                ),
                (_uid(user_id), ids),
            )
            vids = [int(r[0]) for r in cur.fetchall()]
            if vids:  # annotations of contents the user no longer has
                cur.execute(
                    self._sql(
                        "DELETE FROM {s}.annotations a WHERE a.user_id = %s AND NOT EXISTS "
                        "(SELECT 1 FROM {s}.items i WHERE i.user_id = a.user_id "
                        "AND i.content_hash = a.item_hash)"
                    ),
                    (_uid(user_id),),
                )
            return vids

    # ----------------------------------------------------------------- annotations
    def get_annotations(
        self, user_id: str, kind: str, item_hashes: Iterable[str]
    ) -> dict[str, ItemAnnotation]:
        hashes = list(dict.fromkeys(item_hashes))
        if not hashes:
            return {}
        rows = self._rows(
            "SELECT item_hash, setup, text FROM {s}.annotations "
            "WHERE user_id = %s AND kind = %s AND item_hash = ANY(%s)",
            (_uid(user_id), kind, hashes),
        )
        return {h: ItemAnnotation(h, setup, text) for h, setup, text in rows}

    def put_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        if not annotations:
            return 0
        uid = _uid(user_id)
        stored = 0
        with self._write(user_id) as cur:  # under the user's lock: no removal in between
            for note in annotations:
                cur.execute(
                    self._sql(
                        "INSERT INTO {s}.annotations (user_id, kind, item_hash, setup, text) "
                        "SELECT %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM {s}.items "
                        "WHERE user_id = %s AND content_hash = %s) "
                        "ON CONFLICT (user_id, kind, item_hash) DO UPDATE "
                        "SET setup = excluded.setup, text = excluded.text"
                    ),
                    (uid, kind, note.item_hash, note.setup, note.text, uid, note.item_hash),
                )
                stored += cur.rowcount
        return stored

    # ----------------------------------------------------------------- vectors
    def search(self, user_id: str, vector: np.ndarray, k: int) -> list[tuple[StoredItem, float]]:
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        dim = self.dimension
        if dim is None:
            return []  # no vector stored yet
        if query.shape[0] != dim:
            raise StoreError(
                f"the query vector has dimension {query.shape[0]} but the store at "
                f"{self.location} holds dimension {dim}; use the store's embedding model"
            )
        rows = self._rows(
            "SELECT vid, data, content_hash, (embedding <#> %s) * -1 FROM {s}.items "
            "WHERE user_id = %s AND embedding IS NOT NULL "
            "ORDER BY embedding <#> %s, vid LIMIT %s",
            (query, _uid(user_id), query, int(k)),
        )
        return [
            (StoredItem(int(vid), self._item(data, digest)), float(score))
            for vid, data, digest, score in rows
        ]

    def vids_without_vectors(self, user_id: str) -> list[int]:
        rows = self._rows(
            "SELECT vid FROM {s}.items WHERE user_id = %s AND embedding IS NULL ORDER BY vid",
            (_uid(user_id),),
        )
        return [int(r[0]) for r in rows]

    def set_vectors(self, user_id: str, vids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(vids):
            return
        rows = self._vectors(vectors, len(vids))
        uid = _uid(user_id)
        with self._write(user_id) as cur:
            cur.executemany(
                self._sql("UPDATE {s}.items SET embedding = %s WHERE user_id = %s AND vid = %s"),
                [(rows[n], uid, int(vid)) for n, vid in enumerate(vids)],
            )

    # ----------------------------------------------------------------- profiles
    def get_profile(self, user_id: str) -> UserProfile | None:
        rows = self._rows(
            "SELECT data FROM {s}.profiles WHERE user_id = %s ORDER BY version DESC LIMIT 1",
            (_uid(user_id),),
        )
        return self._profile(rows[0][0]) if rows else None

    def profile_versions(self, user_id: str) -> list[UserProfile]:
        rows = self._rows(
            "SELECT data FROM {s}.profiles WHERE user_id = %s ORDER BY version",
            (_uid(user_id),),
        )
        return [self._profile(r[0]) for r in rows]

    def put_profile(self, profile: UserProfile) -> None:
        try:
            with self._write() as cur:
                cur.execute(
                    self._sql(
                        "INSERT INTO {s}.profiles (user_id, version, data) VALUES (%s, %s, %s)"
                    ),
                    (_uid(profile.user_id), profile.version, profile.model_dump_json()),
                )
        except psycopg.errors.UniqueViolation:
            raise profile_version_taken(profile) from None

    # ----------------------------------------------------------------- forgetting
    def delete_user(self, user_id: str) -> ForgetReport:
        uid = _uid(user_id)
        with self._write() as cur:
            # first, before the user's lock: a build of this user that a worker holds is
            # waited for (its profile is then deleted below), and that build may need the lock
            cur.execute(self._sql("DELETE FROM {s}.build_tasks WHERE user_id = %s"), (uid,))
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_key(self.schema, user_id),))
            cur.execute(self._sql("DELETE FROM {s}.items WHERE user_id = %s"), (uid,))
            items = cur.rowcount
            cur.execute(self._sql("DELETE FROM {s}.profiles WHERE user_id = %s"), (uid,))
            versions = cur.rowcount
            cur.execute(self._sql("DELETE FROM {s}.annotations WHERE user_id = %s"), (uid,))
        return ForgetReport(items=items, profile_versions=versions)

    # ----------------------------------------------------------------- shared builds
    def open_build_run(
        self,
        job: str,
        users: Sequence[str],
        settings: BuildSettings,
        check: Callable[[BuildSettings], None],
    ) -> tuple[int, BuildSettings, bool, int]:
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_key(self.schema, "build", job),))
            cur.execute(
                self._sql(
                    "SELECT r.run, r.settings FROM {s}.build_runs r WHERE r.job = %s AND EXISTS "
                    "(SELECT 1 FROM {s}.build_tasks t WHERE t.run = r.run AND t.state = %s) "
                    "ORDER BY r.run DESC LIMIT 1"
                ),
                (job, PENDING),
            )
            row = cur.fetchone()
            started = row is None
            if started:
                # the job's finished runs but the last one go (their reports are superseded)
                cur.execute(
                    self._sql(
                        "DELETE FROM {s}.build_runs WHERE job = %s AND run < "
                        "(SELECT max(run) FROM {s}.build_runs WHERE job = %s)"
                    ),
                    (job, job),
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO {s}.build_runs (job, settings) VALUES (%s, %s) RETURNING run"
                    ),
                    (job, settings.to_json()),
                )
                created = cur.fetchone()
                assert created is not None  # INSERT ... RETURNING returns its row
                run, stored = int(created[0]), settings
            else:
                assert row is not None
                run, stored = int(row[0]), BuildSettings.from_json(row[1])
                check(stored)  # raises to refuse the join: the transaction is rolled back
            cur.execute(
                self._sql("SELECT coalesce(max(seq), 0) FROM {s}.build_tasks WHERE run = %s"),
                (run,),
            )
            first = int(cur.fetchone()[0]) + 1  # type: ignore[index]
            cur.executemany(
                self._sql(
                    "INSERT INTO {s}.build_tasks (run, user_id, seq) VALUES (%s, %s, %s) "
                    "ON CONFLICT (run, user_id) DO NOTHING"
                ),
                [(run, _uid(u), first + n) for n, u in enumerate(dict.fromkeys(users))],
            )
            cur.execute(self._sql("SELECT count(*) FROM {s}.build_tasks WHERE run = %s"), (run,))
            total = int(cur.fetchone()[0])  # type: ignore[index]
        return run, stored, started, total

    def latest_build_run(self, job: str, open_only: bool) -> tuple[int, BuildSettings] | None:
        rows = self._rows(
            "SELECT r.run, r.settings FROM {s}.build_runs r WHERE r.job = %s AND (NOT %s OR "
            "EXISTS (SELECT 1 FROM {s}.build_tasks t WHERE t.run = r.run AND t.state = %s)) "
            "ORDER BY r.run DESC LIMIT 1",
            (job, open_only, PENDING),
        )
        return (int(rows[0][0]), BuildSettings.from_json(rows[0][1])) if rows else None

    def claim_build(self, run: int, worker: str) -> BuildClaim | None:
        """A pending user of the run that no open transaction holds, locked by a transaction
        on a connection of its own (``FOR UPDATE SKIP LOCKED``) until the claim ends. When the
        worker's process or machine dies, the server ends that transaction (the connection
        closes, or its keepalive probes go unanswered) and the user is claimable again."""
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=False,
                connect_timeout=max(1, round(self._timeout)),
                application_name=f"stepback-profile build {worker}"[:63],
                keepalives=1,  # TCP: a vanished server is noticed in about 25 s
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.OperationalError as err:
            raise self._refused(err) from None
        try:
            for statement in _CLAIM_SESSION:
                conn.execute(statement)
            row = conn.execute(
                self._sql(
                    "SELECT user_id FROM {s}.build_tasks WHERE run = %s AND state = %s "
                    "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED"
                ),
                (run, PENDING),
            ).fetchone()
        except psycopg.Error as err:
            conn.close()
            raise self._failed(err) from None
        if row is None:
            conn.close()
            return None
        return _PostgresClaim(self, conn, run, bytes(row[0]).decode("utf-8"))

    def build_run_pending(self, run: int) -> tuple[int, int]:
        row = self._rows(
            "SELECT count(*) FILTER (WHERE state = %s), count(*) FROM {s}.build_tasks "
            "WHERE run = %s",
            (PENDING, run),
        )[0]
        return int(row[0]), int(row[1])

    def build_run_tasks(self, run: int) -> list[TaskRow]:
        rows = self._rows(
            "SELECT user_id, state, worker, result FROM {s}.build_tasks WHERE run = %s "
            "ORDER BY seq",
            (run,),
        )
        return [
            TaskRow(
                bytes(uid).decode("utf-8"),
                state,
                worker,
                None if result is None else json.loads(result),
            )
            for uid, state, worker, result in rows
        ]

    def close(self) -> None:
        self._pool.close()


class _PostgresClaim(BuildClaim):
    """A user of a build run locked by this claim's own open transaction."""

    def __init__(
        self, store: PostgresProfileStore, conn: psycopg.Connection, run: int, user_id: str
    ) -> None:
        self._store = store
        self._conn = conn
        self._run = run
        self.user_id = user_id

    def finish(self, state: str, worker: str, result: dict[str, Any]) -> None:
        if state not in (DONE, FAILED):
            raise InvalidArgumentError(f"a claim finishes as {DONE!r} or {FAILED!r}, not {state!r}")
        try:
            self._conn.execute(
                self._store._sql(
                    "UPDATE {s}.build_tasks SET state = %s, worker = %s, result = %s, "
                    "finished_at = now() WHERE run = %s AND user_id = %s"
                ),
                (state, worker, json.dumps(result), self._run, _uid(self.user_id)),
            )
            self._conn.commit()
        except psycopg.Error as err:
            raise self._store._failed(err) from None
        finally:
            self._conn.close()

    def release(self) -> None:
        self._conn.close()  # an open transaction is rolled back when its connection closes


def _clash(item_id: str, user_id: str) -> DuplicateItemError:
    return DuplicateItemError(
        f"item id {item_id!r} is used twice for user {user_id!r} (item ids are unique per "
        "user); nothing of this batch was written: give each item its own id"
    )
