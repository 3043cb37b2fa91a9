"""The ``stepback-profile`` command: ingest histories, build and show profiles, query, forget.

Run ``stepback-profile --help`` or ``stepback-profile COMMAND --help``; ``docs/cli.md`` shows
every command with its output.

Exit codes: 0 ok; 2 bad input (one line on stderr naming the problem and the fix); 1 any other
failure (one line; ``--debug`` adds the traceback). Results go to stdout (one JSON object with
``--json``); progress bars, warnings and library logging go to stderr.

Example:
    ```bash
    stepback-profile ingest questions.json
    stepback-profile profile build
    stepback-profile query --users "Regina Barzilay,Michael Collins" "We study ..." --explain
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn, TextIO

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from rich.console import Console
from rich.text import Text

from langchain_stepback_profile.chains import create_personalized_chain
from langchain_stepback_profile.distill import PROFILE_STRATEGIES
from langchain_stepback_profile.embeddings import MiniLMEmbeddings
from langchain_stepback_profile.errors import (
    ContextOverflowError,
    DataFormatError,
    DuplicateItemError,
    InvalidArgumentError,
    InvalidItemError,
    ProfileBuildError,
    StoreError,
    UnknownUserError,
)
from langchain_stepback_profile.evaluation.methods import METHODS
from langchain_stepback_profile.evaluation.tasks import EVAL_TASKS
from langchain_stepback_profile.history import check_user_id, history_hash
from langchain_stepback_profile.loaders import FORMATS, detect_format, load_histories, read_json
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, did_you_mean
from langchain_stepback_profile.profile import UserProfile
from langchain_stepback_profile.prompting import PROMPT_STRATEGIES
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from langchain_stepback_profile.tasks import TASKS
from langchain_stepback_profile.usage import LLMUsage

PROG = "stepback-profile"
DEFAULT_STORE = Path(".stepback-profile/store")
DEFAULT_TASK = "scholarly_title"
DEFAULT_K = 2
USER_ERRORS = (
    ContextOverflowError,
    DataFormatError,
    DuplicateItemError,
    InvalidArgumentError,
    InvalidItemError,
    StoreError,
    UnknownUserError,
)
"""Errors caused by the input: exit code 2 and a one-line message."""


# --------------------------------------------------------------------- option values
@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--llm`` / ``--embeddings`` value: the built-in model, or ``openai:MODEL``."""

    provider: str
    model: str = ""

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" if self.model else self.provider


def _model_spec(builtin: str, example: str) -> Callable[[str], ModelSpec]:
    """An argparse type for ``builtin``, ``openai:MODEL`` (with ``--base-url`` for any
    OpenAI-compatible server) or any LangChain provider string (``anthropic:...``,
    ``ollama:...``: ``init_chat_model`` / ``init_embeddings``)."""

    def parse(text: str) -> ModelSpec:
        if text == builtin:
            return ModelSpec(builtin)
        provider, colon, model = text.partition(":")
        if colon and model.strip() and re.fullmatch(r"[a-z][a-z0-9_-]*", provider):
            return ModelSpec(provider, model.strip())
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; use {builtin!r}, openai:MODEL (e.g. openai:{example}) "
            "or a LangChain provider string such as anthropic:MODEL or ollama:MODEL"
        )

    return parse


def _from_provider(spec: ModelSpec, kind: str) -> Any:
    """A model of any LangChain provider through ``init_chat_model`` / ``init_embeddings``;
    a missing package or an unknown provider is an error that names the fix."""
    try:
        if kind == "llm":
            from langchain.chat_models import init_chat_model as init
        else:
            from langchain.embeddings import init_embeddings as init
    except ImportError:
        raise InvalidArgumentError(
            f"--{kind} {spec} needs the langchain package: pip install "
            '"langchain-stepback-profile[agents]"'
        ) from None
    try:
        return init(str(spec))
    except ImportError as err:
        raise InvalidArgumentError(f"--{kind} {spec}: {err}") from None
    except ValueError as err:
        first = str(err).strip().splitlines()[0]
        raise InvalidArgumentError(
            f"--{kind} {spec}: {first} (use provider:model with a LangChain provider)"
        ) from None


def _task(text: str) -> str:
    if text not in TASKS:
        raise argparse.ArgumentTypeError(
            f"unknown task {text!r}; use one of: {', '.join(sorted(TASKS))}"
        )
    return text


