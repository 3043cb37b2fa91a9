"""Profile attribution: does a user's profile pick out the next thing they write?

An evaluation that needs no generator. For each of ``limit`` users, the item they wrote last
(an evaluation item: the paper after every paper of their history) is held out; their profile
is built from the history alone. The held-out item is then compared with the profiles of
``n_candidates`` users (its author and others drawn at random, never a co-author of the item)
by the cosine of MiniLM embeddings: the item's text against each rendered profile. The author
should rank first. Accuracy@1 and MRR (mean reciprocal rank) are reported with bootstrap
intervals for each profile strategy, beside two references: the centroid of the embeddings of
the user's raw history items (what a profile is distilled from) and chance.

For each strategy the report also gives the profile's length in words, its share of supported
claims (:attr:`~langchain_stepback_profile.profile.UserProfile.faithfulness`) and what it cost
to build. Each built-in profile is also scored as its topical fields alone (interests, keywords
and summary, the style line left out): the ``*-topics`` rows, free to compute.

Example:
    ```python
    report = run_attribution("../shared/data/LaMP_5_like", limit=100,
                             out_dir="eval-out/attribution-LaMP-5")
    report.rows["hybrid"]["metrics"]["MRR"]       # {'value': ..., 'low': ..., 'high': ...}
    ```
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from langchain_stepback_profile.distill import ProfileStrategy, StepBackProfiler, model_id
from langchain_stepback_profile.embeddings import MiniLMEmbeddings, embedding_id, encode_texts
from langchain_stepback_profile.errors import InvalidArgumentError, ProfileGenerationError
from langchain_stepback_profile.evaluation.datasets import (
    LAMP_FILES,
    PSW_FILES,
    EvalItem,
    load_items,
)
from langchain_stepback_profile.evaluation.metrics import bootstrap_ci, paired_bootstrap
from langchain_stepback_profile.evaluation.runner import RUN_CONFIG, check_run_config
from langchain_stepback_profile.evaluation.scoring import EvalReport, _diff, _interval
from langchain_stepback_profile.evaluation.tasks import (
    ATTRIBUTION,
    ATTRIBUTION_DEFAULT,
    ATTRIBUTION_ROWS,
    EVAL_TASKS,
    EvalTask,
    get_eval_task,
)
from langchain_stepback_profile.evidence import claim_support, extract_evidence
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.history import HistoryItem, to_history_item, to_history_items
from langchain_stepback_profile.loaders import read_json
from langchain_stepback_profile.profile import ProfileDraft, UserProfile, WritingStyle

logger = logging.getLogger(__name__)

TASK_NAME = ATTRIBUTION
"""The name of this task on the command line (``stepback-profile eval --task attribution``)."""
N_CANDIDATES = 10
METRICS = ("acc@1", "MRR")
_SAME_RUN = ("source", "data_name", "seed", "n_candidates", "llm", "embeddings")
WIDE_EVIDENCE = {"keywords": 20, "phrases": 12, "representative": 5}
"""The evidence sizes of the ``extractive-wide`` reference (the extractive profile's are 10
keywords, 6 phrases and 3 representative items)."""


class TopicProfile(BaseModel):
    """The custom profile schema of the ``schema`` row: topical fields only, no style."""

    topics: list[str] = Field(
        default_factory=list, description="the topics the user writes about, short phrases"
    )
    terms: list[str] = Field(
        default_factory=list, description="technical terms and names the user uses often"
    )
    summary: str = Field(default="", description="one sentence on what the user works on")


SCHEMA_INSTRUCTIONS = "Name only topics and terms that the examples mention."


# --------------------------------------------------------------------- users and items
@dataclass(frozen=True)
class Author:
    """One user of the task: the history a profile is built from and the item held out.

    Args:
        user: the user's name.
        key: the user's name and a digest of the history (:meth:`EvalItem.store_id`).
        history: what the profile is built from.
        held_out: the item the user wrote after every item of ``history``.
        coauthors: the users of the held-out item (never drawn as its other candidates).
        item_ids: the ids of every item of the user (history and held-out item).
    """

    user: str
    key: str
    history: list[HistoryItem]
    held_out: HistoryItem
    coauthors: frozenset[str]
    item_ids: frozenset[str]


def authors_of(items: Sequence[EvalItem]) -> list[Author]:
    """One :class:`Author` per user of ``items``: the item where the user's history is
    longest (their latest) is held out, and that history is theirs. Sorted by user name."""
    latest: dict[str, EvalItem] = {}
    for item in items:
        for user in item.user_ids:
            best = latest.get(user)
            length = len(item.history[user])
            if best is None or (length, best.id) > (len(best.history[user]), item.id):
                latest[user] = item
    authors = []
    for user in sorted(latest):
        item = latest[user]
        held_out = to_history_item({"id": item.id, "input": item.input_text, "output": item.gold})
        history = to_history_items(item.history[user])
        authors.append(
            Author(
                user=user,
                key=item.store_id(user),
                history=history,
                held_out=held_out,
                coauthors=frozenset(item.user_ids),
                item_ids=frozenset({held_out.id, *(h.id for h in history)}),
            )
        )
    return authors


def pick(authors: Sequence[Author], limit: int | None, seed: int = 0) -> list[Author]:
    """``limit`` authors picked by a shuffle seeded with ``seed`` (all, shuffled, when None);
    a larger limit keeps the authors of a smaller one."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer, got {limit!r}")
    order = list(authors)
    random.Random(seed).shuffle(order)
    return order[:limit]


