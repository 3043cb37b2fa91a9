"""SQLite + FAISS vs PostgreSQL + pgvector, side by side in one run, through ProfileMemory.

Both backends get exactly the same data: USERS users x ITEMS items (real LaMP-5-like titles and
abstracts, each made unique by a short tag so that no item is deduplicated) with random unit
vectors of dimension 384 (MiniLM's). Per size, with the two backends interleaved (batch by
batch, query by query, alternating which goes first):

- ingestion through the public API, ``ProfileMemory.add_histories``, with an ``Embeddings``
  object that returns the precomputed vectors (the embedding model's own cost is measured
  apart, on real papers), and the bulk path of bench/_benchlib.py (``bulk_fill``: store rows +
  FAISS add for SQLite; ``PostgresProfileStore.add_items(..., vectors=...)`` for PostgreSQL);
- ``memory.search(user, query, k=10)`` latency with a precomputed query vector, and with the
  real MiniLM query embedding of real LaMP-5-like abstracts;
- recall@10 of every precomputed query against exact numpy search over that user's vectors;
- 1 and 4 concurrent client processes running the same searches (queries/s, p50/p99).

The SQLite folder is ``ProfileMemory(folder)``; the PostgreSQL store is
``ProfileMemory("postgresql://...")`` on a private PostgreSQL 16 + pgvector server started
here by ``pgserver`` (unix socket in a temporary folder, no TCP port, default settings,
stopped and deleted at the end).

Usage:
    .venv/bin/python bench/backends.py                       # 10k, 100k, 1M items, 1k users
    .venv/bin/python bench/backends.py --sizes 200 --users 20  # smoke run

Writes docs/benchmarks/backends.{json,md,png} after every size (a size not reached is
reported with an estimate from the largest one measured).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _benchlib as bl
import numpy as np

NAME = "backends"
DIM = 384
K = 10
BACKENDS = ("sqlite_faiss", "postgres_pgvector")
LABEL = {"sqlite_faiss": "SQLite + FAISS", "postgres_pgvector": "PostgreSQL + pgvector"}
EMBEDDING_ID = "bench-precomputed:all-MiniLM-L6-v2-shape"
_TAG = re.compile(r"\[(\d+)-(\d+)\]\s*$")


# --------------------------------------------------------------------------- data
def user_name(u: int) -> str:
    return f"user-{u:05d}"


def user_vectors(seed: int, u: int, n: int) -> np.ndarray:
    """User ``u``'s item vectors (row j = item j), regenerated identically on demand."""
    return bl.random_unit_vectors(np.random.default_rng([seed, u]), n, DIM)


def query_vectors(seed: int, n: int) -> np.ndarray:
    return bl.random_unit_vectors(np.random.default_rng([seed, 10**6]), n, DIM)


def user_items(papers: list[dict], u: int, n: int) -> list[dict]:
    """``n`` LaMP-style dicts for user ``u``; the abstract ends with the tag ``[u-j]``."""
    out = []
    for j in range(n):
        p = papers[(u * 7919 + j) % len(papers)]
        out.append(
            {"id": f"{u}-{j}", "title": p["title"], "abstract": f"{p['abstract']} [{u}-{j}]"}
        )
    return out


class PrecomputedEmbeddings:
    """LangChain ``Embeddings`` that return precomputed vectors (no model runs).

    A document's vector is found by the ``[u-j]`` tag at the end of its text; a query's by its
    text (``q:N``); any other query is embedded by ``query_model`` (MiniLM) when given.
    """

    embedding_id = EMBEDDING_ID

    def __init__(self, seed: int, queries: np.ndarray, query_model: Any = None) -> None:
        self.seed = seed
        self.queries = queries
        self.query_model = query_model
        self.users: dict[int, np.ndarray] = {}  # the vectors of the users being added

    def embed_documents(self, texts: list[str]) -> Any:
        rows = np.empty((len(texts), DIM), dtype=np.float32)
        for n, text in enumerate(texts):
            m = _TAG.search(text)
            if m is None:
                raise ValueError(f"no vector for {text[-40:]!r}")
            rows[n] = self.users[int(m.group(1))][int(m.group(2))]
        return rows  # an array: encode_texts takes it without a copy

    def embed_query(self, text: str) -> Any:
        if text.startswith("q:"):
            return self.queries[int(text[2:])]
        if self.query_model is None:
            raise ValueError(f"no vector for query {text[:40]!r}")
        return self.query_model.encode([text])[0]


