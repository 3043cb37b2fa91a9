"""Writing an :class:`~.scoring.EvalReport`: ``report.json``, ``report.md`` and two PNG charts
(each metric per method with its 95% interval; the cost of a query per method).

Example:
    ```python
    paths = write_report(report, Path("docs/benchmarks/eval/LaMP-7"))
    print(results_table(report))
    ```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_stepback_profile.evaluation.metrics import MIN_ITEMS
from langchain_stepback_profile.evaluation.scoring import EvalReport
from langchain_stepback_profile.evaluation.tasks import ATTRIBUTION_DEFAULT
from langchain_stepback_profile.extras import require_extra

HIGHER_IS_BETTER = {"rouge-1": True, "rouge-L": True, "accuracy": True, "macro-F1": True}
"""Direction of each metric (MAE and RMSE: lower is better)."""


NOT_MEANINGFUL = "n/a"
"""Shown instead of an interval computed over fewer than ``MIN_ITEMS`` items."""


def _meaningful(cell: dict[str, Any], few: bool) -> bool:
    """Reports written before cells carried ``meaningful`` are judged by their item count."""
    return bool(cell.get("meaningful", not few))


def _ci(cell: dict[str, Any] | None, key: str = "value", few: bool = False) -> str:
    if not cell:
        return "-"
    if not _meaningful(cell, few):
        return f"{cell[key]:.3f} [{NOT_MEANINGFUL}]"
    return f"{cell[key]:.3f} [{cell['low']:.3f}, {cell['high']:.3f}]"


def _signed(cell: dict[str, Any] | None, few: bool = False) -> str:
    if not cell:
        return "-"
    if not _meaningful(cell, few):
        return f"{cell['diff']:+.3f} [{NOT_MEANINGFUL}]"
    return f"{cell['diff']:+.3f} [{cell['low']:+.3f}, {cell['high']:+.3f}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _headline(report: EvalReport) -> str:
    """The metric differences are paired on: the first per-item one."""
    return report.metrics[0]


def results_table(report: EvalReport) -> str:
    """Method x metric with 95% CIs, paired differences of the headline metric (to the
    non-personalized row, the calibration baseline and the row's control), and cost."""
    head = _headline(report)
    few = report.n_items < MIN_ITEMS
    scored = {n: r for n, r in report.rows.items() if "metrics" in r}
    baseline = any("vs_baseline" in r for r in scored.values())
    header = [
        "method",
        "layout",
        *(f"{m} [95% CI]" for m in report.metrics),
        f"Δ {head} vs non-personalized",
        *([f"Δ {head} vs calibration baseline"] if baseline else []),
        f"Δ {head} vs paired row",
        "LLM calls/query",
        "s/query",
    ]
    rows = []
    for name, row in scored.items():
        paired = row.get("vs_compare_to", {}).get(head)
        rows.append(
            [
                name,
                row["layout"] or "-",
                *(_ci(row["metrics"].get(m), few=few) for m in report.metrics),
                _signed(row.get("vs_non_personalized", {}).get(head), few),
                *([_signed(row.get("vs_baseline", {}).get(head), few)] if baseline else []),
                f"{_signed(paired, few)} ({row['compare_to']})" if paired else "-",
                f"{row['cost']['llm_calls']:.2f}",
                f"{row['cost']['seconds']:.2f}",
            ]
        )
    return _table(header, rows)


def diagnostics_table(report: EvalReport) -> str:
    """Output length against gold length, copies, empty and unparseable outputs, answers output
    control refused (then regenerated with the plain prompt), fallbacks."""
    label_task = report.kind != "generation"
    header = [
        "method",
        "words (gold)",
        "copies of prompt text",
        "empty",
        *(["unparseable"] if label_task else []),
        "first answer rejected",
        "fallbacks",
        "context overflows",
        "tokens in/out per query",
    ]
    rows = []
    for name, row in report.rows.items():
        if "diagnostics" not in row:
            continue
        d, c = row["diagnostics"], row["cost"]
        rows.append(
            [
                name,
                f"{d['output_words']:.1f} ({d['gold_words']:.1f})",
                f"{d['copied']:.0%}",
                f"{d['empty']:.0%}",
                *([f"{d['unparseable']:.0%}"] if label_task else []),
                f"{d.get('rejected', 0):.0%}",
                f"{d['fallback']:.0%}",
                f"{int(d['errors'])}",
                f"{c['tokens_in']:.0f} / {c['tokens_out']:.0f}",
            ]
        )
    return _table(header, rows)


def markdown(report: EvalReport) -> str:
    """The whole report as markdown: settings, results, diagnostics, profiles, examples."""
    cfg = report.config
    p = report.profiles
    lines = [
        f"# Evaluation: {report.task}, {report.n_items} items",
        "",
        f"- data: `{cfg.get('data')}` (seed {cfg.get('seed')}, limit {cfg.get('limit')})",
        f"- model: `{cfg.get('llm')}`; embeddings: `{cfg.get('embeddings')}`; k = {cfg.get('k')}",
        f"- compute: {report.seconds.get('methods', 0):.0f} s of method runs and "
        f"{report.seconds.get('profiles', 0):.0f} s of profile building (over every call that "
        f"made these results); the last call took {report.seconds.get('this_call', 0):.0f} s",
        "- 95% CIs: BCa bootstrap over items (scipy, 1000 resamples, seeded); differences are "
        "paired over the same items. "
        + ", ".join(
            f"{m}: {'higher' if HIGHER_IS_BETTER.get(m, False) else 'lower'} is better"
            for m in report.metrics
        ),
        *(
            [
                f"- **intervals not meaningful** ({NOT_MEANINGFUL}): {report.n_items} items, "
                f"fewer than the {MIN_ITEMS} a bootstrap interval needs; the values are shown, "
                "their intervals are not"
            ]
            if report.n_items < MIN_ITEMS
            else []
        ),
        "",
        "## Results",
        "",
        results_table(report),
        "",
        "## Diagnostics",
        "",
        diagnostics_table(report),
        "",
    ]
    if p:
        lines += [
            "## Profiles",
            "",
            f"{p['users']} profiles ({p['strategy']}), built once and shared by every method: "
            f"{p['llm_calls']} LLM calls, {p['input_tokens'] + p['output_tokens']} tokens, "
            f"{p['seconds']:.0f} s."
            + (
                f" The model gave no valid profile for {p['failed']} of them: those users' "
                "prompts hold no profile."
                if p.get("failed")
                else ""
            ),
            "",
        ]
    lines += ["## Methods", ""]
    lines += [f"- `{name}`: {row['description']}" for name, row in report.rows.items()]
    lines += ["", "## Examples", ""]
    for ex in report.examples:
        lines += [f"### {ex['id']} ({', '.join(ex['users'])})", "", f"Input: {ex['input']}", ""]
        if ex.get("profile"):
            lines += ["Profile of the first user:", "", "```", ex["profile"], "```", ""]
        rows = [["gold", ex["gold"]]] + [[m, o or "(empty)"] for m, o in ex["outputs"].items()]
        lines += [_table(["", "output"], [[a, " ".join(b.split())] for a, b in rows]), ""]
    return "\n".join(lines)


def _colour(name: str, row: dict[str, Any]) -> str:
    """Grey for calibration baselines and references, light for other-user controls and a
    profile's topical-fields rows, blue for the rest."""
    if row["layout"] is None:
        return "#999999"
    return "#a6bddb" if name.endswith(("-other", "-topics")) else "#2b6cb0"


def _pyplot() -> Any:
    require_extra("eval", "matplotlib", feature="the evaluation charts")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _metrics_chart(report: EvalReport, out: Path) -> Path:
    """``metrics.png``: each metric per row, with its 95% interval."""
    plt = _pyplot()
    rows = {n: r for n, r in report.rows.items() if "metrics" in r}
    names = list(rows)[::-1]  # first method on top
    fig, axes = plt.subplots(
        1, len(report.metrics), figsize=(5 * len(report.metrics), 0.45 * len(names) + 1.5)
    )
    for ax, metric in zip(axes if len(report.metrics) > 1 else [axes], report.metrics, strict=True):
        cells = [rows[n]["metrics"][metric] for n in names]
        values = [c["value"] for c in cells]
        shown = [_meaningful(c, report.n_items < MIN_ITEMS) for c in cells]  # no bar if n/a
        errors = [
            [c["value"] - c["low"] if ok else 0.0 for c, ok in zip(cells, shown, strict=True)],
            [c["high"] - c["value"] if ok else 0.0 for c, ok in zip(cells, shown, strict=True)],
        ]
        ax.barh(names, values, xerr=errors, color=[_colour(n, rows[n]) for n in names], capsize=3)
        ax.set_xlabel(f"{metric} (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{report.task}: {report.n_items} items")
    return _save(plt, fig, out / "metrics.png")


def _charts(report: EvalReport, out: Path) -> list[Path]:
    metrics = _metrics_chart(report, out)
    plt = _pyplot()
    rows = {n: r for n, r in report.rows.items() if "metrics" in r}
    names = list(rows)[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.5))
    for ax, key, label in (
        (axes[0], "seconds", "seconds per query"),
        (axes[1], "llm_calls", "LLM calls per query"),
    ):
        ax.barh(names, [rows[n]["cost"][key] for n in names], color="#dd8452")
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{report.task}: cost per query (profiles excluded)")
    return [metrics, _save(plt, fig, out / "cost.png")]


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: EvalReport, out: str | Path) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``metrics.png`` and ``cost.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = report.to_dict()
    (out / "report.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(markdown(report) + "\n", encoding="utf-8")
    paths = [out / "report.json", out / "report.md"]
    if report.n_items:
        paths += _charts(report, out)
    return paths


# --------------------------------------------------------------------- attribution
def attribution_table(report: EvalReport) -> str:
    """Row x (accuracy@1, MRR) with 95% CIs, paired differences to the raw-history centroid,
    and each profile's length, supported claims and build cost."""
    few = report.n_items < MIN_ITEMS
    default = any("vs_default" in row for row in report.rows.values())
    header = [
        "row",
        *(f"{m} [95% CI]" for m in report.metrics),
        *(f"Δ {m} vs centroid" for m in report.metrics),
        *([f"Δ MRR vs {ATTRIBUTION_DEFAULT} (auto, small models)"] if default else []),
        "profile words",
        "supported claims",
        "failed",
        "LLM calls/user",
        "s/user",
    ]
    rows = []
    for name, row in report.rows.items():
        profile = row.get("profile")
        faithful = profile.get("faithfulness") if profile else None
        rows.append(
            [
                name,
                *(_ci(row["metrics"][m], few=few) for m in report.metrics),
                *(_signed(row.get("vs_centroid", {}).get(m), few) for m in report.metrics),
                *([_signed(row.get("vs_default", {}).get("MRR"), few)] if default else []),
                f"{profile['words']:.1f}" if profile else "-",
                f"{faithful:.0%}" if faithful is not None else "-",
                f"{profile['failed']}" if profile else "-",
                f"{profile['llm_calls_per_user']:.2f}" if profile else "-",
                f"{profile['seconds_per_user']:.2f}" if profile else "-",
            ]
        )
    return _table(header, rows)


def attribution_markdown(report: EvalReport) -> str:
    """The attribution report as markdown: settings, results, rows, examples."""
    cfg = report.config
    lines = [
        f"# Evaluation: {report.task}, {report.n_items} held-out items",
        "",
        f"- data: `{cfg.get('data')}` (seed {cfg.get('seed')}, limit {cfg.get('limit')}): each "
        "user's last item is held out, their profile is built from the items before it",
        f"- {cfg.get('n_candidates')} candidate users per held-out item (its author and others "
        "drawn at random, never a co-author), ranked by the cosine of the item's embedding "
        "with each candidate's rendered profile (supported claims only)",
        f"- profile model: `{cfg.get('llm') or 'none (no row calls one)'}`; embeddings: "
        f"`{cfg.get('embeddings')}`",
        f"- this call took {report.seconds.get('this_call', 0):.0f} s (cached profiles cost "
        "nothing again; s/user is what each profile took to build)",
        "- 95% CIs: BCa bootstrap over held-out items (scipy, 1000 resamples, seeded); "
        "differences are paired over the same items; higher is better",
        *(
            [
                f"- **intervals not meaningful** ({NOT_MEANINGFUL}): {report.n_items} items, "
                f"fewer than the {MIN_ITEMS} a bootstrap interval needs"
            ]
            if report.n_items < MIN_ITEMS
            else []
        ),
        "",
        "## Results",
        "",
        attribution_table(report),
        "",
        "## Rows",
        "",
        *(f"- `{name}`: {row['description']}" for name, row in report.rows.items()),
        "",
        "## Examples",
        "",
    ]
    for ex in report.examples:
        lines += [f"### {ex['id']} ({', '.join(ex['users'])})", "", f"Held out: {ex['input']}", ""]
        for source, text in (ex.get("profile") or {}).items():
            lines += [f"Profile ({source}):", "", "```", text, "```", ""]
        ranks = [[name, rank] for name, rank in ex["outputs"].items()]
        lines += [_table(["row", "rank of the author (1 / reciprocal rank)"], ranks), ""]
    return "\n".join(lines)


def write_attribution_report(report: EvalReport, out: str | Path) -> list[Path]:
    """Write an attribution run's ``report.json``, ``report.md`` and ``metrics.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(
        json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(attribution_markdown(report) + "\n", encoding="utf-8")
    paths = [out / "report.json", out / "report.md"]
    if report.n_items:
        paths.append(_metrics_chart(report, out))
    return paths
