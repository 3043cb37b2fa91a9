"""Flat vs HNSW for one large history: search latency, recall@10 against flat, build, memory.

Both kinds are built through the library's ``HistoryIndex`` (``kind="flat"`` and
``kind="hnsw"``) on the same vectors, and every query is asked of every variant in turn
(flat, then HNSW at each efSearch), so the rows of one size are measured side by side under
the same machine load. Latency is ``HistoryIndex.search`` of one query, k=10, on one OpenMP
thread (the library's setting). Recall@10 is against the flat index's exact top-10.

Vectors (384-dim, unit length):
- real: all-MiniLM-L6-v2 embeddings (``--precision``, default int8: the package's dynamic
  int8 variant, chosen for speed on a shared 2-core machine) of real texts from
  ../shared/data: LaMP-7 tweets, LaMP-5-like titles and abstract sentences, PSW-like
  titles, abstract and introduction sentences (deduplicated);
- past the real ones, synthetic points on the real data's manifold: a real vector moved
  towards two of its 8 nearest real neighbours by random shares in [0, 0.5), plus a little
  isotropic noise (norm ~0.05), normalised. Random Gaussian vectors would be a worst case
  for HNSW that text embeddings are not;
- queries: real LaMP-5-like question abstracts and LaMP-7 question tweets, none in the base.

For the choice between HNSW and IVF, a bare faiss ``IndexIVFFlat`` of the same vectors
(4*sqrt(n) lists) is measured in the same loop at several nprobe values (on one OpenMP thread).

Also measured at each size: removing 10% of the items (HNSW keeps tombstones below its
rebuild share) and searching again, against flat with the same items removed.

Every search row also gets its physical floor: the bytes one query reads (flat: every live
vector; HNSW and IVF: from faiss's counters of distance computations, hops and lists) divided
by the single-thread memory read bandwidth measured in the same run
(``_benchlib.memory_bandwidth``, at the start and after each size; the best is used), as
``floor ms`` and ``p50 / floor``.

Usage:
    .venv/bin/python bench/ann_index.py                       # 10k..100k and 1M
    .venv/bin/python bench/ann_index.py --sizes 10000,100000  # smaller run
    .venv/bin/python bench/ann_index.py --quick               # smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchlib as bl
import numpy as np

NAME = "ann_index"
K = 10
TARGET_SIZE = 1_000_000
TARGET_P99_MS = 10.0
TARGET_RECALL = 0.95
EF_VALUES = (16, 32, 64, 128, 256, 512)
NPROBES = (8, 16, 32, 64)
REMOVED_SHARE = 0.10


# --------------------------------------------------------------------------- data
def _sentences(text: str, min_chars: int = 40) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+", text or "")
    return [p.strip() for p in parts if len(p.strip()) >= min_chars]


def real_texts(limit: int) -> tuple[list[str], list[str]]:
    """(base texts, query texts) from the shared data; queries are not in the base."""
    lamp5 = bl.load_lamp5()
    lamp7 = json.loads((bl.DATA / "LaMP_7" / "questions.json").read_text())
    papers = [
        json.loads(line)
        for line in (bl.DATA / "PSW_like" / "papers.jsonl").read_text().splitlines()
        if line.strip()
    ]
    q5 = bl.lamp5_queries(lamp5)
    q7 = [q["input"].split(":", 1)[-1].strip() for q in lamp7]
    queries = [q for pair in zip(q5, q7, strict=False) for q in pair if q]
    held = set(queries)
    base: dict[str, None] = {}

    def put(text: str) -> None:
        text = (text or "").strip()
        if len(text) >= 20 and text not in held:
            base.setdefault(text, None)

    for q in lamp7:
        for p in q["profile"]:
            put(p.get("text", ""))
    for p in bl.lamp5_papers(lamp5):
        put(p["title"])
        for s in _sentences(p["abstract"]):
            put(s)
    for p in papers:
        put(p.get("title", ""))
        for field in ("abstract", "introduction"):
            for s in _sentences(p.get(field) or ""):
                put(s)
    texts = list(base)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order[:limit]], queries


def embed(texts: list[str], precision: str, cache: Path, log: bl.Progress) -> np.ndarray:
    import hashlib

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{precision}-{len(texts)}-{key}.npy"
    if path.exists():
        return np.load(path)
    from langchain_stepback_profile.embeddings import MiniLMEmbeddings

    emb = MiniLMEmbeddings(batch_size=128, precision=precision)
    t0 = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    out = np.empty((len(texts), 384), dtype=np.float32)
    step = 2048
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        out[chunk] = emb.encode([texts[i] for i in chunk])
        log(f"embedded {min(start + step, len(order)):,}/{len(order):,} texts")
    log(f"embedding: {len(texts) / (time.perf_counter() - t0):.0f} texts/s")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def real_neighbours(real: np.ndarray, cache: Path, log: bl.Progress) -> np.ndarray:
    """The 8 nearest real neighbours of each real vector (approximate: an HNSW of them)."""
    import hashlib

    import faiss

    key = hashlib.sha256(real.tobytes()).hexdigest()[:16]
    path = cache / f"neighbours-{len(real)}-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    graph = faiss.IndexHNSWFlat(real.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    graph.add(real)
    params = faiss.SearchParametersHNSW()
    params.efSearch = 64
    _, found = graph.search(real, 9, params=params)
    out = np.empty((len(real), 8), dtype=np.int64)
    for i, row in enumerate(found):  # drop the vector itself
        others = row[row != i][:8]
        out[i] = others if len(others) == 8 else np.resize(others, 8)
    log(f"8 nearest real neighbours of {len(real):,} vectors: {time.perf_counter() - t0:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def synthetic(real: np.ndarray, neighbours: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` points on the real data's manifold (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        anchor = rng.integers(0, len(real), size=m)
        picks = neighbours[anchor[None, :], rng.integers(0, 8, size=(2, m))]  # (2, m)
        a = real[anchor]
        t = rng.uniform(0.0, 0.5, size=(2, m, 1)).astype(np.float32)
        v = a + t[0] * (real[picks[0]] - a) + t[1] * (real[picks[1]] - a)
        v += rng.normal(scale=0.05 / np.sqrt(real.shape[1]), size=v.shape).astype(np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


# --------------------------------------------------------------------------- measuring
def build(kind: str, folder: Path, vectors: np.ndarray, ef: int) -> tuple[Any, dict[str, Any]]:
    from langchain_stepback_profile.index import HistoryIndex

    gc.collect()
    rss0 = bl.rss_mb()
    index = HistoryIndex(folder, vectors.shape[1], kind=kind, ef_search=ef)
    t0 = time.perf_counter()
    index.add("u", np.arange(len(vectors)), vectors)
    built = time.perf_counter() - t0
    rss1 = bl.rss_mb()
    t0 = time.perf_counter()
    index.save("u")
    saved = time.perf_counter() - t0
    size = index.path("u").stat().st_size
    t0 = time.perf_counter()
    reopened = HistoryIndex(folder, vectors.shape[1], kind=kind, ef_search=ef)
    assert reopened.count("u") == len(vectors)
    loaded = time.perf_counter() - t0
    del reopened
    gc.collect()
    return index, {
        "build_s": round(built, 2),
        "save_s": round(saved, 2),
        "load_s": round(loaded, 2),
        "file_mb": round(size / 2**20, 1),
        "rss_delta_mb": round(rss1 - rss0, 1),
    }


def build_ivf(vectors: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """A bare faiss IVF-Flat (inner product) of the same vectors, for comparison: 4*sqrt(n)
    lists, trained on at most 64 points per list."""
    import faiss

    nlist = int(4 * np.sqrt(len(vectors)))
    gc.collect()
    rss0 = bl.rss_mb()
    t0 = time.perf_counter()
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    ivf = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(2).choice(len(vectors), min(len(vectors), 64 * nlist), False)
    ivf.train(vectors[np.sort(sample)])
    ivf.add(vectors)
    built = time.perf_counter() - t0
    size = len(faiss.serialize_index(ivf))
    return ivf, {
        "build_s": round(built, 2),
        "nlist": nlist,
        "file_mb": round(size / 2**20, 1),
        "rss_delta_mb": round(bl.rss_mb() - rss0, 1),
    }


def measure(
    flat: Any,
    hnsw: Any,
    queries: np.ndarray,
    ef_values: Sequence[int],
    warmup: int,
    ivf: Any = None,
    nprobes: Sequence[int] = (),
) -> dict[str, Any]:
    """Every query asked of flat, then of HNSW at each efSearch (then of the bare IVF at each
    nprobe), in turn."""
    import faiss

    perf = time.perf_counter
    variants = ["flat", *[f"hnsw ef={ef}" for ef in ef_values]]
    variants += [f"ivf nprobe={p} (bare faiss)" for p in nprobes] if ivf is not None else []
    ivf_params = []
    for p in nprobes:
        params = faiss.SearchParametersIVF()
        params.nprobe = p
        ivf_params.append((f"ivf nprobe={p} (bare faiss)", params))
    times: dict[str, list[float]] = {v: [] for v in variants}
    found: dict[str, list[list[int]]] = {v: [] for v in variants}
    # faiss's own counters, per query: (distances computed, HNSW hops or IVF lists probed)
    work: dict[str, list[tuple[int, int]]] = {v: [] for v in variants if v != "flat"}
    hnsw_stats, ivf_stats = faiss.cvar.hnsw_stats, faiss.cvar.indexIVF_stats
    for n, q in enumerate(queries):
        t = perf()
        hits = flat.search("u", q, K)
        dt = perf() - t
        if n >= warmup:
            times["flat"].append(dt)
            found["flat"].append([v for v, _ in hits])
        for ef in ef_values:
            hnsw.ef_search = ef
            hnsw_stats.reset()
            t = perf()
            hits = hnsw.search("u", q, K)
            dt = perf() - t
            if n >= warmup:
                times[f"hnsw ef={ef}"].append(dt)
                found[f"hnsw ef={ef}"].append([v for v, _ in hits])
                work[f"hnsw ef={ef}"].append((hnsw_stats.ndis, hnsw_stats.nhops))
        if ivf is None:
            continue
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # as HistoryIndex searches
        try:
            for name, params in ivf_params:
                ivf_stats.reset()
                t = perf()
                _, labels = ivf.search(q.reshape(1, -1), K, params=params)
                dt = perf() - t
                if n >= warmup:
                    times[name].append(dt)
                    found[name].append([int(v) for v in labels[0] if v >= 0])
                    work[name].append((ivf_stats.ndis, ivf_stats.nlist))
        finally:
            faiss.omp_set_num_threads(before)
    truth = found["flat"]
    out: dict[str, Any] = {}
    for v in variants:
        recall = np.mean(
            [len(set(f) & set(t)) / len(t) for f, t in zip(found[v], truth, strict=True)]
        )
        out[v] = {"search_ms": bl.stats_ms(times[v]), "recall_at_10": round(float(recall), 4)}
        if work.get(v):
            distances, steps = np.mean(work[v], axis=0)
            out[v]["distances_per_query"] = round(float(distances), 1)
            out[v]["hops_per_query" if v.startswith("hnsw") else "lists_per_query"] = round(
                float(steps), 1
            )
    return out


def run_size(
    n: int,
    real: np.ndarray,
    neighbours: np.ndarray,
    queries: np.ndarray,
    ef_values: Sequence[int],
    default_ef: int,
    warmup: int,
    tmp: Path,
    log: bl.Progress,
    with_ivf: bool,
) -> dict[str, Any]:
    n_real = min(n, len(real))
    vectors = np.concatenate([real[:n_real], synthetic(real, neighbours, n - n_real, seed=n)])
    log(f"{n:,}: {n_real:,} real + {n - n_real:,} synthetic vectors")
    result: dict[str, Any] = {"items": n, "real_vectors": n_real, "builds": {}}
    flat, result["builds"]["flat"] = build("flat", tmp / f"flat-{n}", vectors, default_ef)
    log(f"{n:,}: flat built {result['builds']['flat']}")
    hnsw, result["builds"]["hnsw"] = build("hnsw", tmp / f"hnsw-{n}", vectors, default_ef)
    log(f"{n:,}: hnsw built {result['builds']['hnsw']}")
    ivf = None
    if with_ivf:
        ivf, result["builds"]["ivf (bare faiss)"] = build_ivf(vectors)
        log(f"{n:,}: ivf built {result['builds']['ivf (bare faiss)']}")
    result["search"] = measure(flat, hnsw, queries, ef_values, warmup, ivf, NPROBES)
    del ivf
    for v, r in result["search"].items():
        s = r["search_ms"]
        log(f"{n:,} {v}: p50 {s['p50']:.3f} p99 {s['p99']:.3f} ms, recall {r['recall_at_10']}")
    # removal: 10% of the items, from both, then the same queries again
    gone = np.random.default_rng(1).choice(n, size=int(REMOVED_SHARE * n), replace=False)
    timings = {}
    for name, index in (("flat", flat), ("hnsw", hnsw)):
        t0 = time.perf_counter()
        index.remove("u", gone.tolist())
        timings[name] = round(time.perf_counter() - t0, 3)
    after = measure(flat, hnsw, queries, [default_ef], warmup)
    removed_set = set(gone.tolist())
    served = sum(
        bool(set(v for v, _ in hnsw.search("u", q, K)) & removed_set) for q in queries[:100]
    )
    result["after_removal"] = {
        "removed": len(gone),
        "remove_s": timings,
        "hnsw_slots": int(hnsw.get("u").ntotal),
        "removed_items_served": served,
        "search": after,
    }
    log(f"{n:,} after removing {len(gone):,}: {after}")
    del flat, hnsw, vectors
    gc.collect()
    for sub in tmp.iterdir():
        shutil.rmtree(sub, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- floors
def _row_bytes(
    variant: str, row: dict[str, Any], live: int, nlist: int | None, dim: int, m: int
) -> int | None:
    """Bytes one query of ``variant`` reads: every live vector for flat; for HNSW the vectors
    of its distance computations plus the level-0 neighbour list (2*M ids) of each hop; for IVF
    the centroids plus the vectors of the probed lists. ``None`` without faiss's counts."""
    if variant == "flat":
        return live * dim * 4
    if "distances_per_query" not in row:
        return None
    distances = row["distances_per_query"]
    if variant.startswith("hnsw"):
        return int(distances * dim * 4 + row["hops_per_query"] * 2 * m * 4)
    return int((distances + (nlist or 0)) * dim * 4)


