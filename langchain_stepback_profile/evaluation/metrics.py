"""Scores for the evaluation harness: ROUGE, accuracy, macro-F1, MAE/RMSE and bootstrap CIs.

Metrics follow the LaMP benchmark's conventions: a label prediction outside the label set
is simply wrong, and an unreadable rating is replaced by the worst possible rating (1 or 5,
whichever is farther from the gold one).

Example:
    >>> accuracy(["[1]", "[2]"], ["[1]", "[1]"])
    0.5
    >>> mae([4, None], [5, 2])
    2.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from rouge_score import rouge_scorer

from langchain_stepback_profile.errors import InvalidArgumentError

__all__ = [
    "absolute_errors",
    "accuracy",
    "bootstrap_ci",
    "bootstrap_metric",
    "correct_per_item",
    "macro_f1",
    "mae",
    "paired_bootstrap",
    "rmse",
    "rouge_scores",
]

_RATING_MIN = 1.0
_RATING_MAX = 5.0


# ---------------------------------------------------------------- checks
def _check_pair(preds: Sequence[Any], golds: Sequence[Any], *, allow_empty: bool = False) -> None:
    if len(preds) != len(golds):
        raise InvalidArgumentError(
            f"got {len(preds)} predictions but {len(golds)} references; pass one per item"
        )
    if not allow_empty and not preds:
        raise InvalidArgumentError("no items to score; pass at least one prediction")


def _check_bootstrap(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise InvalidArgumentError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence}")


# ---------------------------------------------------------------- generation
@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """Per-item ROUGE-1 and ROUGE-L F1 (Porter stemming); an empty prediction scores 0."""
    _check_pair(predictions, references, allow_empty=True)
    scores: dict[str, list[float]] = {"rouge-1": [], "rouge-L": []}
    for prediction, reference in zip(predictions, references, strict=True):
        if not prediction.strip():
            scores["rouge-1"].append(0.0)
            scores["rouge-L"].append(0.0)
            continue
        result = _scorer().score(reference, prediction)
        scores["rouge-1"].append(float(result["rouge1"].fmeasure))
        scores["rouge-L"].append(float(result["rougeL"].fmeasure))
    return scores


# ---------------------------------------------------------------- labels
def correct_per_item(preds: Sequence[str | None], golds: Sequence[str]) -> list[float]:
    """1.0 where the prediction equals the gold label, else 0.0 (``None`` is wrong)."""
    _check_pair(preds, golds)
    return [
        1.0 if pred is not None and pred == gold else 0.0
        for pred, gold in zip(preds, golds, strict=True)
    ]


def accuracy(preds: Sequence[str | None], golds: Sequence[str]) -> float:
    """Share of exact label matches."""
    return float(np.mean(correct_per_item(preds, golds)))


def macro_f1(preds: Sequence[str | None], golds: Sequence[str], labels: Sequence[str]) -> float:
    """F1 averaged over ``labels``; predictions outside the set are wrong.

    A label that is neither predicted nor gold contributes an F1 of 0 to the average.
    """
    _check_pair(preds, golds)
    if not labels:
        raise InvalidArgumentError("labels is empty; pass the task's label set")
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({gold for gold in golds if gold not in index})
    if unknown:
        raise InvalidArgumentError(f"gold labels not in the label set: {unknown}")
    pred_ids = np.array([index.get(pred, -1) if pred is not None else -1 for pred in preds])
    gold_ids = np.array([index[gold] for gold in golds])
    f1s = []
    for i in range(len(labels)):
        tp = int(np.sum((pred_ids == i) & (gold_ids == i)))
        fp = int(np.sum((pred_ids == i) & (gold_ids != i)))
        fn = int(np.sum((pred_ids != i) & (gold_ids == i)))
        denominator = 2 * tp + fp + fn
        f1s.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(f1s))


# ---------------------------------------------------------------- ratings
def _as_float(value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _resolve_rating(pred: float | str | None, gold: float) -> float:
    number = _as_float(pred)
    if number is not None:
        return number
    # Unreadable: take the extreme rating farther from the gold one.
    return _RATING_MIN if abs(gold - _RATING_MIN) > abs(gold - _RATING_MAX) else _RATING_MAX


def absolute_errors(
    preds: Sequence[float | str | None], golds: Sequence[float | str]
) -> list[float]:
    """Per-item ``|pred - gold|`` for 1-5 ratings; unreadable predictions get the worst rating."""
    _check_pair(preds, golds)
    errors = []
    for pred, gold in zip(preds, golds, strict=True):
        gold_value = _as_float(gold)
        if gold_value is None:
            raise InvalidArgumentError(f"gold rating {gold!r} is not a number")
        errors.append(abs(_resolve_rating(pred, gold_value) - gold_value))
    return errors


def mae(preds: Sequence[float | str | None], golds: Sequence[float | str]) -> float:
    """Mean absolute error of 1-5 ratings (see :func:`absolute_errors`)."""
    return float(np.mean(absolute_errors(preds, golds)))


def rmse(preds: Sequence[float | str | None], golds: Sequence[float | str]) -> float:
    """Root mean squared error of 1-5 ratings (see :func:`absolute_errors`)."""
    return float(np.sqrt(np.mean(np.square(absolute_errors(preds, golds)))))


# ---------------------------------------------------------------- bootstrap
def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples`` rows of ``n`` item indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _interval(point: float, samples: np.ndarray, confidence: float) -> tuple[float, float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(point), float(low), float(high)


def bootstrap_ci(
    per_item: Sequence[float], *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of per-item scores and its percentile-bootstrap interval: ``(mean, low, high)``."""
    _check_bootstrap(n_resamples, confidence)
    values = np.asarray(per_item, dtype=float)
    if values.size == 0:
        raise InvalidArgumentError("no per-item scores to bootstrap; pass at least one")
    means = values[_resample_indices(values.size, n_resamples, seed)].mean(axis=1)
    return _interval(values.mean(), means, confidence)


def bootstrap_metric(
    fn: Callable[..., float],
    preds: Sequence[Any],
    golds: Sequence[Any],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    **kw: Any,
) -> tuple[float, float, float]:
    """Corpus-level ``fn(preds, golds, **kw)`` and its percentile-bootstrap interval.

    Items are resampled with replacement and ``fn`` is recomputed on every resample, so this
    works for metrics that do not decompose per item (macro-F1, RMSE).
    """
    _check_bootstrap(n_resamples, confidence)
    _check_pair(preds, golds)
    samples = np.array(
        [
            fn([preds[i] for i in row], [golds[i] for i in row], **kw)
            for row in _resample_indices(len(preds), n_resamples, seed)
        ]
    )
    return _interval(fn(preds, golds, **kw), samples, confidence)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired items and its bootstrap interval: ``(mean, low, high)``."""
    if len(a) != len(b):
        raise InvalidArgumentError(
            f"a has {len(a)} scores but b has {len(b)}; pass per-item scores on the same items"
        )
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bootstrap_ci(diff, n_resamples=n_resamples, seed=seed, confidence=confidence)
