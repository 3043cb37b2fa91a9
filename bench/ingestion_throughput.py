"""Ingestion throughput: ``ProfileMemory.add_histories`` vs raw ``SentenceTransformer.encode``.

Same process, same model object (``MiniLMEmbeddings().model``), same texts in the same order,
same batch size. Each side runs at least twice, alternating (raw, ours, ours, raw, ...), on a
fresh store every time; the best run of each is compared. Inside every ``add_histories`` run
the embedding call is timed too, so the store-side overhead (validation, SQLite inserts,
FAISS add + fsync'ed saves) is reported separately.

Data: real titles+abstracts from LaMP-5-like profiles (``../shared/data``); ~5k items over
~100 users (each user gets distinct papers sampled from the 1.3k unique profile papers).

Then the encoder's precision variants (``MiniLMEmbeddings(precision=...)``: fp32, bf16,
int8, onnx) each run ``add_histories`` on the same histories, interleaved (rotating order), and
their vectors are compared with fp32's on real queries and papers (top-10 neighbour overlap,
cosines): a faster variant counts only within the bar.

Usage:
    .venv/bin/python bench/ingestion_throughput.py            # full run
    .venv/bin/python bench/ingestion_throughput.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
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

NAME = "ingestion_throughput"
TARGET_RATIO = 0.90
TARGET_SPEEDUP = 2.0  # items/s of the fastest variant within the bar / fp32's


def make_histories(
    papers: list[dict], users: int, per_user: int, seed: int
) -> dict[str, list[dict]]:
    """``users`` users with ``per_user`` distinct real papers each, as LaMP dicts."""
    rng = np.random.default_rng(seed)
    per_user = min(per_user, len(papers))
    histories = {}
    for u in range(users):
        picks = rng.choice(len(papers), size=per_user, replace=False)
        histories[f"user-{u:04d}"] = [dict(papers[int(i)]) for i in picks]
    return histories


def texts_in_encode_order(histories: dict[str, list[dict]]) -> list[str]:
    """Exactly the texts ``add_histories`` embeds, in its order (users, then items)."""
    from langchain_stepback_profile.history import to_history_items

    return [item.text for raw in histories.values() for item in to_history_items(raw)]


def padded_tokens(model: Any, calls: list[list[str]], batch_size: int) -> dict[str, int]:
    """Real vs padded token counts of these ``encode`` calls (length-sorted batches each)."""
    tok = model.tokenizer
    max_len = model.max_seq_length
    real = padded = 0
    for texts in calls:
        ids = tok(texts, truncation=True, max_length=max_len)["input_ids"]
        lengths = [min(len(x), max_len) for x in ids]
        # sentence-transformers sorts the texts of one encode() call by character length
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for b in range(0, len(order), batch_size):
            batch = [lengths[i] for i in order[b : b + batch_size]]
            padded += max(batch) * len(batch)
        real += sum(lengths)
    return {"calls": len(calls), "real_tokens": int(real), "padded_tokens": int(padded)}


def _cpu() -> float:
    """CPU seconds of this process (all threads), user + system."""
    t = os.times()
    return t.user + t.system


def run_raw(model: Any, texts: list[str], batch_size: int, variant: str) -> dict[str, Any]:
    """The bare sentence-transformers call, under bf16 autocast when ``variant`` is bf16."""
    import torch

    gc.collect()
    cpu = _cpu()
    t = time.perf_counter()
    with (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if variant == "bf16"
        else contextlib.nullcontext()
    ):
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    dt = time.perf_counter() - t
    assert vectors.shape[0] == len(texts)
    return {
        "seconds": round(dt, 3),
        "items_per_s": round(len(texts) / dt, 2),
        "cpu_seconds": round(_cpu() - cpu, 2),
        "loadavg": list(os.getloadavg()),
    }


def run_ours(
    emb: Any, histories: dict[str, list[dict]], n_items: int, workdir: Path, show_progress: bool
) -> dict[str, Any]:
    from langchain_stepback_profile import ProfileMemory

    path = Path(tempfile.mkdtemp(prefix="ingest-", dir=workdir)) / "store"
    gc.collect()
    encode_calls: list[float] = []
    inner = emb.encode
    calls_texts: list[list[str]] = []

    def timed_encode(*args: Any, **kwargs: Any) -> Any:
        calls_texts.append(list(args[0] if args else kwargs["texts"]))
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        encode_calls.append(time.perf_counter() - t0)
        return out

    try:
        cpu = _cpu()
        t = time.perf_counter()
        with ProfileMemory(path, embeddings=emb) as memory:
            emb.encode = timed_encode
            try:
                ids = memory.add_histories(histories, show_progress=show_progress)
            finally:
                del emb.encode
            dt = time.perf_counter() - t
            cpu = _cpu() - cpu
            stored = sum(memory.store.count_items(u) for u in histories)
            vectors = sum(memory._index.count(u) for u in histories)
        assert sum(len(v) for v in ids.values()) == n_items
        assert stored == vectors == n_items, (stored, vectors, n_items)
        enc = sum(encode_calls)
        return {
            "seconds": round(dt, 3),
            "items_per_s": round(n_items / dt, 2),
            "cpu_seconds": round(cpu, 2),
            "encode_seconds_inside": round(enc, 3),
            "store_overhead_seconds": round(dt - enc, 3),
            "store_overhead_share": round((dt - enc) / dt, 4),
            "encode_calls": len(encode_calls),
            "loadavg": list(os.getloadavg()),
            "_encode_call_texts": calls_texts,
        }
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def ingestion_floor(model: Any, texts: list[str], batch_size: int) -> dict[str, Any]:
    """The encoder's compute floor for these texts: MiniLM FLOPs of every text at its own
    token count (and of the length-sorted padded batches the encoder really runs) / the peak
    of a torch fp32 matmul of the FFN shape on the encoder's threads, this run."""
    import torch

    cfg = bl.minilm_config()
    lengths = bl.token_lengths(model, texts)
    real = sum(bl.encoder_flops(n, cfg) for n in lengths)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    padded = 0.0
    for b in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[b : b + batch_size]]
        padded += len(batch) * bl.encoder_flops(max(batch), cfg)
    # one text's FFN GEMM: a few ms a call, so on a shared machine some calls run undisturbed
    # (a batch-sized one is descheduled every time); a taller GEMM is no less efficient
    rows = int(np.median(lengths))
    peak = bl.sgemm_peak_gflops(torch.get_num_threads(), rows, cfg["hidden"], cfg["intermediate"])
    gflop_s = peak["gflop_s"]
    return {
        "model": cfg,
        "sgemm": peak,
        "tokens_mean": round(float(np.mean(lengths)), 1),
        "gflop_real_tokens": round(real / 1e9, 1),
        "gflop_padded_batches": round(padded / 1e9, 1),
        "floor_seconds": round(real / (gflop_s * 1e9), 3),
        "floor_items_per_s": round(len(texts) / (real / (gflop_s * 1e9)), 2),
        "floor_items_per_s_padded": round(len(texts) / (padded / (gflop_s * 1e9)), 2),
    }


