"""Evaluation data: LaMP folders (``questions.json`` + ``outputs.json``) and PSW-like folders
(``papers.jsonl`` + ``targets.jsonl``) read into :class:`EvalItem` objects.

Every file is checked while it is read; a bad one raises :class:`DataFormatError` naming the
file, the place and the fix.

Example:
    ```python
    items = load_items("LaMP-7", "../shared/data/LaMP_7")
    subset = select(items, limit=20, seed=0)          # the same 20 items on every run
    subset[0].user_ids, subset[0].input_text[:40]
    # -> (['610'], 'Although I have a lot to do today, I am ')
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_stepback_profile.errors import (
    DataFormatError,
    InvalidArgumentError,
    InvalidItemError,
)
from langchain_stepback_profile.evaluation.tasks import EvalTask, get_eval_task
from langchain_stepback_profile.history import to_history_item
from langchain_stepback_profile.loaders import iter_jsonl, read_json

logger = logging.getLogger(__name__)

LAMP_FILES = ("questions.json", "outputs.json")
PSW_FILES = ("papers.jsonl", "targets.jsonl")


@dataclass(frozen=True)
class EvalItem:
    """One query of an evaluation set, with its gold answer and its users' histories.

    Args:
        id: the query id (LaMP) or target paper id (PSW).
        input_text: the text to work on, without LaMP's instruction prefix.
        gold: the reference answer.
        user_ids: the users, in author order (one for LaMP).
        history: each user's history as raw items (dicts the core's loaders accept).
        prompt: the full LaMP input (instruction and text).
        instruction: the instruction the prompt starts with (the task's own when unknown).

    Example:
        >>> item = EvalItem("q1", "so tired", "tired", ["u1"], {"u1": [{"text": "hi"}]},
        ...                 "Paraphrase: so tired", "Paraphrase:")
        >>> item.store_id("u1")
        'u1@dfef76a52a'
    """

    id: str
    input_text: str
    gold: str
    user_ids: list[str]
    history: dict[str, list[dict[str, Any]]]
    prompt: str
    instruction: str

    def store_id(self, user: str) -> str:
        """The user's id in the evaluation store: their name and a digest of this history.

        Two items share a stored user (and its profile) only when the history is the same,
        so a query never sees papers its user wrote after it.
        """
        text = json.dumps(self.history[user], sort_keys=True, ensure_ascii=False, default=str)
        return f"{user}@{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"

    @property
    def store_ids(self) -> list[str]:
        """:meth:`store_id` of every user, in author order."""
        return [self.store_id(u) for u in self.user_ids]


def select(items: Sequence[EvalItem], limit: int | None = None, seed: int = 0) -> list[EvalItem]:
    """``limit`` items picked by a shuffle seeded with ``seed`` (all items, shuffled, when
    ``limit`` is None). A larger limit keeps the items of a smaller one."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer, got {limit!r}")
    order = list(items)
    random.Random(seed).shuffle(order)
    return order[:limit]


def load_items(task: str | EvalTask, data_dir: str | Path) -> list[EvalItem]:
    """Read the evaluation items of ``task`` from ``data_dir`` (the format the task expects)."""
    task = get_eval_task(task)
    if task.source == "psw":
        assert task.field is not None
        return load_psw(data_dir, field=task.field)
    return load_lamp(data_dir, task)


