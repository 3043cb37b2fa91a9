"""Prompt layouts: how profiles and retrieved history reach the model.

- ``"paper"``: the paper's layout, for capable models: P_U and the retrieved items, then the
  instruction right next to the input, all in one user turn.
- ``"few_shot"``: for small models: the retrieved items that are (input, output) pairs become
  earlier chat turns (the instruction with the item's input -> the user's real output), then
  the new input. For a group, the lead author's pairs and the co-authors' one most similar
  pair: more examples crowd a small model's prompt. The profile stays out of the prompt,
  where a small model would copy it; it drives output control instead (typical length, word
  forms).
- ``"plain"``: the instruction and the input only (the non-personalized control).
- ``"style"``: for rewriting tasks (a tweet paraphrase): no LLM call; the input itself in the
  user's own word forms and casing, from their profile. On LaMP-7 a 135M model's paraphrases
  score below the unchanged input, so this is what it does best.
- ``"auto"``: for small local models ``style`` on rewriting tasks and ``few_shot`` otherwise;
  ``paper`` for any other model.

Example:
    >>> from langchain_core.documents import Document
    >>> from langchain_stepback_profile.tasks import get_task
    >>> doc = Document("t", metadata={"kind": "history", "user_id": "a", "position": 0,
    ...     "input": "We parse.", "output": "Parsing", "score": 0.9})
    >>> [m.type for m in build_prompt("We tag.", [doc], get_task("scholarly_title"), "few_shot")]
    ['human', 'ai', 'human']
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.names import PROMPT_STRATEGIES
from langchain_stepback_profile.names import PromptStrategy as PromptStrategy
from langchain_stepback_profile.tasks import TaskSpec

SHOT_WORDS = 80
"""Words of each example input a few-shot turn keeps."""
# model names of small models that copy profile text and ignore layout hints
_SMALL_MODEL = re.compile(r"(?<![\d.])(?:135|360|500)m\b|(?<![\d.])(?:0\.5|1\.5|1)b\b", re.I)


def is_small_model(llm: Any) -> bool:
    """True for the embedded model and other models of a few hundred million parameters."""
    local = sys.modules.get("langchain_stepback_profile.llms.local")  # loaded if llm is one
    if local is not None and isinstance(llm, local.LocalChatModel):
        return True
    names = [str(getattr(llm, attr, "") or "") for attr in ("model_name", "model", "model_path")]
    # LangChain's own description of a model names the model an adapter wraps; a model
    # without one, or whose description cannot be computed, is judged by its fields alone
    with contextlib.suppress(Exception):
        names.append(str(llm._identifying_params.get("model_name") or ""))
    return bool(_SMALL_MODEL.search(" ".join(names)))


def resolve_strategy(strategy: str, llm: Any, task: TaskSpec | None = None) -> str:
    """The layout a strategy name means for this model and task (``auto`` decides by model
    size, and for small models by whether the task rewrites its input)."""
    if strategy not in PROMPT_STRATEGIES:
        raise InvalidArgumentError(
            f"unknown prompt strategy {strategy!r}; use one of {list(PROMPT_STRATEGIES)}"
        )
    if strategy == "style" and not (task and task.rewrite):
        raise InvalidArgumentError(
            "the 'style' layout only rewrites an input (a task with rewrite=True such as "
            "tweet_paraphrase); use 'few_shot' or 'paper' for this task"
        )
    if strategy == "auto":
        if not is_small_model(llm) or (task is not None and not task.examples):
            return "paper"  # an output no history item holds has no examples to show
        return "style" if task is not None and task.rewrite else "few_shot"
    return strategy


def format_profiles(docs: Sequence[Document]) -> str:
    """P_U = [P_u1; ...; P_un]: the profile documents, numbered in author order."""
    blocks = [
        f"Author {d.metadata['position'] + 1} ({d.metadata['user_id']}):\n{d.page_content}"
        for d in docs
        if d.metadata.get("kind") == "profile"
    ]
    return "\n\n".join(blocks)


def format_history(docs: Sequence[Document]) -> str:
    """R_1,k; ...; R_n,k: retrieved history items, grouped by author in order; an item's
    style gist (metadata ``style_gist``), when it has one, on a ``Style note:`` line beside it.

    Example:
        >>> doc = Document("Parsing", metadata={"kind": "history", "position": 0,
        ...     "style_gist": "terse; 1 word"})
        >>> print(format_history([doc]))
        [Author 1] Parsing
        Style note: terse; 1 word
    """
    lines = []
    for d in docs:
        if d.metadata.get("kind") != "history":
            continue
        who = f"Author {d.metadata['position'] + 1}"
        if d.metadata.get("output"):
            out_label = str(d.metadata.get("output_label") or "output").capitalize()
            in_label = str(d.metadata.get("input_label") or "input").capitalize()
            line = f"[{who}] {in_label}: {d.metadata['input']}\n{out_label}: {d.metadata['output']}"
        else:
            line = f"[{who}] {d.page_content}"
        gist = d.metadata.get("style_gist")
        lines.append(f"{line}\nStyle note: {gist}" if gist else line)
    return "\n\n".join(lines)


def render_context(docs: Sequence[Document]) -> str:
    """P_U then the retrieved items as one text block ('' when there is nothing to say).

    The one rendering of retrieved context shared by chains, agent middleware and LlamaIndex
    memory, so every face shows the model the same thing.
    """
    sections = []
    profiles = format_profiles(docs)
    if profiles:
        sections.append(
            f"Profiles of the authors, in author order (the first author leads):\n{profiles}"
        )
    history = format_history(docs)
    if history:
        sections.append(f"Earlier work of the authors, most similar first:\n{history}")
    return "\n\n".join(sections)


def request(text: str, task: TaskSpec) -> str:
    """The instruction right before the input (what a small model follows best)."""
    return f"{task.instruction} {text}"


_SHAPE_HINTS = {"line": "", "paragraph": " as one paragraph", "list": ", one a line"}
QUESTION_HINT = "Each question starts with How, What, Why or Can and ends with a question mark."
"""What the prompt of a task whose entries are questions adds (a small model otherwise
writes titles or topics)."""


def _paper(text: str, docs: Sequence[Document], task: TaskSpec) -> list[BaseMessage]:
    context = render_context(docs)
    sections = [context] if context else []
    hint = f" {QUESTION_HINT}" if task.questions else ""
    sections.append(
        f"{request(text, task)}\n\nWrite only the {task.output_name}"
        f"{_SHAPE_HINTS[task.output_format]}, in the authors' style, with no explanation.{hint}"
    )
    return [HumanMessage("\n\n".join(sections))]


def example_pair(doc: Document, task: TaskSpec) -> tuple[str, str] | None:
    """A retrieved item as an (input, output) example of ``task``, or None when it is no
    pair. A pair whose input is what the task writes is shown the other way round: a
    paper stored as abstract -> title is a title -> abstract example for the abstract task.

    Example:
        >>> from langchain_stepback_profile.tasks import get_task
        >>> doc = Document("t", metadata={"input": "We parse.", "output": "Parsing",
        ...     "input_label": "abstract", "output_label": "title"})
        >>> example_pair(doc, get_task("abstract"))
        ('Parsing', 'We parse.')
    """
    meta = doc.metadata
    if meta.get("kind", "history") != "history" or not meta.get("input") or not meta.get("output"):
        return None
    if meta.get("input_label") == task.output_name:
        return str(meta["output"]), str(meta["input"])
    return str(meta["input"]), str(meta["output"])


def _opening(text: str, words: int = SHOT_WORDS) -> str:
    """The first ``words`` words of an example's input: enough to teach the format, at a
    fraction of the prompt (a 135M model reads about 100 tokens a second on two cores)."""
    split = text.split()
    return text if len(split) <= words else " ".join(split[:words]) + " ..."


def _few_shot(text: str, docs: Sequence[Document], task: TaskSpec) -> list[BaseMessage]:
    """Pairs as turns: the lead author's, plus the co-authors' single most similar pair; the
    lead's best match sits last, nearest the new input."""
    pairs = [d for d in docs if d.metadata.get("kind") == "history" and example_pair(d, task)]
    # a paper the co-authors share is shown once, where its earliest author would show it
    first: dict[str, Document] = {}
    for d in pairs:
        first.setdefault(d.metadata["output"], d)
    lead = min((d.metadata["position"] for d in first.values()), default=0)
    shots = [d for d in first.values() if d.metadata["position"] == lead]
    # every co-author's examples would crowd a small model's prompt and dilute the lead's
    shots += sorted(
        (d for d in first.values() if d.metadata["position"] != lead),
        key=lambda d: -d.metadata.get("score", 0.0),
    )[:1]
    shots.sort(key=lambda d: (-d.metadata["position"], d.metadata.get("score", 0.0)))
    messages: list[BaseMessage] = []
    for d in shots:
        shown, written = example_pair(d, task) or ("", "")
        messages += [HumanMessage(request(shown, task)), AIMessage(written)]
    return [*messages, HumanMessage(request(text, task))]


def build_prompt(
    text: str, docs: Sequence[Document], task: TaskSpec, strategy: str = "paper"
) -> list[BaseMessage]:
    """The messages for one query under a resolved layout (``paper``, ``few_shot``, ``plain``)."""
    if strategy == "paper":
        return _paper(text, docs, task)
    if strategy == "few_shot":
        return _few_shot(text, docs, task)
    if strategy == "plain":
        return [HumanMessage(request(text, task))]
    raise InvalidArgumentError(
        f"build_prompt needs a resolved layout ('paper', 'few_shot' or 'plain'), got {strategy!r}"
    )