def _user_list(text: str) -> list[str]:
    # User ids never start or end with whitespace (check_user_id), so trimming the spaces
    # around the commas of "A, B" cannot turn one user's id into another's.
    users = [u.strip() for u in text.split(",") if u.strip()]
    if not users:
        raise argparse.ArgumentTypeError(f"no user ids in {text!r}; give A,B,... in author order")
    return [_user(u) for u in users]


def _user(text: str) -> str:
    try:
        return check_user_id(text)
    except InvalidArgumentError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


_LLM = _model_spec("local", "gpt-4o-mini")
_EMBEDDINGS = _model_spec("minilm", "text-embedding-3-small")


# --------------------------------------------------------------------- the session
class Session:
    """The options every command shares; the store and the models are opened on demand."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.store: Path = getattr(args, "store", DEFAULT_STORE)
        self.task: str | None = getattr(args, "task", None)
        self.llm_spec: ModelSpec = getattr(args, "llm", ModelSpec("local"))
        self.embeddings_spec: ModelSpec = getattr(args, "embeddings", ModelSpec("minilm"))
        self.base_url: str | None = getattr(args, "base_url", None)
        self.json: bool = getattr(args, "json", False)
        self.out = out
        self.console = Console(file=out, soft_wrap=True, highlight=False)
        self._memory: ProfileMemory | None = None

    def memory(self, *, create: bool = False, record_task: bool = False) -> ProfileMemory:
        """The store; only ``ingest`` (``create=True``) may make a new one. With
        ``record_task`` the store remembers ``--task`` for later commands."""
        if self._memory is None:
            if not create and not (self.store.is_dir() and any(self.store.iterdir())):
                raise StoreError(
                    f"no store at {self.store}; create one with: {PROG} ingest FILE "
                    f"--store {self.store}"
                )
            self._memory = ProfileMemory(
                self.store, embeddings=self.embeddings(), task=self.task if record_task else None
            )
        return self._memory

    def known_users(self, memory: ProfileMemory, users: Sequence[str] | None) -> list[str]:
        """``users`` (all users when None), checked to exist, in the order given."""
        stored = memory.users()
        if not stored:
            raise StoreError(
                f"the store at {self.store} holds no users; add histories first: "
                f"{PROG} ingest FILE --store {self.store}"
            )
        if users is None:
            return stored
        for user in users:
            if user not in stored:
                known = ", ".join(repr(u) for u in stored[:3])
                more = f" and {len(stored) - 3} more" if len(stored) > 3 else ""
                raise UnknownUserError(
                    f"unknown user {user!r}: the store at {self.store} has no history for them; "
                    f"{did_you_mean(user, stored)}(it knows {known}{more}; see `{PROG} users`); "
                    f"add their history with `{PROG} ingest`"
                )
        return list(dict.fromkeys(users))

    def task_name(self, memory: ProfileMemory) -> str:
        """``--task``, else the task the store remembers, else the default."""
        if self.task is not None:
            return self.task
        return memory.task if isinstance(memory.task, str) else DEFAULT_TASK

    def llm(self) -> BaseChatModel:
        """The chat model of ``--llm`` (loaded only by the commands that generate)."""
        if self.llm_spec.provider == "local":
            from langchain_stepback_profile.llms import default_chat_model

            return default_chat_model()
        if self.llm_spec.provider != "openai":
            return _from_provider(self.llm_spec, "llm")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=self.llm_spec.model, base_url=self.base_url, api_key=self._api_key("--llm")
        )

    def embeddings(self) -> Embeddings:
        """The embedding model of ``--embeddings`` (MiniLM loads its weights on first use)."""
        if self.embeddings_spec.provider == "minilm":
            return MiniLMEmbeddings()
        if self.embeddings_spec.provider != "openai":
            return _from_provider(self.embeddings_spec, "embeddings")
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=self.embeddings_spec.model,
            base_url=self.base_url,
            api_key=self._api_key("--embeddings"),
            # compatible servers take text, not the tiktoken ids OpenAI's own API accepts
            check_embedding_ctx_length=self.base_url is None,
        )

    def _api_key(self, option: str) -> str:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return key
        if self.base_url:
            return "not-needed"
        raise InvalidArgumentError(
            f"{option} openai:... needs an API key: set OPENAI_API_KEY, or pass --base-url URL "
            "of an OpenAI-compatible server"
        )

    def emit(self, data: dict[str, Any]) -> None:
        """Write the command's result as one JSON object on stdout."""
        self.out.write(json.dumps(data, ensure_ascii=False) + "\n")
        self.out.flush()

    def say(self, data: dict[str, Any], text: str) -> None:
        """The command's result: ``data`` as JSON with ``--json``, else one line of text."""
        if self.json:
            self.emit(data)
        else:
            self.console.print(Text(text))

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None


