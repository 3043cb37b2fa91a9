"""Retrieval latency end to end, as a user sees it, with the FAISS part compared to bare faiss.

What is timed per query: ``StepBackProfileRetriever(memory=..., k=4).invoke(query,
user_ids=[user])`` = real MiniLM query embedding + FAISS search of the user's index + SQLite
fetch of the hits + profile fetch + Document building (+ LangChain's retriever plumbing).
Inside those same calls the query embedding and the FAISS search are timed by thin
wrappers, so ``rest = total - embedding - faiss`` is SQLite + profile + Documents + plumbing.

Side by side in the same run, on the same query vectors and k:
``HistoryIndex.search`` (our FAISS path) against a bare faiss-cpu ``IndexFlatIP`` holding
the same vectors, alternating which goes first.

Stores are filled in bulk from real LaMP-5-like titles/abstracts (realistic SQLite rows)
with random unit vectors (bench/_benchlib.py: bulk_fill), and every user gets a stored
profile (``memory.set_profile``). Each store is closed and reopened before it is queried,
so the first touch of a user (index load + reconciliation + profile read) is measured
as a new process would pay it.

At the largest one-user store the query encoder's precision variants (``MiniLMEmbeddings(
precision=...)``: fp32, bf16, int8, onnx) run side by side, query by query, and their quality
against fp32 is measured on real queries and papers (top-10 neighbour overlap, cosines).

Usage:
    .venv/bin/python bench/retrieval_latency.py            # full run (~15-20 min on 2 cores)
    .venv/bin/python bench/retrieval_latency.py --quick    # smoke run (~2 min)
    .venv/bin/python bench/retrieval_latency.py --only 100k  # one store size
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchlib as bl
import numpy as np

NAME = "retrieval_latency"
K = 4
TARGET_P99_MS_100K = 25.0
TARGET_FAISS_RATIO = 1.5
TARGET_STORE_SIZE_RATIO = 1.5


@dataclass(frozen=True)
class Scenario:
    name: str
    users: int
    items_per_user: int

    @property
    def total(self) -> int:
        return self.users * self.items_per_user


FULL = [
    Scenario("1k", 1, 1_000),
    Scenario("10k", 1, 10_000),
    Scenario("100k", 1, 100_000),
    Scenario("1M/1k users", 1_000, 1_000),
]
QUICK = [
    Scenario("1k", 1, 1_000),
    Scenario("5k", 1, 5_000),
    Scenario("10k/20 users", 20, 500),
]


# --------------------------------------------------------------------------- instrumentation
class Timed:
    """Replace ``obj.attr`` (an instance attribute shadowing the method) by a timing wrapper."""

    def __init__(self, obj: Any, attr: str, keep_result: bool = False) -> None:
        self.obj, self.attr, self.keep = obj, attr, keep_result
        self.calls: list[float] = []
        self.last: Any = None

    def __enter__(self) -> Timed:
        inner: Callable[..., Any] = getattr(self.obj, self.attr)
        perf = time.perf_counter

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = perf()
            out = inner(*args, **kwargs)
            self.calls.append(perf() - t)
            if self.keep:
                self.last = out
            return out

        setattr(self.obj, self.attr, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        delattr(self.obj, self.attr)

    def take(self) -> float:
        total = sum(self.calls)
        self.calls.clear()
        return total


# --------------------------------------------------------------------------- building
def build_store(
    path: Path, sc: Scenario, emb: Any, templates: list[Any], seed: int, log: bl.Progress
) -> dict[str, Any]:
    from langchain_stepback_profile import ProfileMemory

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    fill = profile = 0.0
    # flat at every size: this benchmark compares it with a bare IndexFlatIP (the store
    # remembers the kind when it is reopened); flat vs HNSW is bench/ann_index.py
    with ProfileMemory(path, embeddings=emb, index="flat") as memory:
        dim = emb.dimension
        step = max(1, sc.users // 10)
        for u in range(sc.users):
            user = f"user-{u:05d}"
            t = time.perf_counter()
            items = bl.sample_user_items(templates, sc.items_per_user, rng, str(u))
            vectors = bl.random_unit_vectors(rng, sc.items_per_user, dim)
            bl.bulk_fill(memory, user, items, vectors)
            t1 = time.perf_counter()
            memory.set_profile(user, bl.profile_draft_for(items))
            profile += time.perf_counter() - t1
            fill += t1 - t
            if sc.users > 1 and (u + 1) % step == 0:
                log(f"  {sc.name}: built {u + 1}/{sc.users} users")
    total = time.perf_counter() - t0
    return {
        "build_s": round(total, 2),
        "fill_items_and_vectors_s": round(fill, 2),
        "set_profile_s": round(profile, 2),
        "items_per_s": round(sc.total / fill, 1) if fill else None,
        "sqlite_mb": round(bl.dir_size_mb(path) - bl.dir_size_mb(path / "indexes"), 1),
        "index_mb": round(bl.dir_size_mb(path / "indexes"), 1),
    }


# --------------------------------------------------------------------------- measuring
def bare_index_for(memory: Any, user: str) -> tuple[Any, np.ndarray]:
    """A bare ``IndexFlatIP`` with the user's vectors, and the ids of its rows."""
    import faiss

    idmap = memory._index.get(user)
    flat = faiss.downcast_index(idmap.index)
    vectors = flat.reconstruct_n(0, flat.ntotal)
    bare = faiss.IndexFlatIP(flat.d)
    bare.add(vectors)
    return bare, faiss.vector_to_array(idmap.id_map).astype(np.int64)