def _tables(result: dict[str, Any]) -> dict[str, tuple[dict[str, Any], int]]:
    """A size's search rows before and after the removal, with the items removed."""
    after = result["after_removal"]
    return {"search": (result["search"], 0), "after_removal": (after["search"], after["removed"])}


def _estimate(
    variant: str, table: str, live: int, nlist: int | None, payload: dict[str, Any]
) -> tuple[int | None, str]:
    """Bytes per query of a row without faiss's counts (a row of an earlier run): HNSW takes
    the counts of the same variant at the largest size that has them (else efSearch * 2M
    distances, the level-0 beam's bound); IVF the centroids plus nprobe lists of mean size."""
    dim, m = payload["dim"], payload["hnsw"]["M"]
    if variant.startswith("hnsw"):
        donors = sorted(
            int(size)
            for size, result in payload["results"].items()
            if "distances_per_query" in _tables(result)[table][0].get(variant, {})
        )
        if donors:
            row = _tables(payload["results"][str(donors[-1])])[table][0][variant]
            nbytes = _row_bytes(variant, row, live, nlist, dim, m)
            return nbytes, f"estimate: faiss's counts at {donors[-1]:,} items"
        ef = int(variant.split("=")[1])
        return ef * 2 * m * dim * 4, "estimate: efSearch x 2M distances"
    if variant.startswith("ivf") and nlist:
        nprobe = int(variant.split("=")[1].split()[0])
        return int((nlist + nprobe * live / nlist) * dim * 4), "estimate: lists of mean size"
    return None, ""


