"""ProfileMemory: the one object that owns users' histories, their FAISS indexes and profiles.

Every face (LangChain retriever, agent middleware, LlamaIndex memory) wraps a
``ProfileMemory``; nothing else touches the store or the index.

Example:
    ```python
    memory = ProfileMemory("./profiles")
    memory.add("alice", [{"title": "Neural MT", "abstract": "We..."}])
    memory.refresh(llm=chat_model)
    memory.search("alice", "translation", k=2)
    ```
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel
from tqdm.auto import tqdm

from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.build_jobs import (
    DEFAULT_BUILD_JOB,
    DONE,
    FAILED,
    BuildClaim,
    BuildJob,
    BuildJobStore,
    BuildSettings,
    TaskRow,
    worker_name,
)
from langchain_stepback_profile.distill import (
    PROFILE_STRATEGIES,
    BuildMode,
    ProfileBuild,
    ProfileStrategy,
    StepBackProfiler,
    check_config,
)
from langchain_stepback_profile.embeddings import (
    MiniLMEmbeddings,
    embedding_id,
    encode_query,
    encode_texts,
)
from langchain_stepback_profile.errors import (
    BuildFailure,
    BuildJobError,
    DuplicateItemError,
    InvalidArgumentError,
    ProfileBuildError,
    ProfileTimeoutError,
    ProfileVersionConflictError,
    StoreError,
    UnknownUserError,
)
from langchain_stepback_profile.evidence import claim_support
from langchain_stepback_profile.history import (
    HistoryItem,
    check_user_id,
    history_hash,
    to_history_items,
)
from langchain_stepback_profile.index import (
    HNSW_EF_SEARCH,
    INDEX_KINDS,
    HistoryIndex,
    IndexKind,
    check_ef_search,
    check_index_kind,
)
from langchain_stepback_profile.locking import LOCK_NAME, FolderLock
from langchain_stepback_profile.profile import UserProfile
from langchain_stepback_profile.profile_schema import ProfileSchema
from langchain_stepback_profile.store import (
    STORE_FORMAT,
    ItemAnnotation,
    ProfileStore,
    SQLiteProfileStore,
    VectorProfileStore,
    is_store_url,
)
from langchain_stepback_profile.style_gists import GistReport, StyleGists
from langchain_stepback_profile.tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)

RawItem = str | Mapping[str, Any] | HistoryItem | Document | BaseMessage
OnError = Literal["raise", "report"]
PROFILES_FORMAT = "stepback-profile-profiles/1"
_BUILD_ATTEMPTS = 5  # saves that find a newer profile stored by another process
_ADD_ATTEMPTS = 5  # adds that find items another process stored since they were planned
_DB_NAME = "store.sqlite3"
_INDEX_DIR = "indexes"


def _timed_out(user_id: str, timeout: float) -> ProfileTimeoutError:
    return ProfileTimeoutError(
        f"the profile of user {user_id!r} was not built within {timeout:g} s; the stored "
        "profile was kept (a larger timeout, a faster model, or fewer items per call help)"
    )


def _within(timeout: float | None, user_id: str, build: Callable[[], ProfileBuild]) -> ProfileBuild:
    """``build()``, given at most ``timeout`` seconds (in a daemon thread, abandoned after)."""
    if timeout is None:
        return build()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["build"] = build()
        except BaseException as err:  # handed to the waiting thread
            box["error"] = err

    worker = threading.Thread(target=run, daemon=True, name=f"profile-build-{user_id}")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _timed_out(user_id, timeout)
    if "error" in box:
        raise box["error"]
    return box["build"]


async def _awithin(
    timeout: float | None, user_id: str, build: Awaitable[ProfileBuild]
) -> ProfileBuild:
    try:
        return await asyncio.wait_for(build, timeout)
    except TimeoutError:
        assert timeout is not None
        raise _timed_out(user_id, timeout) from None


def _check_on_error(on_error: Any) -> None:
    if on_error not in ("raise", "report"):
        raise InvalidArgumentError(f"on_error must be 'raise' or 'report', got {on_error!r}")


def _chat_model(llm: Any) -> BaseChatModel | None:
    if llm is None or isinstance(llm, BaseChatModel):
        return llm
    raise InvalidArgumentError(
        f"llm must be a LangChain chat model (ChatOpenAI(...), init_chat_model("
        f"'openai:gpt-4o-mini'), LocalChatModel()...), got {type(llm).__name__} {llm!r:.40}"
    )


def did_you_mean(user_id: str, users: Sequence[str]) -> str:
    """A hint for an unknown id: the same id in another case, a comma-joined list of known
    ids (one string where a list was meant), or close spellings."""
    known = set(users)
    parts = [p.strip() for p in user_id.split(",")]
    if len(parts) > 1 and all(p in known for p in parts):
        return f"it looks like several users in one string: pass a list, {parts!r}; "
    same = [u for u in users if u.casefold() == user_id.casefold()]
    close = same or difflib.get_close_matches(user_id, users, n=3, cutoff=0.8)
    return f"did you mean {', '.join(map(repr, close))}? " if close else ""


def _user_list(user_ids: Any) -> list[str] | None:
    """``None`` (every user), one id, or a sequence of ids; anything else is refused."""
    if user_ids is None or isinstance(user_ids, str):
        return None if user_ids is None else [user_ids]
    if isinstance(user_ids, (Sequence, set, frozenset)):
        return list(user_ids)
    raise InvalidArgumentError(
        f"user_ids must be a user id, a list of them or None (every user), got "
        f"{type(user_ids).__name__}"
    )


def _conflicts(user_id: str) -> ProfileVersionConflictError:
    return ProfileVersionConflictError(
        f"the profile of user {user_id!r} was updated by other writers {_BUILD_ATTEMPTS} times "
        "while it was being built; refresh again when they are done"
    )


@dataclass(frozen=True)
class SearchResult:
    """One retrieved history item and its cosine similarity to the query."""

    item: HistoryItem
    score: float
    user_id: str


@dataclass
class RefreshReport:
    """What :meth:`ProfileMemory.refresh` did, per user and in total."""

    builds: dict[str, ProfileBuild] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict, repr=False)
    """Users whose build failed, with the error; their stored profiles are as they were."""
    gists: GistReport | None = None
    """The style gists written ahead of queries (``refresh(style_gists=True)``)."""
    built_by: dict[str, str] = field(default_factory=dict)
    """In a shared build (:meth:`ProfileMemory.build_job_report`), the worker (``machine:pid``)
    that built or failed each user; empty for :meth:`ProfileMemory.refresh`."""
    pending: list[str] = field(default_factory=list)
    """In a shared build's report taken before its end, the users not finished yet."""

    @property
    def failures(self) -> dict[str, str]:
        """Each failed user and why, as text."""
        return {
            user: str(err) if isinstance(err, BuildFailure) else f"{type(err).__name__}: {err}"
            for user, err in self.errors.items()
        }

    @property
    def llm_calls(self) -> int:
        gist_calls = self.gists.llm_calls if self.gists is not None else 0
        return sum(b.llm_calls for b in self.builds.values()) + gist_calls

    @property
    def tokens(self) -> int:
        return sum(b.input_tokens + b.output_tokens for b in self.builds.values())

    def count(self, mode: BuildMode) -> int:
        return sum(1 for b in self.builds.values() if b.mode == mode)

    def __str__(self) -> str:
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return (
            f"{len(self.builds)} profiles: {self.count('built')} built, {self.count('updated')} "
            f"updated, {self.count('unchanged')} unchanged{failed}; {self.llm_calls} LLM calls, "
            f"{self.tokens} tokens" + (f"; {self.gists}" if self.gists is not None else "")
        )


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _url_to_open(path: str | Path, store: ProfileStore | None) -> str | None:
    """The PostgreSQL URL the memory opens a store on (``path`` is one and no store is given),
    else ``None``; a URL with a store that keeps its vectors in a folder is refused."""
    if not is_store_url(path):
        return None
    if store is not None and not isinstance(store, VectorProfileStore):
        raise InvalidArgumentError(
            f"a URL names a database, but the given {type(store).__name__} keeps its vectors "
            "in a folder: pass a folder path, or pass the URL alone (or with a "
            "PostgresProfileStore)"
        )
    return str(path) if store is None else None