def floor_lines(payload: dict[str, Any]) -> list[str]:
    fl = payload.get("floor")
    if not fl:
        return []
    cfg, best = fl["model"], payload["results"]["best_ours"]
    return [
        "## Physical floor",
        "",
        f"MiniLM FLOPs ({cfg['layers']} layers, hidden {cfg['hidden']}, FFN "
        f"{cfg['intermediate']}, {cfg['heads']} heads; per layer 8·L·H² + 4·L²·H + 4·L·H·I, "
        f"a multiply-add = 2) of the {payload['config']['items']:,} texts at their own token "
        f"counts (mean {fl['tokens_mean']}): {fl['gflop_real_tokens']} GFLOP "
        f"({fl['gflop_padded_batches']} GFLOP on the padded batches the encoder runs), "
        f"divided by the peak of a torch fp32 matmul "
        f"{' x '.join(map(str, fl['sgemm']['shape']))} on {fl['sgemm']['threads']} thread(s) "
        f"measured in this run, **{fl['sgemm']['gflop_s']} GFLOP/s**: floor "
        f"**{fl['floor_items_per_s']} items/s** ({fl['floor_items_per_s_padded']} items/s on "
        f"the padded batches). `add_histories` (auto, {payload['auto_precision']['variant']}) "
        f"runs at {best['items_per_s']} items/s, "
        f"{fl['floor_items_per_s'] / best['items_per_s']:.2f}x the floor's time. "
        f"A 2x of fp32's items/s at unchanged fp32 arithmetic needs fp32 to run at under half "
        "the floor's items/s already; otherwise only cheaper arithmetic (int8 or bf16 units, "
        "within the quality bar) or fewer FLOPs can give it.",
        "",
    ]