def add_floors(payload: dict[str, Any]) -> None:
    """Give every search row its physical floor: the bytes one query reads divided by the
    measured single-thread read bandwidth (``floor_ms``), and ``p50 / floor``; ``basis`` says
    where the bytes come from."""
    gb_s = payload["memory_bandwidth"]["read_gb_s"]
    dim, m = payload["dim"], payload["hnsw"]["M"]
    for size, result in payload["results"].items():
        nlist = result["builds"].get("ivf (bare faiss)", {}).get("nlist")
        for table, (rows, removed) in _tables(result).items():
            live = int(size) - removed
            for variant, row in rows.items():
                nbytes = _row_bytes(variant, row, live, nlist, dim, m)
                basis = "exact" if variant == "flat" else "faiss's counts"
                if nbytes is None:
                    nbytes, basis = _estimate(variant, table, live, nlist, payload)
                if nbytes is None:
                    continue
                floor_ms = nbytes / (gb_s * 1e9) * 1e3
                row["floor"] = {
                    "mb_read": round(nbytes / 1e6, 3),
                    "basis": basis,
                    "floor_ms": round(floor_ms, 4),
                    "p50_over_floor": round(row["search_ms"]["p50"] / floor_ms, 1),
                }


FLOOR_HEADER = ("MB read / query", "floor ms", "p50 / floor")