# --------------------------------------------------------------------------- servers
def start_postgres(folder: Path) -> Any:
    """A private PostgreSQL 16 + pgvector (pgserver): unix socket only, deleted on cleanup."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

        return pgserver.get_server(folder, cleanup_mode="delete")


def admin_sql(server: Any, statement: str) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(statement)


# --------------------------------------------------------------------------- ingestion
def ingest(
    memories: dict[str, Any],
    emb: PrecomputedEmbeddings,
    papers: list[dict],
    users: int,
    per_user: int,
    seed: int,
    log: bl.Progress,
) -> dict[str, Any]:
    """``add_histories`` in batches of users, both backends per batch, alternating order."""
    batch = max(1, min(users, 20_000 // per_user))
    seconds = dict.fromkeys(BACKENDS, 0.0)
    for n, start in enumerate(range(0, users, batch)):
        group = range(start, min(users, start + batch))
        histories = {user_name(u): user_items(papers, u, per_user) for u in group}
        emb.users = {u: user_vectors(seed, u, per_user) for u in group}
        for name in BACKENDS if n % 2 == 0 else BACKENDS[::-1]:
            t = time.perf_counter()
            memories[name].add_histories(histories, show_progress=False)
            seconds[name] += time.perf_counter() - t
        if (n + 1) % max(1, (users // batch) // 5) == 0:
            log(f"  ingested {group[-1] + 1}/{users} users")
    emb.users = {}
    total = users * per_user
    return {
        name: {"seconds": round(s, 2), "items_per_s": round(total / s, 1)}
        for name, s in seconds.items()
    }


def bulk(
    folder: Path,
    server: Any,
    papers: list[dict],
    users: int,
    per_user: int,
    seed: int,
) -> dict[str, Any]:
    """The bulk path (no per-batch planning/dedup), on fresh stores of ``users`` users."""
    from langchain_stepback_profile import ProfileMemory
    from langchain_stepback_profile.history import to_history_items
    from langchain_stepback_profile.postgres_store import PostgresProfileStore

    admin_sql(server, "CREATE DATABASE bulk")
    emb = PrecomputedEmbeddings(seed, query_vectors(seed, 1))
    seconds = dict.fromkeys(BACKENDS, 0.0)
    sq = ProfileMemory(folder / "bulk", embeddings=emb)
    pg = PostgresProfileStore(server.get_uri("bulk"), dimension=DIM)
    try:
        for u in range(users):
            items = user_items(papers, u, per_user)
            vectors = user_vectors(seed, u, per_user)
            for name in BACKENDS if u % 2 == 0 else BACKENDS[::-1]:
                t = time.perf_counter()
                rows = to_history_items(items)
                if name == "sqlite_faiss":
                    bl.bulk_fill(sq, user_name(u), rows, vectors)
                else:
                    for at in range(0, per_user, 1000):
                        pg.add_items(
                            user_name(u), rows[at : at + 1000], vectors=vectors[at : at + 1000]
                        )
                seconds[name] += time.perf_counter() - t
    finally:
        sq.close()
        pg.close()
        shutil.rmtree(folder / "bulk", ignore_errors=True)
        admin_sql(server, "DROP DATABASE bulk WITH (FORCE)")
    total = users * per_user
    return {
        "users": users,
        "items": total,
        **{
            name: {"seconds": round(s, 2), "items_per_s": round(total / s, 1)}
            for name, s in seconds.items()
        },
    }


# --------------------------------------------------------------------------- queries
def search_loop(
    memories: dict[str, Any], plan: Sequence[tuple[str, str]]
) -> tuple[dict[str, list[float]], dict[str, list[list[str]]]]:
    """Each query on both backends, alternating which goes first; times and result ids."""
    times: dict[str, list[float]] = {name: [] for name in BACKENDS}
    ids: dict[str, list[list[str]]] = {name: [] for name in BACKENDS}
    perf = time.perf_counter
    for i, (user, query) in enumerate(plan):
        for name in BACKENDS if i % 2 == 0 else BACKENDS[::-1]:
            t = perf()
            hits = memories[name].search(user, query, k=K)
            times[name].append(perf() - t)
            ids[name].append([h.item.id for h in hits])
    return times, ids


def recall(
    plan: Sequence[tuple[str, str]],
    ids: list[list[str]],
    queries: np.ndarray,
    seed: int,
    per_user: int,
) -> dict[str, Any]:
    """recall@K of each answer against exact numpy search over that user's vectors."""
    values = []
    for (user, query), got in zip(plan, ids, strict=True):
        u = int(user.split("-")[1])
        scores = user_vectors(seed, u, per_user) @ queries[int(query[2:])]
        truth = {f"{u}-{j}" for j in np.argsort(-scores, kind="stable")[: min(K, per_user)]}
        values.append(len(truth & set(got)) / len(truth))
    a = np.asarray(values)
    return {"queries": len(a), "min": float(a.min()), "mean": round(float(a.mean()), 6)}


