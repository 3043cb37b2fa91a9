"""``profile build`` shared through the store: start or join the build job, run this machine's
worker processes on it (``--workers N``: this process and N - 1 spawned ones), then report
every worker's results, those of other machines included."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from typing import Any

from langchain_stepback_profile.build_jobs import DEFAULT_BUILD_JOB, BuildJob
from langchain_stepback_profile.cli.session import Session
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport

_SHARED_OPTIONS = ("store", "task", "llm", "base_url", "embeddings")
"""The common options a spawned worker needs to open the same store and models."""


def shared_build(
    session: Session, args: argparse.Namespace, memory: ProfileMemory, users: list[str]
) -> tuple[BuildJob, RefreshReport]:
    """Start or join the job, work on it with ``--workers`` processes, return its report."""
    if memory.task is None:  # the job records the task its workers build for
        memory.task = session.task_name(memory)
    job = memory.enqueue_build(
        users if args.users else None,
        job=args.job or DEFAULT_BUILD_JOB,
        task=session.task,
        strategy=args.profile_strategy,
    )
    needs_llm = job.settings.strategy != "extractive"
    llm = session.llm() if needs_llm else None
    # the embedded model builds one profile at a time in each process
    concurrency = args.concurrency if session.llm_spec.provider != "local" else 1
    options = {name: getattr(args, name) for name in _SHARED_OPTIONS if hasattr(args, name)}
    # forked from one server process that imported the package once: N workers start in
    # the time of one import, not N imports side by side
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "langchain_openai"])
    children = [
        context.Process(
            target=worker_process,
            args=(options, job, needs_llm, concurrency),
            name=f"profile-build-worker-{n}",
        )
        for n in range(1, args.workers or 1)
    ]
    try:
        for child in children:
            child.start()
        memory.run_build_worker(job, llm, max_concurrency=concurrency, show_progress=True)
        # every user is finished, so no worker holds a claim: one still starting has nothing
        # left to do (and when interrupted, a worker's claims are released as it exits)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
    for child in children:
        if child.exitcode and child.exitcode > 0:  # not stopped above (-SIGTERM)
            print(
                f"warning: worker process {child.pid} exited with code {child.exitcode}; "
                "the users it held were claimed again by the other workers",
                file=sys.stderr,
            )
    return job, memory.build_job_report(job)


def worker_process(
    options: dict[str, Any], job: BuildJob, needs_llm: bool, concurrency: int
) -> None:
    """One spawned worker: its own store connections and chat model, the same job."""
    session = Session(argparse.Namespace(**options), sys.stderr)
    try:
        memory = session.memory()
        llm = session.llm() if needs_llm else None
        memory.run_build_worker(job, llm, max_concurrency=concurrency)
    finally:
        session.close()
