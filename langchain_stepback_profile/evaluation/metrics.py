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

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_stepback_profile.errors import FewItemsWarning, InvalidArgumentError
from langchain_stepback_profile.extras import require_extra

if TYPE_CHECKING:
    from rouge_score import rouge_scorer

__all__ = [
    "MIN_ITEMS",
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
    require_extra("eval", "rouge_score", feature="ROUGE scoring")
    from rouge_score import rouge_scorer

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
MIN_ITEMS = 10
"""Intervals over fewer items are computed but not meaningful: a nominal 95% bootstrap
interval covers the true mean only about 70-85% of the time at 5 items and 82-92% at 10 (per-item
ROUGE-1 and paired differences of earlier runs, docs/benchmarks/text_tools.md). They raise a
:class:`FewItemsWarning` and reports mark them."""

BOOTSTRAP_METHOD = "BCa"
"""scipy's bias-corrected and accelerated bootstrap: it adjusts the percentiles for the bias
and skew of the resampled statistic (per-item ROUGE and paired differences are bounded and
skewed), for one jackknife pass over the items. On earlier runs' scores its mean coverage is
closer to the nominal level than the plain percentile interval's at every n tried (5-80 items;
not for every population), for intervals 0-10% wider. Where it is undefined (no spread among
the jackknife values) the percentile interval of the same resamples is used."""


def _warn_if_few(n: int, confidence: float, stacklevel: int = 3) -> None:
    if n < MIN_ITEMS:
        warnings.warn(
            f"a {confidence:.0%} bootstrap interval over {n} item{'s' if n != 1 else ''} is not "
            f"meaningful (it needs at least {MIN_ITEMS}); it is reported, marked as such",
            FewItemsWarning,
            stacklevel=stacklevel,
        )


@lru_cache(maxsize=1)
def _rng_keyword() -> str:
    from scipy import stats

    return "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def _bootstrap(
    statistic: Callable[..., Any],
    n: int,
    *,
    n_resamples: int,
    seed: int,
    confidence: float,
    vectorized: bool,
) -> tuple[float, float]:
    """``(low, high)`` of ``statistic`` over item indices ``0..n-1`` resampled with
    replacement (scipy's BCa bootstrap, seeded)."""
    require_extra("eval", "scipy", feature="bootstrap intervals")
    from scipy import stats

    with warnings.catch_warnings():  # an undefined BCa interval is replaced below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            (np.arange(n),),
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=BOOTSTRAP_METHOD,
            vectorized=vectorized,
            **{_rng_keyword(): np.random.default_rng(seed)},
        )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(result.bootstrap_distribution, [tail, 1.0 - tail])
    return float(low), float(high)


def _constant(values: np.ndarray) -> bool:
    """All values equal (up to rounding): every resample has the same mean."""
    return bool(np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())))


def bootstrap_ci(
    per_item: Sequence[float], *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of per-item scores and its bootstrap interval (BCa, seeded): ``(mean, low, high)``.

    Under :data:`MIN_ITEMS` items the interval is not meaningful: a :class:`FewItemsWarning`
    says so. Equal values (or one item) give ``(mean, mean, mean)``.
    """
    return _mean_ci(per_item, n_resamples=n_resamples, seed=seed, confidence=confidence)


def _mean_ci(
    per_item: Sequence[float] | np.ndarray,
    *,
    n_resamples: int,
    seed: int,
    confidence: float,
    stacklevel: int = 4,
) -> tuple[float, float, float]:
    _check_bootstrap(n_resamples, confidence)
    values = np.asarray(per_item, dtype=float)
    if values.size == 0:
        raise InvalidArgumentError("no per-item scores to bootstrap; pass at least one")
    _warn_if_few(values.size, confidence, stacklevel)
    mean = float(values.mean())
    if values.size < 2 or _constant(values):
        return mean, mean, mean
    low, high = _bootstrap(
        lambda idx, axis=-1: values[idx].mean(axis=axis),
        values.size,
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
        vectorized=True,
    )
    return mean, low, high


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
    """Corpus-level ``fn(preds, golds, **kw)`` and its bootstrap interval (BCa, seeded).

    Items are resampled with replacement and ``fn`` is recomputed on every resample, so this
    works for metrics that do not decompose per item (macro-F1, RMSE). Under
    :data:`MIN_ITEMS` items a :class:`FewItemsWarning` says the interval is not meaningful.
    """
    _check_bootstrap(n_resamples, confidence)
    _check_pair(preds, golds)
    _warn_if_few(len(preds), confidence)
    point = float(fn(preds, golds, **kw))
    if len(preds) < 2:
        return point, point, point

    def statistic(idx: np.ndarray) -> float:
        return fn([preds[i] for i in idx], [golds[i] for i in idx], **kw)

    low, high = _bootstrap(
        statistic,
        len(preds),
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
        vectorized=False,
    )
    return point, low, high


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired items and its bootstrap interval: ``(mean, low, high)``.

    Items are resampled as pairs (the interval of the mean per-item difference), as
    :func:`bootstrap_ci` does for one method, with the same warning under :data:`MIN_ITEMS`.
    """
    if len(a) != len(b):
        raise InvalidArgumentError(
            f"a has {len(a)} scores but b has {len(b)}; pass per-item scores on the same items"
        )
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return _mean_ci(diff, n_resamples=n_resamples, seed=seed, confidence=confidence)
