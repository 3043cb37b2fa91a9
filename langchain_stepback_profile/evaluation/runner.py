"""Run an evaluation: load and select items, build the store and profiles once, run every
(item, method) pair with a progress bar, and score and write the report.

Each finished pair is appended to ``OUT/results.jsonl`` at once; a rerun with the same
``OUT`` skips the pairs already there, so an interrupted run continues where it stopped.

Example:
    ```python
    report = run_eval("LaMP-7", "../shared/data/LaMP_7", limit=20, out_dir="eval-out/LaMP-7")
    report.rows["few-shot"]["metrics"]["rouge-1"]
    ```
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from tqdm.auto import tqdm

from langchain_stepback_profile.distill import (
    PROFILE_STRATEGIES,
    ProfileBuild,
    ProfileStrategy,
    model_id,
)
from langchain_stepback_profile.embeddings import MiniLMEmbeddings, embedding_id
from langchain_stepback_profile.errors import InvalidArgumentError, ProfileGenerationError
from langchain_stepback_profile.evaluation.datasets import EvalItem, load_items, select
from langchain_stepback_profile.evaluation.methods import (
    Method,
    MethodContext,
    resolve_methods,
    run_method,
)
from langchain_stepback_profile.evaluation.report import write_report
from langchain_stepback_profile.evaluation.scoring import EvalReport, score
from langchain_stepback_profile.evaluation.tasks import EvalTask, get_eval_task
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.memory import ProfileMemory, check_k
from langchain_stepback_profile.usage import LLMUsage

logger = logging.getLogger(__name__)

RESULTS = "results.jsonl"
RUN_CONFIG = "run.json"
PROFILE_COSTS = "profiles.json"
_SAME_RUN = ("task", "data_name", "k", "seed", "profile_strategy", "llm", "embeddings")
"""Settings that change results: a folder's results are only resumed under the same ones."""

Key = tuple[str, str]


