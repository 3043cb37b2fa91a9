"""Style gists: a one-line note of a history item's tone, length and structure, cached in
the store beside the item (an option of the authors' code for Step-Back Profiling, arXiv
2406.14275).

The tone is the LLM's: one call per item, asking for a few adjectives. Length and structure
are measured from the item itself (its words, casing, colon, question, acronyms, informal
forms), so they are exact whatever the model. A tone that repeats the item's own words is
dropped and the gist keeps the measured part. For example ``formal and objective; 9 words;
Title Case; a colon``.

A gist is shown beside its item in the retrieved-history section of the prompt
(:func:`~langchain_stepback_profile.prompting.render_context`, the ``paper`` layout). It is
keyed by the item's content hash and by the gist setup (prompt version and text, model,
answer cap), so an unchanged item costs 0 LLM calls and another prompt or model writes it
again. Per query with ``k`` items shown: ``k`` gist calls the first time, 0 once cached;
``ProfileMemory.refresh(style_gists=True)`` writes them ahead of queries, one call per item.
Gists of many items are written in one ``batch`` (``abatch``) with bounded concurrency; a
gist whose call fails is logged and its item shown without one: the answer never fails
because of a gist, and a failed gist is tried again next time.

Example:
    ```python
    gists = StyleGists(memory, llm)
    written = gists.write({"alice": memory.items("alice")[:2]})
    [g.text for g in written.values()]   # ['formal and objective; 9 words; Title Case', ...]
    gists.write({"alice": memory.items("alice")[:2]})  # cached now: 0 LLM calls
    ```
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from tqdm.auto import tqdm

from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.distill import model_id
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evidence import content_stems, output_text, style_stats
from langchain_stepback_profile.history import HistoryItem
from langchain_stepback_profile.llms import with_max_tokens
from langchain_stepback_profile.store import ItemAnnotation

if TYPE_CHECKING:
    from langchain_stepback_profile.memory import ProfileMemory

logger = logging.getLogger(__name__)

GIST_KIND = "style_gist"
"""The annotation kind under which the store keeps style gists."""
GIST_PROMPT_VERSION = "2"
"""Part of every gist's cache key: a new version writes every gist again."""
GIST_SYSTEM = "Answer with one to three adjectives separated by commas, and nothing else."
"""The system message of every gist call."""
GIST_PROMPT = "What is the tone of this {label}?\n\n{text}"
"""The gist prompt; ``{label}`` / ``{Label}`` name what the user wrote (``title``...),
``{text}`` is it (the item's output when it has one, else its text). It carries no example
answer: a small model copies an example instead of describing the item."""
GIST_MAX_TOKENS = 16
"""The cap on a gist's answer, in tokens."""
TONE_WORDS = 6
"""Words of the model's tone a gist keeps (a longer answer is cut at a word boundary)."""
GIST_WORDS = 24
"""The most words a gist has: the tone and the measured length and structure."""
PRECOMPUTE_CHUNK = 8
"""A precompute writes ``PRECOMPUTE_CHUNK`` x ``max_concurrency`` items per batch (a step of
its progress bar)."""
ITEM_WORDS = 200
"""Words of an item the gist prompt shows."""

GistSource = Literal["cached", "written", "failed"]


@dataclass(frozen=True)
class StyleGist:
    """The gist of one item: its text (``None`` when it could not be written) and where it
    came from (``cached``: the store; ``written``: one LLM call now; ``failed``: a call that
    gave nothing usable)."""

    text: str | None
    source: GistSource


@dataclass
class GistReport:
    """What writing gists cost: items asked for, found cached, written, failed.

    Example:
        >>> GistReport(items=3, cached=2, written=1).llm_calls
        1
    """

    items: int = 0
    cached: int = 0
    written: int = 0
    failed: int = 0

    @property
    def llm_calls(self) -> int:
        return self.written + self.failed

    def add(self, gists: Mapping[Any, StyleGist]) -> None:
        for gist in gists.values():
            self.items += 1
            if gist.source == "cached":
                self.cached += 1
            elif gist.source == "written":
                self.written += 1
            else:
                self.failed += 1

    def __str__(self) -> str:
        return (
            f"{self.items} style gists: {self.cached} cached, {self.written} written, "
            f"{self.failed} failed"
        )


