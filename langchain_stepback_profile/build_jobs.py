"""Profile builds split between worker processes, on one or several machines, through the store.

A *build job* is a named list of users whose profiles are to be built. Any process that opens
the same store can start it or join it (:meth:`ProfileMemory.enqueue_build
<langchain_stepback_profile.memory.ProfileMemory.enqueue_build>`) and work on it
(:meth:`~langchain_stepback_profile.memory.ProfileMemory.run_build_worker`): each worker
claims one user at a time, builds the profile and records the result, so every user is
claimed by one worker at a time and the job's report holds every worker's results
(:meth:`~langchain_stepback_profile.memory.ProfileMemory.build_job_report`).

Each start of a job is a *run*. A job's run is open while some of its users are not finished;
starting a job whose last run is finished starts a new run (unchanged profiles cost no LLM
call, so a late worker that starts a new run only confirms them).

A store supports this by implementing :class:`BuildJobStore`
(:class:`~langchain_stepback_profile.postgres_store.PostgresProfileStore` does: the claim is a
row lock held by an open transaction, released by the server when the worker's connection
dies). A folder store (SQLite) or a LangGraph store does not: :class:`BuildJobError` names the
fix.

Example:
    ```python
    job = memory.enqueue_build()  # every user; or joins the running build of that name
    memory.run_build_worker(job, llm, max_concurrency=8)  # in each worker process
    print(memory.build_job_report(job))  # every worker's results
    ```
"""

from __future__ import annotations

import json
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_BUILD_JOB = "profile-build"
"""The job name of ``profile build`` and of the memory's job methods when none is given."""

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True)
class BuildSettings:
    """What every worker of a job builds with (stored with the run; each worker brings its
    own chat model)."""

    task: str | None = None
    strategy: str | None = None
    overwrite_edits: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {"task": self.task, "strategy": self.strategy, "overwrite_edits": self.overwrite_edits}
        )

    @classmethod
    def from_json(cls, text: str) -> BuildSettings:
        data = json.loads(text)
        return cls(data.get("task"), data.get("strategy"), bool(data.get("overwrite_edits")))


@dataclass(frozen=True)
class BuildJob:
    """One run of a build job, as :meth:`ProfileMemory.enqueue_build` started or joined it.

    ``started`` is True for the call that started the run, False for one that joined it;
    ``users`` is how many users the run holds (those a joiner added included).
    """

    name: str
    run: int
    settings: BuildSettings
    started: bool
    users: int


@dataclass(frozen=True)
class TaskRow:
    """One user of a run as the store holds it: ``state`` is ``pending``, ``done`` or
    ``failed``; ``result`` the worker's JSON record (None while pending)."""

    user_id: str
    state: str
    worker: str | None
    result: dict[str, Any] | None


class BuildClaim(ABC):
    """One user claimed by one worker until :meth:`finish` or :meth:`release`; if the worker
    dies first, the claim is released and another worker claims the user."""

    user_id: str

    @abstractmethod
    def finish(self, state: str, worker: str, result: dict[str, Any]) -> None:
        """Record the user's result (``done`` or ``failed``) and end the claim."""

    @abstractmethod
    def release(self) -> None:
        """End the claim without a result: the user is claimable again."""


class BuildJobStore(ABC):
    """A store in which several processes can split a profile build (see the module)."""

    @abstractmethod
    def open_build_run(
        self,
        job: str,
        users: Sequence[str],
        settings: BuildSettings,
        check: Callable[[BuildSettings], None],
    ) -> tuple[int, BuildSettings, bool, int]:
        """Join the open run of ``job`` (after ``check(its settings)``, which may raise; the
        users it lacks are added) or start a new one with ``users``, atomically among
        processes. Returns (run, its settings, started, users in the run)."""

    @abstractmethod
    def latest_build_run(self, job: str, open_only: bool) -> tuple[int, BuildSettings] | None:
        """The last run of ``job`` (only if it is open, with ``open_only``), or None."""

    @abstractmethod
    def claim_build(self, run: int, worker: str) -> BuildClaim | None:
        """Claim one pending user of the run nobody holds, or None."""

    @abstractmethod
    def build_run_pending(self, run: int) -> tuple[int, int]:
        """(users not finished, claimed ones included; users in the run)."""

    @abstractmethod
    def build_run_tasks(self, run: int) -> list[TaskRow]:
        """Every user of the run, in the order they were added."""


WORKER_ENV = "STEPBACK_PROFILE_WORKER"
"""The environment variable that names this machine in build reports (default: the host
name), e.g. a stable name for a container whose host name is random."""


def worker_name() -> str:
    """This process's name in build reports and in PostgreSQL's ``pg_stat_activity``
    (``application_name``): ``machine:pid``, the machine from ``$STEPBACK_PROFILE_WORKER``
    or the host name."""
    return f"{os.environ.get(WORKER_ENV) or socket.gethostname()}:{os.getpid()}"
