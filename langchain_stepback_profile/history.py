"""User history items and the coercion of user input into them.

A history item is one thing a user wrote, optionally with the input it answered
(an abstract and the title the user gave it, an article and its headline, a tweet).

Example:
    >>> item = to_history_item({"title": "Deep RL for Text Games", "abstract": "We study..."})
    >>> item.output, item.input_label
    ('Deep RL for Text Games', 'abstract')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field

from langchain_stepback_profile.errors import InvalidItemError
from langchain_stepback_profile.names import check_user_id as check_user_id

# LaMP-style field names, most specific first: (field, label) pairs.
_OUTPUT_FIELDS: tuple[str, ...] = ("output", "title", "tag", "category", "score", "subject")
_INPUT_FIELDS: tuple[str, ...] = ("input", "abstract", "article", "text", "review", "body")


class HistoryItem(BaseModel):
    """One item of a user's history.

    ``text`` is what is embedded and shown; ``input``/``output`` keep the pair when the
    item has one (``output`` is what the user wrote).

    Example:
        >>> HistoryItem(id="p1", text="Deep RL for Text Games").id
        'p1'
    """

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    input: str | None = None
    output: str | None = None
    input_label: str | None = None
    output_label: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """A hash of the content (not the id): two items with the same content share it."""
        return content_hash(self.text)


def content_hash(text: str) -> str:
    """Stable hash of an item's text, used for de-duplication and ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidItemError(
            f"{what} must be a string, got {type(value).__name__}; convert it with str() "
            "or pass a dict with a 'text' field"
        )
    stripped = value.strip()
    if not stripped:
        raise InvalidItemError(f"{what} is empty; history items need non-blank text")
    return stripped


RawHistoryItem = str | Mapping[str, Any] | HistoryItem | Document | BaseMessage
"""What :func:`to_history_item` accepts."""


def to_history_item(raw: RawHistoryItem) -> HistoryItem:
    """Turn a string, a LaMP-style dict, a LangChain ``Document`` or ``HumanMessage``, or a
    ``HistoryItem`` into a validated ``HistoryItem``.

    Dicts may carry ``text``, or an input/output pair in LaMP field names
    (``abstract``/``title``, ``text``/``title``, ``input``/``output``...), plus ``id`` and
    ``metadata``; other fields go into ``metadata``. A Document gives its ``page_content``,
    ``id`` and ``metadata``; a message is what the user wrote, so only a ``HumanMessage`` is a
    history item (in a list of messages the others are skipped, as chat transcripts hold them).
    """
    if isinstance(raw, Document):
        raw = {"text": raw.page_content, "metadata": dict(raw.metadata)} | (
            {"id": raw.id} if raw.id else {}
        )
    elif isinstance(raw, BaseMessage):
        if not isinstance(raw, HumanMessage):
            raise InvalidItemError(
                f"a {type(raw).__name__} is not something the user wrote; add HumanMessages "
                "(in a list of messages the others are skipped)"
            )
        raw = {"text": raw.text} | ({"id": raw.id} if raw.id else {})
    if isinstance(raw, HistoryItem):
        text = _clean_text(raw.text, "item text")
        if not raw.id.strip():
            raise InvalidItemError(f"item id must be a non-empty string, got {raw.id!r}")
        return raw if text == raw.text else raw.model_copy(update={"text": text})
    if isinstance(raw, str):
        text = _clean_text(raw, "item text")
        return HistoryItem(id=content_hash(text)[:16], text=text)
    if not isinstance(raw, Mapping):
        raise InvalidItemError(
            f"a history item must be a string, a dict or a HistoryItem, got {type(raw).__name__}"
        )
    output_field = next((f for f in _OUTPUT_FIELDS if raw.get(f) is not None), None)
    input_field = next((f for f in _INPUT_FIELDS if raw.get(f) is not None), None)
    if output_field is None and input_field is None:
        raise InvalidItemError(
            f"dict item has no text field with a value (got keys {sorted(map(str, raw))}); "
            "give it a non-None 'text', or an input/output pair such as 'abstract' and 'title'"
        )
    out_value = raw[output_field] if output_field else None
    if isinstance(out_value, (int, float)) and not isinstance(out_value, bool):
        out_value = str(out_value)  # LaMP-3 scores
    output = _clean_text(out_value, f"field {output_field!r}") if output_field else None
    input_ = _clean_text(raw[input_field], f"field {input_field!r}") if input_field else None
    text = "\n".join(part for part in (output, input_) if part)
    if not isinstance(raw.get("metadata") or {}, Mapping):
        raise InvalidItemError(
            f"field 'metadata' must be a dict, got {type(raw['metadata']).__name__}"
        )
    metadata = dict(raw.get("metadata") or {})
    used = {"id", "metadata", output_field, input_field}
    metadata.update({k: v for k, v in raw.items() if k not in used})
    try:  # stored as JSON: refuse what cannot be, before anything is written
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidItemError(
            f"metadata must hold JSON values (strings, numbers, booleans, lists, dicts): {err}"
        ) from None
    raw_id = raw.get("id")
    if raw_id is not None and (
        not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or not str(raw_id).strip()
    ):
        raise InvalidItemError(f"item id must be a non-empty string, got {raw_id!r}")
    return HistoryItem(
        id=str(raw_id).strip() if raw_id is not None else content_hash(text)[:16],
        text=text,
        input=input_ if output else None,
        output=output if input_ else None,
        input_label=input_field if output and input_ else None,
        output_label=output_field if output and input_ else None,
        metadata=metadata,
    )


def to_history_items(raw_items: Iterable[RawHistoryItem] | RawHistoryItem) -> list[HistoryItem]:
    """Coerce many items (or one); the error names the position of the first bad one."""
    if isinstance(raw_items, (str, Mapping, HistoryItem, Document, BaseMessage)):
        raw_items = [raw_items]
    elif isinstance(raw_items, (bytes, bytearray)) or not isinstance(raw_items, Iterable):
        raise InvalidItemError(
            f"items must be a string, a dict, a HistoryItem, a Document, a HumanMessage or a "
            f"list of them, got {type(raw_items).__name__}"
        )
    else:  # in a chat transcript, the user's own messages are their history
        raw_items = [
            r for r in raw_items if not isinstance(r, BaseMessage) or isinstance(r, HumanMessage)
        ]
    items = []
    for position, raw in enumerate(raw_items):
        try:
            items.append(to_history_item(raw))
        except InvalidItemError as err:
            raise InvalidItemError(f"item {position}: {err}") from None
    return items


def history_hash(items: Iterable[HistoryItem]) -> str:
    """Order-independent hash of a set of items (ids and contents)."""
    digest = hashlib.sha256()
    for key in sorted(f"{item.id}\x00{item.content_hash}" for item in items):
        digest.update(key.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