def candidate_sets(authors: Sequence[Author], n: int, seed: int = 0) -> list[list[int]]:
    """For each author, the indices of its ``n`` candidates: itself first, then ``n - 1``
    others drawn with a seeded generator among those who did not write the held-out item
    (not a co-author, the item in none of their items)."""
    if n < 2:
        raise InvalidArgumentError(f"n_candidates must be at least 2, got {n}")
    sets = []
    for i, author in enumerate(authors):
        others = [
            j
            for j, other in enumerate(authors)
            if j != i
            and other.user not in author.coauthors
            and author.held_out.id not in other.item_ids
        ]
        if len(others) < n - 1:
            raise InvalidArgumentError(
                f"{author.user!r} has {len(others)} possible other candidates, fewer than the "
                f"{n - 1} that {n} candidates need; raise --limit or lower --n-candidates"
            )
        rng = random.Random(f"{seed}:{author.key}")
        sets.append([i, *rng.sample(others, n - 1)])
    return sets


# --------------------------------------------------------------------- ranking
def rank_metrics(scores: Sequence[float] | np.ndarray, true: int = 0) -> tuple[float, float]:
    """``(accuracy@1, reciprocal rank)`` of candidate ``true`` when the candidates are ranked by
    ``scores``, highest first. Ties are broken at random: the values are their expectations
    (``-inf``, a missing profile, ties with every other missing one).

    Example:
        >>> rank_metrics([0.2, 0.9, 0.1])           # second of three
        (0.0, 0.5)
        >>> rank_metrics([0.5, 0.5, 0.1, 0.5])      # tied with two others for first
        (0.3333333333333333, 0.611111111111111)
    """
    values = np.asarray(scores, dtype=float)
    mine = values[true]
    above = int(np.sum(values > mine))
    tied = int(np.sum(values == mine)) - 1
    ranks = np.arange(above + 1, above + tied + 2, dtype=float)
    accuracy = 1.0 / (tied + 1) if above == 0 else 0.0
    return accuracy, float(np.mean(1.0 / ranks))


def rank_all(similarity: np.ndarray, sets: Sequence[Sequence[int]]) -> dict[str, list[float]]:
    """Per-item accuracy@1 and reciprocal rank: row ``i`` of ``similarity`` holds held-out item
    ``i`` against every author, ``sets[i]`` its candidates (the author first)."""
    per_item: dict[str, list[float]] = {"acc@1": [], "MRR": []}
    for i, candidates in enumerate(sets):
        accuracy, rr = rank_metrics(similarity[i, list(candidates)], 0)
        per_item["acc@1"].append(accuracy)
        per_item["MRR"].append(rr)
    return per_item