class ResultLog:
    """``results.jsonl``: one JSON line per finished (method, item), appended and flushed.

    A line cut short by an interruption is dropped when the log is opened.

    Example:
        ```python
        with ResultLog.open(Path("out/results.jsonl")) as log:
            log.append({"method": "step-back", "item_id": "q1", "output": "..."})
        ```
    """

    def __init__(self, path: Path, records: dict[Key, dict[str, Any]], stream: TextIO) -> None:
        self.path = path
        self.records = records
        self._stream = stream

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[ResultLog]:
        records: dict[Key, dict[str, Any]] = {}
        torn = False
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    records[(record["method"], record["item_id"])] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    torn = True
        if torn:  # rewrite without the broken line, so appends start on a fresh line
            logger.warning("%s: dropped a result line cut short by an interruption", path)
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values()),
                encoding="utf-8",
            )
        with path.open("a", encoding="utf-8") as stream:
            yield cls(path, records, stream)

    def append(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()
        self.records[(record["method"], record["item_id"])] = record


def check_run_config(
    path: Path, config: Mapping[str, Any], same_run: Sequence[str] = _SAME_RUN
) -> None:
    """Refuse to resume results made under other ``same_run`` settings; record the settings."""
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = {}
        changed = [k for k in same_run if k in previous and previous[k] != config[k]]
        if changed:
            details = "; ".join(f"{k}: {previous[k]!r} -> {config[k]!r}" for k in changed)
            raise InvalidArgumentError(
                f"{path.parent} holds results of another run ({details}); pass another --out "
                "folder, or delete this one to start again"
            )
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _histories(items: Sequence[EvalItem]) -> dict[str, list[dict[str, Any]]]:
    return {item.store_id(u): item.history[u] for item in items for u in item.user_ids}


def _build_profiles(
    memory: ProfileMemory,
    users: Sequence[str],
    llm: BaseChatModel | None,
    task: EvalTask,
    strategy: ProfileStrategy,
    path: Path,
    show_progress: bool,
) -> dict[str, Any]:
    """Build every profile once (a stored, unchanged one costs nothing) and keep each build's
    cost in ``profiles.json``, so a resumed run still reports what the profiles cost.

    A profile the model cannot write (no valid profile after its repair attempt) is recorded
    as failed, with what the attempt cost; that user's prompts then hold no profile. A failed
    user is not tried again on resume (the model is deterministic).
    """
    costs: dict[str, Any] = {}
    if path.exists():
        costs = json.loads(path.read_text(encoding="utf-8")).get("users", {})
    usage = LLMUsage()
    counted = llm.model_copy(update={"callbacks": [usage]}) if llm is not None else None
    for user in tqdm(users, desc="profiles", unit="user", disable=not show_progress):
        if costs.get(user, {}).get("mode") == "failed":
            continue
        started, before = time.perf_counter(), usage.as_dict()
        build: ProfileBuild | None = None
        try:
            build = memory.refresh([user], counted, task=task.spec, strategy=strategy).builds[user]
        except ProfileGenerationError as err:
            logger.warning("no profile for %s: %s", user, err)
        if build is None or build.mode != "unchanged" or user not in costs:
            spent = {k: v - before[k] for k, v in usage.as_dict().items()}
            costs[user] = {
                "mode": build.mode if build is not None else "failed",
                "llm_calls": spent["llm_calls"],
                "input_tokens": spent["input_tokens"],
                "output_tokens": spent["output_tokens"],
                "seconds": round(time.perf_counter() - started, 3),
            }
            path.write_text(
                json.dumps({"strategy": strategy, "users": costs}, indent=1, ensure_ascii=False),
                encoding="utf-8",
            )
    mine = [costs[u] for u in users]
    return {
        "strategy": strategy,
        "users": len(users),
        "failed": sum(c["mode"] == "failed" for c in mine),
        **{
            key: round(sum(c[key] for c in mine), 3)
            for key in ("llm_calls", "input_tokens", "output_tokens", "seconds")
        },
    }


def _record(method: Method, item: EvalItem, ctx: MethodContext) -> dict[str, Any]:
    output = run_method(method, item, ctx)
    record = {
        "method": method.name,
        "item_id": item.id,
        "output": output.text,
        "llm_calls": output.llm_calls,
        "tokens_in": output.tokens_in,
        "tokens_out": output.tokens_out,
        "seconds": round(output.seconds, 3),
        "copied": output.copied,
        "control": output.control,
    }
    if output.error:
        record["error"] = output.error
    return record


def run_eval(
    task: str | EvalTask,
    data_dir: str | Path,
    *,
    methods: Sequence[str] | None = None,
    limit: int | None = None,
    llm: BaseChatModel | None = None,
    embeddings: Embeddings | None = None,
    k: int = 2,
    out_dir: str | Path | None = None,
    store_dir: str | Path | None = None,
    seed: int = 0,
    profile_strategy: ProfileStrategy = "hybrid",
    n_examples: int = 3,
    show_progress: bool = True,
) -> EvalReport:
    """Evaluate ``methods`` on ``task`` with the data in ``data_dir``; write and return the
    report.

    Args:
        task: ``LaMP-1`` ... ``LaMP-7``, ``PSW-title`` or ``PSW-abstract``.
        data_dir: a LaMP folder (questions.json + outputs.json) or a PSW-like folder
            (papers.jsonl + targets.jsonl).
        methods: method names (see :data:`~.methods.METHODS`); default all that apply.
        limit: evaluate this many items, picked by a shuffle seeded with ``seed``.
        llm: the chat model of every method (temperature 0 for deterministic runs); default
            the embedded SmolLM2-135M.
        embeddings: the embedding model of the store; default MiniLM.
        k: history items retrieved per user.
        out_dir: results, report and charts (default ``eval-out/<task>``); rerunning with the
            same folder resumes.
        store_dir: the evaluation store (default ``<out_dir>/store``).
        seed: item selection, the shuffled author order and the bootstrap.
        profile_strategy: how profiles are written: ``hybrid`` (default), ``llm`` or
            ``extractive``.
        n_examples: items shown with every method's output in the report.
        show_progress: progress bars on stderr.

    Example:
        ```python
        report = run_eval("PSW-title", "../shared/data/PSW_like", limit=5,
                          methods=["non-personalized", "step-back", "shuffled"])
        ```
    """
    require_extra("eval", feature="the evaluation harness")  # ROUGE, bootstrap, charts
    started = time.perf_counter()
    task = get_eval_task(task)
    k = check_k(k)
    if profile_strategy not in PROFILE_STRATEGIES:
        raise InvalidArgumentError(
            f"unknown profile strategy {profile_strategy!r}; use one of {list(PROFILE_STRATEGIES)}"
        )
    chosen = resolve_methods(task, methods)
    items = select(load_items(task, data_dir), limit, seed)
    out = Path(out_dir) if out_dir is not None else Path("eval-out") / task.name
    out.mkdir(parents=True, exist_ok=True)
    if llm is None and any(m.layout for m in chosen):
        from langchain_stepback_profile.llms import default_chat_model

        llm = default_chat_model()
    uses_store = any(m.uses_store for m in chosen)
    if uses_store and embeddings is None:
        embeddings = MiniLMEmbeddings()
    config = {
        "task": task.name,
        "data": str(data_dir),
        "data_name": Path(data_dir).resolve().name,
        "k": k,
        "seed": seed,
        "profile_strategy": profile_strategy,
        "llm": model_id(llm) if llm is not None else None,
        "embeddings": embedding_id(embeddings) if embeddings is not None else None,
        "limit": limit,
        "methods": [m.name for m in chosen],
    }
    check_run_config(out / RUN_CONFIG, config)
    ctx = MethodContext(task, llm=llm, k=k, seed=seed, items=items)
    if any(m.name.endswith("-other") for m in chosen):
        for item in items:  # every control finds its other user before anything runs
            ctx.other(item)
    memory = None
    profiles: dict[str, Any] = {}
    example_profiles: dict[str, str] = {}
    try:
        if uses_store:
            memory = ProfileMemory(
                Path(store_dir) if store_dir is not None else out / "store",
                embeddings=embeddings,
                llm=llm,
                task=task.spec,
                profile_strategy=profile_strategy,
            )
            memory.add_histories(_histories(items), show_progress=show_progress)
            ctx.memory = memory
            if any(m.uses_profiles for m in chosen):
                users = list(dict.fromkeys(u for i in items for u in i.store_ids))
                profiles = _build_profiles(
                    memory, users, llm, task, profile_strategy, out / PROFILE_COSTS, show_progress
                )
                for item in items[:n_examples]:
                    profile = memory.get_profile(item.store_ids[0])
                    if profile is not None:
                        example_profiles[item.id] = profile.render(supported_only=True)
        with ResultLog.open(out / RESULTS) as log:
            todo = [(i, m) for i in items for m in chosen if (m.name, i.id) not in log.records]
            for item, method in tqdm(
                todo, desc=f"{task.name} (item, method)", unit="run", disable=not show_progress
            ):
                log.append(_record(method, item, ctx))
            records = log.records
    finally:
        if memory is not None:
            memory.close()
    report = score(
        task,
        items,
        chosen,
        records,
        seed=seed,
        n_examples=n_examples,
        example_profiles=example_profiles,
    )
    report.profiles = profiles
    report.config = {**config, **report.config}
    report.seconds = _seconds(report, records, profiles, time.perf_counter() - started)
    write_report(report, out)
    return report


def _seconds(
    report: EvalReport,
    records: Mapping[Key, Mapping[str, Any]],
    profiles: Mapping[str, Any],
    wall: float,
) -> dict[str, float]:
    """Compute time of the scored results (summed over resumed runs) and this call's wall
    time."""
    runs = sum(
        float(records[(m, i)]["seconds"])
        for m in report.rows
        for i in report.item_ids
        if (m, i) in records
    )
    return {
        "methods": round(runs, 1),
        "profiles": round(float(profiles.get("seconds", 0.0)), 1),
        "this_call": round(wall, 1),
    }
