"""Numeric precision of the MiniLM encoder: the variants, the quality bar, and the measured
choice behind ``MiniLMEmbeddings(precision="auto")``.

A faster variant is used only where its vectors stay close to the fp32 ones: top-10 neighbour
overlap >= :data:`MIN_TOP10_OVERLAP` (mean over queries) and cosine to the fp32 vector
>= :data:`MIN_COSINE` (the worst text). ``auto`` measures the candidates once per machine on
built-in texts (speed and that bar, against fp32) and caches the verdict, keyed by the
machine, the package, torch and the thread count.

Example:
    >>> import numpy as np
    >>> v = np.eye(12, dtype=np.float32)
    >>> vector_quality(v, v, v, v).holds()
    True
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Precision = Literal["auto", "fp32", "bf16", "int8", "onnx"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8", "onnx")
"""``auto`` picks one of the others per machine. ``onnx`` is fp32 arithmetic through ONNX
Runtime instead of torch (the same weights, exported on first use)."""

MIN_COSINE = 0.995
"""Lowest cosine to the fp32 vector of the same text a variant may give (worst text)."""
MIN_TOP10_OVERLAP = 0.98
"""Lowest mean share of the fp32 top-10 neighbours a variant must keep."""
MIN_SPEEDUP = 1.1
"""``auto`` takes a variant only if it embeds a query at least this much faster than fp32."""

Encoder = Callable[[list[str]], np.ndarray]
"""Texts -> unit float32 vectors, one row per text."""

_CACHE_FORMAT = 1


@dataclass(frozen=True)
class Quality:
    """How close a variant's vectors are to fp32's on the same texts."""

    top10_overlap_mean: float
    top10_overlap_min: float
    cosine_min: float
    cosine_mean: float

    def holds(self) -> bool:
        """Within the bar: :data:`MIN_COSINE` and :data:`MIN_TOP10_OVERLAP` both met."""
        return self.cosine_min >= MIN_COSINE and self.top10_overlap_mean >= MIN_TOP10_OVERLAP


def vector_quality(
    ref_queries: np.ndarray,
    ref_docs: np.ndarray,
    queries: np.ndarray,
    docs: np.ndarray,
    k: int = 10,
) -> Quality:
    """Compare a variant's query and document vectors with fp32's (``ref_*``), row for row.

    Top-k overlap: for every query, the share of its fp32 top-k documents (fp32 query against
    fp32 documents) that the variant's query finds among the variant's documents. Cosines cover
    the queries and the documents.
    """
    k = min(k, ref_docs.shape[0])
    cos = np.concatenate(
        [np.einsum("ij,ij->i", ref_queries, queries), np.einsum("ij,ij->i", ref_docs, docs)]
    )
    ref_top = np.argpartition(-(ref_queries @ ref_docs.T), k - 1, axis=1)[:, :k]
    top = np.argpartition(-(queries @ docs.T), k - 1, axis=1)[:, :k]
    overlap = np.array(
        [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(ref_top, top, strict=True)]
    )
    return Quality(
        top10_overlap_mean=round(float(overlap.mean()), 5),
        top10_overlap_min=round(float(overlap.min()), 5),
        cosine_min=round(float(cos.min()), 6),
        cosine_mean=round(float(cos.mean()), 6),
    )


def native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); without it autocast to bf16
    runs emulated and is slower than fp32."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None and check():
            return True
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def _cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- the measured choice
@dataclass
class Check:
    """One candidate measured against fp32 on the built-in texts."""

    variant: str
    quality: Quality | None = None
    speedup: float | None = None  # fp32 time per query / the variant's (median)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.quality is not None
            and self.quality.holds()
            and self.speedup is not None
            and self.speedup >= MIN_SPEEDUP
        )


@dataclass
class Choice:
    """What ``auto`` picked, why, and the measurements behind it."""

    variant: str
    reason: str
    checks: list[Check] = field(default_factory=list)
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Choice:
        checks = [
            Check(
                variant=c["variant"],
                quality=Quality(**c["quality"]) if c.get("quality") else None,
                speedup=c.get("speedup"),
                error=c.get("error"),
            )
            for c in data.get("checks", [])
        ]
        return cls(str(data["variant"]), str(data["reason"]), checks, cached=True)


def calibration_texts() -> tuple[list[str], list[str]]:
    """Built-in queries (abstracts) and documents (titles, and title + abstract) of 28 papers."""
    data = Path(__file__).parent / "data" / "sample_papers.jsonl"
    papers = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    queries = [p["abstract"] for p in papers]
    docs = [p["title"] for p in papers] + [f"{p['title']}\n{p['abstract']}" for p in papers]
    return queries, docs


def measure(
    reference: Encoder, candidate: Encoder, name: str, timed_queries: int = 8, rounds: int = 2
) -> Check:
    """Quality and query speed of ``candidate`` against ``reference`` (fp32) on the built-in
    texts; the single-query timings alternate between the two (median of each)."""
    queries, docs = calibration_texts()
    try:
        quality = vector_quality(
            reference(queries), reference(docs), candidate(queries), candidate(docs)
        )
        times: dict[str, list[float]] = {"ref": [], "cand": []}
        sample = queries[:timed_queries]
        reference(sample[:1])  # warm-up
        candidate(sample[:1])
        for r in range(rounds):
            for i, text in enumerate(sample):
                sides = ("ref", "cand") if (i + r) % 2 == 0 else ("cand", "ref")
                for side in sides:
                    encode = reference if side == "ref" else candidate
                    t = time.perf_counter()
                    encode([text])
                    times[side].append(time.perf_counter() - t)
    except Exception as exc:  # a variant this torch build cannot run is not a candidate
        return Check(name, error=f"{type(exc).__name__}: {exc}")
    speedup = statistics.median(times["ref"]) / statistics.median(times["cand"])
    return Check(name, quality=quality, speedup=round(speedup, 3))


def choose(
    reference: Encoder, candidates: Mapping[str, Encoder], skipped: Sequence[str] = ()
) -> Choice:
    """The fastest candidate within the bar and at least :data:`MIN_SPEEDUP` faster, else fp32.

    ``skipped`` explains candidates left out without measuring (e.g. no native bf16).
    """
    checks = [measure(reference, encode, name) for name, encode in candidates.items()]
    winners = sorted((c for c in checks if c.passed), key=lambda c: -(c.speedup or 0.0))
    notes = [_describe(c) for c in checks] + list(skipped)
    if winners:
        return Choice(winners[0].variant, "; ".join(notes), checks)
    return Choice("fp32", "; ".join(notes) or "no candidate", checks)


def _describe(check: Check) -> str:
    if check.error:
        return f"{check.variant} failed to run ({check.error})"
    q = check.quality
    assert q is not None
    verdict = "within the bar" if q.holds() else "beyond the bar"
    return (
        f"{check.variant} {verdict} (top-10 overlap {q.top10_overlap_mean:.3f}, min cosine "
        f"{q.cosine_min:.4f}), {check.speedup:.2f}x fp32's query speed"
    )


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """``$STEPBACK_PROFILE_CACHE``, or ``langchain-stepback-profile`` in the XDG cache folder:
    the verdicts of ``auto`` and the encoder's ONNX export."""
    root = os.environ.get("STEPBACK_PROFILE_CACHE")
    if root:
        return Path(root)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "langchain-stepback-profile"


