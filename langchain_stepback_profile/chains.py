"""Personalized LCEL chains: retrieved profiles and history rendered into one prompt, one LLM call
(three answers to choose from with a small model); or, for a group, each author's proposal and
the first author's merge (``group_mode="two_stage"``).

Example:
    ```python
    chain = create_personalized_chain(llm, retriever, task="scholarly_title")
    chain.invoke("We study...", config={"configurable": {"user_ids": ["alice", "bob"]}})
    # -> 'Neural Machine Translation with ...'
    ```
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnableParallel

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.llms import with_max_tokens
from langchain_stepback_profile.names import GROUP_MODES, GroupMode
from langchain_stepback_profile.output_control import (
    Controlled,
    control,
    grounding,
    headline,
    list_items,
    sentences,
    shape,
)
from langchain_stepback_profile.prompting import (
    PromptStrategy,
    build_prompt,
    format_history,
    format_profiles,
    is_small_model,
    render_context,
    request,
    resolve_strategy,
)
from langchain_stepback_profile.tasks import TaskSpec, get_task

__all__ = [
    "GROUP_MODES",
    "GroupMode",
    "Personalizer",
    "TwoStage",
    "build_messages",
    "create_personalized_chain",
    "format_history",
    "format_profiles",
    "merge_prompt",
    "prompt_sources",
    "render_context",
    "split_by_author",
]


def _input_text(value: Any, task: TaskSpec | None = None) -> str:
    """The chain's input text; a task with a default input (``TaskSpec.default_input``) takes
    that one for an empty input or ``None``, a task without one names what it needs."""
    if isinstance(value, dict):
        value = value.get("input")
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(
            f'the chain input must be a non-empty string or {{"input": "..."}}, got {value!r}'
        )
    if task is not None:
        return task.input_text(
            value, 'the chain input must be a non-empty string or {"input": "..."}'
        )
    if not value or not value.strip():
        raise InvalidArgumentError(
            f'the chain input must be a non-empty string or {{"input": "..."}}, got {value!r}'
        )
    return value


def build_messages(text: str, docs: Sequence[Document], task: TaskSpec) -> list[BaseMessage]:
    """The paper's layout: profiles, retrieved items, then the instruction right next to the input.

    Everything sits in one user turn, so small models keep the instruction beside the text.
    """
    return build_prompt(text, docs, task, "paper")


def typical_words(docs: Sequence[Document]) -> float | None:
    """The lead author's typical output length: measured in their profile, else the median
    of the retrieved outputs; None when nothing says."""
    for d in docs:
        if d.metadata.get("kind") == "profile" and d.metadata.get("stats", {}).get("median_words"):
            return float(d.metadata["stats"]["median_words"])
    lengths = sorted(
        len(str(d.metadata.get("output") or d.page_content).split())
        for d in docs
        if d.metadata.get("kind") == "history"
    )
    return float(lengths[len(lengths) // 2]) if lengths else None


def target_words(task: TaskSpec, docs: Sequence[Document]) -> float | None:
    """The length an answer is shaped to, in words: the task's ``max_words`` (per entry of a
    list, times its entries), else for a one-line answer the lead author's typical length
    (:func:`typical_words`); None when nothing says. A title-length habit never shortens an
    abstract or a list of questions.

    Example:
        >>> target_words(get_task("abstract"), [])
        220.0
        >>> target_words(get_task("research_questions"), [])
        75.0
    """
    if task.max_words:
        entries = task.max_items or 1 if task.output_format == "list" else 1
        return float(task.max_words * entries)
    return typical_words(docs) if task.output_format == "line" else None


def max_tokens_for(task: TaskSpec, words: float) -> int:
    """The token cap of an answer of about ``words`` words: three tokens a word for a line
    (titles are dense with rare words), 1.5 for running text."""
    per_word = 3.0 if task.output_format == "line" else 1.5
    return int(words * per_word) + 16


def control_options(task: TaskSpec) -> dict[str, Any]:
    """The shape arguments of :func:`~langchain_stepback_profile.output_control.control` for
    a task: its format and limits."""
    return {
        "output_format": task.output_format,
        "max_words": task.max_words,
        "max_sentences": task.max_sentences,
        "max_items": task.max_items,
        "questions": task.questions,
    }


def shown_in_prompt(docs: Sequence[Document], messages: Sequence[BaseMessage]) -> list[str]:
    """The ids of the documents whose text the prompt holds: a profile whose rendering it
    shows, a history item whose output (or text) it shows. A profile the few-shot layout
    keeps out of the prompt is not listed (it only sets the length).

    Example:
        >>> doc = Document("Parsing", id="a/1", metadata={"kind": "history", "output": "Parsing"})
        >>> shown_in_prompt([doc], [HumanMessage("Titles: Parsing")])
        ['a/1']
    """
    text = "\n".join(m.content for m in messages if isinstance(m.content, str))
    shown = []
    for d in docs:
        key = d.page_content if d.metadata.get("kind") == "profile" else d.metadata.get("output")
        if d.id and str(key or d.page_content) in text:
            shown.append(d.id)
    return shown


def _author_names(docs: Sequence[Document]) -> list[str]:
    """The authors' ids and their labels in the prompt (``Author 1``): never a list entry."""
    ids = {str(d.metadata.get("user_id") or "") for d in docs} - {""}
    positions = {int(d.metadata.get("position", 0)) for d in docs}
    return [*sorted(ids), *(f"Author {p + 1}" for p in sorted(positions))]


