"""The methods compared by the evaluation, each a function of one item and a shared context.

Personalized methods reuse the core unchanged: :class:`StepBackProfileRetriever` gathers
profiles and top-k history, :class:`Personalizer` builds the prompt of a named layout,
generates and applies output control. Each ``*-other`` method builds the same prompt from
another user's profile and history: the control that shows whether a gain comes from the
user or from the format.

Example:
    ```python
    ctx = MethodContext(get_eval_task("LaMP-7"), llm=default_chat_model(), memory=memory,
                        items=items)
    output = run_method(METHODS["step-back"], items[0], ctx)
    output.text, output.llm_calls, output.seconds   # the answer and what it cost
    ```
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from langchain_stepback_profile.chains import (
    Personalizer,
    TwoStage,
    prompt_sources,
)
from langchain_stepback_profile.errors import ContextOverflowError, InvalidArgumentError
from langchain_stepback_profile.evaluation.datasets import EvalItem
from langchain_stepback_profile.evaluation.tasks import EvalTask
from langchain_stepback_profile.memory import ProfileMemory
from langchain_stepback_profile.names import METHOD_NAMES
from langchain_stepback_profile.output_control import overlap
from langchain_stepback_profile.prompting import PromptStrategy
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from langchain_stepback_profile.tasks import TaskSpec
from langchain_stepback_profile.usage import LLMUsage

FIRST_WORDS = 8
"""Words of the input the ``first-words`` baseline keeps."""
COPY_OVERLAP = 0.9
"""An output whose words are at least this share of one text shown in the prompt is a copy."""
ALIASES = {"ordered": "step-back"}
"""Other names of methods: on a group, step-back is the ordered concatenation."""


@dataclass(frozen=True)
class MethodOutput:
    """What one method produced for one item, and what it cost.

    Example:
        >>> MethodOutput("a title", llm_calls=1).llm_calls
        1
    """

    text: str
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    control: dict[str, Any] = field(default_factory=dict)
    copied: bool = False
    """The output is a copy of a profile line or a retrieved text the prompt showed."""
    error: str | None = None
    """Why the method gave no output (a prompt longer than the model's context)."""


@dataclass
class MethodContext:
    """What every method of one run shares: task, model, store, k, seed and the item set
    (where the other-user controls find their other user).

    Example:
        ```python
        ctx = MethodContext(task, llm=llm, memory=memory, k=2, items=items)
        ctx.other(items[0]).user_ids       # the control's users: none shared with items[0]
        ```
    """

    task: EvalTask
    llm: BaseChatModel | None = None
    memory: ProfileMemory | None = None
    k: int = 2
    seed: int = 0
    items: Sequence[EvalItem] = ()
    _order: list[EvalItem] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._order = sorted(self.items, key=lambda i: i.id)

    def spec(self, item: EvalItem) -> TaskSpec:
        """The prompt task, with the instruction exactly as the item's prompt words it."""
        return self.task.spec.model_copy(update={"instruction": item.instruction})

    def model(self) -> BaseChatModel:
        if self.llm is None:
            raise InvalidArgumentError("this method needs a chat model; pass llm=")
        return self.llm

    def retrieve(
        self,
        text: str,
        users: Sequence[str],
        *,
        profiles: bool = True,
        history: bool = True,
        style_gists: bool = False,
        config: RunnableConfig | None = None,
    ) -> list[Document]:
        """Profiles then top-k history of ``users`` (store ids, in order) for ``text``; with
        ``style_gists``, each item's style gist written by the run's model (cached in the
        store; its calls are counted under ``config``'s callbacks)."""
        if self.memory is None:
            raise InvalidArgumentError("this method needs the evaluation store; pass memory=")
        retriever = StepBackProfileRetriever(
            memory=self.memory,
            k=self.k,
            include_profiles=profiles,
            include_history=history,
            style_gists=style_gists,
            gist_llm=self.model() if style_gists else None,
        )
        return retriever.invoke(text, config, user_ids=list(users))

    def other(self, item: EvalItem) -> EvalItem:
        """The control item: the next item in id order that shares no user with ``item``."""
        start = next(n for n, i in enumerate(self._order) if i.id == item.id)
        mine = set(item.user_ids)
        for step in range(1, len(self._order)):
            candidate = self._order[(start + step) % len(self._order)]
            if not mine & set(candidate.user_ids):
                return candidate
        raise InvalidArgumentError(
            f"no item of the evaluation set has users other than those of item {item.id!r}; "
            "the *-other controls need at least two items with different users (raise --limit)"
        )

    def shuffled(self, item: EvalItem) -> list[str]:
        """The item's store ids in a seeded order other than the author order (the reverse
        for two authors); the same order on every run."""
        users = item.store_ids
        if len(users) < 2:
            return users
        rng = random.Random(f"{self.seed}:{item.id}")
        order = list(users)
        while order == users:
            rng.shuffle(order)
        return order


@dataclass(frozen=True)
class Generated:
    """A method's answer before costs are attached: text, control record, what was shown."""

    text: str
    control: dict[str, Any] = field(default_factory=dict)
    documents: Sequence[Document] = ()


MethodFn = Callable[[EvalItem, MethodContext, RunnableConfig], Generated]
UsersFn = Callable[[EvalItem, MethodContext], list[str]]


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    Args:
        name: the name in ``--methods`` and in the report.
        description: one line for the report.
        layout: the prompt layout it uses (``paper``, ``few_shot``, ``plain``, ``two_stage``),
            or None when no model is called.
        fn: produces the answer.
        applies: whether it applies to a task.
        uses_store: it reads histories (the store must be built).
        uses_profiles: it reads profiles (they must be built).
        compare_to: the row it is paired with besides the non-personalized one: its
            other-user control, or for the group variants the ordered step-back row.

    Example:
        >>> METHODS["few-shot"].compare_to
        'few-shot-other'
    """

    name: str
    description: str
    layout: str | None
    fn: MethodFn
    applies: Callable[[EvalTask], bool] = lambda task: True
    uses_store: bool = True
    uses_profiles: bool = True
    compare_to: str | None = None


# --------------------------------------------------------------------- the methods
def _copy_input(item: EvalItem, ctx: MethodContext, config: RunnableConfig) -> Generated:
    return Generated(item.input_text)


def _first_words(item: EvalItem, ctx: MethodContext, config: RunnableConfig) -> Generated:
    return Generated(" ".join(item.input_text.split()[:FIRST_WORDS]))


def _own(item: EvalItem, ctx: MethodContext) -> list[str]:
    return item.store_ids


def _other(item: EvalItem, ctx: MethodContext) -> list[str]:
    return ctx.other(item).store_ids


def _first(item: EvalItem, ctx: MethodContext) -> list[str]:
    return item.store_ids[:1]


def _shuffled(item: EvalItem, ctx: MethodContext) -> list[str]:
    return ctx.shuffled(item)


def _no_users(item: EvalItem, ctx: MethodContext) -> list[str]:
    return []


def _personalize(
    item: EvalItem,
    ctx: MethodContext,
    config: RunnableConfig,
    *,
    users: UsersFn,
    layout: PromptStrategy,
    profiles: bool = True,
    history: bool = True,
    candidates: int | None = None,
    style_gists: bool = False,
) -> Generated:
    """Retrieve for ``users(item)`` (with each item's style gist when ``style_gists``), then
    one :class:`Personalizer` run in ``layout``."""
    store_ids = users(item, ctx)
    docs = (
        ctx.retrieve(
            item.input_text,
            store_ids,
            profiles=profiles,
            history=history,
            style_gists=style_gists,
            config=config,
        )
        if store_ids
        else []
    )
    step = Personalizer(
        ctx.model(),
        ctx.spec(item),
        prompt_layout=layout,
        control=ctx.task.kind == "generation",
        candidates=candidates,
    )
    result = step.run(item.input_text, docs, config)
    return Generated(result["output"], result["control"], docs)


def _two_stage(item: EvalItem, ctx: MethodContext, config: RunnableConfig) -> Generated:
    """The public two-stage chain step (:class:`~langchain_stepback_profile.chains.TwoStage`):
    each author proposes (few-shot on their own history), the first author merges."""
    docs = ctx.retrieve(item.input_text, item.store_ids)
    step = TwoStage(ctx.model(), ctx.spec(item), prompt_layout="few_shot")
    result = step.run(item.input_text, docs, config)
    return Generated(result["output"], result["control"], docs)


def _is_generation(task: EvalTask) -> bool:
    return task.kind == "generation"


def _method(
    name: str,
    description: str,
    layout: PromptStrategy,
    users: UsersFn,
    *,
    profiles: bool = True,
    history: bool = True,
    applies: Callable[[EvalTask], bool] = lambda task: True,
    compare_to: str | None = None,
    candidates: int | None = None,
    style_gists: bool = False,
) -> Method:
    return Method(
        name,
        description,
        layout,
        partial(
            _personalize,
            users=users,
            layout=layout,
            profiles=profiles,
            history=history,
            candidates=candidates,
            style_gists=style_gists,
        ),
        applies=applies,
        uses_store=users is not _no_users,
        uses_profiles=users is not _no_users and (profiles or layout == "few_shot"),
        compare_to=compare_to,
    )


def _few_shot_task(task: EvalTask) -> bool:
    return task.few_shot


def _group_task(task: EvalTask) -> bool:
    return task.group


def _rewrite_task(task: EvalTask) -> bool:
    return task.spec.rewrite


_ALL: tuple[Method, ...] = (
    Method(
        "copy-input",
        "the input unchanged (calibration baseline)",
        None,
        _copy_input,
        applies=lambda task: task.baseline == "copy-input",
        uses_store=False,
        uses_profiles=False,
    ),
    Method(
        "first-words",
        f"the first {FIRST_WORDS} words of the input (calibration baseline)",
        None,
        _first_words,
        applies=lambda task: task.baseline == "first-words",
        uses_store=False,
        uses_profiles=False,
    ),
    _method("non-personalized", "instruction and input only", "plain", _no_users),
    _method(
        "retrieval",
        "top-k history of each user, no profile",
        "paper",
        _own,
        profiles=False,
        compare_to="retrieval-other",
    ),
    _method(
        "retrieval-other",
        "control: the retrieval prompt from other users' history",
        "paper",
        _other,
        profiles=False,
    ),
    _method(
        "profile",
        "the users' profiles, no history",
        "paper",
        _own,
        history=False,
        compare_to="profile-other",
    ),
    _method(
        "profile-other",
        "control: the profile prompt with other users' profiles",
        "paper",
        _other,
        history=False,
    ),
    _method(
        "step-back",
        "profiles + top-k history, all users in author order (the paper's method)",
        "paper",
        _own,
        compare_to="step-back-other",
    ),
    _method(
        "step-back-other",
        "control: the step-back prompt from other users' profiles and history",
        "paper",
        _other,
    ),
    _method(
        "step-back-gists",
        "step-back with each retrieved item's style gist beside it (k more calls per query "
        "until cached)",
        "paper",
        _own,
        compare_to="step-back",
        style_gists=True,
    ),
    _method(
        "few-shot",
        "the users' earlier (input, output) pairs as chat turns; profile drives output control",
        "few_shot",
        _own,
        applies=_few_shot_task,
        compare_to="few-shot-other",
    ),
    _method(
        "few-shot-greedy",
        "few-shot with one greedy answer (no candidates to choose from)",
        "few_shot",
        _own,
        applies=_few_shot_task,
        compare_to="few-shot",
        candidates=1,
    ),
    _method(
        "few-shot-other",
        "control: the few-shot prompt from other users' history and profile",
        "few_shot",
        _other,
        applies=_few_shot_task,
    ),
    _method(
        "style",
        "no LLM call: the input in the user's own word forms and casing, from their profile",
        "style",
        _own,
        history=False,
        applies=_rewrite_task,
        compare_to="style-other",
    ),
    _method(
        "style-other",
        "control: the input in another user's word forms and casing",
        "style",
        _other,
        history=False,
        applies=_rewrite_task,
    ),
    _method(
        "first-author",
        "step-back with the first author only",
        "paper",
        _first,
        applies=_group_task,
        compare_to="step-back",
    ),
    _method(
        "few-shot-first-author",
        "few-shot with the first author's history and profile only",
        "few_shot",
        _first,
        applies=lambda task: task.group and task.few_shot,
        compare_to="few-shot",
    ),
    _method(
        "shuffled",
        "step-back with the authors in a seeded order other than theirs",
        "paper",
        _shuffled,
        applies=_group_task,
        compare_to="step-back",
    ),
    Method(
        "two-stage",
        "each author proposes (few-shot), the first author merges (one more call)",
        "two_stage",
        _two_stage,
        applies=lambda task: task.group and _is_generation(task),
        compare_to="step-back",
    ),
)

METHODS: dict[str, Method] = {method.name: method for method in _ALL}
"""Every method by name, in report order."""
assert tuple(METHODS) == METHOD_NAMES, "names.METHOD_NAMES names these methods"
OPTIONAL = frozenset({"retrieval-other", "profile-other", "few-shot-greedy", "step-back-gists"})
"""Controls run only when asked for with ``--methods``."""


def default_methods(task: EvalTask) -> list[str]:
    """Every method that applies to ``task`` except the optional controls, in report order."""
    return [m.name for m in _ALL if m.applies(task) and m.name not in OPTIONAL]


def resolve_methods(task: EvalTask, names: Sequence[str] | None = None) -> list[Method]:
    """The methods named (aliases allowed), checked to exist and apply, in report order;
    the task's default list when ``names`` is None."""
    if names is None:
        names = default_methods(task)
    wanted = []
    for name in names:
        name = ALIASES.get(name.strip(), name.strip())
        if name not in METHODS:
            raise InvalidArgumentError(
                f"unknown method {name!r}; use some of: {', '.join(METHODS)}"
            )
        if not METHODS[name].applies(task):
            usable = [m.name for m in _ALL if m.applies(task)]
            raise InvalidArgumentError(
                f"method {name!r} does not apply to {task.name}; it takes: {', '.join(usable)}"
            )
        wanted.append(name)
    if not wanted:
        raise InvalidArgumentError("no methods given; name at least one, e.g. step-back")
    return [m for m in _ALL if m.name in wanted]


def is_copy(text: str, documents: Sequence[Document]) -> bool:
    """True when ``text`` (three words or more) is made of the words of one profile line or
    one retrieved text shown in the prompt."""
    if len(text.split()) < 3:
        return False
    return any(overlap(text, source) >= COPY_OVERLAP for source in prompt_sources(documents))


def run_method(method: Method, item: EvalItem, ctx: MethodContext) -> MethodOutput:
    """Run one method on one item, counting LLM calls, tokens and seconds.

    A prompt longer than the model's context is recorded as an empty output with its error.
    """
    usage = LLMUsage()
    started = time.perf_counter()
    error = None
    try:
        generated = method.fn(item, ctx, {"callbacks": [usage]})
    except ContextOverflowError as err:
        generated, error = Generated(""), str(err)
    return MethodOutput(
        text=generated.text,
        llm_calls=usage.calls,
        tokens_in=usage.input_tokens,
        tokens_out=usage.output_tokens,
        seconds=time.perf_counter() - started,
        control=generated.control,
        copied=is_copy(generated.text, generated.documents),
        error=error,
    )