def _open_url(url: str) -> ProfileStore:
    from langchain_stepback_profile.postgres_store import PostgresProfileStore

    return PostgresProfileStore(url)


def _build_record(build: ProfileBuild) -> dict[str, Any]:
    """What a worker records of a build in a shared build's row."""
    return {
        "mode": build.mode,
        "version": build.profile.version,
        "strategy": build.profile.strategy,
        "llm_calls": build.llm_calls,
        "input_tokens": build.input_tokens,
        "output_tokens": build.output_tokens,
        "chunks": build.chunks,
    }


class ProfileMemory:
    """Users' histories (SQLite + one FAISS index per user, or one PostgreSQL database) and
    their step-back profiles.

    Args:
        path: folder of the store; created if missing, reopened if it exists. Or a PostgreSQL
            URL (``postgresql://user:password@host:5432/db``, the ``[postgres]`` extra): the
            items, their vectors and the profiles then live in that database, shared by every
            process that opens it, with no local folder (see
            :class:`~langchain_stepback_profile.postgres_store.PostgresProfileStore`).
        embeddings: any LangChain ``Embeddings``; default all-MiniLM-L6-v2 (offline, the
            ``[local]`` extra: without it, pass embeddings). A store remembers its embedding
            model and refuses to open with another.
        llm: the chat model that writes profiles (may also be given to :meth:`refresh`);
            default the embedded local model (SmolLM2-135M-Instruct through llama.cpp, the
            ``[local]`` extra).
        task: what the histories are (see :mod:`~langchain_stepback_profile.tasks`); a task
            name is remembered by the store and used when it is reopened without one.
        store: a :class:`ProfileStore` to use instead of the SQLite file in ``path``. A store
            that holds the vectors itself (a
            :class:`~langchain_stepback_profile.store.VectorProfileStore` such as
            ``PostgresProfileStore``) is searched directly: ``path`` is then not used as a
            folder, nothing is written to the disk.
        profile_strategy: how profiles are written: ``"llm"`` (the paper's step-back profile),
            ``"hybrid"`` (the LLM writes from extractive evidence, one short call per user)
            or ``"extractive"`` (no LLM); see :class:`StepBackProfiler`. Default: the one
            this store's profiles were last built with, else ``"auto"`` (``extractive`` for
            small local models such as the embedded one, ``hybrid`` with a custom schema,
            ``llm`` for others).
        profile_schema: the shape of the profiles: the built-in fields (interests, keywords,
            style, summary) by default, or any pydantic model, filled by every strategy that
            calls an LLM (``extractive`` writes the built-in fields). Its profiles are stored
            as ``UserProfile.data``; :meth:`get_typed_profile` returns them as the model. The
            store remembers the schema's name and refuses to refresh with another one unless
            it is given explicitly (a change rebuilds the profiles).
        instructions: added to every profile prompt, with either schema.
        index: the kind of each user's FAISS index: ``"auto"`` (exact ``flat`` search up to
            50,000 items in a user's history, ``hnsw`` past it), ``"flat"`` or ``"hnsw"``
            (approximate, about 1 ms at a million items; see docs/usage.md). The store
            remembers the choice; default: the stored one, else ``"auto"``.
        ef_search: HNSW ``efSearch`` of this process's searches (higher: better recall,
            slower); default 256.

    Example:
        ```python
        memory = ProfileMemory("./profiles")
        memory.add("alice", ["I love NMT", {"text": "BLEU is not enough"}])
        # -> ['8c1f...', '02ab...']
        ```
    """

    def __init__(
        self,
        path: str | Path,
        *,
        embeddings: Embeddings | None = None,
        llm: BaseChatModel | None = None,
        task: str | TaskSpec | None = None,
        store: ProfileStore | None = None,
        profiler_options: Mapping[str, Any] | None = None,
        profile_strategy: ProfileStrategy | None = None,
        profile_schema: type[BaseModel] | None = None,
        instructions: str | None = None,
        index: IndexKind | None = None,
        ef_search: int | None = None,
    ) -> None:
        self._index_kind: IndexKind | None = None if index is None else check_index_kind(index)
        self._ef_search = HNSW_EF_SEARCH if ef_search is None else check_ef_search(ef_search)
        self.schema = ProfileSchema.of(profile_schema, instructions)
        self._schema_given = profile_schema is not None or instructions is not None
        url = _url_to_open(path, store)
        # a store that holds the vectors itself: no folder, no index files
        in_store = url is not None or isinstance(store, VectorProfileStore)
        self.path: Path | None = None if in_store else Path(path)
        if self.path is not None:
            self._check_folder(_DB_NAME if store is None else _INDEX_DIR)
        self.embeddings = embeddings or MiniLMEmbeddings()  # no [local] extra: refused here
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self.llm = _chat_model(llm)
        if task is not None:
            get_task(task)  # an unknown name is refused before the store remembers it
        self.task = task
        self.profiler_options = dict(profiler_options or {})
        self.profile_strategy = profile_strategy
        self._strategy_given = profile_strategy
        # every write, across threads and processes (a vector store's own transactions and
        # locks serialise the processes)
        self._lock: AbstractContextManager[object] = (
            FolderLock(self.path) if self.path is not None else threading.RLock()
        )
        self._build_locks: dict[str, threading.Lock] = {}
        with self._lock:
            self.store = store or (
                _open_url(url) if url else SQLiteProfileStore(self._folder() / _DB_NAME)
            )
            vector_store = self.store if isinstance(self.store, VectorProfileStore) else None
            self._vector_store = vector_store
            self._where = vector_store.location if vector_store else str(self.path)
            self._profiles: dict[str, UserProfile] = {}
            self._embedding_id = embedding_id(self.embeddings)
            self._index: HistoryIndex | None = None
            self._checked: set[str] = set()
            self._repairs = 0
            try:
                self._token = self.store.change_token()
                self._open_meta()
            except BaseException:
                if store is None:  # opened here: not left open behind a failed constructor
                    self.store.close()
                raise
            if self._index is not None:
                self._index.remove_leftovers()

    # ----------------------------------------------------------------- opening
    def _check_folder(self, marker: str) -> None:
        """Refuse a file, or a non-empty folder without ``marker`` (the SQLite file, or with
        another store the index folder, which is then all the folder holds)."""
        folder = self._folder()
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"{folder} is a file, not a store folder; pass a folder path")
        held = folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir())
        if held and not (folder / marker).exists():
            raise StoreError(
                f"{folder} is not empty and holds no {marker}: it is not a stepback-profile "
                "store; pass a new or empty folder, or the folder of an existing store"
            )

    def _folder(self) -> Path:
        """The store folder (a store that holds the vectors itself has none)."""
        assert self.path is not None, "a vector store keeps no folder"
        return self.path

    def _open_meta(self) -> None:
        fmt = self.store.get_meta("format")
        if fmt is None:
            if self.store.users():
                raise StoreError(f"{self._where} has data but no format marker; it is not a store")
            if self.path is not None and any((self.path / _INDEX_DIR).glob("*.faiss")):
                raise StoreError(
                    f"the store at {self.path} holds index files but its database is empty "
                    f"(an emptied or replaced {_DB_NAME}?): its users' items are gone from it; "
                    "restore the database from a backup, or move the folder away and ingest again"
                )
            self.store.set_meta("format", STORE_FORMAT)
        elif fmt != STORE_FORMAT:
            raise StoreError(
                f"{self._where} is a store of format {fmt!r}, expected {STORE_FORMAT!r}"
            )
        stored = self.store.get_meta("embedding_id")
        if stored is not None and stored != self._embedding_id:
            raise StoreError(
                f"the store at {self._where} was built with embeddings {stored!r}, but this "
                f"ProfileMemory uses {self._embedding_id!r}; open it with the same embeddings "
                "or use a new path (vectors of two models cannot be mixed)"
            )
        if isinstance(self.task, str):  # a named task is remembered by the store
            self.store.set_meta("task", self.task)
        elif self.task is None:
            self.task = self.store.get_meta("task")
        if self.profile_strategy is None:  # the strategy profiles were last built with
            recorded = self.store.get_meta("profile_strategy")  # by _remember_strategy
            self.profile_strategy = cast("ProfileStrategy | None", recorded) or "auto"
        if self._index_kind is not None:  # remembered, like the task
            self.store.set_meta("index_kind", self._index_kind)
        else:
            stored = self.store.get_meta("index_kind") or "auto"
            if stored not in INDEX_KINDS:
                raise StoreError(
                    f"the store at {self._where} records an unknown index kind {stored!r}"
                )
            self._index_kind = cast("IndexKind", stored)
        self._open_stored_index()

    def _new_index(self, dim: int) -> HistoryIndex:
        kind = self._index_kind or "auto"
        return HistoryIndex(self._folder() / _INDEX_DIR, dim, kind=kind, ef_search=self._ef_search)

    def _open_stored_index(self) -> None:
        """Open the index folder once the store has recorded a dimension (this process may not
        have written any vector yet)."""
        if self._vector_store is not None:
            return  # its vectors are searched where they are stored
        dim = self.store.get_meta("dimension")
        if self._index is None and dim is not None:
            self._index = self._new_index(int(dim))

    def _index_for(self, vectors: np.ndarray | None = None) -> HistoryIndex:
        """The index, created on first use with the embedding dimension."""
        if self._index is None:
            dim = (
                vectors.shape[1] if vectors is not None else len(encode_query(self.embeddings, "x"))
            )
            self.store.set_meta("embedding_id", self._embedding_id)
            self.store.set_meta("dimension", str(dim))
            self._index = self._new_index(dim)
        elif vectors is not None:
            self._check_dimension(vectors.shape[1])
        return self._index

    def _check_dimension(self, dim: int) -> None:
        """Vectors of another dimension than the store's are refused, never mixed in."""
        if self._vector_store is not None:
            stored = self._vector_store.dimension
        else:
            stored = self._index.dim if self._index is not None else None
        if stored is not None and dim != stored:
            raise StoreError(
                f"the embeddings return vectors of dimension {dim} but the store at "
                f"{self._where} holds dimension {stored}; use the store's embedding model"
            )

    def _sync(self) -> None:
        """Drop cached state when another process has committed to the store since the last
        call: its items, removals, forgets and profiles are then seen by this call."""
        token = self.store.change_token()
        if token == self._token:
            return
        with self._lock:
            self._token = token
            self._profiles.clear()
            self._checked.clear()  # every index is compared with the store again on use
            self._open_stored_index()

    def _user_index(self, user_id: str) -> HistoryIndex:
        """The index with the user's vectors checked against the store, repaired if they differ.

        The store is the source of truth: the in-memory index must hold each of the user's
        vector ids exactly once. If it does not, the index file is read again (another process
        may have saved it); what still differs is repaired (extra or repeated ids dropped,
        missing vectors embedded again from the stored text) and saved.
        """
        index = self._index_for()
        if user_id in self._checked:
            return index
        wanted = np.sort(np.asarray(self.store.vids(user_id), dtype=np.int64))
        if not np.array_equal(np.sort(index.ids(user_id)), wanted):
            with self._lock:
                index.reload(user_id)
                wanted = np.sort(np.asarray(self.store.vids(user_id), dtype=np.int64))
                present = np.sort(index.ids(user_id))
                if not np.array_equal(present, wanted):
                    self._repair(user_id, index, present, wanted)
        self._checked.add(user_id)
        return index

    def _repair(
        self, user_id: str, index: HistoryIndex, present: np.ndarray, wanted: np.ndarray
    ) -> None:
        self.store.verify()  # a damaged database must not drive the repair
        ids, counts = np.unique(present, return_counts=True)
        stored, held = set(wanted.tolist()), set(ids.tolist())
        repeated = set(ids[counts > 1].tolist())
        wrong = repeated | (held - stored)  # every copy of these goes
        missing = sorted((stored - held) | (repeated & stored))  # embedded again
        self._repairs += 1
        logger.warning(
            "index of user %r was out of step with the store (%d ids extra or repeated, %d "
            "vectors missing); repairing it from the store",
            user_id,
            len(wrong),
            len(missing),
        )
        index.remove(user_id, sorted(wrong))  # every copy of a repeated id goes
        todo = self.store.items_by_vid(user_id, missing)
        if todo:
            vectors = encode_texts(self.embeddings, [i.text for i in todo.values()])
            index.add(user_id, list(todo), vectors)
        index.save(user_id)

    def check_integrity(self) -> dict[str, str]:
        """Check every user's index against the store and repair what differs.

        Returns ``{user_id: "ok" | "repaired"}``. Temporary files of killed saves, and index
        files of users the store no longer has, are removed too. The same check runs by itself
        on each user's first use, and again after another process has written to the store.
        """
        status: dict[str, str] = {}
        with self._lock:
            self._sync()
            users = self.store.users()
            if self._vector_store is not None:
                return {u: self._fill_vectors(self._vector_store, u) for u in users}
            if self._index is not None:
                self._index.remove_leftovers()
                self._index.remove_orphans(users)
            for user_id in users:
                before = self._repairs
                self._checked.discard(user_id)
                if self._index is not None or self.store.vids(user_id):
                    self._user_index(user_id)
                status[user_id] = "repaired" if self._repairs > before else "ok"
        return status

    # ----------------------------------------------------------------- history
    def users(self) -> list[str]:
        """Every user with history or a profile, sorted."""
        self._sync()
        return self.store.users()

    def known_users(self, user_ids: Sequence[str]) -> list[str]:
        """The given users this store holds anything for, in their order; the faces leave a
        new user (nothing stored yet) out, so their first turn runs unpersonalized."""
        self._sync()
        return [u for u in map(check_user_id, user_ids) if self.store.has_user(u)]

    def has_user(self, user_id: str) -> bool:
        """True if the user has history or a profile in this store."""
        return self.store.has_user(check_user_id(user_id))

    def items(self, user_id: str) -> list[HistoryItem]:
        """The user's history items, oldest first."""
        return [s.item for s in self.store.get_items(self._known(user_id))]

    def _known(self, user_id: Any) -> str:
        user_id = check_user_id(user_id)
        self._sync()
        if not self.store.has_user(user_id):
            users = self.store.users()
            raise UnknownUserError(
                f"unknown user {user_id!r}: this store has no history for them; "
                f"{did_you_mean(user_id, users)}add items first with "
                f"memory.add({user_id!r}, [...]) (known users: {len(users)})"
            )
        return user_id

    def add(
        self, user_id: str, items: Iterable[RawItem] | RawItem, *, show_progress: bool = False
    ) -> list[str]:
        """Add items to a user's history; returns their ids (existing ids for items already stored).

        An item already stored (same id, or same content) is not embedded again. An id that is
        stored with different text is refused, and nothing of the batch is written.
        """
        user_id = check_user_id(user_id)  # before it is used as a dict key
        return self.add_histories({user_id: items}, show_progress=show_progress)[user_id]

    def add_histories(
        self, histories: Mapping[str, Iterable[RawItem] | RawItem], *, show_progress: bool = True
    ) -> dict[str, list[str]]:
        """Add many users' items at once, embedding all new texts in shared batches.

        Everything is validated before anything is written.
        """
        plans: dict[str, tuple[list[str], list[HistoryItem]]] = {}
        given: dict[str, list[HistoryItem]] = {}
        with self._lock:
            self._sync()  # what other processes committed before this write
            for user_id, raw in histories.items():
                check_user_id(user_id)
                given[user_id] = to_history_items(raw)
                plans[user_id] = self._plan_add(user_id, given[user_id])
            new = [(u, item) for u, (_, fresh) in plans.items() for item in fresh]
            if new and self._vector_store is not None:
                vectors = self._encode([item.text for _, item in new], show_progress)
                self._add_with_vectors(self._vector_store, plans, given, new, vectors)
            elif new:
                vectors = self._encode([item.text for _, item in new], show_progress)
                index = self._index_for(vectors)
                offset = 0
                for user_id, (_, fresh) in plans.items():
                    if not fresh:
                        continue
                    self._user_index(user_id)
                    vids = self.store.add_items(user_id, fresh)
                    index.add(user_id, vids, vectors[offset : offset + len(fresh)])
                    index.save(user_id)
                    offset += len(fresh)
        return {user_id: ids for user_id, (ids, _) in plans.items()}

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if not show_progress:
            return encode_texts(self.embeddings, texts)
        # Chunks of length-sorted texts pad exactly like one big call, so the bar costs nothing.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors: np.ndarray | None = None
        with tqdm(total=len(texts), desc="embedding history", unit="item") as bar:
            for start in range(0, len(order), 512):
                chunk = order[start : start + 512]
                part = encode_texts(self.embeddings, [texts[i] for i in chunk])
                if vectors is None:
                    vectors = np.empty((len(texts), part.shape[1]), dtype=np.float32)
                vectors[chunk] = part
                bar.update(len(chunk))
        assert vectors is not None
        return vectors

    def _plan_add(
        self, user_id: str, items: list[HistoryItem]
    ) -> tuple[list[str], list[HistoryItem]]:
        """(ids to return, items to store) after checking ids and contents against the store."""
        by_id, by_hash = self.store.lookup(
            user_id, [i.id for i in items], [i.content_hash for i in items]
        )
        ids: list[str] = []
        fresh: list[HistoryItem] = []
        batch_ids: dict[str, HistoryItem] = {}
        batch_hashes: dict[str, str] = {}
        for item in items:
            stored = by_id.get(item.id)
            earlier = batch_ids.get(item.id)
            if (stored and stored.item.content_hash != item.content_hash) or (
                earlier and earlier.content_hash != item.content_hash
            ):
                raise DuplicateItemError(
                    f"item id {item.id!r} of user {user_id!r} is already used for different "
                    "text; give this item a new id, or remove the old one first "
                    "(memory.remove(user_id, [id]))"
                )
            if stored or earlier:
                ids.append(item.id)
                continue
            same = by_hash.get(item.content_hash)
            if same is not None:
                ids.append(same.item.id)
                continue
            if item.content_hash in batch_hashes:
                ids.append(batch_hashes[item.content_hash])
                continue
            batch_ids[item.id] = item
            batch_hashes[item.content_hash] = item.id
            fresh.append(item)
            ids.append(item.id)
        return ids, fresh

    def _add_with_vectors(
        self,
        store: VectorProfileStore,
        plans: dict[str, tuple[list[str], list[HistoryItem]]],
        given: Mapping[str, list[HistoryItem]],
        new: list[tuple[str, HistoryItem]],
        vectors: np.ndarray,
    ) -> None:
        """Store each user's new items with their vectors (one transaction per user). A batch
        that meets items another process stored since it was planned is planned again
        against them (``plans`` is updated), so concurrent adds of the same items agree."""
        self._check_dimension(vectors.shape[1])
        if store.dimension is None:  # the first vectors fix the store's model and dimension
            self.store.set_meta("embedding_id", self._embedding_id)
            self.store.set_meta("dimension", str(vectors.shape[1]))
            store.bind_dimension(vectors.shape[1])
        row_of = {(u, item.content_hash): vectors[n] for n, (u, item) in enumerate(new)}
        for user_id, (_, fresh) in list(plans.items()):
            for attempt in range(_ADD_ATTEMPTS):
                if not fresh:
                    break
                missing = [i for i in fresh if (user_id, i.content_hash) not in row_of]
                if missing:  # removed by another process since the plan, and added again
                    again = encode_texts(self.embeddings, [i.text for i in missing])
                    row_of.update(
                        ((user_id, i.content_hash), v) for i, v in zip(missing, again, strict=True)
                    )
                rows = np.stack([row_of[(user_id, i.content_hash)] for i in fresh])
                try:
                    store.add_items(user_id, fresh, vectors=rows)
                    break
                except DuplicateItemError:
                    if attempt == _ADD_ATTEMPTS - 1:
                        raise
                    plans[user_id] = self._plan_add(user_id, given[user_id])
                    fresh = plans[user_id][1]

    def _fill_vectors(self, store: VectorProfileStore, user_id: str) -> str:
        """Embed the user's items that were stored without a vector; ``"repaired"`` if any."""
        vids = store.vids_without_vectors(user_id)
        todo = store.items_by_vid(user_id, vids)
        if not todo:
            return "ok"
        self.store.verify()
        logger.warning("%d items of user %r had no vector; embedding them", len(todo), user_id)
        vectors = encode_texts(self.embeddings, [i.text for i in todo.values()])
        self._check_dimension(vectors.shape[1])
        store.set_vectors(user_id, list(todo), vectors)
        self._repairs += 1
        return "repaired"

    async def aadd(self, user_id: str, items: Iterable[RawItem] | RawItem) -> list[str]:
        """Async :meth:`add` (embedding runs in a worker thread)."""
        return await off_loop(self.add, user_id, items)

    def remove(self, user_id: str, item_ids: Sequence[str]) -> int:
        """Remove items by id from a user's history; returns how many were removed."""
        user_id = self._known(user_id)
        if isinstance(item_ids, str):
            item_ids = [item_ids]  # one id, not its characters
        if not isinstance(item_ids, Sequence) or not all(isinstance(i, str) for i in item_ids):
            raise InvalidArgumentError(
                f"item_ids must be an item id or a list of them, got {item_ids!r:.80}"
            )
        with self._lock:
            self._sync()
            if self._vector_store is not None:  # each vector goes with its row
                return len(self.store.remove_items(user_id, list(item_ids)))
            index = self._user_index(user_id)
            found, _ = self.store.lookup(user_id, list(item_ids), [])
            # vectors first: a crash before the rows go leaves rows whose vectors are embedded
            # again on next use, never vectors of removed items
            index.remove(user_id, [stored.vid for stored in found.values()])
            index.save(user_id)
            vids = self.store.remove_items(user_id, list(item_ids))
        return len(vids)

    # ----------------------------------------------------------------- search
    def search(self, user_id: str, query: str, k: int = 4) -> list[SearchResult]:
        """The user's k most similar history items (cosine), best first, from their history only."""
        return self.search_many([user_id], query, k)[user_id]

    def search_many(
        self, user_ids: Sequence[str], query: str, k: int = 4
    ) -> dict[str, list[SearchResult]]:
        """Top-k per user for one query (embedded once), in the order of ``user_ids``."""
        k = check_k(k)
        given = _user_list(user_ids) or []
        # a vector store is asked first and about an unknown user only when it finds nothing:
        # one round trip per user instead of two
        served = self._vector_store is not None
        users = [check_user_id(u) if served else self._known(u) for u in given]
        if not users:
            raise InvalidArgumentError("no users given: pass user_ids=['alice', ...]")
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgumentError(f"query must be a non-empty string, got {query!r}")
        vector = encode_query(self.embeddings, query)
        self._check_dimension(vector.shape[0])
        results: dict[str, list[SearchResult]] = {}
        for user_id in users:
            if self._vector_store is not None:  # exact, over this user's rows only
                rows = self._vector_store.search(user_id, vector, k)
                if not rows:
                    self._known(user_id)  # an unknown user is an error, not an empty answer
                results[user_id] = [SearchResult(s.item, score, user_id) for s, score in rows]
                continue
            hits = self._user_index(user_id).search(user_id, vector, k)
            found = self.store.items_by_vid(user_id, [vid for vid, _ in hits])
            if len(found) < len(hits):  # the index holds vectors the store does not: check it
                self.store.verify()
                self._checked.discard(user_id)
                hits = self._user_index(user_id).search(user_id, vector, k)
                found = self.store.items_by_vid(user_id, [vid for vid, _ in hits])
            results[user_id] = [
                SearchResult(found[vid], score, user_id) for vid, score in hits if vid in found
            ]
        return results

    async def asearch(self, user_id: str, query: str, k: int = 4) -> list[SearchResult]:
        """Async :meth:`search`."""
        return await off_loop(self.search, user_id, query, k)

    async def asearch_many(
        self, user_ids: Sequence[str], query: str, k: int = 4
    ) -> dict[str, list[SearchResult]]:
        """Async :meth:`search_many`."""
        return await off_loop(self.search_many, user_ids, query, k)

    # ----------------------------------------------------------------- profiles
    def _profile(self, user_id: str) -> UserProfile | None:
        profile = self._profiles.get(user_id)
        if profile is None:
            profile = self.store.get_profile(user_id)
            if profile is not None:
                self._profiles[user_id] = profile
        return profile

    def get_profile(self, user_id: str) -> UserProfile | None:
        """The user's latest profile, or ``None`` before the first :meth:`refresh`."""
        return self._profile(self._known(user_id))

    def get_typed_profile(self, user_id: str) -> BaseModel | None:
        """The user's latest profile as an instance of this memory's ``profile_schema``
        (:class:`ProfileDraft` for the built-in one); ``None`` before the first refresh or
        while the stored profile is in another schema (until the next refresh)."""
        return self.schema.content(self.get_profile(user_id))

    def pending_changes(self, user_id: str) -> int:
        """How many items were added or removed since the user's profile was written (every
        item before the first build): the one measure of staleness every face uses."""
        user_id = self._known(user_id)
        profile = self._profile(user_id)
        stored = {s.item.id for s in self.store.get_items(user_id)}
        return len(stored ^ set(profile.item_ids)) if profile else len(stored)

    async def apending_changes(self, user_id: str) -> int:
        """Async :meth:`pending_changes`."""
        return await off_loop(self.pending_changes, user_id)

    def profile_versions(self, user_id: str) -> list[UserProfile]:
        """Every stored version of the user's profile, oldest first."""
        return self.store.profile_versions(self._known(user_id))

    def set_profile(
        self, user_id: str, draft: BaseModel | Mapping[str, Any], *, replace: bool = False
    ) -> UserProfile:
        """Store a hand edit of the user's profile as a new version.

        The fields set in ``draft`` (``ProfileDraft(summary=...)``, or a dict such as
        ``{"summary": ...}``) replace the stored ones; the others, the measured statistics
        and the strategy are kept (with ``replace=True`` the draft's unset fields are empty
        instead). Edited fields are remembered in ``edited_fields``: later refreshes rebuild
        the other fields from new items and keep these as they are, unless a refresh is given
        ``overwrite_edits=True``. The other claims are checked against the history again; the
        edited ones count as supported (a person's own word is never dropped from a prompt).
        """
        user_id = self._known(user_id)
        with self._lock:
            self._sync()
            previous = self._profile(user_id)
            stored = [s.item for s in self.store.get_items(user_id)]
            base = None if replace else self.schema.content(previous)
            if previous is not None and base is None and not replace:
                raise self._other_schema(previous)
            content, changed = self.schema.edit(base, draft)
            edited = sorted(
                self.schema.model.model_fields
                if replace
                else changed | set(previous.edited_fields if previous else [])
            )
            profile = self.schema.profile(
                content,
                user_id=user_id,
                version=(previous.version + 1) if previous else 1,
                history_hash=history_hash(stored),
                item_ids=[item.id for item in stored],
                model=previous.model if previous else "",
                prompt_version=previous.prompt_version if previous else "",
                task=previous.task if previous else "generic",
                strategy=previous.strategy if previous else "llm",
                stats=previous.stats if previous else {},  # measured by a build
                edited=True,
                edited_fields=edited,
            )
            profile.support = profile.support_with_edits(
                claim_support(profile.claims(), stored), edited
            )
            self._save_profile(profile)
        return profile

    def rollback_profile(self, user_id: str, version: int) -> UserProfile:
        """Make an earlier version the current profile again, as a new version (the history
        is kept; a rollback can itself be rolled back)."""
        user_id = self._known(user_id)
        with self._lock:
            self._sync()
            versions = {p.version: p for p in self.store.profile_versions(user_id)}
            if version not in versions:
                raise InvalidArgumentError(
                    f"user {user_id!r} has no profile version {version!r}; their versions are "
                    f"{sorted(versions) or 'none yet'}"
                )
            latest = max(versions)
            restored = versions[version].model_copy(
                update={"version": latest + 1, "created_at": datetime.now(UTC)}
            )
            self._save_profile(restored)
        return restored

    def export_profiles(self, user_ids: Sequence[str] | str | None = None) -> dict[str, Any]:
        """Every stored version of the users' profiles (default: every user) as JSON data,
        for :meth:`import_profiles` here or in another store."""
        users = self._targets(user_ids)
        return {
            "format": PROFILES_FORMAT,
            "profiles": {
                u: [p.model_dump(mode="json") for p in self.store.profile_versions(u)]
                for u in users
            },
        }

    def import_profiles(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Import what :meth:`export_profiles` wrote; returns the versions stored per user.

        A user with no profile here gets every exported version, numbers and all (a round
        trip); a user who has profiles gets the exported latest as a new version on top.
        Everything is validated before anything is written.
        """
        if not isinstance(data, Mapping) or data.get("format") != PROFILES_FORMAT:
            raise InvalidArgumentError(
                f"not a profile export (expected the JSON of export_profiles(), format "
                f"{PROFILES_FORMAT!r})"
            )
        incoming: dict[str, list[UserProfile]] = {}
        for user_id, versions in dict(data.get("profiles") or {}).items():
            check_user_id(user_id)
            try:
                parsed = [UserProfile.model_validate(v) for v in versions]
            except (TypeError, ValueError) as err:
                raise InvalidArgumentError(f"profiles of {user_id!r}: {err}") from None
            if any(p.user_id != user_id for p in parsed):
                raise InvalidArgumentError(f"a profile under {user_id!r} names another user")
            if parsed:
                incoming[user_id] = sorted(parsed, key=lambda p: p.version)
        stored: dict[str, int] = {}
        with self._lock:
            self._sync()
            for user_id, versions in incoming.items():
                latest = self.store.get_profile(user_id)
                if latest is not None:
                    versions = [versions[-1].model_copy(update={"version": latest.version + 1})]
                for profile in versions:
                    self._save_profile(profile)
                stored[user_id] = len(versions)
        return stored

    def _save_profile(self, profile: UserProfile) -> None:
        with self._lock:
            self.store.put_profile(profile)
            self._profiles[profile.user_id] = profile

    def profiler(
        self,
        llm: BaseChatModel | None = None,
        task: str | TaskSpec | None = None,
        strategy: ProfileStrategy | None = None,
        overwrite_edits: bool = False,
    ) -> StepBackProfiler:
        """The profiler :meth:`refresh` uses: the given LLM, else this memory's, else the
        embedded local model (none for extractive profiles); the given task and strategy,
        else this memory's.

        What is passed explicitly wins over what the store remembers: an ``llm`` given here
        with no ``strategy`` (and none given to the constructor) uses ``"auto"``, never the
        strategy the store's profiles were last built with.
        """
        options = dict(self.profiler_options)
        options["overwrite_edits"] = overwrite_edits or options.get("overwrite_edits", False)
        remembered = "auto" if llm is not None else self.profile_strategy
        options["strategy"] = (
            strategy or options.get("strategy") or self._strategy_given or remembered
        )
        self._check_schema()
        options.setdefault("profile_schema", self.schema.model)
        options.setdefault("instructions", self.schema.instructions)
        llm = _chat_model(llm) or self.llm
        if llm is None and options["strategy"] != "extractive":  # auto: the embedded model
            from langchain_stepback_profile.llms import default_chat_model

            llm = self.llm = default_chat_model()
        return StepBackProfiler(llm, task=task or self.task, embeddings=self.embeddings, **options)

    def _targets(self, user_ids: Sequence[str] | str | None) -> list[str]:
        users = _user_list(user_ids)
        return [self._known(u) for u in users] if users is not None else self.users()

    def refresh(
        self,
        user_ids: Sequence[str] | str | None = None,
        llm: BaseChatModel | None = None,
        *,
        task: str | TaskSpec | None = None,
        strategy: ProfileStrategy | None = None,
        show_progress: bool = False,
        on_error: OnError = "raise",
        overwrite_edits: bool = False,
        timeout: float | None = None,
        config: RunnableConfig | None = None,
        style_gists: bool = False,
    ) -> RefreshReport:
        """Build or update the step-back profiles of ``user_ids`` (default: every user).

        Unchanged histories cost 0 LLM calls; added items update the profile incrementally.
        A user whose build fails keeps their stored profile and does not stop the others; at
        the end, :class:`ProfileBuildError` names each failed user and why (its ``report``
        holds the builds that succeeded, all saved), or with ``on_error="report"`` the
        returned report lists them in ``failures``. Builds of one user never interleave: in
        this process they wait for each other, and a build that finds a newer profile stored by
        another process when it saves is done again on that profile.

        Fields a person edited (:meth:`set_profile`) are kept as they are while the rest is
        rebuilt; ``overwrite_edits=True`` rebuilds them too. ``timeout`` bounds each user's
        build in seconds (:class:`ProfileTimeoutError` for that user, the others go on); a
        synchronous build that times out is abandoned in its thread and its result dropped.

        ``config`` (a ``RunnableConfig``: callbacks, tags, metadata) reaches every build:
        each user's profile is one run named ``stepback_profile`` with the LLM calls under it,
        so a tracer such as LangSmith shows one run per profile.

        ``style_gists=True`` also writes the style gist of every item that has none yet
        (:class:`~langchain_stepback_profile.style_gists.StyleGists`, with ``llm`` or this
        memory's model; one LLM call per such item, in ``report.gists``), so queries with
        ``style_gists=True`` and the same model cost 0 gist calls.
        """
        profiler, targets = self._begin_refresh(
            user_ids, llm, task, strategy, overwrite_edits, on_error, config
        )
        report = RefreshReport()
        for user_id in tqdm(targets, desc="profiles", unit="user", disable=not show_progress):
            try:
                report.builds[user_id] = self._refresh_user(profiler, user_id, timeout, config)
            except Exception as err:  # any model or parser failure of this one user
                self._fail(report, user_id, err)
        if style_gists:
            gists = StyleGists(self, _chat_model(llm))
            report.gists = gists.precompute(targets, config, show_progress=show_progress)
        return self._conclude(report, on_error)

    async def arefresh(
        self,
        user_ids: Sequence[str] | str | None = None,
        llm: BaseChatModel | None = None,
        *,
        task: str | TaskSpec | None = None,
        strategy: ProfileStrategy | None = None,
        max_concurrency: int = 4,
        show_progress: bool = False,
        on_error: OnError = "raise",
        overwrite_edits: bool = False,
        timeout: float | None = None,
        config: RunnableConfig | None = None,
        style_gists: bool = False,
    ) -> RefreshReport:
        """Async :meth:`refresh`: up to ``max_concurrency`` users are built at the same time,
        with at most ``max_concurrency`` LLM calls in flight (long histories make several).
        A failing user does not cancel the others: every success is saved."""
        profiler, targets = await off_loop(
            self._begin_refresh, user_ids, llm, task, strategy, overwrite_edits, on_error, config
        )
        limit = asyncio.Semaphore(check_k(max_concurrency))
        calls = asyncio.Semaphore(max_concurrency)  # LLM calls in flight, across all users
        report = RefreshReport()
        bar = tqdm(total=len(targets), desc="profiles", unit="user", disable=not show_progress)

        async def one(user_id: str) -> None:
            async with limit:
                try:
                    report.builds[user_id] = await self._abuild_user(
                        profiler, user_id, calls, timeout, config
                    )
                except Exception as err:
                    self._fail(report, user_id, err)
                bar.update(1)

        try:
            await asyncio.gather(*(one(u) for u in targets))
        finally:
            bar.close()
        report.builds = {u: report.builds[u] for u in targets if u in report.builds}
        if style_gists:  # at most max_concurrency gist calls in flight
            gists = StyleGists(self, _chat_model(llm), max_concurrency=max_concurrency)
            report.gists = await gists.aprecompute(targets, config, show_progress=show_progress)
        return self._conclude(report, on_error)

    async def _abuild_user(
        self,
        profiler: StepBackProfiler,
        user_id: str,
        calls: asyncio.Semaphore,
        timeout: float | None,
        config: RunnableConfig | None,
    ) -> ProfileBuild:
        """Build and save one user's profile, redone on a newer profile another writer stored."""
        for _ in range(_BUILD_ATTEMPTS):
            items, previous = await off_loop(self._build_inputs, user_id)
            build = await _awithin(
                timeout,
                user_id,
                profiler.abuild(user_id, items, previous, limit=calls, config=config),
            )
            saved = await off_loop(self._save_build, build)
            if saved is not None:
                return saved
        raise _conflicts(user_id)

    # ----------------------------------------------------------------- shared builds
    @property
    def supports_build_jobs(self) -> bool:
        """True when several processes, on one or several machines, can split a build of this
        store's profiles (:meth:`enqueue_build`): a PostgreSQL store; a folder (SQLite) or
        LangGraph store cannot."""
        return isinstance(self.store, BuildJobStore)

    def _job_store(self) -> BuildJobStore:
        if isinstance(self.store, BuildJobStore):
            return self.store
        raise BuildJobError(
            f"the store at {self._where} ({type(self.store).__name__}) cannot split a profile "
            "build between processes; use a postgresql:// store (ProfileMemory("
            '"postgresql://..."), --store postgresql://...) for builds shared by several '
            "processes or machines, or build in this one process: refresh(), "
            "arefresh(max_concurrency=N), `profile build` without --workers/--job"
        )

    def enqueue_build(
        self,
        user_ids: Sequence[str] | str | None = None,
        *,
        job: str = DEFAULT_BUILD_JOB,
        task: str | None = None,
        strategy: ProfileStrategy | None = None,
        overwrite_edits: bool = False,
    ) -> BuildJob:
        """Start the shared build ``job`` of ``user_ids``' profiles (default: every user), or
        join its running build: the users it lacks are added to it. Workers in any process
        that opens this store then split it (:meth:`run_build_worker`).

        The settings (``task``, ``strategy``, ``overwrite_edits``) are the starter's, stored
        with the build; a joiner that gives other ones is refused (:class:`BuildJobError`:
        join with the same or none, or use another ``job`` name). A build ends when its last
        user is finished; the next call starts a new one (unchanged profiles cost nothing).

        Needs a store that can share a build (:attr:`supports_build_jobs`: PostgreSQL);
        another store raises :class:`BuildJobError` naming the fix.

        Example:
            ```python
            job = memory.enqueue_build()  # the same call on every machine
            memory.run_build_worker(job, llm, max_concurrency=8)
            ```
        """
        store = self._job_store()
        if not isinstance(job, str) or not job.strip() or len(job) > 200:
            raise BuildJobError(
                f"job must be a non-empty name of at most 200 characters, got {job!r}"
            )
        if task is not None and not isinstance(task, str):
            raise BuildJobError(f"a shared build's task must be a task name, got {task!r}")
        if task is not None:
            get_task(task)  # an unknown name is refused
        if strategy is not None and strategy not in PROFILE_STRATEGIES:
            raise InvalidArgumentError(
                f"strategy must be one of {', '.join(PROFILE_STRATEGIES)}, got {strategy!r}"
            )
        targets = self._targets(user_ids)
        own_task = task if task is not None else self.task if isinstance(self.task, str) else None
        settings = BuildSettings(own_task, strategy, bool(overwrite_edits))

        def check(running: BuildSettings) -> None:
            other = [
                f"{name} {have!r}, not {want!r}"
                for name, have, want in (
                    ("task", running.task, task),
                    ("strategy", running.strategy, strategy),
                    ("overwrite_edits", running.overwrite_edits, overwrite_edits or None),
                )
                if want is not None and have != want
            ]
            if other:
                raise BuildJobError(
                    f"the build job {job!r} running in the store at {self._where} has "
                    f"{'; '.join(other)}; join it with the same settings (or none: a joiner "
                    "takes the running build's), wait until it is done, or give another job "
                    "name (job=..., --job NAME)"
                )

        run, stored, started, total = store.open_build_run(job, targets, settings, check)
        return BuildJob(job, run, stored, started, total)

    async def aenqueue_build(
        self,
        user_ids: Sequence[str] | str | None = None,
        *,
        job: str = DEFAULT_BUILD_JOB,
        task: str | None = None,
        strategy: ProfileStrategy | None = None,
        overwrite_edits: bool = False,
    ) -> BuildJob:
        """Async :meth:`enqueue_build`."""
        return await off_loop(
            partial(
                self.enqueue_build,
                user_ids,
                job=job,
                task=task,
                strategy=strategy,
                overwrite_edits=overwrite_edits,
            )
        )

    def run_build_worker(
        self,
        job: BuildJob | str = DEFAULT_BUILD_JOB,
        llm: BaseChatModel | None = None,
        *,
        max_concurrency: int = 4,
        timeout: float | None = None,
        config: RunnableConfig | None = None,
        poll: float = 0.5,
        show_progress: bool = False,
    ) -> RefreshReport:
        """Work on a shared build until it is finished: claim a user nobody holds, build and
        save the profile, record the result, repeat; ``max_concurrency`` users at once (and
        LLM calls in flight) in this worker. Returns this worker's own report;
        :meth:`build_job_report` has every worker's.

        ``job`` is what :meth:`enqueue_build` returned, or a job name (its running build;
        nothing to do if none runs). A worker whose users are all claimed waits (``poll``
        seconds between looks) until the others' users are finished, so that it takes over
        the user of a worker that dies: the store releases a dead worker's claim (PostgreSQL
        ends its transaction when its connection closes). A failed user is recorded as
        failed (not retried by this build) and keeps its stored profile. Call
        :meth:`arun_build_worker` from async code.

        Example:
            ```python
            report = memory.run_build_worker("profile-build", llm, max_concurrency=8)
            ```
        """
        return asyncio.run(
            self.arun_build_worker(
                job,
                llm,
                max_concurrency=max_concurrency,
                timeout=timeout,
                config=config,
                poll=poll,
                show_progress=show_progress,
            )
        )

    async def arun_build_worker(
        self,
        job: BuildJob | str = DEFAULT_BUILD_JOB,
        llm: BaseChatModel | None = None,
        *,
        max_concurrency: int = 4,
        timeout: float | None = None,
        config: RunnableConfig | None = None,
        poll: float = 0.5,
        show_progress: bool = False,
    ) -> RefreshReport:
        """Async :meth:`run_build_worker`."""
        store = self._job_store()
        check_config(config)
        slots = check_k(max_concurrency)
        if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not poll > 0:
            raise InvalidArgumentError(f"poll must be a positive number of seconds, got {poll!r}")
        found = await off_loop(self._job_run, job, True)
        report = RefreshReport()
        if found is None:
            return report
        run, settings = found
        profiler = await off_loop(self._job_profiler, llm, settings)
        worker = worker_name()
        calls = asyncio.Semaphore(slots)
        done = asyncio.Event()

        async def slot() -> None:
            while True:
                claim = await off_loop(store.claim_build, run, worker)
                if claim is not None:
                    await self._work_claim(claim, profiler, calls, timeout, config, report)
                    continue
                pending, _ = await off_loop(store.build_run_pending, run)
                if not pending:
                    return
                await asyncio.sleep(poll)

        async def progress() -> None:
            bar = tqdm(desc="profiles (all workers)", unit="user")
            try:
                while True:
                    pending, total = await off_loop(store.build_run_pending, run)
                    bar.total = total
                    bar.n = total - pending
                    bar.refresh()
                    if done.is_set():
                        return
                    await asyncio.sleep(poll)
            finally:
                bar.close()

        shown = asyncio.ensure_future(progress()) if show_progress else None
        try:
            await asyncio.gather(*(slot() for _ in range(slots)))
        finally:
            done.set()
            if shown is not None:
                await shown
        return report

    async def _work_claim(
        self,
        claim: BuildClaim,
        profiler: StepBackProfiler,
        calls: asyncio.Semaphore,
        timeout: float | None,
        config: RunnableConfig | None,
        report: RefreshReport,
    ) -> None:
        """Build the claimed user and record the result; the claim is released (the user
        claimable again) if this is interrupted."""
        user_id, worker = claim.user_id, worker_name()
        try:
            try:
                build = await self._abuild_user(profiler, user_id, calls, timeout, config)
            except Exception as err:
                self._fail(report, user_id, err)
                state, result = FAILED, {"error": f"{type(err).__name__}: {err}"}
            else:
                report.builds[user_id] = build
                state, result = DONE, _build_record(build)
            report.built_by[user_id] = worker
        except BaseException:
            claim.release()
            raise
        try:
            await off_loop(claim.finish, state, worker, result)
        except StoreError as err:  # the profile is saved: a rebuild by another costs nothing
            logger.warning("the result for user %r was not recorded: %s", user_id, err)

    def _job_run(self, job: BuildJob | str, open_only: bool) -> tuple[int, BuildSettings] | None:
        if isinstance(job, BuildJob):
            return job.run, job.settings
        return self._job_store().latest_build_run(job, open_only)

    def _job_profiler(self, llm: BaseChatModel | None, settings: BuildSettings) -> StepBackProfiler:
        profiler = self.profiler(
            llm,
            settings.task,
            cast("ProfileStrategy | None", settings.strategy),
            settings.overwrite_edits,
        )
        self._remember_strategy(profiler.requested_strategy)
        return profiler

    def build_job_report(
        self,
        job: BuildJob | str = DEFAULT_BUILD_JOB,
        *,
        wait: bool = True,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> RefreshReport:
        """Every worker's results of a shared build (its last run when ``job`` is a name), in
        the order its users were added: ``builds`` and ``errors`` as :meth:`refresh` gives
        them, ``built_by`` naming each user's worker. With ``wait`` it waits until the build
        is finished (at most ``timeout`` seconds: :class:`ProfileTimeoutError`); without,
        unfinished users are listed in ``pending``."""
        store = self._job_store()
        found = self._job_run(job, False)
        name = job.name if isinstance(job, BuildJob) else job
        if found is None:
            raise BuildJobError(
                f"the store at {self._where} has no build job {name!r}; start one with "
                "enqueue_build(job=...) (`profile build --job NAME`)"
            )
        run = found[0]
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait:
            pending, total = store.build_run_pending(run)
            if not pending:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise ProfileTimeoutError(
                    f"the build job {name!r} still has {pending} of {total} users unfinished "
                    f"after {timeout:g} s; start workers on it (run_build_worker, `profile build "
                    f"--job {name}`) or wait longer"
                )
            time.sleep(poll)
        report = RefreshReport()
        for row in store.build_run_tasks(run):
            if row.state == DONE:
                build = self._recorded_build(row)
                if build is not None:
                    report.builds[row.user_id] = build
            elif row.state == FAILED:
                error = (row.result or {}).get("error") or "the build failed"
                report.errors[row.user_id] = BuildFailure(str(error))
            else:
                report.pending.append(row.user_id)
                continue
            if row.worker:
                report.built_by[row.user_id] = row.worker
        return report

    async def abuild_job_report(
        self,
        job: BuildJob | str = DEFAULT_BUILD_JOB,
        *,
        wait: bool = True,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> RefreshReport:
        """Async :meth:`build_job_report`."""
        return await off_loop(self.build_job_report, job, wait=wait, timeout=timeout, poll=poll)

    def _recorded_build(self, row: TaskRow) -> ProfileBuild | None:
        """A finished user's build as its worker recorded it, with the profile it stored."""
        result = row.result or {}
        versions = self.store.profile_versions(row.user_id)
        if not versions:
            return None  # forgotten since
        version = result.get("version")
        profile = next((p for p in versions if p.version == version), versions[-1])
        return ProfileBuild(
            profile,
            cast(BuildMode, result.get("mode", "unchanged")),
            llm_calls=int(result.get("llm_calls", 0)),
            input_tokens=int(result.get("input_tokens", 0)),
            output_tokens=int(result.get("output_tokens", 0)),
            chunks=int(result.get("chunks", 0)),
        )

    def _begin_refresh(
        self,
        user_ids: Sequence[str] | str | None,
        llm: BaseChatModel | None,
        task: str | TaskSpec | None,
        strategy: ProfileStrategy | None,
        overwrite_edits: bool,
        on_error: OnError,
        config: RunnableConfig | None,
    ) -> tuple[StepBackProfiler, list[str]]:
        """The arguments of a refresh checked, its profiler and its users."""
        _check_on_error(on_error)
        check_config(config)
        targets = self._targets(user_ids)  # checked before a model is loaded
        profiler = self.profiler(llm, task, strategy, overwrite_edits)
        self._remember_strategy(profiler.requested_strategy)
        return profiler, targets

    def _refresh_user(
        self,
        profiler: StepBackProfiler,
        user_id: str,
        timeout: float | None,
        config: RunnableConfig | None,
    ) -> ProfileBuild:
        with self._build_lock(user_id):
            for _ in range(_BUILD_ATTEMPTS):
                items, previous = self._build_inputs(user_id)
                build = _within(
                    timeout,
                    user_id,
                    partial(profiler.build, user_id, items, previous, config=config),
                )
                saved = self._save_build(build)
                if saved is not None:
                    return saved
        raise _conflicts(user_id)

    def _build_lock(self, user_id: str) -> threading.Lock:
        with self._lock:
            return self._build_locks.setdefault(user_id, threading.Lock())

    def _build_inputs(self, user_id: str) -> tuple[list[HistoryItem], UserProfile | None]:
        """The user's items and stored profile as the store has them now."""
        self._sync()
        return [s.item for s in self.store.get_items(user_id)], self._profile(user_id)

    def _save_build(self, build: ProfileBuild) -> ProfileBuild | None:
        """Store a build's profile and return the build; ``None`` when another writer stored
        that version first and its profile does not cover every item this build saw (the
        build is then redone on the newer profile). A newer profile that covers them wins."""
        if build.mode == "unchanged":
            return build
        try:
            self._save_profile(build.profile)
        except ProfileVersionConflictError:
            user_id = build.profile.user_id
            with self._lock:
                self._profiles.pop(user_id, None)
                newer = self._profile(user_id)
            if newer is not None and set(newer.item_ids) >= set(build.profile.item_ids):
                return dataclasses.replace(build, profile=newer, mode="unchanged")
            return None
        return build

    @staticmethod
    def _fail(report: RefreshReport, user_id: str, err: Exception) -> None:
        logger.warning("the profile of user %r was not built: %s: %s", user_id, type(err), err)
        report.errors[user_id] = err

    @staticmethod
    def _conclude(report: RefreshReport, on_error: OnError) -> RefreshReport:
        if report.errors and on_error == "raise":
            if len(report.errors) == 1 and not report.builds:  # the one user asked for
                raise next(iter(report.errors.values()))
            failed = "; ".join(f"{u!r}: {why}" for u, why in list(report.failures.items())[:5])
            raise ProfileBuildError(
                f"{len(report.failures)} of {len(report.builds) + len(report.failures)} profiles "
                f"failed and kept their stored version ({failed}); the others were built and "
                "saved. Fix the model or its settings and refresh again (unchanged profiles "
                "cost nothing), or pass on_error='report' to get the failures in the report",
                report,
            ) from next(iter(report.errors.values()))
        return report

    def _other_schema(self, profile: UserProfile) -> InvalidArgumentError:
        stored = profile.schema_name or "UserProfile"
        return InvalidArgumentError(
            f"the profile of {profile.user_id!r} is written in the profile schema {stored}, not "
            f"{self.schema.model.__name__}; open the memory with ProfileMemory(..., "
            f"profile_schema={stored}) to edit it, or pass replace=True to replace it"
        )

    def _check_schema(self) -> None:
        """A store whose profiles have a custom schema is refreshed with that schema, or with
        another one given explicitly (never silently rebuilt in the built-in fields)."""
        stored = self.store.get_meta("profile_schema") or ""
        if self._schema_given or stored == self.schema.name:
            if stored != self.schema.name:
                self.store.set_meta("profile_schema", self.schema.name)
            return
        raise InvalidArgumentError(
            f"this store's profiles are written with the profile schema {stored!r}; open it with "
            f"ProfileMemory(..., profile_schema={stored}) to refresh them (or pass "
            "profile_schema=UserProfile to rebuild them in the built-in fields)"
        )

    def _remember_strategy(self, strategy: ProfileStrategy) -> None:
        if strategy != self.store.get_meta("profile_strategy"):
            self.store.set_meta("profile_strategy", strategy)
        self.profile_strategy = strategy

    # ----------------------------------------------------------------- item annotations
    def get_annotations(
        self, user_id: str, kind: str, item_hashes: Sequence[str]
    ) -> dict[str, ItemAnnotation]:
        """The user's cached annotations of one ``kind`` (``"style_gist"``...) for these item
        content hashes, by hash; another user's are never returned."""
        user_id = self._known(user_id)
        return self.store.get_annotations(user_id, kind, list(item_hashes))

    def put_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        """Cache annotations of the user's items (one per content hash and kind, replacing
        the stored one); those of items the user no longer has are dropped. Removing an item
        removes its annotations, :meth:`forget` every one of the user's."""
        user_id = self._known(user_id)
        with self._lock:
            return self.store.put_annotations(user_id, kind, list(annotations))

    # ----------------------------------------------------------------- forgetting
    def forget(self, user_id: str) -> dict[str, int]:
        """Remove every trace of a user: vectors, items, profile versions, caches.

        Returns counts of what was removed.
        """
        user_id = self._known(user_id)
        with self._lock:
            self._sync()
            vectors = 0
            if self._index is not None:  # vectors first: a crash before the rows go is repaired
                self._index.reload(user_id)  # count what the file holds, not a stale copy
                vectors = self._index.count(user_id)
                self._index.delete(user_id)
            report = self.store.delete_user(user_id)
            if self._vector_store is not None:
                vectors = report.items  # each item's row held its vector
            self._profiles.pop(user_id, None)
            self._checked.discard(user_id)
        return {
            "items": report.items,
            "vectors": vectors,
            "profile_versions": report.profile_versions,
        }

    # ----------------------------------------------------------------- async twins
    # Each runs its synchronous twin in a worker thread (SQLite, FAISS and the embedder block).
    async def ausers(self) -> list[str]:
        """Async :meth:`users`."""
        return await off_loop(self.users)

    async def ahas_user(self, user_id: str) -> bool:
        """Async :meth:`has_user`."""
        return await off_loop(self.has_user, user_id)

    async def aknown_users(self, user_ids: Sequence[str]) -> list[str]:
        """Async :meth:`known_users`."""
        return await off_loop(self.known_users, user_ids)

    async def aitems(self, user_id: str) -> list[HistoryItem]:
        """Async :meth:`items`."""
        return await off_loop(self.items, user_id)

    async def aadd_histories(
        self, histories: Mapping[str, Iterable[RawItem] | RawItem], *, show_progress: bool = False
    ) -> dict[str, list[str]]:
        """Async :meth:`add_histories`."""
        return await off_loop(self.add_histories, histories, show_progress=show_progress)

    async def aremove(self, user_id: str, item_ids: Sequence[str]) -> int:
        """Async :meth:`remove`."""
        return await off_loop(self.remove, user_id, item_ids)

    async def aget_profile(self, user_id: str) -> UserProfile | None:
        """Async :meth:`get_profile`."""
        return await off_loop(self.get_profile, user_id)

    async def aget_typed_profile(self, user_id: str) -> BaseModel | None:
        """Async :meth:`get_typed_profile`."""
        return await off_loop(self.get_typed_profile, user_id)

    async def aprofile_versions(self, user_id: str) -> list[UserProfile]:
        """Async :meth:`profile_versions`."""
        return await off_loop(self.profile_versions, user_id)

    async def aset_profile(
        self, user_id: str, draft: BaseModel | Mapping[str, Any], *, replace: bool = False
    ) -> UserProfile:
        """Async :meth:`set_profile`."""
        return await off_loop(self.set_profile, user_id, draft, replace=replace)

    async def arollback_profile(self, user_id: str, version: int) -> UserProfile:
        """Async :meth:`rollback_profile`."""
        return await off_loop(self.rollback_profile, user_id, version)

    async def aexport_profiles(self, user_ids: Sequence[str] | str | None = None) -> dict[str, Any]:
        """Async :meth:`export_profiles`."""
        return await off_loop(self.export_profiles, user_ids)

    async def aimport_profiles(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Async :meth:`import_profiles`."""
        return await off_loop(self.import_profiles, data)

    async def aforget(self, user_id: str) -> dict[str, int]:
        """Async :meth:`forget`."""
        return await off_loop(self.forget, user_id)

    async def aget_annotations(
        self, user_id: str, kind: str, item_hashes: Sequence[str]
    ) -> dict[str, ItemAnnotation]:
        """Async :meth:`get_annotations`."""
        return await off_loop(self.get_annotations, user_id, kind, item_hashes)

    async def aput_annotations(
        self, user_id: str, kind: str, annotations: Sequence[ItemAnnotation]
    ) -> int:
        """Async :meth:`put_annotations`."""
        return await off_loop(self.put_annotations, user_id, kind, annotations)

    async def acheck_integrity(self) -> dict[str, str]:
        """Async :meth:`check_integrity`."""
        return await off_loop(self.check_integrity)

    def close(self) -> None:
        """Close the store (the memory cannot be used afterwards)."""
        self.store.close()

    def __enter__(self) -> ProfileMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