# --------------------------------------------------------------------- commands
def cmd_ingest(session: Session, args: argparse.Namespace) -> None:
    """Read a history file and add every item to its user's history."""
    fmt = args.format or detect_format(args.file)
    histories = load_histories(args.file, fmt=fmt, user=args.user)  # all validated here
    created = _first_missing(session.store)
    try:
        memory = session.memory(create=True, record_task=True)
        before = {u: memory.store.count_items(u) for u in histories}
        ids = memory.add_histories(histories, show_progress=True)
    except DuplicateItemError as err:
        raise DuplicateItemError(f"{args.file}: {err} (nothing was ingested)") from None
    except BaseException:
        session.close()
        if created is not None:  # a failed ingest leaves no new store behind
            shutil.rmtree(created, ignore_errors=True)
        raise
    read = sum(map(len, histories.values()))
    unique = sum(len(set(v)) for v in ids.values())
    added = sum(memory.store.count_items(u) - n for u, n in before.items())
    result = {
        "file": str(args.file),
        "format": fmt,
        "store": str(session.store),
        "users": len(histories),
        "items_read": read,
        "items_added": added,
        "items_already_stored": unique - added,
        "items_repeated_in_file": read - unique,
    }
    if session.json:
        session.emit(result)
        return
    session.console.print(Text(f"Ingested {args.file} ({fmt}) into {session.store}", style="bold"))
    _print_pairs(
        session.console,
        [
            ("users", result["users"]),
            ("items read", read),
            ("items added", added),
            ("items already stored", result["items_already_stored"]),
            ("items repeated in the file", result["items_repeated_in_file"]),
        ],
    )


def cmd_profile_build(session: Session, args: argparse.Namespace) -> None:
    """Build or update profiles; unchanged histories cost no LLM call."""
    memory = session.memory(record_task=True)
    users = session.known_users(memory, args.users)
    task = session.task_name(memory)
    strategy = args.profile_strategy
    llm = None if strategy == "extractive" else session.llm()
    if session.llm_spec.provider != "local" and llm is not None:  # a served model
        report = asyncio.run(
            memory.arefresh(
                users,
                llm,
                task=task,
                strategy=strategy,
                max_concurrency=args.concurrency,
                show_progress=True,
                on_error="report",
            )
        )
    else:
        report = memory.refresh(
            users, llm, task=task, strategy=strategy, show_progress=True, on_error="report"
        )
    result = _report_dict(report, task)
    if session.json:
        session.emit(result)
    else:
        rows = [
            (u, b.mode, b.profile.strategy, b.profile.version, b.llm_calls)
            for u, b in report.builds.items()
        ]
        rows += [(u, "failed", "-", "-", "-") for u in report.errors]
        _print_table(session.console, ("user", "status", "strategy", "version", "LLM calls"), rows)
        session.console.print(Text(f"{report} (task {task})"))
    if report.errors:  # the others are built and saved; the command still fails
        failed = "; ".join(f"{u!r}: {why}" for u, why in list(report.failures.items())[:3])
        raise ProfileBuildError(
            f"{len(report.errors)} profiles failed and kept their stored version ({failed}); "
            "fix the model or its settings and run profile build again",
            report,
        )


def cmd_profile_show(session: Session, args: argparse.Namespace) -> None:
    """Print one user's latest profile."""
    memory = session.memory()
    session.known_users(memory, [args.user])
    profile = memory.get_profile(args.user)
    if profile is None:
        raise InvalidArgumentError(
            f"user {args.user!r} has no profile yet; build it with: {PROG} profile build "
            f"--users {args.user!r} --store {session.store}"
        )
    if session.json:
        session.emit(profile.model_dump(mode="json"))
        return
    items = memory.items(args.user)
    _print_profile(session.console, profile, len(items), history_hash(items))


def cmd_profile_edit(session: Session, args: argparse.Namespace) -> None:
    """Store a hand edit of a user's profile as a new version (kept through refreshes)."""
    memory = session.memory()
    session.known_users(memory, [args.user])
    edit: dict[str, Any] = {}
    if args.file is not None:
        edit = read_json(args.file, "give a JSON object of profile fields")
        if not isinstance(edit, dict):
            raise DataFormatError(f"{args.file}: a JSON object of profile fields is needed")
    for field in ("interests", "keywords"):
        value = getattr(args, field)
        if value is not None:
            edit[field] = [part.strip() for part in value.split(";") if part.strip()]
    if args.summary is not None:
        edit["summary"] = args.summary
    style = {name: getattr(args, name) for name in ("tone", "length", "structure", "vocabulary")}
    style = {name: value for name, value in style.items() if value is not None}
    if style:
        previous = memory.get_profile(args.user)
        base = previous.style.model_dump() if previous is not None else {}
        edit["style"] = {**base, **dict(edit.get("style") or {}), **style}
    if not edit:
        raise InvalidArgumentError(
            "nothing to edit: give --summary, --interests 'a; b', --keywords, --tone, "
            "--length, --structure, --vocabulary or --file FILE.json"
        )
    profile = memory.set_profile(args.user, edit)
    session.say(
        profile.model_dump(mode="json"),
        f"{args.user}: profile v{profile.version} stored; edited fields "
        f"{', '.join(profile.edited_fields)} are kept through later refreshes",
    )