def markdown(payload: dict[str, Any]) -> str:
    r = payload["results"]
    rows = []
    for run in r["runs"]:
        rows.append(
            [
                run["order"],
                run["side"],
                run["seconds"],
                run["items_per_s"],
                run.get("cpu_seconds"),
                run.get("encode_seconds_inside"),
                run.get("store_overhead_seconds"),
            ]
        )
    t_runs = bl.md_table(
        ["#", "side", "seconds", "items/s", "CPU s", "embedding s (inside)", "store overhead s"],
        rows,
    )
    fl = payload.get("floor") or {}
    floor_ips = fl.get("floor_items_per_s")

    def vs_floor(items_per_s: float) -> str:
        return f"{floor_ips / items_per_s:.2f}" if floor_ips else ""

    variant = payload["auto_precision"]["variant"]
    best = bl.md_table(
        ["", "items/s (best)", "seconds (best)", "floor items/s", "measured / floor (time)"],
        [
            [
                f"raw `model.encode` ({variant}; fp32 = SentenceTransformer.encode)",
                r["best_raw"]["items_per_s"],
                r["best_raw"]["seconds"],
                floor_ips,
                vs_floor(r["best_raw"]["items_per_s"]),
            ],
            [
                "ProfileMemory.add_histories",
                r["best_ours"]["items_per_s"],
                r["best_ours"]["seconds"],
                floor_ips,
                vs_floor(r["best_ours"]["items_per_s"]),
            ],
            ["ratio ours / raw", f"{r['ratio']:.3f}", "", "", ""],
            [
                "ratio on CPU time (items per CPU-second, best of each)",
                f"{r['ratio_cpu']:.3f}",
                "",
                "",
                "",
            ],
        ],
    )
    t = payload["targets"]["throughput_ge_90pct_of_raw_encode"]
    pad = r["padding"]
    cfg = payload["config"]
    return "\n".join(
        [
            "# Ingestion throughput",
            "",
            f"`ProfileMemory.add_histories(histories, show_progress={cfg['show_progress']})` "
            "on a fresh store vs `SentenceTransformer.encode(texts, "
            f"batch_size={cfg['batch_size']}, normalize_embeddings=True)` on exactly the same "
            f"{cfg['items']:,} texts ({cfg['users']} users x {cfg['items_per_user']} real "
            "LaMP-5-like title+abstract items), same model object, same process, "
            f"runs alternating; best of {payload['config']['repeats']} each.",
            "",
            bl.machine_md(payload["machine"]),
            "",
            *head_lines(payload),
            "## Best of each",
            "",
            best,
            "",
            "## All runs (in the order they ran)",
            "",
            t_runs,
            "",
            "## Targets",
            "",
            f"- {t['target']}: ratio {r['ratio']:.3f} — **{'met' if t['met'] else 'NOT met'}**",
            *target_lines(payload),
            "",
            *precision_lines(payload),
            *floor_lines(payload),
            "## Notes",
            "",
            "- Padding (what the model computes on): the raw side's one `encode` call pads "
            f"{pad['raw_one_call']['real_tokens']:,} real tokens to "
            f"{pad['raw_one_call']['padded_tokens']:,}; `add_histories` made "
            f"{pad['add_histories_calls']['calls']} `encode` call(s) padded to "
            f"{pad['add_histories_calls']['padded_tokens']:,} tokens.",
            "- Store-side overhead of the best `add_histories` run: "
            f"{r['best_ours']['store_overhead_seconds']} s "
            f"({100 * r['best_ours']['store_overhead_share']:.1f}% of its time: validation, "
            "SQLite, FAISS add, fsync'ed index saves).",
            "",
            "## Reproduce",
            "",
            f"    {payload['command']}",
            "",
            f"Library measured: `{payload['library_path']}`. Total run time "
            f"{payload['wall_s']} s. The machine is shared; "
            "the load average at each run is in the JSON.",
            "",
        ]
    )


def run_precisions(
    embedders: dict[str, Any],
    histories: dict[str, list[dict]],
    n: int,
    workdir: Path,
    repeats: int,
    log: bl.Progress,
) -> list[dict[str, Any]]:
    """``add_histories`` once per variant per round, the order rotating between rounds."""
    names = list(embedders)
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            out = run_ours(embedders[name], histories, n, workdir, show_progress=False)
            out.pop("_encode_call_texts")
            runs.append({"order": len(runs) + 1, "precision": name, **out})
            log(f"  precision {name}: {out['items_per_s']} items/s ({out['seconds']} s)")
    return runs


def precision_summary(runs: list[dict[str, Any]], quality: dict[str, Any]) -> dict[str, Any]:
    best = {}
    for run in runs:
        name = run["precision"]
        if name not in best or run["items_per_s"] > best[name]["items_per_s"]:
            best[name] = run
    ref = best["fp32"]["items_per_s"]
    return {
        name: {
            "best_items_per_s": run["items_per_s"],
            "speedup_vs_fp32": round(run["items_per_s"] / ref, 3),
            **quality["variants"][name],
        }
        for name, run in best.items()
    }