def _bandwidth_md(payload: dict[str, Any]) -> str:
    bw = payload["memory_bandwidth"]
    first = bw["passes"][0]
    l3 = first.get("l3_cache_mib")
    cached = (
        f"An index smaller than the last-level cache ({l3:g} MiB here: about "
        f"{int(l3 * 2**20 / (payload['dim'] * 4)):,} vectors) is read from the cache, faster "
        "than this floor (p50 / floor below 1). "
        if l3
        else ""
    )
    return (
        "Physical floor: the bytes one query must read divided by the memory bandwidth of one "
        "thread, measured in the same run (`bench/_benchlib.py: memory_bandwidth`; the best of "
        f"{len(bw['passes'])} measurements, one at the start and one after each size, each the "
        f"fastest {first.get('chunk_mb', '?')} MiB chunk of {first['repeats']} sweeps over "
        f"{first['array_mb']} MiB): sequential read {bw['read_gb_s']:.2f} GB/s (the floor's "
        f"divisor), copy {bw['copy_gb_s']:.2f} GB/s, random {first['row_bytes']}-byte rows "
        f"{bw['random_rows_gb_s']:.2f} GB/s. Bytes per query: flat reads every live vector "
        f"(n x {payload['dim']} x 4 bytes, exact); HNSW the vectors of its distance "
        "computations plus the level-0 neighbour list (2M ids of 4 bytes) of each hop; IVF "
        "the centroids plus the vectors of the probed lists; HNSW and IVF from faiss's own "
        "counters (`hnsw_stats`, `indexIVF_stats`) averaged over the queries, or, marked "
        "(est.), estimated for rows of an earlier run (`basis` in the JSON says how). Flat "
        "search streams its bytes, so for it the floor is the real bound. " + cached + "HNSW's "
        "visited-bytes floor is a reference, not a bound: its upper levels and often-visited "
        "vectors stay in the cache, and its cost is latency (each hop waits for the one "
        "before), not bandwidth."
    )