def cmd_profile_export(session: Session, args: argparse.Namespace) -> None:
    """Write every version of the users' profiles as JSON."""
    memory = session.memory()
    users = session.known_users(memory, args.users)
    data = memory.export_profiles(users)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if args.output is None:
        session.out.write(text)
        return
    args.output.write_text(text, encoding="utf-8")
    count = sum(len(v) for v in data["profiles"].values())
    session.emit({"output": str(args.output), "users": len(users), "versions": count})


def cmd_profile_import(session: Session, args: argparse.Namespace) -> None:
    """Import profiles written by ``profile export``."""
    memory = session.memory()
    if str(args.file) == "-":
        try:
            data = json.loads(sys.stdin.read())
        except json.JSONDecodeError as err:
            raise DataFormatError(f"stdin: malformed JSON ({err}); pipe in an export") from None
    else:
        data = read_json(args.file, "give the JSON that profile export wrote")
    stored = memory.import_profiles(data)
    session.say(
        {"imported": stored},
        f"imported {sum(stored.values())} profile versions of {len(stored)} users",
    )


def cmd_profile_rollback(session: Session, args: argparse.Namespace) -> None:
    """Make an earlier profile version current again (as a new version)."""
    memory = session.memory()
    session.known_users(memory, [args.user])
    profile = memory.rollback_profile(args.user, args.version)
    session.say(
        profile.model_dump(mode="json"),
        f"{args.user}: v{args.version} is current again, stored as v{profile.version}",
    )


def _chosen(control: dict[str, Any]) -> str:
    if control["candidates"] < 2 or control["chosen"] is None:
        return ""
    return f" (kept answer {control['chosen'] + 1}, the one that invents least)"


def cmd_query(session: Session, args: argparse.Namespace) -> None:
    """Generate for an ordered group of users from their profiles and similar history."""
    text = sys.stdin.read() if args.input == "-" else args.input
    if not text.strip():
        raise InvalidArgumentError("the query input is empty; pass the text to personalize")
    memory = session.memory()
    users = session.known_users(memory, args.users)
    task = session.task_name(memory)
    retriever = StepBackProfileRetriever(memory=memory, k=args.k, user_ids=users)
    chain = create_personalized_chain(
        session.llm(),
        retriever,
        task=task,
        prompt_layout=args.strategy,
        control=not args.no_control,
        candidates=args.candidates,
        return_context=True,
    )
    usage = LLMUsage()
    result = chain.invoke(text, config={"callbacks": [usage]})
    output = result["output"].strip()
    profiles = [d for d in result["documents"] if d.metadata["kind"] == "profile"]
    history = [d for d in result["documents"] if d.metadata["kind"] == "history"]
    if session.json:
        session.emit(
            {
                "output": output,
                "users": users,
                "task": task,
                "k": args.k,
                "control": result["control"],
                **usage.as_dict(),
                "profiles": [
                    {
                        "user_id": d.metadata["user_id"],
                        "position": d.metadata["position"] + 1,
                        "version": d.metadata["profile_version"],
                        "text": d.page_content,
                    }
                    for d in profiles
                ],
                "history": [
                    {
                        "user_id": d.metadata["user_id"],
                        "position": d.metadata["position"] + 1,
                        "item_id": d.metadata["item_id"],
                        "score": round(d.metadata["score"], 4),
                        "text": d.page_content,
                    }
                    for d in history
                ],
            }
        )
        return
    console = session.console
    if args.explain:
        console.print(Text(f"Profiles, in author order (task {task}):", style="bold"))
        for d in profiles:
            meta = d.metadata
            console.print(
                Text(
                    f"Author {meta['position'] + 1}: {meta['user_id']} "
                    f"(profile v{meta['profile_version']})",
                    style="bold",
                )
            )
            console.print(Text(_indent(d.page_content)))
        console.print(Text(f"Retrieved history (top {args.k} per author):", style="bold"))
        for d in history:
            meta = d.metadata
            title = (meta.get("output") or d.page_content).splitlines()[0]
            console.print(
                Text(
                    f"  Author {meta['position'] + 1} ({meta['user_id']})  score "
                    f"{meta['score']:.3f}  {meta['item_id']}: {_clip(title, 90)}"
                )
            )
        control = result["control"]
        console.print(
            Text(
                f"Layout {control['layout']}; answers drawn: {control['candidates']}"
                f"{_chosen(control)}; output control: "
                f"{', '.join(control['actions']) or 'nothing to do'}"
                f"{'; fell back (the model chatted or copied)' if control['fallback'] else ''}",
                style="dim",
            )
        )
        console.print(Text("Output:", style="bold"))
    console.print(Text(output))
    calls = usage.calls
    console.print(
        Text(
            f"{calls} LLM call{'s' if calls != 1 else ''}, {usage.total_tokens} tokens",
            style="dim",
        )
    )