def faiss_compare(
    memory: Any, plan: Sequence[tuple[str, np.ndarray]], threads: int | None
) -> dict[str, Any]:
    """HistoryIndex.search vs bare IndexFlatIP.search on the same vectors, alternating order."""
    import faiss

    before = faiss.omp_get_max_threads()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        bares: dict[str, tuple[Any, np.ndarray]] = {}
        for user, _ in plan:
            if user not in bares:
                bares[user] = bare_index_for(memory, user)
        index = memory._index
        ours_t: list[float] = []
        bare_t: list[float] = []
        same = 0
        perf = time.perf_counter
        for i, (user, vector) in enumerate(plan):
            bare, ids = bares[user]
            q = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)

            ours: list[tuple[int, float]] = []
            rows = np.empty((1, 0), dtype=np.int64)
            for side in ("bare", "ours") if i % 2 else ("ours", "bare"):
                if side == "ours":
                    t = perf()
                    ours = index.search(user, vector, K)
                    ours_t.append(perf() - t)
                else:
                    t = perf()
                    _, rows = bare.search(q, K)
                    bare_t.append(perf() - t)
            same += [v for v, _ in ours] == [int(ids[r]) for r in rows[0] if r >= 0]
        del bares
    finally:
        faiss.omp_set_num_threads(before)
    o, b = bl.stats_ms(ours_t), bl.stats_ms(bare_t)
    ours_threads = getattr(index, "search_threads", "absent")
    if threads is not None:
        mode = f"both on {threads} OpenMP thread(s)"
    else:
        ours_mode = (
            f"search_threads={ours_threads}" if ours_threads != "absent" else f"{before} threads"
        )
        mode = f"as shipped: ours {ours_mode}, bare FAISS default {before} threads"
    return {
        "mode": mode,
        "omp_threads": threads or before,
        "ours_history_index": o,
        "bare_index_flat_ip": b,
        "ratio_p50": round(o["p50"] / b["p50"], 3),
        "ratio_p99": round(o["p99"] / b["p99"], 3),
        "ratio_mean": round(o["mean"] / b["mean"], 3),
        "same_top_k": f"{same}/{len(plan)}",
    }


