"""The Gist step: an LLM steps back from a user's history and writes a :class:`UserProfile`.

Long histories are split into chunks that fit the model's context (counted with the
model's own tokenizer when it has one) and merged map-reduce style; nothing is silently
dropped. A profile is reused while its history, prompt version, task and model are
unchanged (0 LLM calls), and updated incrementally (old profile + new items) when items
are only added.

Example:
    >>> from langchain_core.language_models import GenericFakeChatModel
    >>> from langchain_stepback_profile.history import HistoryItem
    >>> llm = GenericFakeChatModel(messages=iter(['{"interests": ["MT"], "summary": "MT."}']))
    >>> build = StepBackProfiler(llm).build("alice", [HistoryItem(id="1", text="NMT paper")])
    >>> build.profile.interests, build.llm_calls
    (['MT'], 1)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import json_repair
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, BaseLanguageModel, BaseLLM
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs
from pydantic import BaseModel, ValidationError

from langchain_stepback_profile.errors import (
    InvalidArgumentError,
    ProfileGenerationError,
    ProfileModelError,
)
from langchain_stepback_profile.evidence import (
    Evidence,
    claim_support,
    extract_evidence,
    output_text,
    style_stats,
)
from langchain_stepback_profile.history import HistoryItem, history_hash
from langchain_stepback_profile.llms import with_max_tokens
from langchain_stepback_profile.names import PROFILE_STRATEGIES, ProfileStrategy
from langchain_stepback_profile.output_control import overlap, sentences
from langchain_stepback_profile.profile import ProfileDraft, UserProfile, WritingStyle
from langchain_stepback_profile.profile_schema import ProfileSchema
from langchain_stepback_profile.prompting import is_small_model
from langchain_stepback_profile.tasks import TaskSpec, get_task
from langchain_stepback_profile.usage import LLMUsage

logger = logging.getLogger(__name__)

PROMPT_VERSION = "2"
BuildMode = Literal["unchanged", "built", "updated"]

_SYSTEM = (
    "You write short, factual profiles of authors from what they wrote. You describe the "
    "author's lasting interests and habits, never the content of one single item, and you "
    "answer with one JSON object only."
)


@dataclass(frozen=True)
class ProfileBuild:
    """The outcome of one profile build: the profile and what it cost."""

    profile: UserProfile
    mode: BuildMode
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    chunks: int = 0


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: the connection, a timeout, a rate limit, a server error.

    The openai and httpx errors count once those libraries are loaded (a model that uses
    them has loaded them), so importing this module imports neither.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    openai = sys.modules.get("openai")
    if openai is not None:
        errors += [
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.RateLimitError,
            openai.InternalServerError,
        ]
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        errors.append(httpx.TransportError)
    return tuple(errors)


RETRY_ATTEMPTS = 3


def _with_retries(runnable: Runnable) -> Runnable:
    """``runnable`` retried on :func:`_transient_errors` (3 attempts, about 1 s then 2 s
    apart)."""
    return runnable.with_retry(
        retry_if_exception_type=_transient_errors(),
        stop_after_attempt=RETRY_ATTEMPTS,
        exponential_jitter_params={"max": 4.0, "jitter": 0.1},
    )


def model_id(llm: BaseChatModel | BaseLLM) -> str:
    """A stable name for a model, part of the profile cache key."""
    params: dict[str, Any] = {}
    try:
        params = dict(llm._identifying_params)
    except Exception:  # pragma: no cover - exotic models
        params = {}
    for key in ("model_name", "model", "model_path", "model_id", "deployment_name"):
        value = params.get(key) or getattr(llm, key, None)
        if isinstance(value, str) and value:
            return f"{llm._llm_type}:{value}"
    return llm._llm_type


def _render_item(number: int, item: HistoryItem, text: str | None = None) -> str:
    if text is None and item.input is not None and item.output is not None:
        return (
            f"Item {number}\n{(item.output_label or 'output').capitalize()}: {item.output}\n"
            f"{(item.input_label or 'input').capitalize()}: {item.input}"
        )
    return f"Item {number}\n{text if text is not None else item.text}"


def _draft_json(draft: BaseModel) -> str:
    return json.dumps(draft.model_dump(mode="json"), ensure_ascii=False)


_BUILTIN = ProfileSchema(ProfileDraft)


def parse_draft(text: str, schema: ProfileSchema = _BUILTIN) -> BaseModel:
    """Find and validate the first JSON object in a model's answer (fences and chatter
    allowed) as an instance of ``schema`` (the built-in :class:`ProfileDraft` by default)."""
    decoder = json.JSONDecoder(strict=False)  # models put raw newlines inside strings
    error: Exception | None = None
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError as err:
            error = error or err
            continue
        if not isinstance(value, dict):
            continue
        try:
            draft = schema.validate(value)
        except ValidationError as err:
            error = err
            continue
        if schema.is_empty(draft):
            error = ValueError(f"the JSON object has no {schema.field_names()}")
            continue
        return draft
    repaired = _repaired_json(text, schema)  # before a repair call costs an LLM call
    if repaired is not None:
        return repaired
    raise ValueError(f"no usable JSON profile in the answer ({error or 'no JSON object found'})")


def _repaired_json(text: str, schema: ProfileSchema) -> BaseModel | None:
    """The profile in almost-JSON (trailing commas, single quotes, unquoted keys, comments, a
    cut-off end), mended by ``json_repair``; None when even that gives no usable profile."""
    start = text.find("{")
    if start < 0:
        return None
    value = json_repair.loads(text[start:])
    if not isinstance(value, dict):
        return None
    try:
        draft = schema.validate(value)
    except ValidationError:
        return None
    return None if schema.is_empty(draft) else draft


_UNCOUNTABLE: dict[int, BaseLanguageModel] = {}
"""Models whose token counting failed in this process, by id (kept, so no other model reuses
the id): their tokens are estimated from then on."""

# A build's request plan: yields batches of requests, is sent their answers, returns
# (draft, chunk count).
_Steps = Generator[list[list[BaseMessage]], list[Any], tuple[BaseModel, int]]


class StepBackProfiler:
    """Writes step-back profiles with any LangChain chat model.

    Args:
        llm: the chat model that writes profiles.
        task: what the history is (a name from :data:`~langchain_stepback_profile.tasks.TASKS`
            or a :class:`TaskSpec`), so the profile focuses on what matters for that output.
        context_tokens: the model's context window; read from the model when it says, else 8192.
        max_output_tokens: room kept for the answer in every call.
        structured: ``"auto"`` uses the model's tool/structured output when it has one and
            validated JSON otherwise; ``"tool"`` or ``"json"`` force one.
        token_counter: counts tokens; defaults to the model's own tokenizer when it has one.
        strategy: ``"llm"`` the paper's profile, written by the model from the raw history;
            ``"extractive"`` no LLM at all: ranked keywords, representative items and measured
            style (see :mod:`~langchain_stepback_profile.evidence`); ``"hybrid"`` the model
            writes from that evidence in one short call; ``"auto"`` is ``extractive`` for
            small local models (``hybrid`` with a custom ``profile_schema``, which needs a
            model to fill it) and ``llm`` for any other: a 135M model cannot write the
            paper's profile reliably, and its summaries identify their user less well than
            the extractive profile does (``docs/evaluation.md``, profile attribution).
            Every profile gets measured style statistics and a support score per claim.
        embeddings: ranks the keywords of extractive and hybrid profiles (default MiniLM).
        overwrite_edits: write every field anew; by default the fields a person edited
            (``UserProfile.edited_fields``) are kept as they are and the rest is rebuilt.
        profile_schema: the shape of the profile the model writes: the built-in
            :class:`ProfileDraft` (default) or any pydantic model (stored as
            ``UserProfile.data``; see :mod:`~langchain_stepback_profile.profile_schema`). The
            ``extractive`` strategy has no model to fill it and writes the built-in fields.
        instructions: added to every profile prompt (what to note, what to leave out).

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> profiler = StepBackProfiler(GenericFakeChatModel(messages=iter([])),
        ...                             task="scholarly_title", context_tokens=4096)
        >>> profiler.task.output_name
        'title'
    """

    def __init__(
        self,
        llm: BaseChatModel | None,
        *,
        task: str | TaskSpec | None = None,
        context_tokens: int | None = None,
        max_output_tokens: int = 512,
        structured: Literal["auto", "tool", "json"] = "auto",
        token_counter: Callable[[str], int] | None = None,
        strategy: ProfileStrategy = "llm",
        embeddings: Embeddings | None = None,
        overwrite_edits: bool = False,
        profile_schema: type[BaseModel] | None = None,
        instructions: str | None = None,
    ) -> None:
        self.schema = ProfileSchema.of(profile_schema, instructions)
        if strategy not in PROFILE_STRATEGIES:
            raise InvalidArgumentError(
                f"unknown profile strategy {strategy!r}; use one of {list(PROFILE_STRATEGIES)}"
            )
        self.requested_strategy = strategy
        self.overwrite_edits = overwrite_edits
        if strategy == "auto":
            strategy = self._auto_strategy(llm)
        self.strategy = strategy
        self.task = get_task(task)
        self._embeddings = embeddings
        self.llm = llm
        if strategy == "extractive":
            self.model = "extractive"
            return
        if llm is None:
            raise InvalidArgumentError(
                f"the {strategy!r} profile strategy needs a chat model; pass llm=... or use "
                "strategy='extractive'"
            )
        self.context_tokens = int(
            context_tokens
            or getattr(llm, "context_tokens", None)
            or getattr(llm, "n_ctx", None)
            or 8192
        )
        self.max_output_tokens = max_output_tokens
        self.model = model_id(llm)
        self._count = token_counter or self._default_counter(llm)
        runnable, self._mode = self._structured_runnable(llm, structured)
        self._runnable = _with_retries(runnable)
        self._text_model = _with_retries(with_max_tokens(llm, 96))  # a two-sentence summary
        # every message of a request counts (the system prompt too), part marker included
        overhead = sum(self._count(m.text) for m in self._request(["x"], part=(99, 99), base=None))
        self.chunk_tokens = self.context_tokens - self.max_output_tokens - overhead - 64
        if self.chunk_tokens < 2 * self.max_output_tokens:
            raise InvalidArgumentError(
                f"context_tokens={self.context_tokens} leaves only {self.chunk_tokens} tokens for "
                f"history; give a larger context or a smaller max_output_tokens "
                f"(now {self.max_output_tokens})"
            )

    def _auto_strategy(self, llm: BaseChatModel | None) -> ProfileStrategy:
        """What ``"auto"`` means for ``llm``: chosen by profile attribution (the profile that
        best picks out its own user), not by habit."""
        if llm is None or not is_small_model(llm):
            return "llm"
        return "extractive" if self.schema.builtin else "hybrid"

    # ----------------------------------------------------------------- cache and plan
    def cache_key(self) -> tuple[str, str, str, str]:
        return (self.prompt_version, self.task.name, self.model, self.strategy)

    @property
    def prompt_version(self) -> str:
        """The prompt version stored with profiles: the package's, with the schema's hash."""
        return self.schema.prompt_version(PROMPT_VERSION)

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            from langchain_stepback_profile.embeddings import MiniLMEmbeddings

            self._embeddings = MiniLMEmbeddings()
        return self._embeddings

    def plan(self, items: Sequence[HistoryItem], previous: UserProfile | None) -> BuildMode:
        """What a build would do: reuse the previous profile, update it, or build anew."""
        if previous is None:
            return "built"
        setup = (previous.prompt_version, previous.task, previous.model, previous.strategy)
        same_setup = setup == self.cache_key()
        if self.overwrite_edits and previous.edited_fields:
            return "built"
        if previous.history_hash == history_hash(items) and same_setup:
            return "unchanged"
        current = {item.id for item in items}
        # evidence-based profiles are cheap to write again; only the paper's updates in place
        same_shape = self.schema.content(previous) is not None
        updatable = self.strategy == "llm" and same_shape and (same_setup or previous.edited)
        if updatable and set(previous.item_ids) < current:
            return "updated"
        return "built"

    # ----------------------------------------------------------------- public build
    def build(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> ProfileBuild:
        """Build or update ``user_id``'s profile (synchronous).

        The build is one run named ``stepback_profile`` (metadata ``user_id``) under the
        callbacks, tags and metadata of ``config``; its LLM calls are that run's children, so
        a tracer (LangSmith) shows one run per profile.
        """

        def run(_: dict[str, Any], config: RunnableConfig) -> ProfileBuild:
            return self._build(user_id, items, previous, config)

        return RunnableLambda(run, name=RUN_NAME).invoke(
            _run_input(user_id, items, previous), _run_config(user_id, config)
        )

    def _build(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None,
        parent: RunnableConfig,
    ) -> ProfileBuild:
        mode, steps = self._begin(items, previous)
        if steps is None:
            return self._without_llm(user_id, items, previous, mode)
        usage = LLMUsage()
        config = self._config(usage, parent)
        call = self._call_text if self._writes_summary_only else self._call
        batch = next(steps)
        while True:
            # only the plan's own StopIteration ends the loop; one raised by a model propagates
            try:
                drafts = [call(messages, config) for messages in batch]
            except _transient_errors() as err:
                raise self._unreachable(err) from err
            try:
                batch = steps.send(drafts)
            except StopIteration as done:
                return self._finish(user_id, items, previous, mode, usage, *done.value)

    async def abuild(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None = None,
        *,
        limit: asyncio.Semaphore | None = None,
        config: RunnableConfig | None = None,
    ) -> ProfileBuild:
        """Build or update ``user_id``'s profile; map calls of one level run concurrently.

        ``limit`` (shared between builds) bounds how many LLM calls are in flight at once;
        ``config`` as in :meth:`build`.
        """

        async def run(_: dict[str, Any], config: RunnableConfig) -> ProfileBuild:
            return await self._abuild(user_id, items, previous, limit, config)

        return await RunnableLambda(run, name=RUN_NAME).ainvoke(
            _run_input(user_id, items, previous), _run_config(user_id, config)
        )

    async def _abuild(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None,
        limit: asyncio.Semaphore | None,
        parent: RunnableConfig,
    ) -> ProfileBuild:
        mode, steps = self._begin(items, previous)
        if steps is None:
            return self._without_llm(user_id, items, previous, mode)
        usage = LLMUsage()
        config = self._config(usage, parent)
        call = self._acall_text if self._writes_summary_only else self._acall
        batch = next(steps)
        while True:
            try:
                drafts = await asyncio.gather(*(call(m, config, limit) for m in batch))
            except _transient_errors() as err:
                raise self._unreachable(err) from err
            try:
                batch = steps.send(list(drafts))
            except StopIteration as done:
                return self._finish(user_id, items, previous, mode, usage, *done.value)

    @property
    def _writes_summary_only(self) -> bool:
        """The hybrid plan with the built-in schema: the model writes the summary as text."""
        return self.strategy == "hybrid" and self.schema.builtin

    def _begin(
        self, items: Sequence[HistoryItem], previous: UserProfile | None
    ) -> tuple[BuildMode, _Steps | None]:
        """The build mode and the request plan (None when no LLM call is needed)."""
        mode = self.plan(items, previous)
        if mode == "unchanged" or self.strategy == "extractive":
            return mode, None
        if self.strategy == "hybrid":
            return mode, self._evidence_steps(items)
        return mode, self._steps(items, previous if mode == "updated" else None)

    def _without_llm(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None,
        mode: BuildMode,
    ) -> ProfileBuild:
        if mode == "unchanged":
            assert previous is not None  # only a stored profile can be unchanged
            return ProfileBuild(previous, mode)
        evidence = extract_evidence(items, self.embeddings)
        draft = ProfileDraft(
            interests=evidence.phrases,
            keywords=evidence.keywords,
            style=WritingStyle(**evidence.style.describe()),
            summary=" | ".join(evidence.representative),  # the most typical items, verbatim
        )
        return self._finish(user_id, items, previous, mode, LLMUsage(), draft, 0)

    @staticmethod
    def _config(usage: LLMUsage, parent: RunnableConfig) -> RunnableConfig:
        """The LLM calls' config: the build run's (its callbacks as parent) plus the counter."""
        return merge_configs(parent, {"callbacks": [usage]})

    def _finish(
        self,
        user_id: str,
        items: Sequence[HistoryItem],
        previous: UserProfile | None,
        mode: BuildMode,
        usage: LLMUsage,
        draft: BaseModel,
        chunks: int,
    ) -> ProfileBuild:
        stats = style_stats([output_text(item) for item in items])
        if self._writes_summary_only:  # measured style replaces what the model guessed
            draft = draft.model_copy(update={"style": WritingStyle(**stats.describe())})
        kept = [] if previous is None or self.overwrite_edits else previous.edited_fields
        schema = self.schema if self.strategy != "extractive" else _BUILTIN
        profile = schema.profile(  # a person's edits win over what the build wrote
            draft,
            previous=previous,
            kept=kept,
            user_id=user_id,
            version=(previous.version + 1) if previous else 1,
            history_hash=history_hash(items),
            item_ids=[item.id for item in items],
            model=self.model,
            prompt_version=self.prompt_version,
            task=self.task.name,
            strategy=self.strategy,
            stats=asdict(stats),
            edited=bool(kept),
            edited_fields=list(kept),
        )
        profile.support = profile.support_with_edits(claim_support(profile.claims(), items), kept)
        return ProfileBuild(
            profile, mode, usage.calls, usage.input_tokens, usage.output_tokens, chunks
        )

    # ----------------------------------------------------------------- map-reduce plan
    def _steps(
        self, items: Sequence[HistoryItem], base: UserProfile | None
    ) -> Generator[list[list[BaseMessage]], list[BaseModel], tuple[BaseModel, int]]:
        """Yields batches of requests (independent within a batch); returns the final draft."""
        known = set(base.item_ids) if base else set()
        new_items = [item for item in items if item.id not in known]
        base_draft = self.schema.content(base)
        reserve = self._count(_draft_json(base_draft)) if base_draft else 0
        # a profile too large to share a prompt with new items is merged as one more partial
        inline = base_draft is None or reserve <= self.chunk_tokens // 2
        chunks = self._chunk(new_items, self.chunk_tokens - (reserve if inline else 0))
        if len(chunks) == 1 and inline:
            drafts = yield [self._request(chunks[0], part=(1, 1), base=base_draft)]
            return drafts[0], 1
        partials = yield [
            self._request(chunk, part=(i + 1, len(chunks)), base=None)
            for i, chunk in enumerate(chunks)
        ]
        if base_draft is not None:
            partials = [base_draft, *partials]
        while len(partials) > 1:
            partials = yield [self._merge_request(group) for group in self._groups(partials)]
        return partials[0], len(chunks)

    def _chunk(self, items: Sequence[HistoryItem], budget: int) -> list[list[str]]:
        """Pack rendered items into chunks of at most ``budget`` tokens; split oversized items."""
        chunks: list[list[str]] = [[]]
        used = 0
        for number, item in enumerate(items, start=1):
            for piece in self._pieces(number, item, budget):
                size = self._count(piece) + 2
                if chunks[-1] and used + size > budget:
                    chunks.append([])
                    used = 0
                chunks[-1].append(piece)
                used += size
        return chunks

    def _pieces(self, number: int, item: HistoryItem, budget: int) -> list[str]:
        rendered = _render_item(number, item)
        if self._count(rendered) <= budget:
            return [rendered]
        words = item.text.split()
        pieces: list[str] = []
        start = 0
        while start < len(words):
            low, high = start + 1, len(words)
            while low < high:  # the longest run of words that fits
                mid = (low + high + 1) // 2
                text = " ".join(words[start:mid])
                if self._count(_render_item(number, item, text)) <= budget:
                    low = mid
                else:
                    high = mid - 1
            pieces.append(
                _render_item(
                    number, item, f"(part {len(pieces) + 1}) " + " ".join(words[start:low])
                )
            )
            start = low
        return pieces

    def _groups(self, drafts: list[BaseModel]) -> list[list[BaseModel]]:
        groups: list[list[BaseModel]] = [[]]
        used = 0
        for draft in drafts:
            size = self._count(_draft_json(draft)) + 4
            if len(groups[-1]) >= 2 and used + size > self.chunk_tokens:
                groups.append([])
                used = 0
            groups[-1].append(draft)
            used += size
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2].extend(groups.pop())
        return groups

    def _evidence_steps(
        self, items: Sequence[HistoryItem]
    ) -> Generator[list[list[BaseMessage]], list[Any], tuple[BaseModel, int]]:
        """The hybrid plan: topics, keywords and style are measured; the model writes only the
        summary, from that evidence, in one short call (with a custom schema, that call fills
        the schema from the evidence)."""
        evidence = extract_evidence(items, self.embeddings)
        texts = yield [self._evidence_request(evidence)]
        if not self.schema.builtin:
            return texts[0], 1
        summary = first_sentences(texts[0], 2)
        if not summary or overlap(summary, " ".join(evidence.representative)) >= 0.6:
            # a small model often just repeats the examples: say what the evidence says instead
            summary = f"Works on {', '.join(evidence.phrases[:3] or evidence.keywords[:3])}."
        draft = ProfileDraft(
            interests=evidence.phrases, keywords=evidence.keywords, summary=summary
        )
        return draft, 1

    # ----------------------------------------------------------------- prompts
    def _evidence_request(self, evidence: Evidence) -> list[BaseMessage]:
        examples = "\n".join(f"- {text[:200]}" for text in evidence.representative)
        shown = (
            f"Recurring phrases: {', '.join(evidence.phrases)}\n"
            f"Recurring keywords: {', '.join(evidence.keywords)}\n"
            f"Typical examples:\n{examples}\n\nThese come from the {self.task.history}."
        )
        if not self.schema.builtin:
            return [
                SystemMessage(_SYSTEM),
                HumanMessage(
                    f"{shown} Describe their author using only what is shown above. Write "
                    f"{self.schema.field_guide()}.{self.schema.instruction_text()}"
                    f"{self._answer_form()}"
                ),
            ]
        return [
            HumanMessage(
                f"{shown} In two sentences, describe what this author works on and how they "
                f"write, using only the words above.{self.schema.instruction_text()}"
            ),
        ]

    def _request(
        self, chunk: Sequence[str], part: tuple[int, int], base: BaseModel | None
    ) -> list[BaseMessage]:
        task = self.task
        where = f" This is part {part[0]} of {part[1]} of the history." if part[1] > 1 else ""
        if base is None:
            head = (
                f"Step back from the items below ({task.history}) and describe their author.{where}"
                f" Focus on {task.focus}."
            )
        else:
            head = (
                f"Here is the current profile of an author:\n{_draft_json(base)}\n\n"
                f"Below are new items ({task.history}) by the same author. Update the profile so "
                "it covers the old and the new items; keep what still holds."
            )
        body = "\n\n".join(chunk)
        return [
            SystemMessage(_SYSTEM),
            HumanMessage(
                f"{head}\n\n{body}\n\nWrite {self.schema.field_guide()}. Describe habits across "
                f"items; do not copy sentences.{self.schema.instruction_text()}"
                f"{self._answer_form()}"
            ),
        ]

    def _merge_request(self, drafts: Sequence[BaseModel]) -> list[BaseMessage]:
        parts = "\n".join(
            f"Partial profile {i + 1}: {_draft_json(d)}" for i, d in enumerate(drafts)
        )
        return [
            SystemMessage(_SYSTEM),
            HumanMessage(
                f"These partial profiles describe the same author, each from a part of their "
                f"history ({self.task.history}).\n\n{parts}\n\nMerge them into one profile: keep "
                f"what recurs, drop repetition. Write {self.schema.field_guide()}."
                f"{self.schema.instruction_text()}{self._answer_form()}"
            ),
        ]

    def _answer_form(self) -> str:
        """The JSON template, only where the model is not already held to the schema (a small
        model under a schema grammar copies a template's placeholders)."""
        if self._mode == "tool":
            return ""
        return f" Answer with one JSON object of this form:\n{self.schema.json_form()}"

    # ----------------------------------------------------------------- LLM calls
    def _default_counter(self, llm: BaseChatModel) -> Callable[[str], int]:
        own = (
            type(llm).get_num_tokens is not BaseLanguageModel.get_num_tokens
            or (type(llm).get_token_ids is not BaseLanguageModel.get_token_ids)
            or getattr(llm, "custom_get_token_ids", None) is not None
        )
        if not own or id(llm) in _UNCOUNTABLE:
            return _approximate_tokens

        def count(text: str) -> int:
            if id(llm) not in _UNCOUNTABLE:
                try:
                    return int(llm.get_num_tokens(text))
                except Exception as err:  # e.g. a tokenizer that needs a download
                    _UNCOUNTABLE[id(llm)] = llm  # said once, not once per user
                    logger.warning("token counting with the model failed (%s); estimating", err)
            return _approximate_tokens(text)

        return count

    def _structured_runnable(self, llm: BaseChatModel, structured: str) -> tuple[Runnable, str]:
        if structured in ("auto", "tool"):
            # tool calls work on every OpenAI-compatible server (vLLM, llama.cpp, Ollama);
            # a json_schema response format, ChatOpenAI's default, does not
            method = {"method": "function_calling"} if _is_openai_client(llm) else {}
            try:
                return (
                    llm.with_structured_output(self.schema.model, include_raw=True, **method),
                    "tool",
                )
            except NotImplementedError:
                if structured == "tool":
                    raise InvalidArgumentError(
                        f"{type(llm).__name__} has no structured output; use structured='json'"
                    ) from None
        return llm, "json"

    def _read(self, answer: Any) -> tuple[BaseModel | None, str, str]:
        """(draft or None, raw text, error) from a model answer in either mode."""
        if self._mode == "tool":
            raw = answer.get("raw")
            text = _content_text(raw)
            parsed = answer.get("parsed")
            if isinstance(parsed, self.schema.model):
                try:  # cleaned and bounded like a JSON answer
                    draft = self.schema.validate(parsed.model_dump())
                except ValidationError:
                    draft = None
                if draft is not None and not self.schema.is_empty(draft):
                    return draft, text, ""
            if text:
                try:
                    return parse_draft(text, self.schema), text, ""
                except ValueError as err:
                    return None, text, str(err)
            return None, text, str(answer.get("parsing_error") or "empty structured answer")
        text = _content_text(answer)
        try:
            return parse_draft(text, self.schema), text, ""
        except ValueError as err:
            return None, text, str(err)

    def _repair(self, messages: list[BaseMessage], text: str, error: str) -> list[BaseMessage]:
        return [
            *messages,
            AIMessage(text or "(empty answer)"),
            HumanMessage(
                f"That answer could not be used: {error}. Answer again, describing the author from "
                f"the items.{self._answer_form()}"
            ),
        ]

    def _unreachable(self, err: BaseException) -> ProfileModelError:
        return ProfileModelError(
            f"{self.model} failed {RETRY_ATTEMPTS} times while writing a profile "
            f"({type(err).__name__}: {err}); the stored profile was kept. Check that the model "
            "server is up and reachable (base_url, API key, rate limits), then refresh again"
        )

    def _fail(self, text: str, error: str) -> ProfileGenerationError:
        return ProfileGenerationError(
            f"{self.model} did not return a valid profile after one repair attempt ({error}); "
            f"its last answer began {text[:120]!r}. The stored profile was kept. Use a more "
            "capable model, or structured='json' if its tool calls are unreliable."
        )

    def _call(self, messages: list[BaseMessage], config: RunnableConfig) -> BaseModel:
        draft, text, error = self._read(self._runnable.invoke(messages, config))
        if draft is None:
            repaired = self._repair(messages, text, error)
            draft, text, error = self._read(self._runnable.invoke(repaired, config))
        if draft is None:
            raise self._fail(text, error)
        return draft

    def _call_text(self, messages: list[BaseMessage], config: RunnableConfig) -> str:
        return _content_text(self._text_model.invoke(messages, config))

    async def _acall_text(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        limit: asyncio.Semaphore | None = None,
    ) -> str:
        if limit is not None:
            async with limit:
                return await self._acall_text(messages, config)
        return _content_text(await self._text_model.ainvoke(messages, config))

    async def _acall(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        limit: asyncio.Semaphore | None = None,
    ) -> BaseModel:
        if limit is not None:
            async with limit:
                return await self._acall(messages, config)
        draft, text, error = self._read(await self._runnable.ainvoke(messages, config))
        if draft is None:
            repaired = self._repair(messages, text, error)
            draft, text, error = self._read(await self._runnable.ainvoke(repaired, config))
        if draft is None:
            raise self._fail(text, error)
        return draft


RUN_NAME = "stepback_profile"
"""The name of each profile build's run in callbacks and traces."""


def _run_input(
    user_id: str, items: Sequence[HistoryItem], previous: UserProfile | None
) -> dict[str, Any]:
    """What a trace shows as a build's input (a summary: the items themselves are stored)."""
    return {
        "user_id": user_id,
        "items": len(items),
        "previous_version": previous.version if previous else None,
    }


def check_config(config: Any) -> None:
    """Refuse a ``config`` that is not a ``RunnableConfig`` dict, naming the expected shape."""
    if config is not None and not isinstance(config, dict):
        raise InvalidArgumentError(
            f"config must be a RunnableConfig dict such as {{'callbacks': [handler]}}, got "
            f"{type(config).__name__}"
        )


def _run_config(user_id: str, config: RunnableConfig | None) -> RunnableConfig:
    check_config(config)
    return merge_configs(config, {"metadata": {"user_id": user_id}, "run_name": RUN_NAME})


def first_sentences(text: str, n: int) -> str:
    """The first ``n`` sentences of a model's answer, without a chatty lead-in line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return " ".join(sentences(" ".join(lines))[:n])


def _is_openai_client(llm: BaseChatModel) -> bool:
    # an OpenAI client has loaded langchain-openai; a check must not load it (and openai)
    base = sys.modules.get("langchain_openai.chat_models.base")
    return base is not None and isinstance(llm, base.BaseChatOpenAI)


def _approximate_tokens(text: str) -> int:
    """A conservative estimate (about 3 characters a token) for models without a tokenizer."""
    return len(text) // 3 + 1


def _content_text(message: Any) -> str:
    if message is None:
        return ""
    if isinstance(message, str):
        return message
    content = getattr(message, "content", "")
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)
