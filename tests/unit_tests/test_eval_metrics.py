"""Metrics on hand-made fixtures whose values are worked out by hand."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from langchain_stepback_profile.errors import FewItemsWarning, InvalidArgumentError
from langchain_stepback_profile.evaluation.metrics import (
    absolute_errors,
    accuracy,
    bootstrap_ci,
    bootstrap_metric,
    correct_per_item,
    macro_f1,
    mae,
    paired_bootstrap,
    rmse,
    rouge_scores,
)

# the small hand-made fixtures below check values, not coverage: the warning that their
# intervals are not meaningful is tested on its own
pytestmark = pytest.mark.filterwarnings("ignore::langchain_stepback_profile.errors.FewItemsWarning")


# ---------------------------------------------------------------- ROUGE
def test_rouge_shared_unigrams() -> None:
    # 2 of 3 tokens shared, in order: P = R = 2/3 for both ROUGE-1 and the LCS.
    scores = rouge_scores(["the cat sat"], ["the cat ran"])
    assert scores["rouge-1"] == [pytest.approx(2 / 3)]
    assert scores["rouge-L"] == [pytest.approx(2 / 3)]


def test_rouge_l_counts_order_but_rouge_1_does_not() -> None:
    # Same bag of words; the longest common subsequence of "a b c d" / "a c b d" is 3 long.
    scores = rouge_scores(["a c b d"], ["a b c d"])
    assert scores["rouge-1"] == [pytest.approx(1.0)]
    assert scores["rouge-L"] == [pytest.approx(0.75)]


def test_rouge_uses_stemming() -> None:
    assert rouge_scores(["running cats"], ["run cat"])["rouge-1"] == [pytest.approx(1.0)]


def test_rouge_per_item_and_empty_prediction() -> None:
    scores = rouge_scores(["the cat sat", "", "   ", "dog"], ["the cat sat", "x y", "x", "cat"])
    assert scores == {"rouge-1": [1.0, 0.0, 0.0, 0.0], "rouge-L": [1.0, 0.0, 0.0, 0.0]}


def test_rouge_no_items_gives_empty_lists() -> None:
    assert rouge_scores([], []) == {"rouge-1": [], "rouge-L": []}


def test_rouge_length_mismatch() -> None:
    with pytest.raises(InvalidArgumentError, match="2 predictions but 1"):
        rouge_scores(["a", "b"], ["a"])


# ---------------------------------------------------------------- accuracy
def test_accuracy_and_per_item() -> None:
    preds = ["[1]", "[2]", None, "[1]"]
    golds = ["[1]", "[1]", "[2]", "[1]"]
    assert correct_per_item(preds, golds) == [1.0, 0.0, 0.0, 1.0]
    assert accuracy(preds, golds) == pytest.approx(0.5)


@pytest.mark.parametrize("fn", [accuracy, correct_per_item])
def test_label_metrics_refuse_empty_and_mismatch(fn: Callable[..., object]) -> None:
    with pytest.raises(InvalidArgumentError, match="no items"):
        fn([], [])
    with pytest.raises(InvalidArgumentError, match="1 predictions but 2"):
        fn(["a"], ["a", "b"])


# ---------------------------------------------------------------- macro-F1
def test_macro_f1_worked_example() -> None:
    # golds a a b c ; preds a b b x   ("x" is not a label, so it is wrong)
    # a: tp=1 fp=0 fn=1 -> F1 = 2/(2+0+1) = 2/3
    # b: tp=1 fp=1 fn=0 -> F1 = 2/3
    # c: tp=0 fp=0 fn=1 -> F1 = 0
    # macro = (2/3 + 2/3 + 0) / 3 = 4/9
    preds = ["a", "b", "b", "x"]
    golds = ["a", "a", "b", "c"]
    assert macro_f1(preds, golds, ["a", "b", "c"]) == pytest.approx(4 / 9)
    # A fourth label nobody predicts and no gold uses adds an F1 of 0: (4/3) / 4 = 1/3.
    assert macro_f1(preds, golds, ["a", "b", "c", "d"]) == pytest.approx(1 / 3)


def test_macro_f1_none_and_unknown_predictions_are_wrong() -> None:
    assert macro_f1([None, "zzz"], ["a", "b"], ["a", "b"]) == 0.0
    assert macro_f1(["a", "b"], ["a", "b"], ["a", "b"]) == 1.0


def test_macro_f1_refuses_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="not in the label set"):
        macro_f1(["a"], ["q"], ["a", "b"])
    with pytest.raises(InvalidArgumentError, match="labels is empty"):
        macro_f1(["a"], ["a"], [])
    with pytest.raises(InvalidArgumentError, match="no items"):
        macro_f1([], [], ["a"])


def test_macro_f1_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    labels = ["w", "x", "y", "z", "never"]
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        golds = [labels[i] for i in rng.integers(0, 4, size=n)]
        preds = [[*labels, "junk", None][i] for i in rng.integers(0, 7, size=n)]
        index = {label: i for i, label in enumerate(labels)}
        expected = sklearn_metrics.f1_score(
            [index[g] for g in golds],
            [index.get(p, -1) if p is not None else -1 for p in preds],
            labels=list(range(len(labels))),
            average="macro",
            zero_division=0,
        )
        assert macro_f1(preds, golds, labels) == pytest.approx(expected)


# ---------------------------------------------------------------- ratings
def test_mae_rmse_with_unparseable_predictions() -> None:
    # item 1: |5-4| = 1
    # item 2: None, gold 2 -> 5 is farther -> |5-2| = 3
    # item 3: "2" parses -> 0
    # item 4: "abc", gold 3 -> 1 and 5 equally far -> error 2
    # item 5: None, gold 5 -> 1 is farther -> 4
    preds = [5, None, "2", "abc", None]
    golds = [4, 2, "2", 3, 5]
    assert absolute_errors(preds, golds) == [1.0, 3.0, 0.0, 2.0, 4.0]
    assert mae(preds, golds) == pytest.approx(10 / 5)
    assert rmse(preds, golds) == pytest.approx(math.sqrt((1 + 9 + 0 + 4 + 16) / 5))


def test_non_finite_prediction_is_unparseable() -> None:
    assert absolute_errors([float("nan"), "inf"], [1, 4]) == [4.0, 3.0]


def test_perfect_ratings() -> None:
    assert mae([1.0, 3.0], [1, 3]) == 0.0
    assert rmse([1.0, 3.0], [1, 3]) == 0.0


def test_rating_metrics_refuse_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="gold rating 'four'"):
        mae([4], ["four"])
    with pytest.raises(InvalidArgumentError, match="no items"):
        rmse([], [])


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_is_deterministic_given_seed() -> None:
    values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.75, 0.4, 0.1, 0.9, 0.3]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_ci_contains_mean() -> None:
    values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.75, 0.6, 0.2, 0.9]
    mean, low, high = bootstrap_ci(values)
    assert mean == pytest.approx(np.mean(values))
    assert low < mean < high
    assert low >= 0.0 and high <= 1.0


def test_bootstrap_ci_narrows_with_more_items() -> None:
    _, low_small, high_small = bootstrap_ci([0.0, 1.0] * 5)
    _, low_big, high_big = bootstrap_ci([0.0, 1.0] * 500)
    # The standard error falls as 1/sqrt(n): 100x the items, about a tenth the width.
    assert (high_big - low_big) < 0.2 * (high_small - low_small)


def test_bootstrap_wider_confidence_gives_wider_interval() -> None:
    values = [0.0, 1.0] * 20
    _, low90, high90 = bootstrap_ci(values, confidence=0.90)
    _, low99, high99 = bootstrap_ci(values, confidence=0.99)
    assert low99 < low90 and high90 < high99


def test_bootstrap_one_item_and_constant_items() -> None:
    with pytest.warns(FewItemsWarning):
        assert bootstrap_ci([0.4]) == (0.4, 0.4, 0.4)
    assert bootstrap_ci([0.7] * 12) == pytest.approx((0.7, 0.7, 0.7))
    assert bootstrap_ci([0.0] * 50) == (0.0, 0.0, 0.0)  # degenerate: no crash, no NaN


def test_few_items_warn_that_the_interval_is_not_meaningful() -> None:
    with pytest.warns(FewItemsWarning, match="over 3 items is not meaningful"):
        mean, low, high = bootstrap_ci([0.2, 0.5, 0.9])
    assert low <= mean <= high
    with pytest.warns(FewItemsWarning, match="over 3 items"):
        assert paired_bootstrap([0.5] * 3, [0.5] * 3) == (0.0, 0.0, 0.0)
    with pytest.warns(FewItemsWarning):
        bootstrap_metric(mae, [1, 2, 3], [1, 3, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewItemsWarning)
        bootstrap_ci([0.2, 0.5, 0.9, 0.4] * 3)  # 12 items: no warning


def test_bootstrap_metric_without_spread_in_the_jackknife_does_not_crash() -> None:
    # macro-F1 of 12 items where every leave-one-out value is the same: BCa is undefined,
    # the percentile interval of the same resamples is given instead
    labels = ["a", "b"]
    preds, golds = ["a"] * 12, ["a"] * 12
    assert (
        bootstrap_metric(macro_f1, preds, golds, labels=labels)
        == (macro_f1(preds, golds, labels),) * 3
    )


def test_bootstrap_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="no per-item scores"):
        bootstrap_ci([])
    with pytest.raises(InvalidArgumentError, match="n_resamples"):
        bootstrap_ci([1.0], n_resamples=0)
    with pytest.raises(InvalidArgumentError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.0)
    with pytest.raises(InvalidArgumentError, match="no items"):
        bootstrap_metric(mae, [], [])


def test_bootstrap_metric_agrees_with_per_item_bootstrap() -> None:
    # Same seed, same resampled indices: MAE recomputed per resample = mean of the errors.
    preds = [5, None, 2, 3, 4, 1, None, 2]
    golds = [4, 2, 2, 5, 4, 3, 1, 1]
    by_metric = bootstrap_metric(mae, preds, golds, n_resamples=200, seed=11)
    by_items = bootstrap_ci(absolute_errors(preds, golds), n_resamples=200, seed=11)
    assert by_metric == pytest.approx(by_items)


def test_bootstrap_metric_passes_keywords_for_macro_f1() -> None:
    labels = ["a", "b", "c"]
    preds = ["a", "b", "b", "x", "c", "a"]
    golds = ["a", "a", "b", "c", "c", "b"]
    point, low, high = bootstrap_metric(macro_f1, preds, golds, labels=labels, seed=5)
    assert point == pytest.approx(macro_f1(preds, golds, labels))
    assert 0.0 <= low <= high <= 1.0
    assert bootstrap_metric(macro_f1, preds, golds, labels=labels, seed=5) == (point, low, high)


def test_bootstrap_metric_rmse_on_one_item() -> None:
    assert bootstrap_metric(rmse, [None], [4]) == (3.0, 3.0, 3.0)


def test_paired_bootstrap() -> None:
    same = [0.1, 0.5, 0.9, 0.3]
    assert paired_bootstrap(same, same) == (0.0, 0.0, 0.0)
    shifted = [x + 0.25 for x in same]
    assert paired_bootstrap(shifted, same) == pytest.approx((0.25, 0.25, 0.25))
    better = [1.0, 0.8, 0.9, 0.7, 1.0, 0.6]
    worse = [0.2, 0.3, 0.1, 0.4, 0.5, 0.0]
    mean, low, high = paired_bootstrap(better, worse, seed=1)
    assert mean == pytest.approx(np.mean(better) - np.mean(worse))
    assert 0.0 < low <= mean <= high
    with pytest.raises(InvalidArgumentError, match="a has 3 scores but b has 2"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="no per-item scores"):
        paired_bootstrap([], [])


def test_a_report_marks_intervals_over_few_items() -> None:
    from langchain_stepback_profile.evaluation.report import results_table
    from langchain_stepback_profile.evaluation.scoring import EvalReport

    def report(n: int, meaningful: bool | None) -> EvalReport:
        cell = {"value": 0.4, "low": 0.4, "high": 0.4}
        diff = {"diff": 0.0, "low": 0.0, "high": 0.0}
        if meaningful is not None:
            cell["meaningful"] = diff["meaningful"] = meaningful
        row = {
            "layout": "paper",
            "compare_to": None,
            "metrics": {"rouge-1": cell},
            "vs_non_personalized": {"rouge-1": diff},
            "cost": {"llm_calls": 1.0, "seconds": 0.1},
        }
        return EvalReport("LaMP-5", "generation", ["rouge-1"], n, [], {"step-back": row})

    few = results_table(report(3, False))
    assert "0.400 [n/a]" in few and "+0.000 [n/a]" in few
    assert "+0.000 [+0.000, +0.000]" not in few
    assert "0.400 [n/a]" in results_table(report(3, None))  # an older report: by its item count
    assert "0.400 [0.400, 0.400]" in results_table(report(40, True))