def e2e_loop(
    retriever: Any, emb: Any, memory: Any, plan: Sequence[tuple[str, str]], keep_vectors: bool
) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Timed end-to-end invokes with the embedding and FAISS parts timed inside them."""
    parts: dict[str, list[float]] = {"total": [], "embedding": [], "faiss": [], "rest": []}
    vectors: list[np.ndarray] = []
    perf = time.perf_counter
    with (
        Timed(emb, "encode", keep_result=keep_vectors) as enc,
        Timed(memory._index, "search") as srch,
    ):
        for user, query in plan:
            t = perf()
            docs = retriever.invoke(query, user_ids=[user])
            total = perf() - t
            e, f = enc.take(), srch.take()
            parts["total"].append(total)
            parts["embedding"].append(e)
            parts["faiss"].append(f)
            parts["rest"].append(total - e - f)
            if len(docs) != 1 + K or docs[0].metadata["kind"] != "profile":
                raise RuntimeError(f"unexpected documents for {user}: {[d.metadata for d in docs]}")
            if keep_vectors:
                vectors.append(np.array(enc.last[0], dtype=np.float32))
    return parts, vectors


def summarize(parts: dict[str, list[float]]) -> dict[str, Any]:
    out = {name: bl.stats_ms(values) for name, values in parts.items()}
    no_embed = [t - e for t, e in zip(parts["total"], parts["embedding"], strict=True)]
    out["without_embedding"] = bl.stats_ms(no_embed)
    return out


def profile_loop(retriever: Any, plan: Sequence[tuple[str, str]], top: int = 25) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    for user, query in plan:
        retriever.invoke(query, user_ids=[user])
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    raw = stats.stats  # type: ignore[attr-defined]
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _) in raw.items():
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({func})" if line else func,
                "ncalls": ncalls,
                "tottime_ms_per_query": round(tottime * 1000 / len(plan), 3),
                "cumtime_ms_per_query": round(cumtime * 1000 / len(plan), 3),
            }
        )
    by_tot = sorted(rows, key=lambda r: -r["tottime_ms_per_query"])[:top]
    ours = [r for r in rows if r["function"].split(":")[0] in _OUR_FILES]
    by_cum = sorted(ours, key=lambda r: -r["cumtime_ms_per_query"])[:top]
    return {"queries": len(plan), "by_tottime": by_tot, "our_functions_by_cumtime": by_cum}


_OUR_FILES = {"memory.py", "index.py", "store.py", "retriever.py", "embeddings.py", "profile.py"}


def run_scenario(
    sc: Scenario,
    workdir: Path,
    emb: Any,
    templates: list[Any],
    queries: list[str],
    args: argparse.Namespace,
    log: bl.Progress,
    extra_variants: bool,
    embedders: dict[str, Any],
) -> dict[str, Any]:
    from langchain_stepback_profile import ProfileMemory, StepBackProfileRetriever

    path = workdir / sc.name.replace("/", "_").replace(" ", "_")
    log(f"{sc.name}: building {sc.total:,} items over {sc.users} user(s)")
    rss0 = bl.rss_mb()
    build = build_store(path, sc, emb, templates, args.seed, log)
    log(
        f"{sc.name}: built in {build['build_s']} s ({build['sqlite_mb']} MB SQLite, "
        f"{build['index_mb']} MB index)"
    )
    gc.collect()
    result: dict[str, Any] = {
        "users": sc.users,
        "items_per_user": sc.items_per_user,
        "total_items": sc.total,
        "build": build,
        "loadavg_before": list(os.getloadavg()),
    }
    memory = ProfileMemory(path, embeddings=emb)
    try:
        retriever = StepBackProfileRetriever(memory=memory, k=K)
        users = [f"user-{u:05d}" for u in range(sc.users)]
        # First touch of every user in a fresh process: index file load + reconciliation
        # against the store + profile read (what the first query of a user pays on top).
        # A one-user store is touched 5 times (the memory's caches emptied in between).
        cold: list[float] = []
        for user in users if sc.users > 1 else users * 5:
            memory._checked.discard(user)
            memory._profiles.pop(user, None)
            memory._index._indexes.pop(user, None)
            t = time.perf_counter()
            memory._user_index(user)
            memory.get_profile(user)
            cold.append(time.perf_counter() - t)
        result["first_touch_per_user"] = bl.stats_ms(cold)
        log(
            f"{sc.name}: first touch of {len(users)} user(s): "
            f"p50 {result['first_touch_per_user']['p50']:.1f} ms"
        )

        rng = np.random.default_rng(args.seed + 1)
        order = rng.permutation(len(queries))
        warm = [queries[i] for i in order[: args.warmup]]
        timed = [queries[i] for i in order[args.warmup : args.warmup + args.queries]]
        pick = (
            (lambda: users[0]) if sc.users == 1 else (lambda: users[int(rng.integers(len(users)))])
        )
        for q in warm:
            retriever.invoke(q, user_ids=[pick()])
        plan = [(pick(), q) for q in timed]
        log(f"{sc.name}: {len(plan)} timed end-to-end queries")
        parts, vectors = e2e_loop(retriever, emb, memory, plan, keep_vectors=True)
        result["e2e"] = summarize(parts)
        result["floor"] = floor_of(args.floors, emb, [q for _, q in plan], sc.items_per_user)
        s = result["e2e"]
        log(
            f"{sc.name}: e2e p50 {s['total']['p50']:.2f} / p99 {s['total']['p99']:.2f} ms "
            f"(embedding p50 {s['embedding']['p50']:.2f}, faiss {s['faiss']['p50']:.3f}, "
            f"rest {s['rest']['p50']:.3f})"
        )
        if sc.users > 1:
            # The same queries, all to one user of this big store: separates the store's size
            # from the cost of switching users (cold CPU caches / SQLite pages per query).
            hot = [(users[0], q) for _, q in plan]
            for _, q in hot[: args.warmup]:
                retriever.invoke(q, user_ids=[users[0]])
            hot_parts, _ = e2e_loop(retriever, emb, memory, hot, keep_vectors=False)
            result["e2e_one_user"] = summarize(hot_parts)
            h = result["e2e_one_user"]
            log(
                f"{sc.name}: same queries to one user: e2e p50 {h['total']['p50']:.2f} / p99 "
                f"{h['total']['p99']:.2f} ms, without embedding p50 "
                f"{h['without_embedding']['p50']:.3f}"
            )
        vplan = [(user, vec) for (user, _), vec in zip(plan, vectors, strict=True)]
        result["faiss_vs_bare"] = faiss_compare(memory, vplan, None)
        result["faiss_vs_bare_1_thread"] = faiss_compare(memory, vplan, 1)
        fv = result["faiss_vs_bare"]
        log(
            f"{sc.name}: faiss ours p50 {fv['ours_history_index']['p50']:.3f} ms vs bare "
            f"{fv['bare_index_flat_ip']['p50']:.3f} ms (ratio p50 {fv['ratio_p50']}, "
            f"p99 {fv['ratio_p99']}); "
            f"1 thread: {result['faiss_vs_bare_1_thread']['ours_history_index']['p50']:.3f} ms"
        )
        if extra_variants:
            result["variant_threads"] = threads_variant(
                retriever, emb, memory, plan[: args.variant_queries], log, sc
            )
            if embedders:
                result["variant_precision"] = precision_variant(
                    retriever, memory, embedders, plan[: args.precision_queries], log, sc
                )
                result["variant_precision"]["floor"] = floor_of(
                    args.floors,
                    emb,
                    [q for _, q in plan[: args.precision_queries]],
                    sc.items_per_user,
                )
            if not args.no_cprofile:
                n = min(len(plan), args.cprofile_queries)
                log(f"{sc.name}: cProfile over {n} end-to-end queries")
                result["cprofile"] = profile_loop(retriever, plan[:n])
        result["loadavg_after"] = list(os.getloadavg())
        result["rss_mb_after"] = round(bl.rss_mb(), 1)
        result["rss_mb_delta"] = round(bl.rss_mb() - rss0, 1)
    finally:
        memory.close()
        del memory
        gc.collect()
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    return result


def measure_floors(emb: Any, log: bl.Progress) -> dict[str, Any]:
    """What the hardware allows, measured in this run: the sgemm peak of the encoder's largest
    GEMM shape on the encoder's threads (and on every core), and the memory bandwidth."""
    import torch

    cfg = bl.minilm_config()
    threads = torch.get_num_threads()
    shape = (160, cfg["hidden"], cfg["intermediate"])  # a typical abstract's tokens
    log(f"floors: sgemm peak on {threads} and {os.cpu_count()} thread(s), memory bandwidth")
    peaks = {t: bl.sgemm_peak_gflops(t, *shape) for t in sorted({threads, os.cpu_count() or 1})}
    return {
        "model": cfg,
        "encoder_threads": threads,
        "sgemm": peaks[threads],
        "sgemm_all_cores": peaks[max(peaks)],
        "memory": bl.memory_bandwidth(repeats=3),
    }


