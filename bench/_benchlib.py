"""Shared helpers of the benchmarks in bench/ (data, bulk store filling, stats, reports).

Nothing here is part of the library: the bulk filler writes a store the way
``ProfileMemory.add_histories`` does, minus the embedding model, so that large stores can be
built in seconds from stored (random unit) vectors.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LAMP5 = DATA / "LaMP_5_like" / "questions.json"
QUERY_PREFIX = "Generate a title for the following abstract of a paper: "

# Quiet, offline, deterministic model loading (as run.sh does).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --------------------------------------------------------------------------- data
def load_lamp5() -> list[dict]:
    if not LAMP5.exists():
        raise SystemExit(f"evaluation data missing: {LAMP5} (../shared/data beside the project)")
    return json.loads(LAMP5.read_text())


def lamp5_papers(questions: list[dict]) -> list[dict]:
    """Unique profile papers ``{id, title, abstract}`` in file order."""
    papers: dict[str, dict] = {}
    for q in questions:
        for p in q["profile"]:
            if p.get("title") and p.get("abstract"):
                papers.setdefault(
                    p["id"], {"id": p["id"], "title": p["title"], "abstract": p["abstract"]}
                )
    return list(papers.values())


def lamp5_queries(questions: list[dict]) -> list[str]:
    """The real abstracts of the questions (the instruction prefix removed)."""
    out = []
    for q in questions:
        text = q["input"]
        if text.startswith(QUERY_PREFIX):
            text = text[len(QUERY_PREFIX) :]
        out.append(text.strip())
    return out


# --------------------------------------------------------------------------- bulk store
def template_items(papers: list[dict]) -> list[Any]:
    """One validated ``HistoryItem`` per paper, built by the library's own coercion."""
    from langchain_stepback_profile.history import to_history_item

    return [to_history_item(p) for p in papers]


def random_unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def bulk_fill(memory: Any, user_id: str, items: Sequence[Any], vectors: np.ndarray) -> list[int]:
    """Write items + their (given) vectors for one user, as ``add_histories`` does after encoding.

    ``memory._index_for(vectors)`` records the store meta ``embedding_id``/``dimension`` and
    creates the index exactly as the library does on first add.
    """
    index = memory._index_for(vectors)
    vids = memory.store.add_items(user_id, list(items))
    index.add(user_id, vids, vectors)
    index.save(user_id)
    return vids


def sample_user_items(
    templates: list[Any], n: int, rng: np.random.Generator, user_tag: str
) -> list[Any]:
    """``n`` realistic items (real title+abstract rows) with ids unique for the user."""
    picks = rng.integers(0, len(templates), size=n)
    out = []
    for j, t in enumerate(picks):
        base = templates[int(t)]
        out.append(base.model_copy(update={"id": f"{base.id}#{user_tag}-{j}"}))
    return out


def profile_draft_for(items: Sequence[Any]) -> Any:
    """A realistic hand-written profile (what memory.set_profile stores)."""
    from langchain_stepback_profile.profile import ProfileDraft, WritingStyle

    titles = [i.output or i.text.split("\n", 1)[0] for i in items[:6]]
    return ProfileDraft(
        interests=[t[:60] for t in titles[:4]],
        keywords=sorted(
            {w.strip(",.:;()").lower() for t in titles for w in t.split() if len(w) > 6}
        )[:10],
        style=WritingStyle(
            tone="formal, technical",
            length="8-12 words",
            structure="method name, colon, then what it does",
            vocabulary="NLP research terms",
        ),
        summary=(
            "Publishes NLP research papers; titles name the method and the task. "
            "Recent work: " + "; ".join(titles[:3]) + "."
        ),
    )


# --------------------------------------------------------------------------- measuring
def rss_mb() -> float:
    """Current resident set size of this process (MiB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, f))
    return total / 2**20


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min/max in milliseconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    if not len(a):
        return {"n": 0}
    return {
        "n": len(a),
        "p50": round(float(np.percentile(a, 50)), 4),
        "p90": round(float(np.percentile(a, 90)), 4),
        "p99": round(float(np.percentile(a, 99)), 4),
        "mean": round(float(a.mean()), 4),
        "min": round(float(a.min()), 4),
        "max": round(float(a.max()), 4),
    }


class Progress:
    """Timestamped progress lines on stderr."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine
def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "?"))
    except Exception:  # pragma: no cover - optional packages
        return None


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "cpu_model": cpu,
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
        "versions": {
            m: _version(m)
            for m in (
                "faiss",
                "torch",
                "sentence_transformers",
                "transformers",
                "numpy",
                "langchain_core",
                "pydantic",
            )
        },
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # pragma: no cover
        pass
    try:
        import faiss

        info["faiss_omp_threads"] = faiss.omp_get_max_threads()
    except Exception:  # pragma: no cover
        pass
    info["sqlite"] = sqlite3.sqlite_version
    return info


def command_line(script: str, argv: Sequence[str]) -> str:
    args = " ".join(argv)
    return f".venv/bin/python bench/{script}" + (f" {args}" if args else "")


def report_head(name: str, argv: Sequence[str], machine: dict[str, Any]) -> dict[str, Any]:
    """The common start of a benchmark's JSON report; records the machine's state at the end."""
    import langchain_stepback_profile as lsp

    machine["loadavg_at_end"] = list(os.getloadavg())
    machine["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return {
        "benchmark": name,
        "command": command_line(f"{name}.py", argv),
        "library_path": str(Path(lsp.__file__).parent),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **payload}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_md(info: dict[str, Any]) -> str:
    v = info["versions"]
    return (
        f"Machine: {info['nproc']} CPUs ({info['cpu_model']}), {info['mem_total_gb']} GiB RAM, "
        f"load average at start {', '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}; "
        f"Python {info['python']}, faiss {v.get('faiss')}, torch {v.get('torch')}, "
        f"sentence-transformers {v.get('sentence_transformers')}, "
        f"transformers {v.get('transformers')}, "
        f"numpy {v.get('numpy')}, SQLite {info.get('sqlite')}; torch threads "
        f"{info.get('torch_threads')}, faiss OpenMP threads {info.get('faiss_omp_threads')}."
    )


# --------------------------------------------------------------------------- precision variants
PRECISION_VARIANTS = ("fp32", "bf16", "int8")


def precision_embedders(names: Sequence[str], log: Progress | None = None) -> dict[str, Any]:
    """One loaded ``MiniLMEmbeddings(precision=name)`` per variant, fp32 first (the reference)."""
    from langchain_stepback_profile import MiniLMEmbeddings

    out: dict[str, Any] = {}
    for name in ["fp32", *(n for n in names if n != "fp32")]:
        if log:
            log(f"loading MiniLM precision={name}")
        emb = MiniLMEmbeddings(precision=name)  # type: ignore[arg-type]
        emb.encode(["warm up"])
        out[name] = emb
    return out


def paper_texts(papers: list[dict]) -> list[str]:
    """The texts the library embeds for these papers (title + abstract, as HistoryItem.text)."""
    return [item.text for item in template_items(papers)]


def precision_quality(
    embedders: dict[str, Any], queries: list[str], docs: list[str], log: Progress | None = None
) -> dict[str, Any]:
    """Each variant against fp32 on real texts: top-10 neighbour overlap (the variant's queries
    against the variant's documents vs fp32 against fp32) and cosines of the same text's
    vectors (queries and documents), with the time each variant took to embed the documents."""
    from dataclasses import asdict

    from langchain_stepback_profile.precision import vector_quality

    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for name, emb in embedders.items():
        if log:
            log(f"quality: embedding {len(queries)} queries + {len(docs)} documents with {name}")
        t = time.perf_counter()
        d = emb.encode(docs)
        seconds[name] = time.perf_counter() - t
        vectors[name] = (emb.encode(queries), d)
    ref_q, ref_d = vectors["fp32"]
    out: dict[str, Any] = {}
    for name, (q, d) in vectors.items():
        quality = vector_quality(ref_q, ref_d, q, d)
        out[name] = {
            **asdict(quality),
            "holds_bar": quality.holds(),
            "docs_items_per_s": round(len(docs) / seconds[name], 2),
        }
    return {"queries": len(queries), "documents": len(docs), "variants": out}
