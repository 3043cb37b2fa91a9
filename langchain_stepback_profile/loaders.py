"""Reading users' histories from files: LaMP ``questions.json``, JSONL and CSV.

Every loader returns ``{user_id: [raw item, ...]}`` (items as dicts, ready for
:meth:`~langchain_stepback_profile.memory.ProfileMemory.add_histories`), in file order. The whole
file is read and every item validated before anything is returned, so a bad line is reported
(file and line) before the store is touched.

- ``lamp``: a JSON list of queries ``{id, input, profile: [item, ...], user?}``; each query's
  profile items belong to its ``user`` (the query ``id`` when there is none, as in LaMP-7).
- ``jsonl``: one item per line, with ``user_id`` (or ``user``) and item fields: ``text``, or
  LaMP fields such as ``title``/``abstract``; optional ``id`` and ``metadata``.
- ``csv``: a header row with ``user_id`` (or ``user``) and item columns (``text``, or LaMP fields);
  other columns go into the item's metadata. Empty cells are left out.

Example:
    ```python
    histories = load_histories("questions.json")            # format from the extension
    {user: len(items) for user, items in histories.items()}
    # -> {'Regina Barzilay': 3, 'Michael Collins': 3}
    ```
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_stepback_profile.errors import (
    DataFormatError,
    InvalidArgumentError,
    InvalidItemError,
)
from langchain_stepback_profile.history import to_history_item
from langchain_stepback_profile.names import FORMATS, check_user_id

_EXTENSIONS = {".json": "lamp", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_USER_FIELDS = ("user_id", "user")


Histories = dict[str, list[dict[str, Any]]]


def detect_format(path: str | Path) -> str:
    """The format of a history file: from its extension, else from its first character
    (``[`` is LaMP JSON, ``{`` is JSONL, anything else CSV)."""
    path = Path(path)
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None:
        return by_extension
    head = read_text(path).lstrip()[:1]
    return {"[": "lamp", "{": "jsonl"}.get(head, "csv")


def load_histories(
    path: str | Path, *, fmt: str | None = None, user: str | None = None
) -> Histories:
    """Read and validate a history file.

    Args:
        path: the file.
        fmt: ``"lamp"``, ``"jsonl"`` or ``"csv"``; detected with :func:`detect_format` if None.
        user: keep only this user's items; rows that name no user (JSONL/CSV) are theirs.

    Raises:
        DataFormatError: the file is missing, malformed, holds an invalid item, reuses an item
            id for different text, or holds no items (for ``user``).
    """
    fmt = fmt or detect_format(path)
    loaders = {"lamp": load_lamp, "jsonl": load_jsonl, "csv": load_csv}
    if fmt not in loaders:
        raise DataFormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return loaders[fmt](path, user=user)


def load_lamp(path: str | Path, *, user: str | None = None) -> Histories:
    """Read a LaMP ``questions.json``: each query's profile items become its user's history."""
    queries = read_json(
        Path(path), fix="fix the file, or use --format jsonl if it holds one JSON object per line"
    )
    if not isinstance(queries, list):
        raise DataFormatError(
            f"{path}: a LaMP questions.json is a JSON list of queries "
            f"[{{id, input, profile: [...]}}], got a JSON {type(queries).__name__}"
        )
    builder = _Builder(path, user)
    for number, query in enumerate(queries):
        where = f"query {number}"
        if not isinstance(query, dict) or not isinstance(query.get("profile"), list):
            raise DataFormatError(
                f"{path}: {where} has no 'profile' list; LaMP queries look like "
                "{id, input, profile: [item, ...], user?}"
            )
        owner = query.get("user", query.get("id"))
        if owner is None:
            raise DataFormatError(f"{path}: {where} has neither 'user' nor 'id'; add one")
        where = f"{where} (id {query.get('id')!r})"
        owner = _user_id(owner, f"{path}: {where}")
        for position, raw in enumerate(query["profile"]):
            builder.add(owner, raw, f"{where}, profile item {position}")
    return builder.result()


def load_jsonl(path: str | Path, *, user: str | None = None) -> Histories:
    """Read one JSON item per line; blank lines are skipped."""
    builder = _Builder(path, user)
    for row, number in iter_jsonl(Path(path)):
        where = f"line {number}"
        if isinstance(row.get("profile"), list):
            raise DataFormatError(
                f"{path}, {where}: this is a LaMP query (it has a 'profile' list), not a history "
                "item; ingest LaMP files as a JSON list with --format lamp"
            )
        builder.add(_pop_user(row, user, f"{path}, {where}"), row, where)
    return builder.result()


def load_csv(path: str | Path, *, user: str | None = None) -> Histories:
    """Read a CSV file with a header row; one item per row."""
    builder = _Builder(path, user)
    rows = _csv_rows(Path(path))
    header, header_line = next(rows)  # the file is not blank, so it has a first row
    columns = [c.strip() for c in header]
    if user is None and not any(c in columns for c in _USER_FIELDS):
        raise DataFormatError(
            f"{path}, line {header_line}: the CSV header ({', '.join(columns)}) has no user_id "
            "column; add one, or pass --user USER to give every row to one user"
        )
    for values, number in rows:
        where = f"line {number}"
        if len(values) != len(columns):
            raise DataFormatError(
                f"{path}, {where}: {len(values)} fields but the header has {len(columns)}; "
                "quote values that contain commas"
            )
        row = {c: v for c, v in zip(columns, values, strict=True) if v.strip()}
        builder.add(_pop_user(row, user, f"{path}, {where}"), row, where)
    return builder.result()


# --------------------------------------------------------------------- helpers
def read_text(path: Path) -> str:
    """A UTF-8 file's text; a missing, unreadable, non-UTF-8 or empty file is a
    :class:`DataFormatError` that names it and the fix."""
    if not path.exists():
        raise DataFormatError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise DataFormatError(f"{path} is not a file; pass a .json, .jsonl or .csv file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8"
        ) from None
    except OSError as err:
        raise DataFormatError(f"{path}: cannot be read ({err.strerror})") from None
    if not text.strip():
        raise DataFormatError(f"{path}: the file is empty")
    return text


def read_json(path: Path, fix: str = "fix or replace the file") -> Any:
    """A JSON file's value; malformed JSON is a :class:`DataFormatError` with line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}, line {err.lineno}, column {err.colno}: malformed JSON ({err.msg}); {fix}"
        ) from None


def iter_jsonl(path: Path) -> Iterator[tuple[dict[str, Any], int]]:
    """``(object, line number)`` for every non-blank line of a JSON Lines file."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(
                f"{where}, column {err.colno}: malformed JSON ({err.msg}); each line must be "
                "one JSON object"
            ) from None
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{where}: expected a JSON object, got a JSON {type(row).__name__}"
            )
        yield row, number


def _csv_rows(path: Path) -> Iterator[tuple[list[str], int]]:
    """(fields, line number where the row starts) for each non-empty row, header first."""
    reader = csv.reader(read_text(path).splitlines(keepends=True), strict=True)
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(f"{path}, line {start}: malformed CSV ({err})") from None
        if values:
            yield values, start
        start = reader.line_num + 1


def _user_id(value: Any, where: str) -> str:
    """The row's user id, checked by the one rule every face applies (never trimmed)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(f"{where}: the user must be a non-empty string, got {value!r}")
    try:
        return check_user_id(str(value))
    except InvalidArgumentError as err:
        raise DataFormatError(f"{where}: {err}") from None


def _pop_user(row: dict[str, Any], default: str | None, where: str) -> str:
    """The row's user (its user_id or user field, removed from the row), else ``default``."""
    field = next((f for f in _USER_FIELDS if f in row), None)
    if field is not None:
        return _user_id(row.pop(field), where)
    if default is None:
        raise DataFormatError(
            f"{where}: the item has no user_id field; add one, or pass --user USER to give "
            "every item without one to that user"
        )
    return default


class _Builder:
    """Collects validated items per user and refuses one id used for two different texts."""

    def __init__(self, path: str | Path, user: str | None) -> None:
        self.path = path
        self.user = user
        self.histories: Histories = {}
        self._ids: dict[tuple[str, str], tuple[str, str]] = {}  # (user, id) -> (hash, where)

    def add(self, user_id: str, raw: Any, where: str) -> None:
        if self.user is not None and user_id != self.user:
            return
        try:
            item = to_history_item(raw)
        except InvalidItemError as err:
            raise DataFormatError(f"{self.path}, {where}: {err}") from None
        first = self._ids.setdefault((user_id, item.id), (item.content_hash, where))
        if first[0] != item.content_hash:
            raise DataFormatError(
                f"{self.path}, {where}: item id {item.id!r} of user {user_id!r} was used for "
                f"different text at {first[1]}; give one of them another id"
            )
        self.histories.setdefault(user_id, []).append(
            dict(raw) if isinstance(raw, dict) else {"text": raw}
        )

    def result(self) -> Histories:
        if not self.histories:
            who = f" for user {self.user!r}" if self.user is not None else ""
            raise DataFormatError(f"{self.path}: no history items{who} in the file")
        return self.histories