_TONE_LEAD = re.compile(
    r"^(?:[-*•]\s*)?(?:(?:the\s+)?(?:tone|style)(?:\s+note)?\s*:\s*)?"
    r"(?:(?:the\s+)?(?:tone|style)\s+of\s+(?:this|the)\s+\w+\s+(?:is|seems|sounds)\s+)?"
    r"(?:(?:this|the)\s+\w+\s+(?:is|sounds|seems)\s+|it\s+(?:is|sounds)\s+)?"
    r"(?:(?:a\s+)?mix\s+of\s+)?",
    re.I,
)
_TONE_END = re.compile(
    r"[.;:!?\n]|,\s*(?:with|which|as|and\s+it|but|\w+ing)\b|\s+(?:with|that|because|as)\s"
)
_DANGLING = {"and", "or", "a", "an", "the", "of", "with", "but", "very", "quite", "rather"}


def clean_tone(answer: Any, words: int = TONE_WORDS) -> str:
    """The tone a model's answer names: its first clause without labels, lead-ins (*"The tone
    of this title is"*), quotes or trailing clauses, in lower case and at most ``words``
    words; ``""`` when nothing is left.

    Example:
        >>> clean_tone("The tone of this text is formal and objective, with a clear aim.")
        'formal and objective'
        >>> clean_tone('Tone: "Casual, playful"')
        'casual, playful'
        >>> clean_tone("Adversarial, as it presents a contrast")
        'adversarial'
    """
    text = answer.content if isinstance(answer, BaseMessage) else answer
    if not isinstance(text, str):
        text = str(text)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = _TONE_LEAD.sub("", line.strip().strip("\"'`“”"), count=1)
    line = _TONE_END.split(line, maxsplit=1)[0].strip().strip("\"'`“”,").lower()
    split = line.split()[:words]
    while split and split[-1].strip(",") in _DANGLING:
        split.pop()
    return " ".join(split).strip(",")


def echoes(tone: str, text: str) -> bool:
    """Whether a tone repeats the item instead of describing it: half or more of its content
    words are the item's own (e.g. *"neural machine translation"* for a title about it).

    Example:
        >>> echoes("neural and technical", "Neural Machine Translation")
        True
        >>> echoes("formal", "A Study")
        False
    """
    words = content_stems(tone)
    return bool(words) and len(words & content_stems(text)) * 2 >= len(words)


def measured_style(text: str) -> str:
    """The length and structure of one text, measured: its words (and sentences, for long
    ones), casing, colon, question, acronyms, '!', emoticons, first person, informal forms.

    Example:
        >>> measured_style("Neural Dialogue: A Study of BERT?")
        '6 words; Title Case; a colon; a question; acronyms'
    """
    stats = style_stats([text])
    if not stats.items:
        return ""
    n = int(stats.median_words)
    parts = [f"{n} word{'s' if n != 1 else ''}"]
    sentences = len(re.findall(r"[.!?](?:\s|$)", text.strip()))
    if n > 25 and sentences > 1:
        parts.append(f"{sentences} sentences")
    if stats.title_case_share == 1.0 and n > 1:
        parts.append("Title Case")
    elif stats.lowercase_share == 1.0:
        parts.append("all lower case")
    for share, name in (
        (stats.colon_share, "a colon"),
        (stats.question_share, "a question"),
        (stats.acronym_share, "acronyms"),
        (stats.exclamation_share, "'!'"),
        (stats.emoji_share, "emoticons"),
    ):
        if share:
            parts.append(name)
    if re.search(r"\b(?:we|our|us|i|my|me)\b", text.lower()):
        parts.append("first person")
    if stats.characteristic_forms:
        parts.append("writes " + ", ".join(stats.characteristic_forms[:3]))
    return "; ".join(parts)


def compose_gist(answer: Any, text: str, words: int = GIST_WORDS) -> str:
    """One item's gist: the model's tone (unless it has no content word or :func:`echoes` the
    item), then the :func:`measured_style` of ``text``, at most ``words`` words.

    Example:
        >>> compose_gist("The tone of this title is formal.", "Neural Dialogue: A Study")
        'formal; 4 words; Title Case; a colon'
        >>> compose_gist("Neural dialogue", "Neural Dialogue: A Study")
        '4 words; Title Case; a colon'
    """
    tone = clean_tone(answer)
    parts = [tone] if content_stems(tone) and not echoes(tone, text) else []
    parts.append(measured_style(text))
    split = "; ".join(p for p in parts if p).split()
    return " ".join(split[:words])


def _opening(text: str, words: int = ITEM_WORDS) -> str:
    split = text.split()
    return text if len(split) <= words else " ".join(split[:words]) + " ..."