# --------------------------------------------------------------------- LaMP
def load_lamp(data_dir: str | Path, task: str | EvalTask) -> list[EvalItem]:
    """Read a LaMP folder: ``questions.json`` ``[{id, input, profile, user?}]`` and
    ``outputs.json`` ``{task, golds: [{id, output}]}``.

    The user of a query is its ``user`` field, else the query id; their history is the
    query's ``profile``. Queries with an empty profile are skipped with a warning.
    """
    task = get_eval_task(task)
    folder = _folder(data_dir, LAMP_FILES, other=PSW_FILES, other_tasks="PSW-title or PSW-abstract")
    questions = read_json(folder / "questions.json")
    golds = _lamp_golds(folder / "outputs.json", task)
    path = folder / "questions.json"
    if not isinstance(questions, list):
        raise DataFormatError(
            f"{path}: expected a JSON list of queries [{{id, input, profile: [...]}}], got a "
            f"JSON {type(questions).__name__}"
        )
    items: list[EvalItem] = []
    missing: list[str] = []
    skipped = 0
    for number, query in enumerate(questions):
        where = f"{path}, query {number}"
        if not isinstance(query, dict):
            raise DataFormatError(f"{where}: expected an object {{id, input, profile}}")
        qid = _text(query.get("id"), f"{where}: 'id'")
        prompt = _text(query.get("input"), f"{where} (id {qid}): 'input'")
        profile = query.get("profile")
        if not isinstance(profile, list):
            raise DataFormatError(f"{where} (id {qid}): 'profile' must be a list of items")
        if qid not in golds:
            missing.append(qid)
            continue
        if not profile:
            skipped += 1
            continue
        user = _text(query.get("user", qid), f"{where} (id {qid}): 'user'")
        history = [
            _item(raw, task, f"{where} (id {qid}), profile item {i}")
            for i, raw in enumerate(profile)
        ]
        instruction, text = task.split_prompt(prompt)
        items.append(EvalItem(qid, text, golds[qid], [user], {user: history}, prompt, instruction))
    if missing:
        raise DataFormatError(
            f"{folder / 'outputs.json'} has no gold output for {len(missing)} of the queries in "
            f"{path} (first: id {missing[0]!r}); the two files must come from the same split"
        )
    if skipped:
        logger.warning("%s: skipped %d queries with an empty profile", path, skipped)
    labels = task.labels([i.prompt for i in items])
    unknown = next((i for i in items if labels and i.gold not in labels), None)
    if unknown is not None:
        raise DataFormatError(
            f"{folder / 'outputs.json'}: the gold {unknown.gold!r} of query {unknown.id!r} is not "
            f"a {task.name} label ({', '.join(labels)}); check that --task matches the split"
        )
    return _nonempty(items, path)


def _lamp_golds(path: Path, task: EvalTask) -> dict[str, str]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("golds"), list):
        raise DataFormatError(
            f"{path}: expected a JSON object {{task, golds: [{{id, output}}, ...]}}"
        )
    named = str(data.get("task") or "")
    number = re.search(r"(\d+)", named)
    if number and task.number is not None and int(number.group(1)) != task.number:
        raise DataFormatError(
            f"{path} holds the golds of {named!r}, not of {task.name}; pass "
            f"--task LaMP-{number.group(1)}, or the folder of a {task.name} split"
        )
    golds: dict[str, str] = {}
    for number_, gold in enumerate(data["golds"]):
        where = f"{path}, gold {number_}"
        if not isinstance(gold, dict):
            raise DataFormatError(f"{where}: expected an object {{id, output}}")
        golds[_text(gold.get("id"), f"{where}: 'id'")] = _text(
            gold.get("output"), f"{where}: 'output'"
        )
    return golds


def _item(raw: Any, task: EvalTask, where: str) -> dict[str, Any]:
    """A profile item, adapted to the task and checked the way the store will read it."""
    if not isinstance(raw, Mapping):
        raise DataFormatError(f"{where}: expected an object, got {type(raw).__name__}")
    item = task.adapt_item(raw) if task.adapt_item else dict(raw)
    item = {k: v for k, v in item.items() if v is not None and str(v).strip()}
    try:
        to_history_item(item)
    except InvalidItemError as err:
        raise DataFormatError(f"{where}: {err}") from None
    return item