def floor_of(floors: dict[str, Any], emb: Any, texts: Sequence[str], items: int) -> dict[str, Any]:
    """Per-query floors of these queries: encoder FLOPs at each query's token count / the
    sgemm peak, and the flat scan of ``items`` float32 vectors / the read bandwidth."""
    cfg = floors["model"]
    lengths = bl.token_lengths(emb.model, texts)
    peak = floors["sgemm"]["gflop_s"]
    enc = [bl.encoder_floor_ms(n, cfg, peak) / 1000 for n in lengths]
    enc_all = [
        bl.encoder_floor_ms(n, cfg, floors["sgemm_all_cores"]["gflop_s"]) / 1000 for n in lengths
    ]
    scan_bytes = items * emb.dimension * 4
    faiss_s = scan_bytes / (floors["memory"]["read_gb_s"] * 1e9)
    return {
        "tokens_p50": float(np.percentile(lengths, 50)),
        "tokens_p99": float(np.percentile(lengths, 99)),
        "encoder_gflop_p50": round(bl.encoder_flops(int(np.median(lengths)), cfg) / 1e9, 3),
        "encoder_ms": bl.stats_ms(enc),
        "encoder_all_cores_ms": bl.stats_ms(enc_all),
        "faiss_bytes": scan_bytes,
        "faiss_ms": round(faiss_s * 1000, 3),
        "e2e_ms": bl.stats_ms([e + faiss_s for e in enc]),
    }


def _vs(measured: dict[str, Any], floor: dict[str, Any]) -> str:
    return f"{measured['p50'] / floor['p50']:.2f} / {measured['p99'] / floor['p99']:.2f}"


def precision_variant(
    retriever: Any,
    memory: Any,
    embedders: dict[str, Any],
    plan: Sequence[tuple[str, str]],
    log: bl.Progress,
    sc: Scenario,
) -> dict[str, Any]:
    """What-if: the query encoder's precision, interleaved query by query (rotating order).

    The memory's embedder is swapped for each call (a benchmark-only shortcut: the store's
    embedding-id check would refuse an int8 embedder on open).
    """
    names = list(embedders)
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    shipped = memory.embeddings
    try:
        for i, item in enumerate(plan):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                memory.embeddings = embedders[name]
                parts, _ = e2e_loop(retriever, embedders[name], memory, [item], keep_vectors=False)
                for key, values in parts.items():
                    runs[name].setdefault(key, []).extend(values)
    finally:
        memory.embeddings = shipped
    out: dict[str, Any] = {
        "queries": len(plan),
        "variants": {name: summarize(parts) for name, parts in runs.items()},
    }
    log(
        f"{sc.name}: precision e2e p50/p99 ms: "
        + "; ".join(
            f"{n} {s['total']['p50']:.1f}/{s['total']['p99']:.1f} "
            f"(embedding {s['embedding']['p50']:.1f}/{s['embedding']['p99']:.1f})"
            for n, s in out["variants"].items()
        )
    )
    return out


def set_search_threads(memory: Any, threads: int | None) -> None:
    """FAISS threads of our searches: ``None`` = every core (FAISS's default), ``n`` = n threads.

    Uses ``HistoryIndex.search_threads`` where the library has it, and the calling thread's
    OpenMP setting otherwise (older HistoryIndex without that knob).
    """
    import faiss

    if hasattr(memory._index, "search_threads"):
        memory._index.search_threads = threads
    faiss.omp_set_num_threads(threads or os.cpu_count() or 1)


def threads_variant(
    retriever: Any,
    emb: Any,
    memory: Any,
    plan: Sequence[tuple[str, str]],
    log: bl.Progress,
    sc: Scenario,
) -> dict[str, Any]:
    """What-if: thread counts of FAISS and torch, interleaved query by query (rotating order).

    ``faiss_all_threads``: FAISS searches on every core; ``faiss_1_thread``: on one OpenMP
    thread; ``faiss_and_torch_1_thread``: the query embedding also runs on one torch thread.
    ``library_default`` says which mode the library ships.
    """
    import faiss
    import torch

    shipped = getattr(memory._index, "search_threads", "absent")
    f_default, t_default = faiss.omp_get_max_threads(), torch.get_num_threads()
    modes: dict[str, tuple[int | None, int]] = {
        "faiss_all_threads": (None, t_default),
        "faiss_1_thread": (1, t_default),
        "faiss_and_torch_1_thread": (1, 1),
    }
    names = list(modes)
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    try:
        for i, item in enumerate(plan):
            for name in names[i % 3 :] + names[: i % 3]:
                f_threads, t_threads = modes[name]
                set_search_threads(memory, f_threads)
                torch.set_num_threads(t_threads)
                parts, _ = e2e_loop(retriever, emb, memory, [item], keep_vectors=False)
                for key, values in parts.items():
                    runs[name].setdefault(key, []).extend(values)
    finally:
        if shipped != "absent":
            memory._index.search_threads = shipped
        faiss.omp_set_num_threads(f_default)
        torch.set_num_threads(t_default)
    if shipped == "absent":
        library_default = "faiss_all_threads"
    else:
        library_default = "faiss_all_threads" if shipped is None else f"faiss_{shipped}_thread"
    out: dict[str, Any] = {
        "library_default": library_default,
        "queries": len(plan),
        "threads": {n: {"faiss": m[0], "torch": m[1]} for n, m in modes.items()},
    }
    out["modes"] = {name: summarize(parts) for name, parts in runs.items()}
    log(
        f"{sc.name}: interleaved e2e p50/p99 ms: "
        + "; ".join(
            f"{n} {s['total']['p50']:.1f}/{s['total']['p99']:.1f} "
            f"(faiss {s['faiss']['p50']:.2f}/{s['faiss']['p99']:.2f})"
            for n, s in out["modes"].items()
        )
    )
    return out