@dataclass
class _Plan:
    """The gists one call serves: those found cached, and the items still to write."""

    found: dict[tuple[str, str], StyleGist]
    todo: list[tuple[str, HistoryItem]]


def _bar(chunks: Sequence[Mapping[str, Sequence[HistoryItem]]], show: bool) -> tqdm:
    """The progress bar of a precompute: one step per item."""
    total = sum(len(items) for chunk in chunks for items in chunk.values())
    return tqdm(total=total, desc="style gists", unit="item", disable=not show)


class StyleGists:
    """Writes, caches and reads the style gists of users' history items.

    Args:
        memory: the :class:`~langchain_stepback_profile.memory.ProfileMemory` whose store
            caches the gists (per user: a gist never reaches another user; removing an item
            or forgetting the user removes its gists).
        llm: the chat model that writes them; default the memory's, else the embedded model.
        prompt: the gist prompt (``{label}``, ``{Label}`` and ``{text}`` are filled in);
            another prompt writes every gist again.
        max_concurrency: the most gist calls in flight at once.
        max_tokens: the cap on each answer.

    Example:
        ```python
        gists = StyleGists(memory, llm, max_concurrency=4)
        report = gists.precompute(["alice"])   # one call per item not yet gisted
        str(report)                            # '12 style gists: 0 cached, 12 written, 0 failed'
        ```
    """

    def __init__(
        self,
        memory: ProfileMemory,
        llm: BaseChatModel | None = None,
        *,
        prompt: str = GIST_PROMPT,
        max_concurrency: int = 4,
        max_tokens: int = GIST_MAX_TOKENS,
    ) -> None:
        for name, value in (("max_concurrency", max_concurrency), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(prompt, str) or "{text}" not in prompt:
            raise InvalidArgumentError(
                "the gist prompt must be a string with a {text} placeholder (and optionally "
                "{label} / {Label}), e.g. 'Describe the style of this {label}: {text}'"
            )
        if llm is not None and not isinstance(llm, BaseChatModel):
            raise InvalidArgumentError(
                f"llm must be a LangChain chat model, got {type(llm).__name__}"
            )
        self.memory = memory
        self._llm = llm
        self.prompt = prompt
        self.max_concurrency = max_concurrency
        self.max_tokens = max_tokens

    # ----------------------------------------------------------------- setup
    @property
    def llm(self) -> BaseChatModel:
        """The model that writes the gists (the embedded one is loaded on first use)."""
        if self._llm is None:
            if self.memory.llm is not None:
                self._llm = self.memory.llm
            else:
                from langchain_stepback_profile.llms import default_chat_model

                self._llm = default_chat_model()
        return self._llm

    @property
    def setup(self) -> str:
        """The cache key of this gist setup: prompt version and text, model, answer cap."""
        parts = (
            GIST_PROMPT_VERSION,
            GIST_SYSTEM,
            self.prompt,
            model_id(self.llm),
            str(self.max_tokens),
        )
        return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]

    def messages(self, item: HistoryItem) -> list[BaseMessage]:
        """The gist prompt of one item."""
        label = (item.output_label or "text") if item.output else "text"
        text = _opening(output_text(item))
        return [
            SystemMessage(GIST_SYSTEM),
            HumanMessage(
                self.prompt.replace("{label}", label)
                .replace("{Label}", label.capitalize())
                .replace("{text}", text)
            ),
        ]

    def _model(self) -> Runnable:
        return with_max_tokens(self.llm, self.max_tokens)

    def _config(self, config: RunnableConfig | None) -> RunnableConfig:
        return {**(config or {}), "max_concurrency": self.max_concurrency}

    # ----------------------------------------------------------------- plan and finish
    def _plan(self, wanted: Mapping[str, Sequence[HistoryItem]]) -> _Plan:
        """Read the cached gists of ``wanted``; the rest (one per content) is to write."""
        setup = self.setup
        found: dict[tuple[str, str], StyleGist] = {}
        todo: list[tuple[str, HistoryItem]] = []
        for user_id, items in wanted.items():
            unique = {item.content_hash: item for item in items}
            stored = self.memory.get_annotations(user_id, GIST_KIND, list(unique))
            for digest, item in unique.items():
                note = stored.get(digest)
                if note is not None and note.setup == setup:
                    found[(user_id, digest)] = StyleGist(note.text, "cached")
                else:
                    todo.append((user_id, item))
        return _Plan(found, todo)

    def _finish(self, plan: _Plan, answers: Sequence[Any]) -> dict[tuple[str, str], StyleGist]:
        """Clean the answers, store the usable ones, log the failures."""
        setup = self.setup
        gists = dict(plan.found)
        fresh: dict[str, list[ItemAnnotation]] = {}
        for (user_id, item), answer in zip(plan.todo, answers, strict=True):
            key = (user_id, item.content_hash)
            text = (
                "" if isinstance(answer, BaseException) else compose_gist(answer, output_text(item))
            )
            if not text:
                why = (
                    f"{type(answer).__name__}: {answer}"
                    if isinstance(answer, BaseException)
                    else "an empty item"
                )
                logger.warning(
                    "no style gist for item %r of user %r (%s); it is shown without one",
                    item.id,
                    user_id,
                    why,
                )
                gists[key] = StyleGist(None, "failed")
                continue
            gists[key] = StyleGist(text, "written")
            fresh.setdefault(user_id, []).append(ItemAnnotation(item.content_hash, setup, text))
        for user_id, notes in fresh.items():
            self.memory.put_annotations(user_id, GIST_KIND, notes)
        return gists

    # ----------------------------------------------------------------- writing
    def write(
        self, wanted: Mapping[str, Sequence[HistoryItem]], config: RunnableConfig | None = None
    ) -> dict[tuple[str, str], StyleGist]:
        """The gists of each user's items, by ``(user_id, item content hash)``: cached ones
        read from the store, the others written in one ``batch`` and stored."""
        plan = self._plan(wanted)
        answers: list[Any] = []
        if plan.todo:
            prompts = [self.messages(item) for _, item in plan.todo]
            answers = self._model().batch(prompts, self._config(config), return_exceptions=True)
        return self._finish(plan, answers)

    async def awrite(
        self, wanted: Mapping[str, Sequence[HistoryItem]], config: RunnableConfig | None = None
    ) -> dict[tuple[str, str], StyleGist]:
        """Async :meth:`write`: the store in a worker thread, the calls through ``abatch``."""
        plan = await off_loop(self._plan, wanted)
        answers: list[Any] = []
        if plan.todo:
            prompts = [self.messages(item) for _, item in plan.todo]
            answers = await self._model().abatch(
                prompts, self._config(config), return_exceptions=True
            )
        return await off_loop(self._finish, plan, answers)

    def _every_item(self, user_ids: Sequence[str] | str | None) -> dict[str, list[HistoryItem]]:
        users = [user_ids] if isinstance(user_ids, str) else user_ids
        return {u: self.memory.items(u) for u in (self.memory.users() if users is None else users)}

    def _chunks(
        self, wanted: Mapping[str, Sequence[HistoryItem]]
    ) -> list[dict[str, list[HistoryItem]]]:
        """``wanted`` in pieces of a few batches each, so a long precompute shows progress."""
        pairs = [(user_id, item) for user_id, items in wanted.items() for item in items]
        size = PRECOMPUTE_CHUNK * self.max_concurrency
        chunks: list[dict[str, list[HistoryItem]]] = []
        for start in range(0, len(pairs), size):
            chunk: dict[str, list[HistoryItem]] = {}
            for user_id, item in pairs[start : start + size]:
                chunk.setdefault(user_id, []).append(item)
            chunks.append(chunk)
        return chunks

    def precompute(
        self,
        user_ids: Sequence[str] | str | None = None,
        config: RunnableConfig | None = None,
        *,
        show_progress: bool = False,
    ) -> GistReport:
        """Write the gists of every item of ``user_ids`` (default: every user) that has none
        for this setup, so that later queries cost 0 gist calls; ``show_progress`` shows a
        bar of the items done."""
        report = GistReport()
        chunks = self._chunks(self._every_item(user_ids))
        with _bar(chunks, show_progress) as bar:
            for chunk in chunks:
                written = self.write(chunk, config)
                report.add(written)
                bar.update(len(written))
        return report

    async def aprecompute(
        self,
        user_ids: Sequence[str] | str | None = None,
        config: RunnableConfig | None = None,
        *,
        show_progress: bool = False,
    ) -> GistReport:
        """Async :meth:`precompute`."""
        report = GistReport()
        chunks = self._chunks(await off_loop(self._every_item, user_ids))
        with _bar(chunks, show_progress) as bar:
            for chunk in chunks:
                written = await self.awrite(chunk, config)
                report.add(written)
                bar.update(len(written))
        return report
