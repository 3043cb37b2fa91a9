"""From per-(method, item) results to the report: metrics with bootstrap CIs, paired
differences, diagnostics, costs and examples.

Example:
    ```python
    report = score(task, items, methods, records)
    report.rows["step-back"]["metrics"]["rouge-1"]
    # -> {'value': 0.31, 'low': 0.27, 'high': 0.35, 'meaningful': True}
    ```

``meaningful`` is False when fewer than ``metrics.MIN_ITEMS`` items were scored: the interval
is then reported but says nothing (``report.md`` shows "n/a").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from langchain_stepback_profile.evaluation.datasets import EvalItem
from langchain_stepback_profile.evaluation.methods import Method
from langchain_stepback_profile.evaluation.metrics import (
    MIN_ITEMS,
    absolute_errors,
    bootstrap_ci,
    bootstrap_metric,
    correct_per_item,
    macro_f1,
    paired_bootstrap,
    rmse,
    rouge_scores,
)
from langchain_stepback_profile.evaluation.tasks import EvalTask

EXAMPLE_WORDS = 60
"""Words of the input an example shows."""


@dataclass
class EvalReport:
    """The outcome of an evaluation run, ready to be written as JSON, markdown and charts.

    ``rows`` maps each method to its metrics (value and 95% bootstrap interval), paired
    differences, cost per query and diagnostics; ``examples`` shows a few items with every
    method's output beside the gold.

    Example:
        ```python
        report = run_eval("LaMP-7", "../shared/data/LaMP_7", limit=10)
        report.rows["few-shot"]["metrics"]["rouge-1"]["value"]
        ```
    """

    task: str
    kind: str
    metrics: list[str]
    n_items: int
    item_ids: list[str]
    rows: dict[str, dict[str, Any]]
    examples: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        return cls(**data)


def _interval(values: tuple[float, float, float], n: int) -> dict[str, Any]:
    """A value and its interval; ``meaningful`` is False under ``MIN_ITEMS`` items."""
    value, low, high = values
    return {
        "value": round(value, 4),
        "low": round(low, 4),
        "high": round(high, 4),
        "meaningful": n >= MIN_ITEMS,
    }


def _diff(values: tuple[float, float, float], n: int) -> dict[str, Any]:
    diff, low, high = values
    return {
        "diff": round(diff, 4),
        "low": round(low, 4),
        "high": round(high, 4),
        "meaningful": n >= MIN_ITEMS,
    }


@dataclass
class _Scored:
    """One method's per-item scores (for paired differences) and corpus-level metrics."""

    per_item: dict[str, list[float]]
    metrics: dict[str, dict[str, Any]]
    parsed: list[str | None]


def _score(
    task: EvalTask,
    outputs: Sequence[str],
    golds: Sequence[str],
    labels: Sequence[str],
    seed: int,
) -> _Scored:
    parsed = [task.parse(o, labels) for o in outputs]
    n = len(outputs)
    if task.kind == "generation":
        per_item = rouge_scores(list(outputs), list(golds))
        metrics = {name: _interval(bootstrap_ci(v, seed=seed), n) for name, v in per_item.items()}
        return _Scored(per_item, metrics, parsed)
    if task.kind == "classification":
        correct = correct_per_item(parsed, golds)
        return _Scored(
            {"accuracy": correct},
            {
                "accuracy": _interval(bootstrap_ci(correct, seed=seed), n),
                "macro-F1": _interval(
                    bootstrap_metric(macro_f1, parsed, list(golds), seed=seed, labels=labels), n
                ),
            },
            parsed,
        )
    errors = absolute_errors(parsed, golds)
    return _Scored(
        {"MAE": errors},
        {
            "MAE": _interval(bootstrap_ci(errors, seed=seed), n),
            "RMSE": _interval(bootstrap_metric(rmse, parsed, list(golds), seed=seed), n),
        },
        parsed,
    )


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0


