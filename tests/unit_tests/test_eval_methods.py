"""Evaluation methods with a recording chat model: what each prompt really holds (own vs
other users' history, author order), call counts, and the method registry."""

from __future__ import annotations

import pytest

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation import get_eval_task
from langchain_stepback_profile.evaluation.datasets import EvalItem
from langchain_stepback_profile.evaluation.methods import (
    MethodContext,
    default_methods,
    is_copy,
    resolve_methods,
)


def test_shuffled_is_a_seeded_permutation() -> None:
    task = get_eval_task("PSW-title")
    users = ["a", "b", "c", "d", "e"]
    item = EvalItem("t", "x", "g", users, {u: [{"text": u}] for u in users}, "p", "i")
    orders = [MethodContext(task, seed=s, items=[item]).shuffled(item) for s in range(5)]
    for order in orders:
        assert sorted(order) == sorted(item.store_ids) and order != item.store_ids
    assert orders[1] == MethodContext(task, seed=1, items=[item]).shuffled(item)
    assert len({tuple(o) for o in orders}) > 1


# ---------------------------------------------------------------- registry
def test_default_methods_per_task() -> None:
    assert default_methods(get_eval_task("LaMP-7"))[:2] == ["copy-input", "non-personalized"]
    lamp5 = default_methods(get_eval_task("LaMP-5"))
    assert "first-words" in lamp5 and "shuffled" not in lamp5 and "retrieval-other" not in lamp5
    psw = default_methods(get_eval_task("PSW-title"))
    assert {"first-author", "shuffled", "two-stage", "step-back-other"} <= set(psw)
    assert "few-shot" not in default_methods(get_eval_task("LaMP-1"))


def test_resolve_methods() -> None:
    task = get_eval_task("PSW-title")
    names = [m.name for m in resolve_methods(task, ["shuffled", "ordered", "non-personalized"])]
    assert names == ["non-personalized", "step-back", "shuffled"]  # report order
    with pytest.raises(InvalidArgumentError, match="unknown method 'nope'"):
        resolve_methods(task, ["nope"])
    with pytest.raises(InvalidArgumentError, match="'copy-input' does not apply to PSW-title"):
        resolve_methods(task, ["copy-input"])
    with pytest.raises(InvalidArgumentError, match="no methods"):
        resolve_methods(task, [])


def test_is_copy() -> None:
    from langchain_core.documents import Document

    shown = [
        Document("Graph Parsing of Tweets", metadata={"kind": "history"}),
        Document("Keywords: graph, tweets", metadata={"kind": "profile"}),
    ]
    assert is_copy("graph parsing of tweets", shown)
    assert not is_copy("Whale Song Translation Today", shown)
    assert not is_copy("graph tweets", shown)  # too short to call a copy