def _lead_stats(docs: Sequence[Document]) -> dict[str, Any]:
    return next(
        (d.metadata.get("stats") or {} for d in docs if d.metadata.get("kind") == "profile"), {}
    )


def prompt_sources(docs: Sequence[Document]) -> list[str]:
    """What the prompt showed that an answer must not simply copy: each profile line (without
    its label), each retrieved output and its style gist."""
    texts = []
    for d in docs:
        if d.metadata.get("kind") == "profile":
            texts += [line.split(":", 1)[-1] for line in d.page_content.splitlines()]
        else:
            texts.append(str(d.metadata.get("output") or d.page_content))
            if d.metadata.get("style_gist"):
                texts.append(str(d.metadata["style_gist"]))
    return texts


def profile_points(docs: Sequence[Document]) -> list[str]:
    """The entries of each profile's first line (its interests: ``Research interests /
    topics: a; b``), in author order, each once.

    Example:
        >>> doc = Document("Research interests / topics: parsing; tweets\\nKeywords: x",
        ...                metadata={"kind": "profile"})
        >>> profile_points([doc])
        ['parsing', 'tweets']
    """
    lines = [
        d.page_content.splitlines()[0].split(":", 1)[-1]
        for d in docs
        if d.metadata.get("kind") == "profile" and d.page_content.strip()
    ]
    return list_items("; ".join(lines)) if lines else []


FALLBACK_QUESTION = "What are the open problems in {}?"
"""The fallback's question about each of the profiles' interests (a questions task)."""


def fallback_output(
    text: str, task: TaskSpec, words: float | None, docs: Sequence[Document] = ()
) -> str:
    """What is returned when the model gives nothing usable twice: the input itself for a
    rewriting task; for a one-line answer a headline from the input's first sentence cut to
    the typical length; for a paragraph or a list the input in that shape, or, when the
    task's default input stood in for none, the interests the profiles name (for questions,
    a question about each, or about the input's first words)."""
    if task.rewrite:
        return text
    if task.output_format == "line" and text != task.default_input:
        return headline(text, words or 10)
    points = profile_points(docs) if text == task.default_input else []
    if task.output_format == "line":
        return points[0] if points else ""
    if task.questions:  # a question about each point: the interests, else the input's gist
        asked = points or [headline(text, 8)]
        return shape("\n".join(FALLBACK_QUESTION.format(p) for p in asked), **control_options(task))
    source = "\n".join(points) if points else "\n".join(sentences(text))
    return shape(source, **control_options(task))


SAMPLE_TEMPERATURE = 0.8
"""Temperature of the extra candidates (the first answer uses the model's own setting)."""
SMALL_MODEL_CANDIDATES = 3
"""Answers drawn per query by default with a small model in the few-shot layout (chosen on
development titles; docs/evaluation.md has what it gains on held-out ones)."""


def _default_candidates(
    candidates: int | None, llm: BaseChatModel, layout: str, task: TaskSpec, control: bool
) -> int:
    if candidates is None:
        small_titles = (
            layout == "few_shot" and control and not task.rewrite and task.output_format == "line"
        )
        return SMALL_MODEL_CANDIDATES if small_titles and is_small_model(llm) else 1
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise InvalidArgumentError(
            f"candidates must be a whole number of at least 1, got {candidates!r}"
        )
    return candidates


