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
from datetime import UTC, datetime
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


def _l3_cache_mib() -> float | None:
    """The last-level cache of CPU 0 (MiB), from sysfs; ``None`` where it is not exposed."""
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"))
    for cache in reversed(caches):
        with contextlib.suppress(OSError, ValueError):
            size = (cache / "size").read_text().strip()
            units = {"K": 2**-10, "M": 1.0, "G": 2**10}
            return float(size[:-1]) * units[size[-1]] if size[-1] in units else None
    return None


def memory_bandwidth(
    size_mb: int = 256, chunk_mb: int = 16, row_bytes: int = 1536, repeats: int = 5
) -> dict[str, Any]:
    """This process's memory bandwidth on one thread, in GB/s (1e9 bytes/s).

    ``repeats`` sweeps over an array of ``size_mb`` MiB (far past the caches), each timed
    ``chunk_mb`` MiB at a time; the fastest chunk gives the figure. A chunk takes a few
    milliseconds, so on a shared machine some chunks run without being descheduled, and a
    chunk's data was last touched a whole sweep earlier, so it comes from memory, not a cache:

    - ``read_gb_s``: ``np.add.reduce`` over the chunk viewed as int64 (integer adds carry no
      floating-point dependency chain, so memory, not arithmetic, limits the loop);
    - ``copy_gb_s``: ``np.copyto`` of the chunk into a second array, read and write bytes both
      counted;
    - ``random_rows_gb_s``: gathering 1,024 rows of ``row_bytes`` bytes at random positions of
      the whole array (``np.take`` into a reused buffer): the access pattern of a graph search
      that visits scattered vectors, when none of them is in a cache.

    The best is kept because the floor a time is compared with must be a lower bound, and a
    shared machine only ever makes a chunk slower. ``l3_cache_mib`` is the last-level cache:
    data smaller than it is read faster than these figures.
    """
    n = size_mb * 2**20 // 8
    step = chunk_mb * 2**20 // 8
    data = np.arange(n, dtype=np.int64)
    copy = np.empty_like(data)
    width = row_bytes // 4
    rows = data.view(np.float32)[: (2 * n) // width * width].reshape(-1, width)
    rng = np.random.default_rng(0)
    buffer = np.empty((1024, width), dtype=np.float32)
    perf = time.perf_counter
    read = copied = gathered = float("inf")
    for _ in range(repeats):
        for start in range(0, n, step):
            chunk = data[start : start + step]
            t0 = perf()
            np.add.reduce(chunk)
            read = min(read, perf() - t0)
        for start in range(0, n, step):
            t0 = perf()
            np.copyto(copy[start : start + step], data[start : start + step])
            copied = min(copied, perf() - t0)
        for _ in range(16):
            idx = rng.integers(0, len(rows), size=len(buffer))
            t0 = perf()
            np.take(rows, idx, axis=0, out=buffer, mode="clip")
            gathered = min(gathered, perf() - t0)
    return {
        "read_gb_s": round(step * 8 / read / 1e9, 2),
        "copy_gb_s": round(2 * step * 8 / copied / 1e9, 2),
        "random_rows_gb_s": round(buffer.nbytes / gathered / 1e9, 2),
        "l3_cache_mib": _l3_cache_mib(),
        "array_mb": size_mb,
        "chunk_mb": chunk_mb,
        "row_bytes": row_bytes,
        "repeats": repeats,
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
    payload = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), **payload}
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
PRECISION_VARIANTS = ("fp32", "bf16", "int8", "onnx")


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


# --------------------------------------------------------------------------- physical floors
def minilm_config() -> dict[str, int]:
    """Layers, hidden size, FFN size and heads of the shipped MiniLM (its config.json)."""
    from langchain_stepback_profile.embeddings import minilm_model_dir

    cfg = json.loads((minilm_model_dir() / "config.json").read_text())
    return {
        "layers": int(cfg["num_hidden_layers"]),
        "hidden": int(cfg["hidden_size"]),
        "intermediate": int(cfg["intermediate_size"]),
        "heads": int(cfg["num_attention_heads"]),
    }


def encoder_flops(tokens: int, cfg: dict[str, int]) -> float:
    """Floating-point operations (a multiply-add = 2) of one encode of ``tokens`` tokens.

    Per layer: Q, K, V and output projections 4 x 2*L*H*H; scores Q.K^T and their product
    with V 2 x 2*L*L*H (summed over the heads, H = heads x head size); the FFN 2 x 2*L*H*I.
    Softmax, GELU, layer norms and the embeddings are left out (a few percent): a lower bound.
    """
    L, H, inner = tokens, cfg["hidden"], cfg["intermediate"]
    per_layer = 8 * L * H * H + 4 * L * L * H + 4 * L * H * inner
    return float(cfg["layers"] * per_layer)


def sgemm_peak_gflops(
    threads: int, rows: int, inner: int, cols: int, repeats: int = 200
) -> dict[str, Any]:
    """The best GFLOP/s of a torch fp32 matmul ``(rows x inner) @ (inner x cols)`` on
    ``threads`` torch threads (the encoder's largest GEMM shape: tokens x hidden @ hidden x
    FFN), fastest of ``repeats`` calls: on a shared machine only the best is a peak."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(rows, inner)
        b = torch.randn(inner, cols)
        out = torch.empty(rows, cols)
        for _ in range(5):
            torch.mm(a, b, out=out)
        best = float("inf")
        perf = time.perf_counter
        for _ in range(repeats):
            t0 = perf()
            torch.mm(a, b, out=out)
            best = min(best, perf() - t0)
    finally:
        torch.set_num_threads(before)
    return {
        "threads": threads,
        "shape": [rows, inner, cols],
        "gflop_s": round(2 * rows * inner * cols / best / 1e9, 1),
    }


def token_lengths(model: Any, texts: Sequence[str]) -> list[int]:
    """Tokens the encoder computes on per text (special tokens in, truncated as it does)."""
    ids = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)
    return [len(x) for x in ids["input_ids"]]


def encoder_floor_ms(tokens: int, cfg: dict[str, int], gflop_s: float) -> float:
    """The encoder's compute floor for one text: its FLOPs / the measured sgemm peak."""
    return encoder_flops(tokens, cfg) / (gflop_s * 1e9) * 1000.0