# --------------------------------------------------------------------------- targets & report
def evaluate(results: dict[str, Any], scenarios: list[Scenario]) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    ratios = {
        name: max(r["faiss_vs_bare"]["ratio_p50"], r["faiss_vs_bare_1_thread"]["ratio_p50"])
        for name, r in results.items()
    }
    worst = max(ratios.values())
    targets["faiss_within_1_5x_of_bare"] = {
        "target": (
            f"HistoryIndex.search p50 <= {TARGET_FAISS_RATIO}x bare IndexFlatIP p50 "
            "(same vectors, k, queries; the worse of the as-shipped and equal-threads "
            "comparisons)"
        ),
        "ratio_p50_by_size": ratios,
        "ratio_p99_by_size": {
            n: max(r["faiss_vs_bare"]["ratio_p99"], r["faiss_vs_bare_1_thread"]["ratio_p99"])
            for n, r in results.items()
        },
        "met": worst <= TARGET_FAISS_RATIO,
    }
    big = next((s for s in scenarios if s.users == 1 and s.items_per_user == 100_000), None)
    if big is not None and big.name in results:
        e = results[big.name]["e2e"]
        targets["p99_at_100k_le_25ms"] = {
            "target": f"end-to-end p99 <= {TARGET_P99_MS_100K} ms at 100k items for one user",
            "p99_ms": e["total"]["p99"],
            "p99_without_embedding_ms": e["without_embedding"]["p99"],
            "p99_embedding_alone_ms": e["embedding"]["p99"],
            "met": e["total"]["p99"] <= TARGET_P99_MS_100K,
        }
        vp = results[big.name].get("variant_precision")
        if vp:
            targets["p99_at_100k_le_25ms"]["p99_ms_by_precision_interleaved"] = {
                n: s["total"]["p99"] for n, s in vp["variants"].items()
            }
    small = next((s for s in scenarios if s.users == 1), None)
    multi = next((s for s in scenarios if s.users > 1), None)
    if small and multi and small.items_per_user == multi.items_per_user:
        a, b = results[small.name]["e2e"], results[multi.name]["e2e"]
        r_total = round(b["total"]["p50"] / a["total"]["p50"], 3)
        r_noemb = round(b["without_embedding"]["p50"] / a["without_embedding"]["p50"], 3)
        r_noemb99 = round(b["without_embedding"]["p99"] / a["without_embedding"]["p99"], 3)
        one = results[multi.name].get("e2e_one_user")
        r_one = (
            round(one["without_embedding"]["p50"] / a["without_embedding"]["p50"], 3)
            if one
            else None
        )
        targets["cost_follows_own_history_not_store_total"] = {
            "target": (
                f"{multi.items_per_user}-item users: p50 in the {multi.total:,}-item store within "
                f"{TARGET_STORE_SIZE_RATIO}x of the {small.total:,}-item store (end to end, and "
                "without the query embedding, which does not depend on the store)"
            ),
            "compared": [small.name, multi.name],
            "ratio_p50_end_to_end": r_total,
            "ratio_p50_without_embedding": r_noemb,
            "ratio_p99_without_embedding": r_noemb99,
            "ratio_p50_without_embedding_all_queries_to_one_user": r_one,
            "met": r_total <= TARGET_STORE_SIZE_RATIO and r_noemb <= TARGET_STORE_SIZE_RATIO,
        }
    return targets