def best_grounded(checks: Sequence[Controlled], text: str) -> int | None:
    """The index of the usable answer whose content words ``text`` holds best (the first of
    equals), or None when none is usable.

    Example:
        >>> from langchain_stepback_profile.output_control import Controlled
        >>> best_grounded([Controlled("Quantum Poetry", "ok"), Controlled("Parsing Tweets", "ok")],
        ...               "We parse tweets.")
        1
    """
    usable = [n for n, c in enumerate(checks) if c.verdict == "ok"]
    return max(usable, key=lambda n: grounding(checks[n].text, text), default=None)


def _layout(prompt_layout: PromptStrategy, strategy: PromptStrategy | None) -> PromptStrategy:
    """The prompt layout, from ``strategy=`` (the deprecated name) when that is given."""
    if strategy is None:
        return prompt_layout
    warnings.warn(
        "strategy= of the personalized chain is now prompt_layout= (strategy is the name of "
        "ProfileMemory's profile strategies); pass prompt_layout=" + repr(strategy),
        DeprecationWarning,
        stacklevel=3,
    )
    return strategy


class Personalizer:
    """One personalized generation: prompt layout, capped generation, output control, and one
    regeneration with the plain prompt (then a fallback) when no answer is usable.

    With ``candidates=n`` the model answers n times (its own setting first, then samples at
    temperature 0.8 with seeds 1..n-1, so runs repeat) and the usable answer whose words the
    input holds best is kept: a small model's titles often invent. The model must take
    ``temperature`` and ``seed`` call options (the embedded model and ChatOpenAI do).
    ``None`` means 3 for a small model in the few-shot layout, else 1.

    Example:
        ```python
        step = Personalizer(llm, get_task("scholarly_title"), prompt_layout="few_shot")
        step.run("We study...", docs)["output"]
        ```
    """

    def __init__(
        self,
        llm: BaseChatModel,
        task: TaskSpec,
        *,
        prompt_layout: PromptStrategy = "auto",
        control: bool = True,
        candidates: int | None = None,
        strategy: PromptStrategy | None = None,
    ) -> None:
        self.llm = llm
        self.task = task
        self.layout = resolve_strategy(_layout(prompt_layout, strategy), llm, task)
        self.control = control
        self.candidates = _default_candidates(candidates, llm, self.layout, task, control)

    def _plan(
        self, text: str, docs: Sequence[Document]
    ) -> tuple[list[BaseMessage], list[Runnable], float | None]:
        # a rewrite keeps its input's length; anything else is cut to the task's length
        words = None if self.task.rewrite or not self.control else target_words(self.task, docs)
        budget = words or (len(text.split()) if self.task.rewrite else None)
        model = with_max_tokens(self.llm, max_tokens_for(self.task, budget)) if budget else self.llm
        samplers = [
            model.bind(temperature=SAMPLE_TEMPERATURE, seed=seed)
            for seed in range(1, self.candidates)
        ]
        return build_prompt(text, docs, self.task, self.layout), [model, *samplers], words

    def _check(
        self, answer: Any, text: str, docs: Sequence[Document], words: float | None
    ) -> Controlled:
        raw = answer.content if isinstance(answer.content, str) else str(answer.content)
        if not self.control:
            return Controlled(raw.strip(), "ok")
        stats = _lead_stats(docs) if self.task.rewrite else {}
        # an answer no history item holds (interests) may well repeat what the profile says
        shown = (
            docs if self.task.examples else [d for d in docs if d.metadata.get("kind") != "profile"]
        )
        return control(
            raw,
            typical_words=words if self.task.output_format == "line" else None,
            sources=prompt_sources(shown),
            word_forms=stats.get("characteristic_forms", ()),
            lowercase=stats.get("lowercase_share", 0) >= 0.5,
            anchor=text if self.task.rewrite else None,
            given=None if self.task.rewrite or text == self.task.default_input else text,
            exclude=_author_names(docs),
            **control_options(self.task),
        )

    def _result(
        self,
        text: str,
        docs: Sequence[Document],
        messages: list[BaseMessage],
        checks: list[Controlled],
        words: float | None,
    ) -> dict[str, Any]:
        chosen = best_grounded(checks, text)
        output = (
            checks[chosen].text
            if chosen is not None
            else fallback_output(text, self.task, words, docs)
        )
        return {
            "output": output,
            "documents": list(docs),
            "messages": messages,
            "control": {
                "layout": self.layout,
                "answers": [c.text for c in checks],
                "verdicts": [c.verdict for c in checks],
                "actions": [a for c in checks for a in c.actions],
                "candidates": self.candidates,
                "chosen": chosen,
                "fallback": chosen is None,
                "shown": shown_in_prompt(docs, messages),
                "llm_calls": 0 if self.layout == "style" else len(checks),
            },
        }

    def _retry(self, checks: list[Controlled]) -> bool:
        # the plain prompt knows nothing of the authors: for an output no history item
        # holds (interests, questions) the profiles' own interests are the better fallback
        usable = any(c.verdict == "ok" for c in checks)
        return not usable and self.layout != "plain" and self.task.examples

    def run(
        self, text: str, docs: Sequence[Document], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        if self.layout == "style":  # the input in the user's word forms, no LLM call
            return self._result(text, docs, [], [self._restyle(text, docs)], None)
        messages, models, words = self._plan(text, docs)
        checks = [self._check(m.invoke(messages, config), text, docs, words) for m in models]
        if self._retry(checks):
            plain = build_prompt(text, docs, self.task, "plain")
            checks.append(self._check(models[0].invoke(plain, config), text, docs, words))
        return self._result(text, docs, messages, checks, words)

    async def arun(
        self, text: str, docs: Sequence[Document], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        if self.layout == "style":  # the input in the user's word forms, no LLM call
            return self._result(text, docs, [], [self._restyle(text, docs)], None)
        messages, models, words = self._plan(text, docs)
        answers = await asyncio.gather(*(m.ainvoke(messages, config) for m in models))
        checks = [self._check(a, text, docs, words) for a in answers]
        if self._retry(checks):
            plain = build_prompt(text, docs, self.task, "plain")
            checks.append(self._check(await models[0].ainvoke(plain, config), text, docs, words))
        return self._result(text, docs, messages, checks, words)

    def _restyle(self, text: str, docs: Sequence[Document]) -> Controlled:
        return self._check(AIMessage(text), text, docs, None)


def split_by_author(docs: Sequence[Document]) -> list[list[Document]]:
    """The retrieved documents grouped by user, in author order (their ``position``).

    Example:
        >>> docs = [Document("b", metadata={"user_id": "bob", "position": 1}),
        ...         Document("a", metadata={"user_id": "ada", "position": 0})]
        >>> [[d.page_content for d in group] for group in split_by_author(docs)]
        [['a'], ['b']]
    """
    groups: dict[str, list[Document]] = {}
    order: dict[str, int] = {}
    for n, d in enumerate(docs):
        user = str(d.metadata.get("user_id", ""))
        groups.setdefault(user, []).append(d)
        order.setdefault(user, int(d.metadata.get("position", n)))
    return [groups[user] for user in sorted(groups, key=order.__getitem__)]


def merge_prompt(text: str, task: TaskSpec, proposals: Sequence[str]) -> list[BaseMessage]:
    """The second stage of the two-stage scheme: the authors' proposals, then the request,
    for the first author to merge.

    Example:
        >>> print(merge_prompt("We parse.", get_task("scholarly_title"), ["A", "B"])[0].content)
        Titles proposed by the authors, first author first:
        1. A
        2. B
        <BLANKLINE>
        Generate a title for the following abstract of a paper: We parse.
        <BLANKLINE>
        As the first author, write the final title from the proposals. Write only the title.
    """
    listed = "\n".join(
        f"{n}. {p.strip()}".replace("\n", "\n   ") for n, p in enumerate(proposals, start=1)
    )
    return [
        HumanMessage(
            f"{task.plural.capitalize()} proposed by the authors, first author first:\n"
            f"{listed}\n\n{request(text, task)}\n\nAs the first author, write the final "
            f"{task.output_name} from the proposals. Write only the {task.output_name}."
        )
    ]


class TwoStage:
    """The authors' code's group scheme: each author proposes an answer from their own
    profile and history (one :class:`Personalizer` run each, in author order), then the first
    author merges the proposals (one more call). Their own proposal stands when the merge is
    unusable; a single author's proposal is the answer (no merge).

    Cost: ``n_authors + 1`` LLM calls for a group of two or more (one answer per proposal
    unless ``candidates`` says more; output control adds one call for a proposal whose every
    answer it rejects), against one for ``concat``.

    Example:
        ```python
        step = TwoStage(llm, get_task("scholarly_title"), prompt_layout="few_shot")
        step.run("We study...", docs)["control"]["proposals"]   # one per author
        ```
    """

    def __init__(
        self,
        llm: BaseChatModel,
        task: TaskSpec,
        *,
        prompt_layout: PromptStrategy = "auto",
        control: bool = True,
        candidates: int | None = None,
    ) -> None:
        self.llm = llm
        self.task = task
        self.control = control
        self.proposer = Personalizer(
            llm,
            task,
            prompt_layout=prompt_layout,
            control=control,
            candidates=1 if candidates is None else candidates,
        )

    def _merge_model(self, lead: Sequence[Document]) -> tuple[Runnable, float | None]:
        words = None if self.task.rewrite or not self.control else target_words(self.task, lead)
        model = with_max_tokens(self.llm, max_tokens_for(self.task, words)) if words else self.llm
        return model, words

    def _result(
        self,
        docs: Sequence[Document],
        proposals: Sequence[dict[str, Any]],
        messages: list[BaseMessage],
        answer: Any,
        words: float | None,
    ) -> dict[str, Any]:
        raw = answer.content if isinstance(answer.content, str) else str(answer.content)
        line = self.task.output_format == "line"
        merged = (
            control(raw, typical_words=words if line else None, **control_options(self.task))
            if self.control
            else Controlled(raw.strip(), "ok")
        )
        usable = merged.verdict == "ok" and bool(merged.text.strip())
        calls = sum(p["control"]["llm_calls"] for p in proposals) + 1
        return {
            "output": merged.text if usable else proposals[0]["output"],
            "documents": list(docs),
            "messages": messages,
            "control": {
                "layout": "two_stage",
                "group_mode": "two_stage",
                "proposal_layout": self.proposer.layout,
                "proposals": [p["output"] for p in proposals],
                "merge": merged.text,
                "candidates": self.proposer.candidates,
                "chosen": None,
                "verdicts": [
                    *(v for p in proposals for v in p["control"]["verdicts"]),
                    merged.verdict,
                ],
                "actions": merged.actions,
                "fallback": not usable,
                "shown": [i for p in proposals for i in p["control"]["shown"]],
                "llm_calls": calls,
            },
        }

    def _single(self, result: dict[str, Any]) -> dict[str, Any]:
        control_ = {**result["control"], "group_mode": "two_stage", "proposals": [result["output"]]}
        return {**result, "control": control_}

    def run(
        self, text: str, docs: Sequence[Document], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        groups = split_by_author(docs) or [[]]
        proposals = [self.proposer.run(text, group, config) for group in groups]
        if len(proposals) == 1:
            return self._single(proposals[0])
        messages = merge_prompt(text, self.task, [p["output"] for p in proposals])
        model, words = self._merge_model(groups[0])
        return self._result(docs, proposals, messages, model.invoke(messages, config), words)

    async def arun(
        self, text: str, docs: Sequence[Document], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        groups = split_by_author(docs) or [[]]
        proposals = await asyncio.gather(*(self.proposer.arun(text, g, config) for g in groups))
        if len(proposals) == 1:
            return self._single(proposals[0])
        messages = merge_prompt(text, self.task, [p["output"] for p in proposals])
        model, words = self._merge_model(groups[0])
        answer = await model.ainvoke(messages, config)
        return self._result(docs, proposals, messages, answer, words)


def _group_mode(group_mode: Any) -> GroupMode:
    if group_mode not in GROUP_MODES:
        raise InvalidArgumentError(
            f"unknown group_mode {group_mode!r}; use one of {list(GROUP_MODES)}"
        )
    return group_mode


def _with_gists(
    retriever: Runnable[str, list[Document]], llm: BaseChatModel, step: Personalizer | TwoStage
) -> Runnable[str, list[Document]]:
    """The retriever with style gists on (written by ``llm`` unless it names its own model),
    when the chain's layout shows them."""
    from langchain_stepback_profile.retriever import StepBackProfileRetriever

    if not isinstance(retriever, StepBackProfileRetriever):
        raise InvalidArgumentError(
            "style_gists=True needs a StepBackProfileRetriever (its memory caches the gists), "
            f"got {type(retriever).__name__}; or pass StepBackProfileRetriever(..., "
            "style_gists=True) as the retriever"
        )
    layout = step.proposer.layout if isinstance(step, TwoStage) else step.layout
    if layout != "paper":
        warnings.warn(
            f"style gists are shown in the 'paper' prompt layout only; this chain's layout is "
            f"{layout!r}, so no gist is written (pass prompt_layout='paper' to show them)",
            UserWarning,
            stacklevel=3,
        )
        return retriever
    if retriever.style_gists:
        return retriever
    return retriever.model_copy(update={"style_gists": True, "gist_llm": retriever.gist_llm or llm})


def _count_gists(result: dict[str, Any], style_gists: bool) -> dict[str, Any]:
    """The result with its gist calls in ``control["gist_calls"]`` (style gists on only)."""
    if style_gists:
        sources = [d.metadata.get("style_gist_source") for d in result["documents"]]
        result["control"]["gist_calls"] = sum(s in ("written", "failed") for s in sources)
    return result


def create_personalized_chain(
    llm: BaseChatModel,
    retriever: Runnable[str, list[Document]],
    *,
    task: str | TaskSpec | None = None,
    prompt_layout: PromptStrategy = "auto",
    control: bool = True,
    candidates: int | None = None,
    return_context: bool = False,
    strategy: PromptStrategy | None = None,
    group_mode: GroupMode = "concat",
    style_gists: bool = False,
) -> Runnable:
    """A chain ``input -> personalized output``: one LLM call per query (three with a small
    model in the few-shot layout; one more when output control rejects every answer).

    The input is a string (or ``{"input": str}``); the users come from the retriever
    (its ``user_ids``, or ``config={"configurable": {"user_ids": [...]}}`` on the chain).
    ``prompt_layout`` picks the prompt layout (see :mod:`~langchain_stepback_profile.prompting`;
    ``"auto"`` fits it to the model; the older name ``strategy=`` still works, with a
    deprecation warning: a *profile* strategy is ``ProfileMemory.refresh(strategy=...)``);
    ``control`` turns output control on (cleaning, length from the lead author's profile,
    chat/copy detection, word forms for rewriting tasks);
    ``candidates`` is how many answers to draw and choose from (see :class:`Personalizer`).
    ``group_mode`` says how a group of users is served: ``"concat"`` (default) puts every
    author's profile and history in one prompt, in author order (the paper's concatenation);
    ``"two_stage"`` has each author propose from their own profile and history and the first
    author merge the proposals (:class:`TwoStage`: ``n_authors + 1`` LLM calls; one answer
    per proposal unless ``candidates`` is given).
    ``style_gists=True`` shows each retrieved item with its style gist (a one-line note of
    its tone, length and structure, :mod:`~langchain_stepback_profile.style_gists`) written
    by ``llm`` and cached in the retriever's memory: k items shown cost k more LLM calls the
    first time, 0 once cached (``ProfileMemory.refresh(style_gists=True)`` writes them ahead);
    ``control["gist_calls"]`` counts them. It needs a
    :class:`~langchain_stepback_profile.retriever.StepBackProfileRetriever`, and gists are
    shown in the ``paper`` layout only (elsewhere a warning says so and none is written: the
    few-shot turns show the users' own outputs).
    With ``return_context=True`` the chain returns ``{"output", "documents", "messages",
    "control"}``.

    Example:
        ```python
        chain = create_personalized_chain(llm, retriever, task="tweet_paraphrase")
        chain.invoke({"input": "so tired today"}, config={"configurable": {"user_ids": ["u1"]}})
        ```
    """
    spec = get_task(task)
    step_type = TwoStage if _group_mode(group_mode) == "two_stage" else Personalizer
    step = step_type(
        llm,
        spec,
        prompt_layout=_layout(prompt_layout, strategy),
        control=control,
        candidates=candidates,
    )

    def read_input(value: Any) -> str:
        return _input_text(value, spec)

    if style_gists:
        retriever = _with_gists(retriever, llm, step)
    gather = RunnableParallel(
        input=RunnableLambda(read_input), documents=RunnableLambda(read_input) | retriever
    )

    def personalize(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return _count_gists(step.run(state["input"], state["documents"], config), style_gists)

    async def apersonalize(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        result = await step.arun(state["input"], state["documents"], config)
        return _count_gists(result, style_gists)

    chain = gather | RunnableLambda(personalize, afunc=apersonalize, name="personalize")
    if not return_context:
        chain = chain | RunnableLambda(lambda result: result["output"])
    return chain.with_config(run_name="personalized_chain")