def _floor_cells(row: dict[str, Any]) -> list[str]:
    f = row.get("floor")
    if f is None:
        return ["-", "-", "-"]
    mark = "" if f["basis"] in ("exact", "faiss's counts") else " (est.)"
    return [f"{f['mb_read']:.2f}{mark}", f"{f['floor_ms']:.3f}", f"{f['p50_over_floor']:.1f}"]


# --------------------------------------------------------------------------- report
def evaluate(results: dict[str, Any], default_ef: int) -> dict[str, Any]:
    """The target at 1M (or the largest size measured): at the library's default efSearch,
    and the smallest efSearch of the sweep that reaches the recall."""
    size = str(TARGET_SIZE) if str(TARGET_SIZE) in results else max(results, key=int)
    search = results[size]["search"]
    default = search[f"hnsw ef={default_ef}"]
    enough = sorted(
        (int(v.split("=")[1]), r)
        for v, r in search.items()
        if v.startswith("hnsw ") and r["recall_at_10"] >= TARGET_RECALL
    )
    out: dict[str, Any] = {
        "size": int(size),
        "default_ef_search": default_ef,
        "p99_ms": default["search_ms"]["p99"],
        "recall_at_10": default["recall_at_10"],
        "flat_p99_ms": search["flat"]["search_ms"]["p99"],
        "smallest_ef_reaching_recall": enough[0][0] if enough else None,
        "its_p99_ms": enough[0][1]["search_ms"]["p99"] if enough else None,
    }
    met = out["p99_ms"] <= TARGET_P99_MS and out["recall_at_10"] >= TARGET_RECALL
    if size != str(TARGET_SIZE):
        out["status"] = f"not measured at 1M (largest size {int(size):,})"
    else:
        out["status"] = "met" if met else "NOT met"
    return out