# --------------------------------------------------------------------- rows
@dataclass(frozen=True)
class AttributionRow:
    """One row of the report.

    Args:
        name: the name in ``--methods`` and in the report.
        description: one line for the report.
        source: the profiles it scores (a strategy, ``schema`` or ``extractive-wide``), or
            None for the references (``chance``, ``centroid``).
        topics: score the profile's topical fields only (no style line).
    """

    name: str
    description: str
    source: str | None = None
    topics: bool = False


PROFILE_SOURCES = ("extractive", "hybrid", "llm", "schema", "extractive-wide")
"""The profiles a run can build: the three strategies, the default strategy with the
:class:`TopicProfile` schema, and the extractive profile with more evidence."""
_LLM_SOURCES = frozenset({"hybrid", "llm", "schema"})

_ROWS: tuple[AttributionRow, ...] = (
    AttributionRow("chance", f"reference: the author is one of {N_CANDIDATES} at random"),
    AttributionRow(
        "centroid", "reference: the mean embedding of the user's raw history items (no profile)"
    ),
    AttributionRow("extractive", "extractive profile (no LLM), rendered", "extractive"),
    AttributionRow(
        "extractive-topics", "extractive profile, topical fields only", "extractive", True
    ),
    AttributionRow(
        "extractive-wide",
        "reference: an extractive profile with twice the phrases and keywords, five "
        "representative items (topical fields)",
        "extractive-wide",
        True,
    ),
    AttributionRow("hybrid", "hybrid profile (LLM summary of measured evidence)", "hybrid"),
    AttributionRow("hybrid-topics", "hybrid profile, topical fields only", "hybrid", True),
    AttributionRow("llm", "llm profile (the paper's: the model reads the raw history)", "llm"),
    AttributionRow("llm-topics", "llm profile, topical fields only", "llm", True),
    AttributionRow(
        "schema",
        "a custom schema (TopicProfile: topics, terms, summary) with instructions, default "
        "strategy",
        "schema",
    ),
)
ROWS: dict[str, AttributionRow] = {row.name: row for row in _ROWS}
"""Every row by name, in report order."""
assert tuple(ROWS) == ATTRIBUTION_ROWS, "tasks.ATTRIBUTION_ROWS names these rows"
DEFAULT_ROWS = ("chance", "centroid", "extractive", "extractive-wide", "hybrid", "schema")
"""The rows run when none are named (``llm`` is slow with the embedded model: ask for it)."""