# --------------------------------------------------------------------------- clients
def client_main(spec: dict[str, Any]) -> None:
    """One client process: open the store, touch every user, wait for "go", run the searches."""
    from langchain_stepback_profile import ProfileMemory

    queries = query_vectors(spec["seed"], spec["n_queries"])
    emb = PrecomputedEmbeddings(spec["seed"], queries)
    memory = ProfileMemory(spec["target"], embeddings=emb)
    rng = np.random.default_rng([spec["seed"], 7, spec["client"]])
    for u in range(spec["users"]):
        memory.search(user_name(u), "q:0", k=K)
    plan = [
        (user_name(int(rng.integers(spec["users"]))), f"q:{int(rng.integers(len(queries)))}")
        for _ in range(spec["queries"])
    ]
    print("ready", flush=True)
    sys.stdin.readline()
    times = []
    perf = time.perf_counter
    start = time.monotonic()
    for user, query in plan:
        t = perf()
        memory.search(user, query, k=K)
        times.append(perf() - t)
    end = time.monotonic()
    memory.close()
    print(json.dumps({"start": start, "end": end, "times": times}), flush=True)


def run_clients(target: str, processes: int, users: int, queries: int, seed: int) -> dict:
    """``processes`` client processes started together; total queries/s and per-query stats."""
    script = str(Path(__file__).resolve())
    procs = []
    for c in range(processes):
        spec = {
            "target": target,
            "users": users,
            "queries": queries,
            "n_queries": 1000,
            "seed": seed,
            "client": c,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, script, "--client", json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"client did not start: {line!r}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = []
        for p in procs:
            assert p.stdout is not None
            outs.append(json.loads(p.stdout.readline()))
            if p.wait(timeout=600) != 0:
                raise RuntimeError(f"client exited with {p.returncode}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    times = [t for o in outs for t in o["times"]]
    return {
        "processes": processes,
        "queries": len(times),
        "wall_s": round(wall, 3),
        "queries_per_s": round(len(times) / wall, 1),
        "latency_ms": bl.stats_ms(times),
    }


# --------------------------------------------------------------------------- one size
def run_size(
    users: int,
    per_user: int,
    server: Any,
    workdir: Path,
    papers: list[dict],
    real_queries: list[str],
    minilm: Any,
    args: argparse.Namespace,
    log: bl.Progress,
) -> dict[str, Any]:
    from langchain_stepback_profile import ProfileMemory

    total = users * per_user
    seed = args.seed
    t_size = time.perf_counter()
    admin_sql(server, "CREATE DATABASE bench")
    url = server.get_uri("bench")
    folder = workdir / "sqlite"
    queries = query_vectors(seed, 1000)
    emb = PrecomputedEmbeddings(seed, queries, query_model=minilm)
    memories = {
        "sqlite_faiss": ProfileMemory(folder, embeddings=emb),
        "postgres_pgvector": ProfileMemory(url, embeddings=emb),
    }
    result: dict[str, Any] = {
        "users": users,
        "items_per_user": per_user,
        "total_items": total,
        "loadavg_before": list(os.getloadavg()),
    }
    try:
        log(f"{total:,} items: ingesting through add_histories")
        result["ingest_add_histories"] = ingest(memories, emb, papers, users, per_user, seed, log)
        log(f"{total:,} items: add_histories {result['ingest_add_histories']}")
        t = time.perf_counter()
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE stepback_profile.items")
            pg_mb = conn.execute("SELECT pg_database_size(current_database()) / 2^20").fetchone()
        result["postgres_analyze_s"] = round(time.perf_counter() - t, 2)
        result["store_mb"] = {
            "sqlite_faiss": round(bl.dir_size_mb(folder), 1),
            "postgres_pgvector": round(float(pg_mb[0]), 1) if pg_mb else None,
        }
        # the first search of every user (SQLite + FAISS: loads the user's index file)
        warm = [(user_name(u), "q:0") for u in range(users)]
        first, _ = search_loop(memories, warm)
        result["first_search_per_user_ms"] = {n: bl.stats_ms(v) for n, v in first.items()}
        rng = np.random.default_rng([seed, 1])
        plan = [
            (user_name(int(rng.integers(users))), f"q:{int(rng.integers(len(queries)))}")
            for _ in range(args.queries)
        ]
        log(f"{total:,} items: {len(plan)} searches with precomputed query vectors")
        times, ids = search_loop(memories, plan)
        result["search_precomputed_ms"] = {n: bl.stats_ms(v) for n, v in times.items()}
        result["recall_at_10"] = {
            n: recall(plan, ids[n], queries, seed, per_user) for n in BACKENDS
        }
        result["same_ids_both_backends"] = sum(
            a == b for a, b in zip(ids[BACKENDS[0]], ids[BACKENDS[1]], strict=True)
        )
        order = rng.permutation(len(real_queries))[: args.minilm_queries]
        mplan = [(user_name(int(rng.integers(users))), real_queries[i]) for i in order]
        log(f"{total:,} items: {len(mplan)} searches with the MiniLM query embedding")
        mtimes, _ = search_loop(memories, mplan)
        result["search_with_minilm_ms"] = {n: bl.stats_ms(v) for n, v in mtimes.items()}
        for m in memories.values():
            m.close()
        memories.clear()

        targets = {"sqlite_faiss": str(folder), "postgres_pgvector": url}
        conc: dict[str, dict[str, Any]] = {n: {} for n in BACKENDS}
        runs = [(1, n) for n in BACKENDS] + [(args.clients, n) for n in BACKENDS[::-1]]
        for procs, name in runs:
            log(f"{total:,} items: {procs} client process(es) on {LABEL[name]}")
            conc[name][str(procs)] = run_clients(
                targets[name], procs, users, args.client_queries, seed
            )
        result["clients"] = conc
        if args.bulk_max_items:
            bulk_users = max(1, min(users, args.bulk_max_items // per_user))
            log(f"{total:,} items: bulk path on {bulk_users} users")
            result["ingest_bulk"] = bulk(workdir, server, papers, bulk_users, per_user, seed)
    finally:
        for m in memories.values():
            m.close()
        shutil.rmtree(folder, ignore_errors=True)
        admin_sql(server, "DROP DATABASE IF EXISTS bench WITH (FORCE)")
    result["loadavg_after"] = list(os.getloadavg())
    result["seconds"] = round(time.perf_counter() - t_size, 1)
    return result


# --------------------------------------------------------------------------- report
def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def label_size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def estimate(done: dict[str, Any], total: int) -> dict[str, Any]:
    """Seconds of a size not run, from the largest one run: ingestion and first searches scale
    with the items, the timed searches and the clients stay about the same."""
    big = max(done.values(), key=lambda r: r["total_items"])
    factor = total / big["total_items"]
    ingest_s = sum(v["seconds"] for v in big["ingest_add_histories"].values())
    bulk_s = sum(big["ingest_bulk"][n]["seconds"] for n in BACKENDS) if "ingest_bulk" in big else 0
    rest = big["seconds"] - ingest_s - bulk_s
    seconds = ingest_s * factor + bulk_s + rest * max(1.0, factor**0.5)
    return {"from": label_size(big["total_items"]), "seconds": round(seconds)}


def markdown(payload: dict[str, Any]) -> str:
    res = payload["results"]
    lines = [
        "# Backends: SQLite + FAISS vs PostgreSQL + pgvector",
        "",
        f"`bench/backends.py`: {payload['users']:,} users, the same items (real LaMP-5-like "
        "titles and abstracts, each tagged to be unique) and the same random unit vectors "
        f"(dim {DIM}) in both backends, `memory.search(user, query, k={K})` through "
        '`ProfileMemory(folder)` and `ProfileMemory("postgresql://...")`. PostgreSQL 16 + '
        "pgvector is a private `pgserver` instance on a unix socket on the same machine, "
        "default settings (fsync on, shared_buffers 128 MB), `ANALYZE` after loading. The two "
        "backends run side by side in one process, interleaved batch by batch and query by "
        "query (alternating which goes first), so their ratio is fair on a shared machine; "
        "the absolute figures are noisy: the 2-core machine was loaded by other jobs "
        "(load averages in the JSON).",
        "",
        bl.machine_md(payload["machine"]),
        "",
        "## Results",
        "",
    ]
    header = [
        "items (per user)",
        "backend",
        "add_histories items/s",
        "bulk items/s",
        "search p50 / p99 ms",
        "with MiniLM p50 / p99 ms",
        "recall@10 min / mean",
        "1 process q/s (p50 / p99 ms)",
        f"{payload['clients']} processes q/s (p50 / p99 ms)",
        "store MB",
    ]
    rows = []
    for size, r in res.items():
        for n in BACKENDS:
            s, m = r["search_precomputed_ms"][n], r["search_with_minilm_ms"][n]
            c1, c4 = r["clients"][n]["1"], r["clients"][n][str(payload["clients"])]
            b = r.get("ingest_bulk", {}).get(n)
            rows.append(
                [
                    f"{size} ({r['items_per_user']:,})",
                    LABEL[n],
                    f"{r['ingest_add_histories'][n]['items_per_s']:,.0f}",
                    f"{b['items_per_s']:,.0f}" if b else "-",
                    f"{s['p50']:.2f} / {s['p99']:.2f}",
                    f"{m['p50']:.1f} / {m['p99']:.1f}",
                    f"{r['recall_at_10'][n]['min']:.3f} / {r['recall_at_10'][n]['mean']:.4f}",
                    f"{c1['queries_per_s']:,.0f} ({c1['latency_ms']['p50']:.2f} / "
                    f"{c1['latency_ms']['p99']:.2f})",
                    f"{c4['queries_per_s']:,.0f} ({c4['latency_ms']['p50']:.2f} / "
                    f"{c4['latency_ms']['p99']:.2f})",
                    f"{r['store_mb'][n]:,.0f}",
                ]
            )
    lines += [bl.md_table(header, rows), ""]
    for size in payload["sizes_not_run"]:
        e = payload["estimates"].get(size)
        lines.append(
            f"- **{size}: not measured** in this run"
            + (
                f" (estimated {e['seconds'] / 60:.0f} min for both backends, scaled from the "
                f"{e['from']} timings)."
                if e
                else "."
            )
        )
    if payload["sizes_not_run"]:
        lines.append("")
    lines += [
        "![query p99 and ingestion rate vs size](backends.png)",
        "",
        "## Findings",
        "",
        *findings(payload),
        "",
        "## What is measured",
        "",
        "- **add_histories items/s**: `memory.add_histories({user: [dicts]}, "
        "show_progress=False)`, users in batches of up to 20,000 items, with an `Embeddings` "
        "object that returns the precomputed vectors: validation, planning against the stored "
        "items, the writes (SQLite rows + one FAISS index file per user, saved atomically; "
        "PostgreSQL: one transaction per user with its vectors). The embedding model's own "
        f"cost comes on top and is the same for both backends: MiniLM embedded "
        f"{payload['minilm_docs']['docs']} real title+abstract texts at "
        f"{payload['minilm_docs']['items_per_s']:.1f} items/s "
        f"({payload['minilm_docs']['ms_per_doc']:.1f} ms per document) in this run "
        "(docs/benchmarks/ingestion_throughput.md: 31.1 items/s through `add_histories` on "
        "5,000 texts), so with MiniLM ingestion runs at the embedding's pace on either backend.",
        "- **bulk items/s**: bench/_benchlib.py's bulk path on fresh stores (at most "
        f"{payload['bulk_max_items']:,} items, the first users of the size): SQLite + FAISS "
        "`bulk_fill` (store rows, FAISS add, index save), PostgreSQL "
        "`PostgresProfileStore.add_items(user, items, vectors=...)` 1,000 rows per "
        "transaction; both include turning the dicts into `HistoryItem`s.",
        f"- **search**: `memory.search(user, 'q:N', k={K})` for a random user, the query vector "
        f"precomputed ({payload['queries']} queries per backend, after one first search of every "
        "user, whose cost is in the JSON as `first_search_per_user_ms`); **with MiniLM**: the "
        f"same call on {payload['minilm_queries']} real LaMP-5-like abstracts, embedded by "
        "`MiniLMEmbeddings()` (its default threads) inside the call.",
        f"- **recall@10**: each precomputed search's ids against the exact top {K} of that "
        "user's vectors in numpy; both backends search exactly (FAISS flat, pgvector without "
        "an ANN index), so 1.0 is expected.",
        f"- **processes**: 1 and {payload['clients']} client processes, each opening the store "
        f"(`ProfileMemory(folder)` or the URL), searching every user once, then, started "
        f"together, {payload['client_queries']} precomputed searches of random users each; "
        "q/s is all queries over the wall time from the first start to the last end, "
        "p50 / p99 over every query. On 2 cores, more than 2 processes only add contention.",
        "",
        "## Reproduce",
        "",
        f"    {payload['command']}",
        "",
        f"Library measured: `{payload['library_path']}`. Total run time "
        f"{payload['total_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def findings(payload: dict[str, Any]) -> list[str]:
    """The ratios the table shows, computed from it."""
    res = payload["results"]
    sq, pg = BACKENDS
    n = str(payload["clients"])

    def each(fn: Any) -> str:
        return ", ".join(f"{size} {fn(r)}" for size, r in res.items())

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x"

    def slowest(r: dict[str, Any]) -> float:
        return min(r["ingest_add_histories"][b]["items_per_s"] for b in BACKENDS)

    s = "search_precomputed_ms"
    m = "search_with_minilm_ms"
    ing = "ingest_add_histories"
    return [
        "- **Search without the query embedding**: PostgreSQL's p50 is "
        + each(lambda r: ratio(r[s][pg]["p50"], r[s][sq]["p50"]))
        + " SQLite + FAISS's. PostgreSQL scores the user's rows in another process: every "
        "`memory.search` is one round trip for the user check and one for the search, and on "
        "this oversubscribed 2-core machine each waits for the server process to be "
        "scheduled (this dominates at 10 items per user); the scoring itself reads and scores "
        "every row of the user (about 2.3 kB each with its vector, the table larger than "
        "shared_buffers), so it grows with the user's history (1,000 items: tens of ms). The "
        "folder store searches an in-memory FAISS index in the calling process.",
        "- **With the MiniLM query embedding** (what an application pays per query): p50 "
        + each(lambda r: f"{r[m][sq]['p50']:.0f} vs {r[m][pg]['p50']:.0f} ms")
        + " (SQLite + FAISS vs PostgreSQL): the embedding dominates at every size.",
        "- **Recall@10**: "
        + each(lambda r: f"min {min(r['recall_at_10'][b]['min'] for b in BACKENDS):.3f}")
        + " over both backends; both give the same ids for "
        + each(lambda r: f"{r['same_ids_both_backends']}/{r['recall_at_10'][sq]['queries']}")
        + " queries.",
        f"- **{n} client processes vs 1** (queries/s, total): SQLite + FAISS "
        + each(
            lambda r: ratio(
                r["clients"][sq][n]["queries_per_s"], r["clients"][sq]["1"]["queries_per_s"]
            )
        )
        + ", PostgreSQL "
        + each(
            lambda r: ratio(
                r["clients"][pg][n]["queries_per_s"], r["clients"][pg]["1"]["queries_per_s"]
            )
        )
        + " on 2 shared cores.",
        "- **Ingestion** (vectors given): PostgreSQL's `add_histories` rate is "
        + each(lambda r: ratio(r[ing][pg]["items_per_s"], r[ing][sq]["items_per_s"]))
        + " SQLite + FAISS's; both are "
        + each(lambda r: f"{slowest(r) / payload['minilm_docs']['items_per_s']:,.0f}x")
        + " faster than MiniLM embeds the documents in this run, so a real ingestion is "
        "bound by the embedding on either backend.",
    ]


def chart(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = payload["results"]
    sizes = [r["total_items"] for r in res.values()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for n, color in zip(BACKENDS, ("tab:blue", "tab:orange"), strict=True):
        ax1.plot(
            sizes,
            [r["search_precomputed_ms"][n]["p99"] for r in res.values()],
            "o-",
            color=color,
            label=f"{LABEL[n]}, query vector given",
        )
        ax1.plot(
            sizes,
            [r["search_with_minilm_ms"][n]["p99"] for r in res.values()],
            "s--",
            color=color,
            label=f"{LABEL[n]}, with MiniLM",
        )
        ax2.plot(
            sizes,
            [r["ingest_add_histories"][n]["items_per_s"] for r in res.values()],
            "o-",
            color=color,
            label=f"{LABEL[n]}, add_histories",
        )
        if all("ingest_bulk" in r for r in res.values()):
            ax2.plot(
                sizes,
                [r["ingest_bulk"][n]["items_per_s"] for r in res.values()],
                "^:",
                color=color,
                label=f"{LABEL[n]}, bulk path",
            )
    ax2.axhline(
        payload["minilm_docs"]["items_per_s"], color="grey", lw=1, label="MiniLM embedding alone"
    )
    for ax, title, ylabel in (
        (ax1, f"search p99 (k={K}, {payload['users']:,} users)", "ms"),
        (ax2, "ingestion (vectors precomputed)", "items/s"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("items in the store")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(payload: dict[str, Any], out: Path) -> None:
    bl.write_json(out / f"{NAME}.json", payload)
    (out / f"{NAME}.md").write_text(markdown(payload))
    chart(payload, out / f"{NAME}.png")


# --------------------------------------------------------------------------- main
def minilm_doc_cost(minilm: Any, papers: list[dict], n: int) -> dict[str, Any]:
    texts = bl.paper_texts(papers[:n])
    minilm.encode(texts[:4])
    t = time.perf_counter()
    minilm.encode(texts)
    s = time.perf_counter() - t
    return {
        "docs": len(texts),
        "seconds": round(s, 2),
        "items_per_s": round(len(texts) / s, 2),
        "ms_per_doc": round(1000 * s / len(texts), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="total items, comma separated")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000, help="timed searches per backend")
    parser.add_argument("--minilm-queries", type=int, default=200)
    parser.add_argument("--minilm-docs", type=int, default=64, help="documents for MiniLM's cost")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--client-queries", type=int, default=300, help="per client process")
    parser.add_argument("--bulk-max-items", type=int, default=100_000, help="0: no bulk path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=bl.ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the .md and .png from the .json"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main(json.loads(args.client))
        return
    if args.report_only:
        payload = json.loads((args.out / f"{NAME}.json").read_text())
        (args.out / f"{NAME}.md").write_text(markdown(payload))
        chart(payload, args.out / f"{NAME}.png")
        return
    argv = list(sys.argv[1:] if argv is None else argv)
    log = bl.Progress()
    t0 = time.perf_counter()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    for s in sizes:
        if s % args.users:
            raise SystemExit(f"size {s} is not a multiple of --users {args.users}")
    questions = bl.load_lamp5()
    papers = bl.lamp5_papers(questions)
    real_queries = bl.lamp5_queries(questions)

    from langchain_stepback_profile import MiniLMEmbeddings

    machine = bl.machine_info()
    minilm = MiniLMEmbeddings()
    log("MiniLM: per-document cost on real papers")
    doc_cost = minilm_doc_cost(minilm, papers, args.minilm_docs)
    log(f"MiniLM: {doc_cost}")
    payload: dict[str, Any] = {
        "sizes": [label_size(s) for s in sizes],
        "users": args.users,
        "k": K,
        "dim": DIM,
        "queries": args.queries,
        "minilm_queries": args.minilm_queries,
        "clients": args.clients,
        "client_queries": args.client_queries,
        "bulk_max_items": args.bulk_max_items,
        "minilm_docs": doc_cost,
        "results": {},
        "sizes_not_run": [label_size(s) for s in sizes],
        "estimates": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    log(f"starting PostgreSQL (pgserver) in {workdir}")
    server = start_postgres(workdir / "pgdata")
    try:
        for size in sizes:
            name = label_size(size)
            log(f"{name}: {args.users:,} users x {size // args.users:,} items")
            r = run_size(
                args.users,
                size // args.users,
                server,
                workdir,
                papers,
                real_queries,
                minilm,
                args,
                log,
            )
            payload["results"][name] = r
            payload["sizes_not_run"].remove(name)
            payload["estimates"] = {
                label_size(s): estimate(payload["results"], s)
                for s in sizes
                if label_size(s) in payload["sizes_not_run"]
            }
            payload["total_seconds"] = round(time.perf_counter() - t0, 1)
            write({**bl.report_head(NAME, argv, machine), "machine": machine, **payload}, args.out)
            log(f"{name}: done in {r['seconds']} s; wrote {args.out / NAME}.{{json,md,png}}")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