def markdown(payload: dict[str, Any]) -> str:
    res, tg = payload["results"], payload["targets"]
    rows = []
    for name, r in res.items():
        e = r["e2e"]
        rows.append(
            [
                name,
                r["users"],
                f"{r['items_per_user']:,}",
                f"{e['total']['p50']:.1f} / {e['total']['p99']:.1f}",
                f"{e['embedding']['p50']:.1f} / {e['embedding']['p99']:.1f}",
                f"{e['faiss']['p50']:.3f} / {e['faiss']['p99']:.3f}",
                f"{e['rest']['p50']:.2f} / {e['rest']['p99']:.2f}",
                f"{e['without_embedding']['p50']:.2f} / {e['without_embedding']['p99']:.2f}",
                f"{r['first_touch_per_user']['p50']:.1f} / {r['first_touch_per_user']['max']:.1f}",
                f"{r['floor']['e2e_ms']['p50']:.1f} / {r['floor']['e2e_ms']['p99']:.1f}",
                _vs(e["total"], r["floor"]["e2e_ms"]),
            ]
        )
        one = r.get("e2e_one_user")
        if one:
            rows.append(
                [
                    f"{name}, every query to one user",
                    f"1 of {r['users']}",
                    f"{r['items_per_user']:,}",
                    f"{one['total']['p50']:.1f} / {one['total']['p99']:.1f}",
                    f"{one['embedding']['p50']:.1f} / {one['embedding']['p99']:.1f}",
                    f"{one['faiss']['p50']:.3f} / {one['faiss']['p99']:.3f}",
                    f"{one['rest']['p50']:.2f} / {one['rest']['p99']:.2f}",
                    f"{one['without_embedding']['p50']:.2f} / "
                    f"{one['without_embedding']['p99']:.2f}",
                    "",
                    f"{r['floor']['e2e_ms']['p50']:.1f} / {r['floor']['e2e_ms']['p99']:.1f}",
                    _vs(one["total"], r["floor"]["e2e_ms"]),
                ]
            )
    t1 = bl.md_table(
        [
            "store",
            "users",
            "items/user",
            "end to end p50 / p99 ms",
            "query embedding p50 / p99",
            "FAISS (in e2e) p50 / p99",
            "rest: SQLite+profile+Docs p50 / p99",
            "e2e without embedding p50 / p99",
            "first touch of a user p50 / max ms",
            "floor ms p50 / p99 (encoder + FAISS)",
            "measured / floor p50 / p99",
        ],
        rows,
    )
    rows2 = []
    for name, r in res.items():
        for key in ("faiss_vs_bare", "faiss_vs_bare_1_thread"):
            f = r[key]
            rows2.append(
                [
                    name,
                    f["mode"],
                    f"{f['ours_history_index']['p50']:.3f} / {f['ours_history_index']['p99']:.3f}",
                    f"{f['bare_index_flat_ip']['p50']:.3f} / {f['bare_index_flat_ip']['p99']:.3f}",
                    f"{f['ratio_p50']:.2f}",
                    f"{f['ratio_p99']:.2f}",
                    f["same_top_k"],
                ]
            )
    t2 = bl.md_table(
        [
            "store",
            "threads",
            "HistoryIndex.search p50 / p99 ms",
            "bare IndexFlatIP p50 / p99 ms",
            "ratio p50",
            "ratio p99",
            "same top-k",
        ],
        rows2,
    )
    rows3 = []
    for name, r in res.items():
        b = r["build"]
        rows3.append(
            [
                name,
                f"{r['total_items']:,}",
                b["build_s"],
                b["fill_items_and_vectors_s"],
                b["set_profile_s"],
                b["sqlite_mb"],
                b["index_mb"],
                r["rss_mb_after"],
                r["rss_mb_delta"],
            ]
        )
    t3 = bl.md_table(
        [
            "store",
            "items",
            "build s",
            "items+vectors s",
            "set_profile s",
            "SQLite MB",
            "index MB",
            "RSS after MB",
            "RSS delta MB",
        ],
        rows3,
    )
    lines = [
        "# Retrieval latency",
        "",
        "`StepBackProfileRetriever(memory=..., k=4).invoke(query, user_ids=[user])` end to end: "
        "real MiniLM query embedding + FAISS + SQLite item fetch + profile fetch + Documents. "
        "Queries are real "
        "LaMP-5-like abstracts; stored items are real titles/abstracts with random unit vectors "
        f"(bulk-filled, see `bench/_benchlib.py`); every user has a stored profile. "
        f"{payload['config']['queries']} timed queries per store after "
        f"{payload['config']['warmup']} warm-up queries; for the multi-user store each query "
        "goes to a random user. The embedding and FAISS "
        "columns are timed inside the same end-to-end calls; *rest* = total - embedding - FAISS.",
        "",
        bl.machine_md(payload["machine"]),
        "",
        "## End to end (ms)",
        "",
        t1,
        "",
        "## FAISS inside our stack vs bare faiss-cpu (same vectors, same k, same query vectors)",
        "",
        t2,
        "",
        "## Build, size and memory",
        "",
        t3,
        "",
        "## Targets",
        "",
    ]
    for key, t in tg.items():
        verdict = "met" if t["met"] else "NOT met"
        detail = "; ".join(
            f"{k} = {v}" for k, v in t.items() if k not in ("target", "met") and v is not None
        )
        lines.append(f"- **{key}** — {t['target']}: **{verdict}**. {detail}")
    lines += floor_markdown(payload)
    lines += precision_markdown(payload)
    for name, r in res.items():
        v = r.get("variant_threads")
        if v:
            lines += [
                "",
                f"## What-if at {name}: OpenMP threads ({v['queries']} queries, the modes "
                "interleaved query by query)",
                "",
                f"The library ships `{v['library_default']}`.",
                "",
            ]
            rows4 = [
                [
                    mode,
                    f"{v['threads'][mode]['faiss'] or 'all'} / {v['threads'][mode]['torch']}",
                    f"{s['total']['p50']:.1f} / {s['total']['p99']:.1f}",
                    f"{s['embedding']['p50']:.1f} / {s['embedding']['p99']:.1f}",
                    f"{s['faiss']['p50']:.2f} / {s['faiss']['p99']:.2f}",
                    f"{s['rest']['p50']:.2f} / {s['rest']['p99']:.2f}",
                    f"{s['without_embedding']['p50']:.2f} / {s['without_embedding']['p99']:.2f}",
                ]
                for mode, s in v["modes"].items()
            ]
            lines.append(
                bl.md_table(
                    [
                        "mode",
                        "threads faiss / torch",
                        "e2e p50 / p99 ms",
                        "embedding p50 / p99",
                        "FAISS p50 / p99",
                        "rest p50 / p99",
                        "without embedding p50 / p99",
                    ],
                    rows4,
                )
            )
        cp = r.get("cprofile")
        if cp:
            lines += ["", f"## cProfile at {name} ({cp['queries']} queries; ms per query)", ""]
            lines.append(
                bl.md_table(
                    ["function (by own time)", "calls", "own ms/query", "cumulative ms/query"],
                    [
                        [
                            x["function"],
                            x["ncalls"],
                            x["tottime_ms_per_query"],
                            x["cumtime_ms_per_query"],
                        ]
                        for x in cp["by_tottime"][:12]
                    ],
                )
            )
            lines += ["", "Our functions by cumulative time:", ""]
            lines.append(
                bl.md_table(
                    ["function", "calls", "own ms/query", "cumulative ms/query"],
                    [
                        [
                            x["function"],
                            x["ncalls"],
                            x["tottime_ms_per_query"],
                            x["cumtime_ms_per_query"],
                        ]
                        for x in cp["our_functions_by_cumtime"][:12]
                    ],
                )
            )
    lines += [
        "",
        "## Reproduce",
        "",
        f"    {payload['command']}",
        "",
        f"Library measured: `{payload['library_path']}`. Total run time {payload['wall_s']} s. "
        "The machine is shared: timings move with the load average recorded in the JSON "
        "(`loadavg_before`/`loadavg_after` per store); ratios come from calls made side by side.",
        "",
    ]
    return "\n".join(lines)