def markdown(payload: dict[str, Any]) -> str:
    ef = payload["default_ef_search"]
    lines = [
        "# ANN index: flat vs HNSW for one large history",
        "",
        *sorted({f"- `{r['command']}`" for r in payload["results"].values()}),
        "",
        "`HistoryIndex.search` of one query, k=10, one OpenMP thread; recall@10 against the flat "
        "index's exact top-10; every query asked of every variant in turn (rows of one size "
        f"side by side in one run). {payload['queries']} real queries (LaMP-5-like abstracts, "
        f"LaMP-7 tweets) after {payload['warmup']} warm-up queries. Vectors: all-MiniLM-L6-v2 "
        f"({payload['embedding_precision']}) embeddings of {payload['real_vectors']:,} real "
        "texts from ../shared/data; past "
        "those, synthetic points on the real data's manifold (a real vector moved towards two "
        "of its 8 nearest real neighbours, plus small noise). HNSW: M="
        f"{payload['hnsw']['M']}, efConstruction={payload['hnsw']['efConstruction']}, library "
        f"default efSearch={ef}.",
        "",
        bl.machine_md(payload["machine"]),
        "",
        _bandwidth_md(payload),
        "",
        "## Search",
        "",
    ]
    rows = []
    for size, r in payload["results"].items():
        for v, s in r["search"].items():
            rows.append(
                [
                    f"{int(size):,}",
                    f"{r['real_vectors']:,}",
                    v,
                    f"{s['search_ms']['p50']:.3f}",
                    f"{s['search_ms']['p99']:.3f}",
                    f"{s['recall_at_10']:.4f}",
                    *_floor_cells(s),
                ]
            )
    lines.append(
        bl.md_table(
            ["items", "of them real", "index", "p50 ms", "p99 ms", "recall@10", *FLOOR_HEADER],
            rows,
        )
    )
    lines += ["", "## Build, files and memory", ""]
    rows = []
    for size, r in payload["results"].items():
        for kind, b in r["builds"].items():
            rows.append(
                [
                    f"{int(size):,}",
                    kind,
                    b["build_s"],
                    b.get("save_s"),
                    b.get("load_s"),
                    b["file_mb"],
                    b["rss_delta_mb"],
                ]
            )
    lines.append(
        bl.md_table(
            ["items", "index", "build s", "save s", "load s", "file MB", "RSS delta MB"], rows
        )
    )
    lines += [
        "",
        f"## After removing {int(REMOVED_SHARE * 100)}% of the items (same queries)",
        "",
    ]
    rows = []
    for size, r in payload["results"].items():
        a = r["after_removal"]
        for v, s in a["search"].items():
            rows.append(
                [
                    f"{int(size):,}",
                    v,
                    f"{a['removed']:,}",
                    a["remove_s"]["flat" if v == "flat" else "hnsw"],
                    f"{s['search_ms']['p50']:.3f}",
                    f"{s['search_ms']['p99']:.3f}",
                    f"{s['recall_at_10']:.4f}",
                    a["removed_items_served"] if v != "flat" else "",
                    *_floor_cells(s),
                ]
            )
    lines.append(
        bl.md_table(
            [
                "items",
                "index",
                "removed",
                "remove s",
                "p50 ms",
                "p99 ms",
                "recall@10",
                "removed items served (100 queries)",
                *FLOOR_HEADER,
            ],
            rows,
        )
    )
    t = payload["target"]
    lines += [
        "",
        "## Target",
        "",
        f"- At 1M items in one history, HNSW search p99 <= {TARGET_P99_MS} ms at recall@10 >= "
        f"{TARGET_RECALL} against flat: **{t['status']}** ({json.dumps(t)})",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,25000,50000,100000,1000000")
    parser.add_argument("--real", type=int, default=20_000, help="real texts to embed (at most)")
    parser.add_argument(
        "--precision", default="int8", help="MiniLMEmbeddings precision of the real vectors"
    )
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ivf", action="store_true", help="skip the bare IVF comparison")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other sizes of the last report"
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sbp-ann-cache")
    parser.add_argument("--out", type=Path, default=bl.ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    if args.quick:  # a smoke run, reported outside the docs
        args.sizes, args.real, args.queries = "5000,20000", 5000, 100
        args.out = Path(tempfile.gettempdir()) / "ann-bench-quick"
    from langchain_stepback_profile import index as index_module

    log = bl.Progress()
    machine = bl.machine_info()
    sizes = [int(s) for s in args.sizes.split(",")]
    base_texts, query_texts = real_texts(args.real)
    query_texts = query_texts[: args.queries + args.warmup]
    log(f"{len(base_texts):,} real base texts, {len(query_texts)} queries")
    real = embed(base_texts, args.precision, args.cache, log)
    queries = embed(query_texts, args.precision, args.cache, log)
    neighbours = real_neighbours(real, args.cache, log) if max(sizes) > len(real) else real[:0]
    default_ef = index_module.HNSW_EF_SEARCH
    ef_values = sorted({*EF_VALUES, default_ef})
    results: dict[str, Any] = {}
    previous = args.out / f"{NAME}.json"
    if args.merge and previous.exists():  # sizes of an earlier run, each with its command
        old = json.loads(previous.read_text())
        results = {n: {"command": old["command"], **r} for n, r in old["results"].items()}
    payload: dict[str, Any] = {}
    bandwidth = [bl.memory_bandwidth()]
    log(f"memory bandwidth: {bandwidth[0]}")
    with tempfile.TemporaryDirectory(prefix="ann-bench-") as tmp:
        for n in sizes:
            results[str(n)] = {"command": bl.command_line(f"{NAME}.py", sys.argv[1:])}
            results[str(n)] |= run_size(
                n,
                real,
                neighbours,
                queries,
                ef_values,
                default_ef,
                args.warmup,
                Path(tmp),
                log,
                with_ivf=not args.no_ivf,
            )
            bandwidth.append(bl.memory_bandwidth())
            log(f"memory bandwidth: {bandwidth[-1]}")
            # written after every size: a long run stopped early keeps what it measured
            payload = {
                **bl.report_head(NAME, list(argv if argv is not None else sys.argv[1:]), machine),
                "k": K,
                "queries": len(queries) - args.warmup,
                "warmup": args.warmup,
                "real_vectors": len(real),
                "dim": int(real.shape[1]),
                "embedding_precision": args.precision,
                "default_ef_search": default_ef,
                "hnsw": {
                    "M": index_module.HNSW_M,
                    "efConstruction": index_module.HNSW_EF_CONSTRUCTION,
                },
                "auto_hnsw_above": index_module.AUTO_HNSW_ABOVE,
                "memory_bandwidth": {
                    key: max(b[key] for b in bandwidth)
                    for key in ("read_gb_s", "copy_gb_s", "random_rows_gb_s")
                }
                | {"passes": bandwidth},
                "machine": machine,
                "results": dict(sorted(results.items(), key=lambda kv: int(kv[0]))),
                "target": evaluate(results, default_ef),
            }
            add_floors(payload)
            bl.write_json(args.out / f"{NAME}.json", payload)
            (args.out / f"{NAME}.md").write_text(markdown(payload))
            log(f"wrote {args.out / NAME}.md: target {payload['target']}")
    return payload


if __name__ == "__main__":
    main()
