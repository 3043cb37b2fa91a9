"""Evaluation methods that retrieve history with the real MiniLM embedder, with a recording
chat model: what each prompt really holds (own vs other users' history, author order) and
the call counts.

The method tests that embed nothing are in tests/unit_tests/test_eval_methods.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory
from langchain_stepback_profile.errors import ContextOverflowError, InvalidArgumentError
from langchain_stepback_profile.evaluation import get_eval_task, load_items
from langchain_stepback_profile.evaluation.datasets import EvalItem
from langchain_stepback_profile.evaluation.methods import (
    METHODS,
    MethodContext,
    default_methods,
    run_method,
)
from tests.unit_tests.eval_data import (
    EchoChat,
    prompt_text,
    write_lamp5,
    write_lamp7,
    write_psw,
)

pytestmark = pytest.mark.slow


def _context(
    task_name: str, folder: Path, store: Path, embeddings: MiniLMEmbeddings
) -> tuple[MethodContext, list[EvalItem], EchoChat]:
    task = get_eval_task(task_name)
    items = load_items(task, folder)
    memory = ProfileMemory(store, embeddings=embeddings, task=task.spec)
    memory.add_histories({i.store_id(u): i.history[u] for i in items for u in i.user_ids})
    memory.refresh(strategy="extractive")
    llm = EchoChat()
    return MethodContext(task, llm=llm, memory=memory, k=1, seed=0, items=items), items, llm


@pytest.fixture
def lamp5(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> Iterator[tuple[MethodContext, list[EvalItem], EchoChat]]:
    ctx, items, llm = _context("LaMP-5", write_lamp5(tmp_path / "data"), tmp_path / "s", embeddings)
    yield ctx, items, llm
    assert ctx.memory is not None
    ctx.memory.close()


@pytest.fixture
def psw(
    tmp_path: Path, embeddings: MiniLMEmbeddings
) -> Iterator[tuple[MethodContext, list[EvalItem], EchoChat]]:
    ctx, items, llm = _context(
        "PSW-title", write_psw(tmp_path / "data"), tmp_path / "s", embeddings
    )
    yield ctx, items, llm
    assert ctx.memory is not None
    ctx.memory.close()


def _run(name: str, item: EvalItem, ctx: MethodContext, llm: EchoChat) -> tuple[str, str]:
    """(output, prompt text of the first call)."""
    llm.prompts.clear()
    output = run_method(METHODS[name], item, ctx)
    assert output.error is None
    return output.text, prompt_text(llm.prompts[0]) if llm.prompts else ""


# ---------------------------------------------------------------- single users
def test_baselines_call_no_model(lamp5: tuple[MethodContext, list[EvalItem], EchoChat]) -> None:
    ctx, _, llm = lamp5
    item = EvalItem("x", "one two three four five six seven eight nine", "g", [], {}, "p", "i")
    assert run_method(METHODS["copy-input"], item, ctx).text == item.input_text
    first = run_method(METHODS["first-words"], item, ctx)
    assert first.text == "one two three four five six seven eight"
    assert first.llm_calls == 0 and not llm.prompts


def test_non_personalized_shows_no_history(lamp5) -> None:
    ctx, items, llm = lamp5
    output, prompt = _run("non-personalized", items[0], ctx, llm)
    assert prompt == f"{items[0].instruction} {items[0].input_text}"
    assert output == "with hashtags parse We"


def test_step_back_shows_own_profile_and_history(lamp5) -> None:
    ctx, items, llm = lamp5
    _, prompt = _run("step-back", items[0], ctx, llm)
    assert "Profiles of the authors" in prompt and "Earlier work" in prompt
    assert "ada@" in prompt and "Graph" in prompt
    assert "whale" not in prompt.lower()


def test_retrieval_and_profile_rows_show_one_part_each(lamp5) -> None:
    ctx, items, llm = lamp5
    _, retrieval = _run("retrieval", items[0], ctx, llm)
    assert "Earlier work" in retrieval and "Profiles of the authors" not in retrieval
    _, profile = _run("profile", items[0], ctx, llm)
    assert "Profiles of the authors" in profile and "Earlier work" not in profile


def test_other_controls_use_another_users_history(lamp5) -> None:
    """The control of q1 (ada) is the next item in id order with other users: q2 (bob)."""
    ctx, items, llm = lamp5
    assert ctx.other(items[0]).id == "q2"
    assert ctx.other(items[2]).id == "q1"  # wraps around
    _, own = _run("few-shot", items[0], ctx, llm)
    _, other = _run("few-shot-other", items[0], ctx, llm)
    assert "Parsing Tweets with Graphs" in own or "Graph Parsers for Social Media" in own
    assert "Whale" in other and "Graph" not in other.split(items[0].input_text)[0]
    assert other.endswith(items[0].input_text)  # the same new input
    _, step_other = _run("step-back-other", items[0], ctx, llm)
    assert "bob@" in step_other and "ada@" not in step_other
    _, retrieval_other = _run("retrieval-other", items[0], ctx, llm)
    assert "Whale" in retrieval_other


def test_few_shot_turns_are_the_users_pairs(lamp5) -> None:
    ctx, items, llm = lamp5
    _run("few-shot", items[0], ctx, llm)
    messages = llm.prompts[0]
    assert [m.type for m in messages] == ["human", "ai", "human"]
    assert isinstance(messages[1], AIMessage)
    assert messages[1].content in {"Parsing Tweets with Graphs", "Graph Parsers for Social Media"}


def test_few_shot_draws_candidates_from_a_small_model_and_the_greedy_row_one(lamp5) -> None:
    ctx, items, _ = lamp5
    ctx.llm = EchoChat(model_name="echo-135m")
    assert run_method(METHODS["few-shot"], items[0], ctx).llm_calls == 3
    greedy = run_method(METHODS["few-shot-greedy"], items[0], ctx)
    assert greedy.llm_calls == 1
    assert greedy.control["candidates"] == 1
    assert "few-shot-greedy" not in default_methods(get_eval_task("LaMP-5"))


def test_other_needs_a_second_user(lamp5) -> None:
    ctx, items, _ = lamp5
    alone = MethodContext(ctx.task, llm=ctx.llm, memory=ctx.memory, items=items[:1])
    with pytest.raises(InvalidArgumentError, match="at least two items with different users"):
        alone.other(items[0])


def test_run_method_counts_calls_and_tokens(lamp5) -> None:
    ctx, items, _ = lamp5
    output = run_method(METHODS["step-back"], items[0], ctx)
    assert output.llm_calls == len(output.control["verdicts"]) >= 1
    assert output.tokens_in == 10 * output.llm_calls and output.tokens_out == 2 * output.llm_calls
    assert output.seconds > 0
    assert output.control["layout"] == "paper"


def test_context_overflow_is_recorded_not_raised(lamp5) -> None:
    ctx, items, _ = lamp5

    class Overflow(EchoChat):
        def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise ContextOverflowError("the prompt is 3000 tokens but the context window is 2048")

    ctx.llm = Overflow()
    output = run_method(METHODS["step-back"], items[0], ctx)
    assert output.text == ""
    assert "context window" in (output.error or "")


def test_style_rows_call_no_model(tmp_path: Path, embeddings: MiniLMEmbeddings) -> None:
    ctx, items, llm = _context("LaMP-7", write_lamp7(tmp_path / "data"), tmp_path / "s", embeddings)
    try:
        for name in ("style", "style-other"):
            output = run_method(METHODS[name], items[0], ctx)
            assert output.llm_calls == 0 and output.control["layout"] == "style"
            assert output.text
        assert not llm.prompts
    finally:
        assert ctx.memory is not None
        ctx.memory.close()
    assert {"style", "style-other"} <= set(default_methods(get_eval_task("LaMP-7")))
    assert "style" not in default_methods(get_eval_task("LaMP-5"))


# ---------------------------------------------------------------- groups
def test_group_item_and_author_orders(psw) -> None:
    ctx, items, llm = psw
    group = items[0]
    assert group.user_ids == ["ada", "bob"]
    assert ctx.shuffled(group) == group.store_ids[::-1]  # two authors: reversed
    assert ctx.shuffled(group) == MethodContext(ctx.task, seed=0, items=items).shuffled(group)
    assert ctx.shuffled(items[1]) == items[1].store_ids  # one author: nothing to shuffle

    _, ordered = _run("step-back", group, ctx, llm)
    assert ordered.index("Author 1 (ada@") < ordered.index("Author 2 (bob@")
    _, shuffled = _run("shuffled", group, ctx, llm)
    assert shuffled.index("Author 1 (bob@") < shuffled.index("Author 2 (ada@")
    _, first = _run("first-author", group, ctx, llm)
    assert "ada@" in first and "bob@" not in first


def test_two_stage_proposes_per_author_then_merges(psw) -> None:
    ctx, items, llm = psw
    llm.prompts.clear()
    output = run_method(METHODS["two-stage"], items[0], ctx)
    assert output.llm_calls == 3  # two proposals and the merge
    proposals = output.control["proposals"]
    assert len(proposals) == 2
    merge = prompt_text(llm.prompts[-1])
    assert "proposed by the authors" in merge and all(p in merge for p in proposals)
    assert "Whale" in prompt_text(llm.prompts[1]) and "Whale" not in prompt_text(llm.prompts[0])