def floor_markdown(payload: dict[str, Any]) -> list[str]:
    """The physical floors: what the encoder's arithmetic and the FAISS scan cost at best."""
    fl = payload.get("floors")
    if not fl:
        return []
    cfg, mem = fl["model"], fl["memory"]
    rows = []
    for name, r in payload["results"].items():
        f, e = r["floor"], r["e2e"]
        rows.append(
            [
                name,
                f"{f['tokens_p50']:.0f} / {f['tokens_p99']:.0f}",
                f"{f['encoder_gflop_p50']:.2f}",
                f"{f['encoder_ms']['p50']:.1f} / {f['encoder_ms']['p99']:.1f}",
                f"{e['embedding']['p50']:.1f} / {e['embedding']['p99']:.1f}",
                _vs(e["embedding"], f["encoder_ms"]),
                f"{f['encoder_all_cores_ms']['p50']:.1f} / {f['encoder_all_cores_ms']['p99']:.1f}",
                f"{f['faiss_bytes'] / 1e6:.1f}",
                f"{f['faiss_ms']:.2f}",
                f"{e['faiss']['p50']:.2f} / {e['faiss']['p99']:.2f}",
                f"{e['faiss']['p50'] / f['faiss_ms']:.2f}",
            ]
        )
    lines = [
        "",
        "## Physical floors",
        "",
        f"Encoder: FLOPs of one MiniLM encode at each query's token count ({cfg['layers']} "
        f"layers, hidden {cfg['hidden']}, FFN {cfg['intermediate']}, {cfg['heads']} heads; "
        "per layer 8·L·H² for the projections, 4·L²·H for the attention scores and their "
        "product with V, 4·L·H·I for the FFN; softmax, GELU and layer norms left out) divided "
        "by the peak of a torch fp32 matmul of the encoder's largest GEMM shape "
        f"({' x '.join(map(str, fl['sgemm']['shape']))}), measured in this run: "
        f"**{fl['sgemm']['gflop_s']} GFLOP/s on {fl['sgemm']['threads']} thread(s)** (the "
        f"encoder's), {fl['sgemm_all_cores']['gflop_s']} GFLOP/s on "
        f"{fl['sgemm_all_cores']['threads']}. FAISS: the flat scan reads every float32 vector "
        f"of the user once, at the read bandwidth measured in this run, **{mem['read_gb_s']} "
        f"GB/s** on one thread (`memory_bandwidth()`, last-level cache {mem['l3_cache_mib']} "
        "MiB). The floor is a lower bound on a quiet machine; a measured / floor below 1 means "
        "the probe underestimates the hardware (the scan runs faster than the probe's reads).",
        "",
        bl.md_table(
            [
                "store",
                "query tokens p50 / p99",
                "encoder GFLOP (p50 query)",
                "encoder floor ms p50 / p99",
                "embedding measured p50 / p99",
                "embedding measured / floor",
                "encoder floor on all cores p50 / p99",
                "FAISS bytes scanned MB",
                "FAISS floor ms",
                "FAISS measured p50 / p99",
                "FAISS measured / floor p50",
            ],
            rows,
        ),
    ]
    big = payload["results"].get("100k")
    if big:
        f = big["floor"]
        enc_all = f["encoder_all_cores_ms"]
        reachable = enc_all["p99"] + f["faiss_ms"] <= TARGET_P99_MS_100K
        lines += [
            "",
            f"**Is p99 <= {TARGET_P99_MS_100K:.0f} ms end to end at 100k reachable here?** "
            + (
                "Not in fp32 on this CPU. "
                if not reachable
                else "Only with every core on the encoder and nothing else running. "
            )
            + f"The p99 query has {f['tokens_p99']:.0f} tokens; its fp32 FLOPs alone take "
            f"{f['encoder_ms']['p99']:.1f} ms at the sgemm peak of the encoder's "
            f"{fl['sgemm']['threads']} thread(s) and {enc_all['p99']:.1f} ms with all "
            f"{fl['sgemm_all_cores']['threads']} cores at peak (the median query, "
            f"{f['tokens_p50']:.0f} tokens: {f['encoder_ms']['p50']:.1f} and "
            f"{enc_all['p50']:.1f} ms), before FAISS's {f['faiss_ms']:.1f} ms scan floor and "
            "the rest. The floor is the arithmetic itself: another fp32 backend (ONNX Runtime's "
            "MLAS instead of torch's sgemm) only moves the part above it, and only fewer FLOPs "
            "(shorter queries, a smaller encoder) or cheaper ones (int8 or bf16 units, which "
            "must hold the quality bar) move the floor.",
        ]
    return lines