# --------------------------------------------------------------------- PSW
def load_psw(data_dir: str | Path, field: str = "title") -> list[EvalItem]:
    """Read a PSW-like folder: ``papers.jsonl`` and ``targets.jsonl``.

    ``field="title"``: the input is the target paper's abstract and the gold its title;
    ``field="abstract"``: the input is the title and the gold the abstract. The users are the
    authors with a history, in author order; each one's history is the papers listed for
    them in ``author_profiles`` (their strictly earlier papers). Targets without the text
    needed are skipped with a warning.
    """
    if field not in ("title", "abstract"):
        raise InvalidArgumentError(f"field must be 'title' or 'abstract', got {field!r}")
    folder = _folder(data_dir, PSW_FILES, other=LAMP_FILES, other_tasks="LaMP-1 ... LaMP-7")
    papers: dict[str, dict[str, Any]] = {}
    for row, where in _jsonl(folder / "papers.jsonl"):
        papers[_text(row.get("paper_id"), f"{where}: 'paper_id'")] = row
    source = "abstract" if field == "title" else "title"
    instruction = get_eval_task(f"PSW-{field}").spec.instruction
    items: list[EvalItem] = []
    skipped = 0
    for row, where in _jsonl(folder / "targets.jsonl"):
        target = _text(row.get("target_paper_id"), f"{where}: 'target_paper_id'")
        profiles = row.get("author_profiles")
        authors = row.get("authors")
        if not isinstance(profiles, dict) or not isinstance(authors, list):
            raise DataFormatError(
                f"{where}: a target needs 'authors' (a list) and 'author_profiles' "
                "({author: [paper_id, ...]})"
            )
        paper = _paper(papers, target, where, folder)
        text, gold = str(paper.get(source) or "").strip(), str(paper.get(field) or "").strip()
        users = [a for a in dict.fromkeys([*authors, *profiles]) if profiles.get(a)]
        if not text or not gold or not users:
            skipped += 1
            continue
        history = {
            user: [_psw_item(_paper(papers, pid, where, folder), field) for pid in profiles[user]]
            for user in users
        }
        items.append(
            EvalItem(target, text, gold, users, history, f"{instruction} {text}", instruction)
        )
    if skipped:
        logger.warning(
            "%s: skipped %d targets without a %s, a %s or an author history",
            folder / "targets.jsonl",
            skipped,
            source,
            field,
        )
    return _nonempty(items, folder / "targets.jsonl")


def _paper(papers: Mapping[str, dict[str, Any]], paper_id: Any, where: str, folder: Path) -> dict:
    paper = papers.get(str(paper_id))
    if paper is None:
        raise DataFormatError(
            f"{where}: paper {paper_id!r} is not in {folder / 'papers.jsonl'}; the two files "
            "must come from the same corpus"
        )
    return paper


def _psw_item(paper: Mapping[str, Any], field: str) -> dict[str, Any]:
    """An earlier paper as a history item: abstract -> title pairs for titles, and
    title -> abstract pairs (``input``/``output``) for abstracts."""
    title, abstract = (
        str(paper.get("title") or "").strip(),
        str(paper.get("abstract") or "").strip(),
    )
    if field == "title":
        item = {"id": paper["paper_id"], "title": title, "abstract": abstract}
    else:
        item = {"id": paper["paper_id"], "input": title, "output": abstract}
    return {k: v for k, v in item.items() if v}


# --------------------------------------------------------------------- helpers
def _folder(
    data_dir: str | Path, files: tuple[str, ...], *, other: tuple[str, ...], other_tasks: str
) -> Path:
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataFormatError(
            f"{folder}: no such folder; pass --data DIR, a folder with {' and '.join(files)}"
        )
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        hint = (
            f"; it holds {' and '.join(other)}: use --task {other_tasks}"
            if all((folder / name).is_file() for name in other)
            else f"; this task reads {' and '.join(files)}"
        )
        raise DataFormatError(f"{folder}: {', '.join(missing)} not found{hint}")
    return folder


def _jsonl(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """(object, 'file, line N') for every non-blank line."""
    for row, number in iter_jsonl(path):
        yield row, f"{path}, line {number}"


def _text(value: Any, where: str) -> str:
    """A non-empty string (numbers such as LaMP ids and ratings are turned into text)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (str, int, float))
        or not str(value).strip()
    ):
        raise DataFormatError(f"{where} must be a non-empty string, got {value!r}")
    return str(value).strip()


def _nonempty(items: list[EvalItem], path: Path) -> list[EvalItem]:
    if not items:
        raise DataFormatError(f"{path}: no usable evaluation items in the file")
    return items
