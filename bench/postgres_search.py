"""Per-user search in PostgreSQL + pgvector (PostgresProfileStore) against FAISS flat files.

A private PostgreSQL 16 + pgvector server (``pgserver``, unix socket, default settings) holds
USERS users x ITEMS items of random unit vectors (dim 384, MiniLM's) plus one large user; each
query asks one user's top k. Every answer is compared with the exact top k computed in numpy
(recall), and the query plan is shown. The same vectors in per-user FAISS flat indexes
(HistoryIndex) give the reference latency.

    .venv/bin/python bench/postgres_search.py [--users 1000 --items 100 --big 20000]

Writes docs/benchmarks/postgres_search.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import psycopg

from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.index import HistoryIndex
from langchain_stepback_profile.postgres_store import PostgresProfileStore

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
DIM = 384


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--big", type=int, default=20_000, help="items of the one large user")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

        server = pgserver.get_server(Path(tempfile.mkdtemp()) / "pgdata", cleanup_mode="delete")
    try:
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        url = server.get_uri("bench")
        store = PostgresProfileStore(url, dimension=DIM)
        index = HistoryIndex(tempfile.mkdtemp(), DIM)
        sizes = {f"u{n:05d}": args.items for n in range(args.users)} | {"big": args.big}
        vectors: dict[str, np.ndarray] = {}
        vids: dict[str, np.ndarray] = {}
        start = time.perf_counter()
        for user, size in sizes.items():
            rows = unit(rng, size)
            items = [HistoryItem(id=f"i{k}", text=f"{user} item {k}") for k in range(size)]
            got = []
            for at in range(0, size, 1000):
                got += store.add_items(user, items[at : at + 1000], vectors=rows[at : at + 1000])
            vectors[user], vids[user] = rows, np.asarray(got)
            index.add(user, got, rows)
        load_s = time.perf_counter() - start
        total = sum(sizes.values())
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE stepback_profile.items")
            size_mb = conn.execute(
                "SELECT pg_total_relation_size('stepback_profile.items') / 1e6"
            ).fetchone()[0]

        results = {}
        for label, users in (("small user", [u for u in sizes if u != "big"]), ("big", ["big"])):
            pg_ms, faiss_ms, exact = [], [], 0
            for _ in range(args.queries):
                user = users[int(rng.integers(len(users)))]
                query = unit(rng, 1)[0]
                t = time.perf_counter()
                hits = store.search(user, query, args.k)
                pg_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                index.search(user, query, args.k)
                faiss_ms.append((time.perf_counter() - t) * 1000)
                truth = vids[user][np.argsort(-(vectors[user] @ query))[: args.k]]
                exact += [s.vid for s, _ in hits] == truth.tolist()
            results[label] = {
                "items_of_user": sizes[users[0]],
                "share_of_table": sizes[users[0]] / total,
                "queries": args.queries,
                "exact_top_k": exact,
                "pg_p50_ms": round(statistics.median(pg_ms), 2),
                "pg_p99_ms": round(percentile(pg_ms, 0.99), 2),
                "faiss_p50_ms": round(statistics.median(faiss_ms), 3),
            }
        with psycopg.connect(url, autocommit=True) as conn:
            plan = conn.execute(
                "EXPLAIN SELECT vid FROM stepback_profile.items WHERE user_id = %s "
                "AND embedding IS NOT NULL ORDER BY embedding <#> %s::vector LIMIT 5",
                (b"u00001", str(unit(rng, 1)[0].tolist())),
            ).fetchall()
        store.close()
    finally:
        server.cleanup()

    report = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "rows": total,
        "users": len(sizes),
        "dim": DIM,
        "k": args.k,
        "load_seconds": round(load_s, 1),
        "table_mb": round(float(size_mb), 1),
        "results": results,
        "plan": [re.sub(r"'\[[^\]]*\]'", "'[...]'", r[0]) for r in plan],  # the query vector
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "postgres_search.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Per-user search: PostgreSQL + pgvector vs FAISS flat",
        "",
        f"`bench/postgres_search.py`: {total:,} items of {len(sizes):,} users (dim {DIM}, random "
        f"unit vectors), top {args.k} of one user per query, {args.queries} queries per row; "
        "a private PostgreSQL 16 + pgvector (pgserver, default settings, unix socket) on the "
        "same machine. Loading (add_items with vectors, 1,000 rows per transaction, and the "
        f"FAISS adds): {load_s:.0f} s; the items table with its indexes: {size_mb:.0f} MB.",
        "",
        "| user | items | share of the table | exact top k | PostgreSQL p50 / p99 ms | "
        "FAISS flat p50 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in results.items():
        lines.append(
            f"| {label} | {r['items_of_user']:,} | {r['share_of_table']:.2%} | "
            f"{r['exact_top_k']}/{r['queries']} | {r['pg_p50_ms']} / {r['pg_p99_ms']} | "
            f"{r['faiss_p50_ms']} |"
        )
    lines += ["", "The plan of a small user's search:", "", "```", *report["plan"], "```", ""]
    (OUT / "postgres_search.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