def cmd_forget(session: Session, args: argparse.Namespace) -> None:
    """Remove every trace of a user."""
    memory = session.memory()
    session.known_users(memory, [args.user])
    removed = memory.forget(args.user)
    session.say(
        {"user_id": args.user, **removed},
        f"Forgot {args.user!r}: removed {removed['items']} items, {removed['vectors']} "
        f"vectors, {removed['profile_versions']} profile versions",
    )


def cmd_users(session: Session, args: argparse.Namespace) -> None:
    """List the users of the store."""
    memory = session.memory()
    rows = []
    for user in memory.users():
        profile = memory.get_profile(user)
        rows.append(
            {
                "user_id": user,
                "items": memory.store.count_items(user),
                "profile": profile is not None,
                "profile_version": profile.version if profile else None,
            }
        )
    if session.json:
        session.emit({"store": str(session.store), "users": rows})
        return
    if not rows:
        session.console.print(Text(f"no users in {session.store}"))
        return
    _print_table(
        session.console,
        ("user", "items", "profile"),
        [
            (r["user_id"], r["items"], f"v{r['profile_version']}" if r["profile"] else "-")
            for r in rows
        ],
    )


def cmd_eval(session: Session, args: argparse.Namespace) -> None:
    """Compare methods on an evaluation set; write results, report and charts under --out."""
    from langchain_stepback_profile.evaluation import run_eval
    from langchain_stepback_profile.evaluation.report import results_table

    llm = session.llm()
    if "temperature" in type(llm).model_fields and llm.temperature != 0:  # deterministic runs
        llm = llm.model_copy(update={"temperature": 0.0})
    out = args.out or Path("eval-out") / args.task
    report = run_eval(
        args.task,
        args.data,
        methods=args.methods,
        limit=args.limit,
        llm=llm,
        embeddings=session.embeddings(),
        k=args.k,
        out_dir=out,
        store_dir=getattr(args, "store", None),
        seed=args.seed,
        profile_strategy=args.profile_strategy,
    )
    if session.json:
        session.emit(report.to_dict())
        return
    session.console.print(
        Text(f"{report.task}: {report.n_items} items, {len(report.rows)} methods", style="bold")
    )
    session.console.print(Text(results_table(report)))
    session.console.print(Text(f"Report, results and charts: {out}/report.md", style="dim"))


def run_demo(args: argparse.Namespace) -> int:
    """Run the packaged demo (it prints to stdout itself)."""
    from langchain_stepback_profile import demo

    if any(hasattr(args, name) for name in ("llm", "embeddings", "task")):
        print(
            f"{PROG}: note: the demo always uses the embedded models and its own task; "
            "--llm, --embeddings and --task are ignored",
            file=sys.stderr,
        )
    return demo.main(["--store", str(args.store)] if hasattr(args, "store") else [])


# --------------------------------------------------------------------- output helpers
def _report_dict(report: RefreshReport, task: str) -> dict[str, Any]:
    builds = report.builds.values()
    return {
        "task": task,
        "profiles": len(report.builds),
        "built": report.count("built"),
        "updated": report.count("updated"),
        "unchanged": report.count("unchanged"),
        "llm_calls": report.llm_calls,
        "input_tokens": sum(b.input_tokens for b in builds),
        "output_tokens": sum(b.output_tokens for b in builds),
        "users": {
            user: {
                "status": b.mode,
                "strategy": b.profile.strategy,
                "version": b.profile.version,
                "llm_calls": b.llm_calls,
            }
            for user, b in report.builds.items()
        },
        "failed": report.failures,
    }