def precision_markdown(payload: dict[str, Any]) -> list[str]:
    """The precision section: quality against fp32 beside the interleaved timings."""
    quality = payload.get("precision_quality")
    auto = payload["auto_precision"]
    choice = auto.get("choice") or {}
    lines = [
        "",
        "## Query encoder precision",
        "",
        f"`MiniLMEmbeddings()` (precision='auto') runs **{auto['variant']}** here"
        + (f": {choice['reason']}." if choice.get("reason") else "."),
    ]
    if not quality:
        return lines
    for name, r in payload["results"].items():
        v = r.get("variant_precision")
        if not v:
            continue
        ref = v["variants"]["fp32"]
        fl = v["floor"]
        rows = []
        for variant, st in v["variants"].items():
            q = quality["variants"][variant]
            rows.append(
                [
                    variant,
                    "yes" if q["holds_bar"] else "**no**",
                    f"{q['top10_overlap_mean']:.4f} / {q['top10_overlap_min']:.2f}",
                    f"{q['cosine_min']:.5f} / {q['cosine_mean']:.5f}",
                    f"{st['total']['p50']:.1f} / {st['total']['p99']:.1f}",
                    f"{st['embedding']['p50']:.1f} / {st['embedding']['p99']:.1f}",
                    f"{st['without_embedding']['p50']:.2f} / {st['without_embedding']['p99']:.2f}",
                    f"{st['total']['p50'] / ref['total']['p50']:.2f} / "
                    f"{st['total']['p99'] / ref['total']['p99']:.2f}",
                    f"{fl['encoder_ms']['p50']:.1f} / {fl['encoder_ms']['p99']:.1f}",
                    _vs(st["embedding"], fl["encoder_ms"]),
                ]
            )
        lines += [
            "",
            f"At {name}: {v['queries']} end-to-end queries per variant, the variants interleaved "
            "query by query (rotating order) on the same store. Quality against fp32 on "
            f"{quality['queries']} real LaMP-5-like abstracts as queries and "
            f"{quality['documents']:,} real papers (title + abstract) as documents: top-10 "
            "overlap = share of fp32's top-10 papers the variant finds (mean / worst query); "
            "cosine = the same text's vectors, queries and papers (worst / mean). The bar: "
            "overlap >= 0.98 and worst cosine >= 0.995.",
            "",
            bl.md_table(
                [
                    "precision",
                    "within the bar",
                    "top-10 overlap mean / min",
                    "cosine min / mean",
                    "e2e p50 / p99 ms",
                    "embedding p50 / p99",
                    "without embedding p50 / p99",
                    "e2e vs fp32 p50 / p99",
                    "fp32 encoder floor ms p50 / p99",
                    "embedding measured / floor p50 / p99",
                ],
                rows,
            ),
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", type=Path, default=bl.ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--queries", type=int, default=None, help="timed queries per store (default 300; quick 20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up queries per store (default 20; quick 3)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where stores are built (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-cprofile", action="store_true", help="skip the cProfile pass")
    parser.add_argument("--cprofile-queries", type=int, default=None, help="default 60 (quick 10)")
    parser.add_argument(
        "--variant-queries",
        type=int,
        default=None,
        help="queries of the thread what-if at the largest one-user store (default 150; quick 10)",
    )
    parser.add_argument(
        "--precisions",
        default=",".join(bl.PRECISION_VARIANTS),
        help="encoder precisions compared at the largest one-user store ('' = none)",
    )
    parser.add_argument(
        "--precision-queries", type=int, default=None, help="default 150 (quick 10)"
    )
    parser.add_argument(
        "--quality-queries",
        type=int,
        default=None,
        help="real queries of the precision quality check (default 300; quick 10)",
    )
    parser.add_argument(
        "--quality-docs",
        type=int,
        default=None,
        help="papers of the precision quality check (default all 1,305; quick 40)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated store names to run (e.g. 100k)"
    )
    args = parser.parse_args(argv)
    args.queries = args.queries or (20 if args.quick else 300)
    args.warmup = args.warmup if args.warmup is not None else (3 if args.quick else 20)
    args.cprofile_queries = args.cprofile_queries or (10 if args.quick else 60)
    args.variant_queries = args.variant_queries or (10 if args.quick else 150)
    args.precision_queries = args.precision_queries or (10 if args.quick else 150)
    args.quality_queries = args.quality_queries or (10 if args.quick else 300)
    args.quality_docs = args.quality_docs or (40 if args.quick else None)
    precisions = [p for p in args.precisions.split(",") if p]
    scenarios = QUICK if args.quick else FULL
    if args.only:
        wanted = args.only.split(",")
        scenarios = [s for s in scenarios if s.name in wanted]
        if not scenarios:
            raise SystemExit(f"--only {args.only}: no such store")
    log = bl.Progress()
    t_start = time.perf_counter()

    from langchain_stepback_profile import MiniLMEmbeddings

    questions = bl.load_lamp5()
    templates = bl.template_items(bl.lamp5_papers(questions))
    queries = bl.lamp5_queries(questions)
    if args.warmup + args.queries > len(queries):
        raise SystemExit(f"at most {len(queries)} distinct queries: lower --queries/--warmup")
    log("loading MiniLM (precision='auto', the default)")
    emb = MiniLMEmbeddings()
    emb.encode(["warm up"])
    log(f"precision='auto' runs {emb.variant}")
    machine = bl.machine_info()
    args.floors = measure_floors(emb, log)
    embedders = bl.precision_embedders(precisions, log) if precisions else {}
    quality = (
        bl.precision_quality(
            embedders,
            queries[: args.quality_queries],
            bl.paper_texts(bl.lamp5_papers(questions))[: args.quality_docs],
            log,
        )
        if embedders
        else None
    )
    workdir = Path(tempfile.mkdtemp(prefix="stepback-bench-", dir=args.workdir))
    results: dict[str, Any] = {}
    largest_single = max(
        (s for s in scenarios if s.users == 1), key=lambda s: s.items_per_user, default=None
    )
    try:
        for sc in scenarios:
            results[sc.name] = run_scenario(
                sc,
                workdir,
                emb,
                templates,
                queries,
                args,
                log,
                extra_variants=sc is largest_single,
                embedders=embedders,
            )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    payload = {
        **bl.report_head(NAME, argv, machine),
        "config": {
            "quick": args.quick,
            "k": K,
            "queries": args.queries,
            "warmup": args.warmup,
            "seed": args.seed,
            "scenarios": [s.__dict__ for s in scenarios],
            "stored_vectors": (
                "random unit vectors (bulk-filled); items are real LaMP-5-like title+abstract rows"
            ),
            "queries_from": str(bl.LAMP5),
            "precisions": precisions,
        },
        "machine": machine,
        "auto_precision": {
            "variant": emb.variant,
            "choice": emb.precision_choice.to_json() if emb.precision_choice else None,
        },
        "precision_quality": quality,
        "floors": args.floors,
        "results": results,
        "targets": evaluate(results, scenarios),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    bl.write_json(args.out / f"{NAME}.json", payload)
    (args.out / f"{NAME}.md").write_text(markdown(payload))
    log(f"wrote {args.out / (NAME + '.json')} and .md in {payload['wall_s']} s")
    for key, t in payload["targets"].items():
        log(f"target {key}: {'met' if t['met'] else 'NOT met'}")
    return payload


if __name__ == "__main__":
    main()