def _diagnostics(
    records: Sequence[Mapping[str, Any]],
    golds: Sequence[str],
    parsed: Sequence[str | None],
    task: EvalTask,
) -> dict[str, float]:
    outputs = [r["output"] for r in records]
    diagnostics = {
        "output_words": _mean([len(o.split()) for o in outputs]),
        "gold_words": _mean([len(g.split()) for g in golds]),
        "copied": _mean([float(r.get("copied", False)) for r in records]),
        "empty": _mean([float(not o.strip()) for o in outputs]),
        "rejected": _mean([float(_rejected(r)) for r in records]),
        "fallback": _mean([float(bool(r.get("control", {}).get("fallback"))) for r in records]),
        "errors": float(sum(1 for r in records if r.get("error"))),
    }
    if task.kind != "generation":
        diagnostics["unparseable"] = _mean([float(p is None) for p in parsed])
    return diagnostics


def _rejected(record: Mapping[str, Any]) -> bool:
    """Output control refused the answer to the method's own prompt (the output then comes
    from the plain-prompt regeneration or the fallback)."""
    verdicts = record.get("control", {}).get("verdicts") or ["ok"]
    return verdicts[0] != "ok"


def _cost(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    return {
        key: _mean([float(r.get(key, 0)) for r in records])
        for key in ("llm_calls", "tokens_in", "tokens_out", "seconds")
    }


def score(
    task: EvalTask,
    items: Sequence[EvalItem],
    methods: Sequence[Method],
    records: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    seed: int = 0,
    n_examples: int = 3,
    example_profiles: Mapping[str, str] | None = None,
) -> EvalReport:
    """The report of ``methods`` on ``items`` from ``records`` keyed by (method, item id).

    Only items every method has a result for are scored, so rows are compared on the same
    items; differences are paired bootstraps over those items.
    """
    complete = [i for i in items if all((m.name, i.id) in records for m in methods)]
    golds = [i.gold for i in complete]
    labels = task.labels([i.prompt for i in complete]) if complete else ()
    scored: dict[str, _Scored] = {}
    rows: dict[str, dict[str, Any]] = {}
    for method in methods:
        mine = [records[(method.name, i.id)] for i in complete]
        if not complete:
            rows[method.name] = {"description": method.description, "layout": method.layout}
            continue
        scored[method.name] = _score(task, [r["output"] for r in mine], golds, labels, seed)
        rows[method.name] = {
            "description": method.description,
            "layout": method.layout,
            "compare_to": method.compare_to,
            "metrics": scored[method.name].metrics,
            "cost": _cost(mine),
            "diagnostics": _diagnostics(mine, golds, scored[method.name].parsed, task),
        }
    for method in methods:
        if method.name not in scored:
            continue
        row = rows[method.name]
        for key, other in (
            ("vs_non_personalized", "non-personalized"),
            ("vs_baseline", task.baseline),
            ("vs_compare_to", method.compare_to),
        ):
            if other in scored and other != method.name:
                row[key] = {
                    name: _diff(
                        paired_bootstrap(values, scored[other].per_item[name], seed=seed),
                        len(values),
                    )
                    for name, values in scored[method.name].per_item.items()
                }
    examples = [
        {
            "id": item.id,
            "users": item.user_ids,
            "input": _head(item.input_text),
            "gold": item.gold,
            "profile": (example_profiles or {}).get(item.id),
            "outputs": {m.name: records[(m.name, item.id)]["output"] for m in methods},
        }
        for item in complete[:n_examples]
    ]
    return EvalReport(
        task=task.name,
        kind=task.kind,
        metrics=list(task.metrics),
        n_items=len(complete),
        item_ids=[i.id for i in complete],
        rows=rows,
        examples=examples,
        config={"labels": list(labels)} if labels else {},
    )


def _head(text: str, words: int = EXAMPLE_WORDS) -> str:
    split = text.split()
    return text if len(split) <= words else " ".join(split[:words]) + " ..."