def _print_pairs(console: Console, rows: Sequence[tuple[str, object]]) -> None:
    """Indented ``label  value`` lines, labels aligned and bold; continuation lines indented."""
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        lines = str(value).splitlines() or [""]
        text = Text(f"  {label:<{width}}", style="bold")
        text.append("\n".join([lines[0], *(" " * (width + 2) + line for line in lines[1:])]))
        console.print(text)


def _print_table(console: Console, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns aligned with two spaces between them; the header bold; no trailing blanks."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for number, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        console.print(Text(line, style="bold" if number == 0 else ""))


def _print_profile(console: Console, profile: UserProfile, items: int, current: str) -> None:
    style = "; ".join(f"{k}: {v}" for k, v in profile.style.model_dump().items() if v)
    fresh = "up to date" if current == profile.history_hash else "out of date: run profile build"
    console.print(Text(f"{profile.user_id} (profile v{profile.version})", style="bold"))
    _print_pairs(
        console,
        [
            ("interests", "; ".join(profile.interests) or "-"),
            ("keywords", ", ".join(profile.keywords) or "-"),
            ("style", style or "-"),
            ("summary", profile.summary.strip() or "-"),
            ("unsupported", "; ".join(profile.unsupported()) or "-"),
            ("faithfulness", _faithfulness(profile)),
            ("version", profile.version),
            ("task", profile.task),
            ("strategy", profile.strategy),
            ("model", profile.model or "-"),
            ("items", f"{len(profile.item_ids)} in the profile, {items} in history ({fresh})"),
            ("built", profile.created_at.isoformat(timespec="seconds")),
            ("edited", "yes" if profile.edited else "no"),
        ],
    )


def _faithfulness(profile: UserProfile) -> str:
    """How many of the profile's claims the history supports, for a person."""
    if profile.faithfulness is None:
        return "not checked"
    return (
        f"{profile.faithfulness:.0%} of {len(profile.support)} claims have their words in the "
        "history"
    )


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None if ``path`` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


# --------------------------------------------------------------------- the parser
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options every command takes, before or after the command name (SUPPRESS keeps a value
    given before the command when the command's own parser does not see the option)."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--store",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f"store folder (default ./{DEFAULT_STORE})",
    )
    group.add_argument(
        "--task",
        type=_task,
        default=argparse.SUPPRESS,
        help=f"what the histories are: {', '.join(sorted(TASKS))} (default: the task the "
        f"store remembers, else {DEFAULT_TASK}; ingest and profile build make it remember one)",
    )
    group.add_argument(
        "--llm",
        type=_LLM,
        default=argparse.SUPPRESS,
        metavar="SPEC",
        help="chat model: 'local' (embedded SmolLM2-135M, the default) or openai:MODEL",
    )
    group.add_argument(
        "--base-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="base URL of an OpenAI-compatible server, for openai: models",
    )
    group.add_argument(
        "--embeddings",
        type=_EMBEDDINGS,
        default=argparse.SUPPRESS,
        metavar="SPEC",
        help="embedding model: 'minilm' (offline, the default) or openai:MODEL; a store "
        "only opens with the model it was made with",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as one JSON object on stdout",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and the package's debug logging",
    )


def _add_k(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--k",
        type=_positive,
        default=DEFAULT_K,
        help=f"history items retrieved per user (default {DEFAULT_K})",
    )


def _command(
    subparsers: Any,
    name: str,
    handler: Callable[..., Any],
    help_: str,
    example: str,
    **options: Any,
) -> argparse.ArgumentParser:
    """A subcommand parser with the common options; ``options`` go to ``add_parser``."""
    parser = subparsers.add_parser(
        name,
        help=help_.replace("%", "%%"),  # argparse formats help with %, not descriptions
        description=help_,
        epilog=f"Example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **options,
    )
    _add_common(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``stepback-profile``."""
    parser = _Parser(
        prog=PROG,
        description="Step-back user profiles: ingest histories, build LLM-written profiles, "
        "and personalize generation for one user or an ordered group.",
        epilog="Example:\n"
        f"  {PROG} ingest questions.json\n"
        f"  {PROG} profile build\n"
        f'  {PROG} query --users "Regina Barzilay,Michael Collins" "We study ..." --explain\n\n'
        f"Run `{PROG} COMMAND --help` for each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('langchain-stepback-profile')}"
    )
    _add_common(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = _command(
        commands,
        "ingest",
        cmd_ingest,
        "Add the history items of a file to users' histories (the whole file is checked first).",
        f"  {PROG} ingest questions.json            # LaMP: [{{id, input, profile, user?}}]\n"
        f"  {PROG} ingest tweets.jsonl --user alice  # lines without user_id are alice's\n"
        f"  {PROG} ingest papers.csv                 # header: user_id,title,abstract,...",
    )
    ingest.add_argument("file", type=Path, metavar="FILE", help="LaMP .json, .jsonl or .csv")
    ingest.add_argument(
        "--user",
        type=_user,
        help="ingest only this user's items; items that name no user are given to them",
    )
    ingest.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from the extension, else the first character)",
    )

    profile = commands.add_parser(
        "profile",
        help="Build or show step-back profiles.",
        description="Build or show step-back profiles.",
        epilog=f"Example:\n  {PROG} profile build\n  {PROG} profile show alice",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(profile)
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    profile_commands.required = True
    build = _command(
        profile_commands,
        "build",
        cmd_profile_build,
        "Build or update profiles (an unchanged history costs 0 LLM calls).",
        f"  {PROG} profile build\n"
        f'  {PROG} profile build --users "alice,bob" --task tweet_paraphrase\n'
        f"  {PROG} profile build --llm openai:gpt-4o-mini --concurrency 8",
    )
    build.add_argument(
        "--users", type=_user_list, action="extend", metavar="A,B", help="only these users"
    )
    build.add_argument(
        "--concurrency",
        type=_positive,
        default=4,
        metavar="N",
        help="profiles built at once with an openai: model (default 4; the local model "
        "builds one at a time)",
    )
    build.add_argument(
        "--profile-strategy",
        choices=PROFILE_STRATEGIES,
        default=None,
        help="llm: the paper's profile, written by the model from the history; hybrid: "
        "measured topics and style, the model writes the summary (one short call); "
        "extractive: no LLM; auto: hybrid for small local models, llm for others (default: "
        "the store's last choice, else auto)",
    )
    show = _command(
        profile_commands,
        "show",
        cmd_profile_show,
        "Show a user's latest profile.",
        f"  {PROG} profile show alice\n  {PROG} profile show alice --json | jq .interests",
    )
    show.add_argument("user", type=_user, metavar="USER")
    edit = _command(
        profile_commands,
        "edit",
        cmd_profile_edit,
        "Edit a user's profile by hand; edited fields are kept through later refreshes.",
        f'  {PROG} profile edit alice --summary "Writes short, punchy titles."\n'
        f'  {PROG} profile edit alice --interests "parsing; machine translation" --tone dry\n'
        f'  {PROG} profile edit alice --file edit.json   # {{"summary": "..."}}',
    )
    edit.add_argument("user", type=_user, metavar="USER")
    edit.add_argument("--summary", help="the new summary")
    edit.add_argument("--interests", metavar="'A; B'", help="interests, separated by ;")
    edit.add_argument("--keywords", metavar="'A; B'", help="keywords, separated by ;")
    for name in ("tone", "length", "structure", "vocabulary"):
        edit.add_argument(f"--{name}", help=f"the style's {name}")
    edit.add_argument("--file", type=Path, metavar="FILE", help="a JSON object of fields")
    export = _command(
        profile_commands,
        "export",
        cmd_profile_export,
        "Export every version of the users' profiles as JSON (to stdout or --output).",
        f"  {PROG} profile export > profiles.json\n"
        f'  {PROG} profile export --users "alice,bob" --output profiles.json',
    )
    export.add_argument(
        "--users", type=_user_list, action="extend", metavar="A,B", help="only these users"
    )
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    import_ = _command(
        profile_commands,
        "import",
        cmd_profile_import,
        "Import profiles that profile export wrote (new users get every version).",
        f"  {PROG} profile import profiles.json --store ./other-store",
    )
    import_.add_argument("file", type=Path, metavar="FILE", help="the export ('-' reads stdin)")
    rollback = _command(
        profile_commands,
        "rollback",
        cmd_profile_rollback,
        "Make an earlier profile version current again (stored as a new version).",
        f"  {PROG} profile rollback alice 2",
    )
    rollback.add_argument("user", type=_user, metavar="USER")
    rollback.add_argument("version", type=_positive, metavar="VERSION")

    query = _command(
        commands,
        "query",
        cmd_query,
        "Generate for an ordered group of users (one LLM call; three with a small model).",
        f'  {PROG} query --users "Regina Barzilay,Michael Collins" "In this paper, we ..."\n'
        f'  {PROG} query --users alice --task tweet_paraphrase --explain "so tired today"\n'
        f"  cat abstract.txt | {PROG} query --users alice,bob -",
    )
    query.add_argument("input", metavar="INPUT", help="the text to personalize ('-' reads stdin)")
    query.add_argument(
        "--users",
        type=_user_list,
        action="extend",
        required=True,
        metavar="A,B",
        help="the users, in author order (the first leads)",
    )
    _add_k(query)
    query.add_argument(
        "--strategy",
        choices=PROMPT_STRATEGIES,
        default="auto",
        help="prompt layout: paper (profiles + retrieved items), few_shot (the users' own "
        "earlier pairs as chat turns), plain (no personalization); auto picks few_shot for "
        "small local models and paper otherwise",
    )
    query.add_argument(
        "--candidates",
        type=_positive,
        metavar="N",
        help="answers to draw, keeping the one whose words the input holds best (default: 3 "
        "for a small model in the few_shot layout, else 1)",
    )
    query.add_argument(
        "--no-control",
        action="store_true",
        help="return the model's raw answer (no cleaning, length cut or chat/copy guard)",
    )
    query.add_argument(
        "--explain",
        action="store_true",
        help="also print the profiles and retrieved items (with scores) given to the model",
    )

    forget = _command(
        commands,
        "forget",
        cmd_forget,
        "Remove a user everywhere: history, vectors and every profile version.",
        f"  {PROG} forget alice",
    )
    forget.add_argument("user", type=_user, metavar="USER")

    _command(
        commands,
        "users",
        cmd_users,
        "List users with their item counts and profile versions.",
        f"  {PROG} users\n  {PROG} users --json | jq -r '.users[].user_id'",
    )
    evaluate = _command(
        commands,
        "eval",
        cmd_eval,
        "Compare personalization methods on a LaMP or PSW-like split (metrics with 95% CIs, "
        "cost, diagnostics); an interrupted run resumes.",
        f"  {PROG} eval --task LaMP-7 --data ../shared/data/LaMP_7 --limit 20\n"
        f"  {PROG} eval --task PSW-title --data ../shared/data/PSW_like --limit 5 \\\n"
        "      --methods non-personalized,step-back,shuffled,two-stage\n"
        f"  {PROG} eval --task LaMP-5 --data DIR --llm openai:gpt-4o-mini --out eval-out/gpt",
        conflict_handler="resolve",  # its own --task and --store replace the common ones
    )
    evaluate.add_argument(
        "--task",
        required=True,
        choices=list(EVAL_TASKS),
        help="the evaluation task: LaMP-1 ... LaMP-7 (questions.json + outputs.json), "
        "PSW-title or PSW-abstract (papers.jsonl + targets.jsonl)",
    )
    evaluate.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the folder of the split"
    )
    evaluate.add_argument(
        "--limit", type=_positive, metavar="N", help="evaluate N items (a seeded shuffle)"
    )
    evaluate.add_argument(
        "--methods",
        type=_user_list,
        metavar="A,B",
        help=f"methods to compare (default: all that apply): {', '.join(METHODS)}",
    )
    _add_k(evaluate)
    evaluate.add_argument(
        "--out", type=Path, metavar="DIR", help="results and report (default eval-out/TASK)"
    )
    evaluate.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the evaluation store of histories and profiles (default OUT/store)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="item choice, shuffled order, bootstrap (default 0)"
    )
    evaluate.add_argument(
        "--profile-strategy",
        choices=PROFILE_STRATEGIES,
        default="hybrid",
        help="how profiles are written (default hybrid: one short LLM call per user)",
    )
    _command(
        commands,
        "demo",
        run_demo,
        "Run the offline demo (three real ACL authors; its own store unless --store is given).",
        f"  {PROG} demo --store /tmp/stepback-demo",
    )
    return parser


# --------------------------------------------------------------------- entry point
def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failure(err: BaseException, debug: bool) -> tuple[int, str]:
    """The exit code and one-line message of an error: 2 for bad input, else 1."""
    if isinstance(err, USER_ERRORS):
        return 2, _one_line(str(err))
    if isinstance(err, KeyboardInterrupt):
        return 130, "interrupted"
    message = f"{type(err).__name__}: {_one_line(str(err))}"
    return 1, message if debug else f"{message} (run with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    if debug:
        logging.getLogger("langchain_stepback_profile").setLevel(logging.DEBUG)
    try:
        if args.handler is run_demo:
            return run_demo(args)
        out = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):  # library prints stay off stdout
            session = Session(args, out)
            try:
                args.handler(session, args)
            finally:
                session.close()
        return 0
    except (Exception, KeyboardInterrupt) as err:
        if debug:
            traceback.print_exc()
        code, message = _failure(err, debug)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