def cache_file() -> Path:
    """``embedding-precision.json`` in :func:`cache_dir`."""
    return cache_dir() / "embedding-precision.json"


def machine_key(threads: int, candidates: Sequence[str]) -> str:
    """What the verdict depends on: CPU, package and torch versions, threads, candidates."""
    import torch

    try:
        version = importlib.metadata.version("langchain-stepback-profile")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        version = "source"
    capability = torch.backends.cpu.get_cpu_capability()
    return (
        f"v{_CACHE_FORMAT}|{_cpu_model()}|{capability}|bf16={native_bf16()}|package {version}|"
        f"torch {torch.__version__}|threads {threads}|candidates {','.join(candidates)}"
    )


def cached_choice(key: str) -> Choice | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        entry = json.loads(cache_file().read_text()).get(key)
        if entry is not None:
            return Choice.from_json(entry)
    return None


def store_choice(key: str, choice: Choice) -> None:
    """Remember the verdict (best effort: a read-only home only costs a new measurement)."""
    path = cache_file()
    with contextlib.suppress(OSError):
        try:
            entries = json.loads(path.read_text())
            if not isinstance(entries, dict):
                entries = {}
        except (OSError, ValueError):
            entries = {}
        entries[key] = choice.to_json()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1) + "\n")
        os.replace(tmp, path)