def head_lines(payload: dict[str, Any]) -> list[str]:
    auto = payload["auto_precision"]
    reason = (auto.get("choice") or {}).get("reason")
    return [
        f"`MiniLMEmbeddings()` (precision='auto', the default) runs **{auto['variant']}** on "
        "this machine" + (f": {reason}." if reason else "."),
        "",
    ]


def target_lines(payload: dict[str, Any]) -> list[str]:
    t = payload["targets"].get("add_histories_2x_fp32_within_bar")
    if not t:
        return []
    return [
        f"- {t['target']}: best within the bar {t['best_within_bar']} at "
        f"{t['speedup']:.2f}x — **{'met' if t['met'] else 'NOT met'}**"
    ]


def precision_lines(payload: dict[str, Any]) -> list[str]:
    summary = payload["results"].get("precision")
    if not summary:
        return []
    q = payload["precision_quality"]
    floor_ips = (payload.get("floor") or {}).get("floor_items_per_s")
    rows = [
        [
            name,
            "yes" if s["holds_bar"] else "**no**",
            f"{s['top10_overlap_mean']:.4f} / {s['top10_overlap_min']:.2f}",
            f"{s['cosine_min']:.5f} / {s['cosine_mean']:.5f}",
            s["best_items_per_s"],
            f"{s['speedup_vs_fp32']:.2f}",
            s["docs_items_per_s"],
            floor_ips,
            f"{floor_ips / s['best_items_per_s']:.2f}" if floor_ips else "",
        ]
        for name, s in summary.items()
    ]
    runs = [
        [r["order"], r["precision"], r["seconds"], r["items_per_s"], r["cpu_seconds"]]
        for r in payload["results"]["precision_runs"]
    ]
    return [
        "## Encoder precision",
        "",
        f"`ProfileMemory.add_histories` on the same {payload['config']['items']:,} items with "
        "`MiniLMEmbeddings(precision=...)`, one fresh store per run, the variants interleaved "
        f"(rotating order), best of {payload['config']['precision_rounds']} each. Quality "
        f"against fp32 on {q['queries']} real LaMP-5-like abstracts as queries and "
        f"{q['documents']:,} real papers as documents (top-10 overlap mean / worst query; "
        "cosine of the same text's vectors, worst / mean); the bar is overlap >= 0.98 and "
        "worst cosine >= 0.995. The last column is the plain encode of those papers during "
        "the quality check.",
        "",
        bl.md_table(
            [
                "precision",
                "within the bar",
                "top-10 overlap mean / min",
                "cosine min / mean",
                "add_histories items/s (best)",
                "vs fp32",
                "encode items/s (quality check)",
                "fp32 floor items/s",
                "measured / floor (time)",
            ],
            rows,
        ),
        "",
        bl.md_table(["#", "precision", "seconds", "items/s", "CPU s"], runs),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", type=Path, default=bl.ROOT / "docs" / "benchmarks")
    parser.add_argument("--users", type=int, default=None, help="default 100 (quick 4)")
    parser.add_argument("--items-per-user", type=int, default=None, help="default 50 (quick 8)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side (>= 2)")
    parser.add_argument(
        "--no-progress", action="store_true", help="add_histories(show_progress=False)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--precisions",
        default=",".join(bl.PRECISION_VARIANTS),
        help="encoder precisions compared ('' = none)",
    )
    parser.add_argument("--quality-queries", type=int, default=None, help="default 300 (quick 10)")
    parser.add_argument(
        "--quality-docs", type=int, default=None, help="default all 1,305 papers (quick 40)"
    )
    args = parser.parse_args(argv)
    users = args.users or (4 if args.quick else 100)
    per_user = args.items_per_user or (8 if args.quick else 50)
    repeats = max(2, args.repeats)
    show_progress = not args.no_progress
    log = bl.Progress()
    t_start = time.perf_counter()

    from langchain_stepback_profile import MiniLMEmbeddings

    questions = bl.load_lamp5()
    papers = bl.lamp5_papers(questions)
    histories = make_histories(papers, users, per_user, args.seed)
    texts = texts_in_encode_order(histories)
    n = len(texts)
    log(f"{n} items over {users} users; loading MiniLM")
    emb = MiniLMEmbeddings()
    model = emb.model
    batch_size = emb.batch_size
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    machine = bl.machine_info()
    log("floor: sgemm peak at the encoder's shape and threads")
    floor = ingestion_floor(model, texts, batch_size)
    padding: dict[str, Any] = {"raw_one_call": padded_tokens(model, [texts], batch_size)}
    workdir = Path(tempfile.mkdtemp(prefix="stepback-ingest-", dir=args.workdir))
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(repeats):
            sides = ("raw", "ours") if rep % 2 == 0 else ("ours", "raw")
            for side in sides:
                log(f"run {len(runs) + 1}/{2 * repeats}: {side}")
                if side == "raw":
                    out = run_raw(model, texts, batch_size, emb.variant)
                else:
                    out = run_ours(emb, histories, n, workdir, show_progress)
                    calls = out.pop("_encode_call_texts")
                    if "add_histories_calls" not in padding:
                        padding["add_histories_calls"] = padded_tokens(model, calls, batch_size)
                out = {"order": len(runs) + 1, "side": side, **out}
                runs.append(out)
                log(f"  {side}: {out['items_per_s']} items/s ({out['seconds']} s)")
        precisions = [p for p in args.precisions.split(",") if p]
        embedders = bl.precision_embedders(precisions, log) if precisions else {}
        precision_runs = (
            run_precisions(embedders, histories, n, workdir, 1 if args.quick else repeats, log)
            if embedders
            else []
        )
        quality = (
            bl.precision_quality(
                embedders,
                bl.lamp5_queries(questions)[: args.quality_queries or (10 if args.quick else 300)],
                bl.paper_texts(papers)[: args.quality_docs or (40 if args.quick else None)],
                log,
            )
            if embedders
            else None
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = precision_summary(precision_runs, quality) if quality else None
    targets: dict[str, Any] = {}
    if summary:
        within = {n: s for n, s in summary.items() if s["holds_bar"]}
        best_name = max(within, key=lambda n: within[n]["speedup_vs_fp32"])
        targets["add_histories_2x_fp32_within_bar"] = {
            "target": (
                f"add_histories items/s of the fastest variant within the bar >= "
                f"{TARGET_SPEEDUP}x fp32's (best of each, same run)"
            ),
            "best_within_bar": best_name,
            "speedup": within[best_name]["speedup_vs_fp32"],
            "met": within[best_name]["speedup_vs_fp32"] >= TARGET_SPEEDUP,
        }
    best_raw = max((r for r in runs if r["side"] == "raw"), key=lambda r: r["items_per_s"])
    best_ours = max((r for r in runs if r["side"] == "ours"), key=lambda r: r["items_per_s"])
    ratio = best_ours["items_per_s"] / best_raw["items_per_s"]
    cpu_raw = min(r["cpu_seconds"] for r in runs if r["side"] == "raw")
    cpu_ours = min(r["cpu_seconds"] for r in runs if r["side"] == "ours")
    payload = {
        **bl.report_head(NAME, argv, machine),
        "config": {
            "quick": args.quick,
            "users": users,
            "items_per_user": per_user,
            "items": n,
            "batch_size": batch_size,
            "repeats": repeats,
            "precision_rounds": 1 if args.quick else repeats,
            "show_progress": show_progress,
            "seed": args.seed,
            "data": str(bl.LAMP5),
            "mean_text_chars": round(float(np.mean([len(t) for t in texts])), 1),
        },
        "machine": machine,
        "results": {
            "runs": runs,
            "best_raw": best_raw,
            "best_ours": best_ours,
            "ratio": round(ratio, 4),
            "ratio_cpu": round(cpu_raw / cpu_ours, 4),
            "padding": padding,
            "precision_runs": precision_runs,
            "precision": summary,
        },
        "auto_precision": {
            "variant": emb.variant,
            "choice": emb.precision_choice.to_json() if emb.precision_choice else None,
        },
        "precision_quality": quality,
        "floor": floor,
        "targets": {
            "throughput_ge_90pct_of_raw_encode": {
                "target": (
                    f"add_histories items/s >= {TARGET_RATIO:.0%} of raw "
                    "SentenceTransformer.encode items/s (best of each)"
                ),
                "ratio": round(ratio, 4),
                "met": ratio >= TARGET_RATIO,
            },
            **targets,
        },
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    bl.write_json(args.out / f"{NAME}.json", payload)
    (args.out / f"{NAME}.md").write_text(markdown(payload))
    log(
        f"raw {best_raw['items_per_s']} items/s, ours {best_ours['items_per_s']} items/s, "
        f"ratio {ratio:.3f}"
    )
    log(f"wrote {args.out / (NAME + '.json')} and .md in {payload['wall_s']} s")
    return payload


if __name__ == "__main__":
    main()