def resolve_rows(names: Sequence[str] | None = None) -> list[AttributionRow]:
    """The rows named, in report order: a strategy's name brings its ``-topics`` row along;
    the default list when ``names`` is None. ``centroid`` is always scored (rows are compared
    with it)."""
    wanted = set(DEFAULT_ROWS if names is None else (n.strip() for n in names))
    unknown = sorted(wanted - set(ROWS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown attribution row {unknown[0]!r}; use some of: {', '.join(ROWS)}"
        )
    wanted.add("centroid")
    wanted |= {f"{n}-topics" for n in wanted if f"{n}-topics" in ROWS}
    return [row for row in _ROWS if row.name in wanted]


def needs_llm(names: Sequence[str] | None = None) -> bool:
    """True when the rows named (default :data:`DEFAULT_ROWS`) build profiles with a chat
    model."""
    return any(row.source in _LLM_SOURCES for row in resolve_rows(names))


def _topical(profile: UserProfile) -> UserProfile:
    return (
        profile
        if profile.data is not None
        else profile.model_copy(update={"style": WritingStyle()})
    )


def profile_text(profile: UserProfile | None, topics: bool = False) -> str | None:
    """What is embedded for a profile: its prompt rendering (supported claims only, as the
    retriever shows it), without the style line when ``topics``."""
    if profile is None:
        return None
    return (_topical(profile) if topics else profile).render(supported_only=True) or None


# --------------------------------------------------------------------- profile builds
class ProfileCache:
    """The profiles of one source, one JSON line a user (``<store>/<source>.jsonl``): a rerun,
    or another run given the same store, reuses them. A line built with another profiler (prompt
    version, task, model, strategy) is not reused."""

    def __init__(self, path: Path, identity: str) -> None:
        self.path = path
        self.identity = identity
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interruption
                if isinstance(record, dict) and record.get("built_with") == identity:
                    self.records[record["key"]] = record

    def add(self, record: dict[str, Any]) -> None:
        record = {**record, "built_with": self.identity}
        self.records[record["key"]] = record
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")

    def profile(self, key: str) -> UserProfile | None:
        data = self.records[key].get("profile")
        return UserProfile.model_validate(data) if data else None


def _wide_extractive(author: Author, embeddings: Embeddings) -> UserProfile:
    """The ``extractive-wide`` reference: the extractive profile's fields from more evidence."""
    evidence = extract_evidence(author.history, embeddings, **WIDE_EVIDENCE)
    draft = ProfileDraft(
        interests=evidence.phrases,
        keywords=evidence.keywords,
        summary=" | ".join(evidence.representative),
    )
    profile = UserProfile.from_draft(draft, user_id=author.key, strategy="extractive")
    profile.support = claim_support(profile.claims(), author.history)
    return profile


def _profiler(
    source: str, llm: BaseChatModel | None, task: EvalTask, embeddings: Embeddings
) -> StepBackProfiler | None:
    if source == "extractive-wide":
        return None
    custom = source == "schema"
    strategy: ProfileStrategy = "auto" if custom else source  # type: ignore[assignment]
    return StepBackProfiler(
        llm,
        task=task.spec,
        strategy=strategy,
        embeddings=embeddings,
        profile_schema=TopicProfile if custom else None,
        instructions=SCHEMA_INSTRUCTIONS if custom else None,
    )


def build_profiles(
    source: str,
    authors: Sequence[Author],
    cache_dir: Path,
    *,
    llm: BaseChatModel | None,
    task: EvalTask,
    embeddings: Embeddings,
    show_progress: bool = False,
) -> tuple[dict[str, UserProfile | None], dict[str, Any]]:
    """Every author's profile of ``source`` (built, or taken from the cache in ``cache_dir``)
    by author key, and what the profiles cost. A profile the model cannot write is ``None``,
    recorded as failed (and not tried again on a rerun: the model is deterministic)."""
    profiler = _profiler(source, llm, task, embeddings)
    identity = (
        "|".join(profiler.cache_key())
        if profiler is not None
        else f"extractive-wide|{json.dumps(WIDE_EVIDENCE, sort_keys=True)}"
    )
    cache = ProfileCache(cache_dir / f"{source}.jsonl", identity)
    todo = [a for a in authors if a.key not in cache.records]
    for author in tqdm(todo, desc=f"profiles ({source})", unit="user", disable=not show_progress):
        started = time.perf_counter()
        record: dict[str, Any] = {"key": author.key, "llm_calls": 0, "tokens": 0}
        try:
            if profiler is None:
                profile = _wide_extractive(author, embeddings)
            else:
                build = profiler.build(author.key, author.history)
                profile = build.profile
                record["llm_calls"] = build.llm_calls
                record["tokens"] = build.input_tokens + build.output_tokens
            record["profile"] = profile.model_dump(mode="json")
        except ProfileGenerationError as err:
            logger.warning("no %s profile for %s: %s", source, author.user, err)
            record["profile"] = None
            record["error"] = str(err)
        record["seconds"] = round(time.perf_counter() - started, 3)
        cache.add(record)
    mine = [cache.records[a.key] for a in authors]
    n = len(mine)
    cost = {
        "strategy": "extractive" if profiler is None else profiler.strategy,
        "users": n,
        "failed": sum(r.get("profile") is None for r in mine),
        "llm_calls_per_user": round(sum(r["llm_calls"] for r in mine) / n, 3),
        "tokens_per_user": round(sum(r["tokens"] for r in mine) / n, 1),
        "seconds_per_user": round(sum(r["seconds"] for r in mine) / n, 3),
    }
    return {a.key: cache.profile(a.key) for a in authors}, cost


# --------------------------------------------------------------------- the run
def attribution_source(data_dir: str | Path) -> EvalTask:
    """The evaluation task whose items a folder holds: ``PSW-title`` for a PSW-like folder,
    ``LaMP-N`` for a LaMP folder (the number its ``outputs.json`` names)."""
    folder = Path(data_dir)
    if all((folder / name).is_file() for name in PSW_FILES):
        return get_eval_task("PSW-title")
    if all((folder / name).is_file() for name in LAMP_FILES):
        data = read_json(folder / "outputs.json")
        named = str(data.get("task") or "") if isinstance(data, dict) else ""
        number = re.search(r"(\d+)", named)
        name = f"LaMP-{number.group(1)}" if number else ""
        if name in EVAL_TASKS and EVAL_TASKS[name].kind == "generation":
            return EVAL_TASKS[name]
    raise InvalidArgumentError(
        f"{folder}: not a PSW-like folder ({' and '.join(PSW_FILES)}) or a LaMP folder of a "
        "writing task (questions.json + outputs.json naming LaMP_4 ... LaMP_7); pass "
        "source= (Python) to say which task its items are"
    )


def _centroids(authors: Sequence[Author], embeddings: Embeddings) -> np.ndarray:
    texts = [item.text for a in authors for item in a.history]
    vectors = encode_texts(embeddings, texts)
    rows, start = [], 0
    for author in authors:
        mean = vectors[start : start + len(author.history)].mean(axis=0)
        rows.append(mean / (np.linalg.norm(mean) or 1.0))
        start += len(author.history)
    return np.vstack(rows)


def _profile_vectors(texts: Sequence[str | None], embeddings: Embeddings, dim: int) -> np.ndarray:
    """Embeddings of the profile texts; a missing profile is a row of NaN (scored -inf)."""
    vectors = np.full((len(texts), dim), np.nan, dtype=np.float32)
    present = [i for i, t in enumerate(texts) if t]
    if present:
        vectors[present] = encode_texts(embeddings, [texts[i] or "" for i in present])
    return vectors


def _similarity(items: np.ndarray, users: np.ndarray) -> np.ndarray:
    sims = items @ np.nan_to_num(users).T
    sims[:, np.isnan(users).any(axis=1)] = -np.inf
    return sims


def run_attribution(
    data_dir: str | Path,
    *,
    source: str | EvalTask | None = None,
    methods: Sequence[str] | None = None,
    limit: int | None = None,
    n_candidates: int = N_CANDIDATES,
    llm: BaseChatModel | None = None,
    embeddings: Embeddings | None = None,
    out_dir: str | Path | None = None,
    store_dir: str | Path | None = None,
    seed: int = 0,
    show_progress: bool = True,
    on_profiles: Callable[[str, dict[str, Any]], None] | None = None,
) -> EvalReport:
    """Run the attribution task on ``data_dir``; write and return the report.

    Args:
        data_dir: a LaMP folder of a writing task or a PSW-like folder.
        source: the task whose items the folder holds (default: read from the folder).
        methods: row names (see :data:`ROWS`); default :data:`DEFAULT_ROWS`.
        limit: users (held-out items), picked by a shuffle seeded with ``seed``; they are also
            each other's other candidates.
        n_candidates: users each held-out item is ranked among (its author included).
        llm: the model of the ``hybrid``, ``llm`` and ``schema`` profiles (default the
            embedded SmolLM2-135M).
        embeddings: what items and profiles are compared with (default MiniLM).
        out_dir: report and charts (default ``eval-out/attribution-<source>``).
        store_dir: the profile cache (default ``<out_dir>/profiles``); runs given the same
            folder share the profiles they have in common.
        seed: user choice, other candidates and the bootstrap.
        show_progress: progress bars on stderr.
        on_profiles: called with each source's name and cost once its profiles are built.

    Example:
        ```python
        report = run_attribution("../shared/data/PSW_like", limit=20,
                                 methods=["centroid", "extractive"])
        ```
    """
    require_extra("eval", feature="the evaluation harness")
    started = time.perf_counter()
    task = get_eval_task(source) if source is not None else attribution_source(data_dir)
    rows = resolve_rows(methods)
    sources = list(dict.fromkeys(r.source for r in rows if r.source is not None))
    authors = pick(authors_of(load_items(task, data_dir)), limit, seed)
    sets = candidate_sets(authors, n_candidates, seed)
    out = Path(out_dir) if out_dir is not None else Path("eval-out") / f"attribution-{task.name}"
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(store_dir) if store_dir is not None else out / "profiles"
    cache_dir.mkdir(parents=True, exist_ok=True)
    if llm is None and _LLM_SOURCES & set(sources):
        from langchain_stepback_profile.llms import default_chat_model

        llm = default_chat_model()
    embeddings = embeddings or MiniLMEmbeddings()
    config = {
        "task": TASK_NAME,
        "source": task.name,
        "data": str(data_dir),
        "data_name": Path(data_dir).resolve().name,
        "seed": seed,
        "limit": limit,
        "n_candidates": n_candidates,
        "llm": model_id(llm) if llm is not None else None,
        "embeddings": embedding_id(embeddings),
        "methods": [r.name for r in rows],
    }
    check_run_config(out / RUN_CONFIG, config, _SAME_RUN)

    profiles: dict[str, dict[str, UserProfile | None]] = {}
    costs: dict[str, dict[str, Any]] = {}
    for name in sources:
        profiles[name], costs[name] = build_profiles(
            name,
            authors,
            cache_dir,
            llm=llm,
            task=task,
            embeddings=embeddings,
            show_progress=show_progress,
        )
        if on_profiles is not None:
            on_profiles(name, costs[name])

    n = len(authors)
    held = encode_texts(embeddings, [a.held_out.text for a in authors])
    per_item: dict[str, dict[str, list[float]]] = {}
    texts: dict[str, list[str | None]] = {}
    for row in rows:
        if row.name == "chance":
            similarity = np.zeros((n, n))  # every candidate tied: exactly chance
        elif row.name == "centroid":
            similarity = _similarity(held, _centroids(authors, embeddings))
        else:
            assert row.source is not None
            texts[row.name] = [
                profile_text(profiles[row.source][a.key], row.topics) for a in authors
            ]
            vectors = _profile_vectors(texts[row.name], embeddings, held.shape[1])
            similarity = _similarity(held, vectors)
        per_item[row.name] = rank_all(similarity, sets)

    report_rows: dict[str, dict[str, Any]] = {}
    for row in rows:
        scores = per_item[row.name]
        entry: dict[str, Any] = {
            "description": row.description,
            "layout": row.source,  # None for the references (grey in the charts)
            "metrics": {m: _interval(bootstrap_ci(scores[m], seed=seed), n) for m in METRICS},
        }
        for key, other in (("vs_centroid", "centroid"), ("vs_default", ATTRIBUTION_DEFAULT)):
            if other in per_item and other != row.name and (key == "vs_centroid" or row.source):
                entry[key] = {
                    m: _diff(paired_bootstrap(scores[m], per_item[other][m], seed=seed), n)
                    for m in METRICS
                }
        entry["per_item"] = scores
        if row.source is not None:
            mine = [profiles[row.source][a.key] for a in authors]
            shown = [t for t in texts[row.name] if t]
            faithful = [
                p.faithfulness for p in mine if p is not None and p.faithfulness is not None
            ]
            entry["profile"] = {
                **costs[row.source],
                "words": round(float(np.mean([len(t.split()) for t in shown])), 1)
                if shown
                else 0.0,
                "faithfulness": round(float(np.mean(faithful)), 3) if faithful else None,
            }
        report_rows[row.name] = entry

    examples = []
    for i, author in enumerate(authors[:3]):
        ranks = {row.name: 1.0 / per_item[row.name]["MRR"][i] for row in rows}
        examples.append(
            {
                "id": author.held_out.id,
                "users": [author.user],
                "input": " ".join(author.held_out.text.split()[:40]),
                "gold": author.held_out.output or "",
                "profile": {name: t[i] for name, t in texts.items() if t[i] and "-" not in name},
                "outputs": {name: f"{r:.3g}" for name, r in ranks.items()},
            }
        )
    report = EvalReport(
        task=f"{TASK_NAME} ({task.name})",
        kind=TASK_NAME,
        metrics=list(METRICS),
        n_items=n,
        item_ids=[a.key for a in authors],
        rows=report_rows,
        examples=examples,
        profiles=costs,
        config=config,
        seconds={"this_call": round(time.perf_counter() - started, 1)},
    )
    from langchain_stepback_profile.evaluation.report import write_attribution_report

    write_attribution_report(report, out)
    return report
