"""The command handlers: one ``cmd_*`` function per command, given the session and the
parsed arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.text import Text

from langchain_stepback_profile.chains import create_personalized_chain
from langchain_stepback_profile.cli.render import (
    chosen,
    clip,
    indent,
    print_pairs,
    print_profile,
    print_table,
    report_dict,
)
from langchain_stepback_profile.cli.session import PROG, Session
from langchain_stepback_profile.errors import (
    DataFormatError,
    DuplicateItemError,
    InvalidArgumentError,
    ProfileBuildError,
)
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.history import history_hash
from langchain_stepback_profile.loaders import detect_format, load_histories, read_json, read_text
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport
from langchain_stepback_profile.names import ATTRIBUTION
from langchain_stepback_profile.retriever import StepBackProfileRetriever
from langchain_stepback_profile.style_gists import GistReport, StyleGists
from langchain_stepback_profile.tasks import WRITING_TASKS, get_task
from langchain_stepback_profile.usage import LLMUsage


def cmd_ingest(session: Session, args: argparse.Namespace) -> None:
    """Read a history file and add every item to its user's history."""
    fmt = args.format or detect_format(args.file)
    histories = load_histories(args.file, fmt=fmt, user=args.user)  # all validated here
    created = _first_missing(session.store) if isinstance(session.store, Path) else None
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
        "store": session.where,
        "users": len(histories),
        "items_read": read,
        "items_added": added,
        "items_already_stored": unique - added,
        "items_repeated_in_file": read - unique,
    }
    if session.json:
        session.emit(result)
        return
    session.console.print(Text(f"Ingested {args.file} ({fmt}) into {session.where}", style="bold"))
    print_pairs(
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
    job = None
    if memory.supports_build_jobs or args.job is not None or (args.workers or 1) > 1:
        from langchain_stepback_profile.cli.workers import shared_build

        job, report = shared_build(session, args, memory, users)
        task = job.settings.task or task
    else:
        report = _build_here(session, args, memory, users, task)
    if args.style_gists:
        report.gists = _write_gists(session, args, memory, users)
    result = report_dict(report, task)
    if job is not None:
        result["job"] = job.name
    if session.json:
        session.emit(result)
    else:
        header: tuple[str, ...] = ("user", "status", "strategy", "version", "LLM calls")
        rows: list[tuple[object, ...]] = [
            (u, b.mode, b.profile.strategy, b.profile.version, b.llm_calls)
            for u, b in report.builds.items()
        ]
        rows += [(u, "failed", "-", "-", "-") for u in report.errors]
        if job is not None:  # a shared build: which worker (host:pid) built each user
            header += ("worker",)
            rows = [(*row, report.built_by.get(str(row[0]), "-")) for row in rows]
        print_table(session.console, header, rows)
        count = len(set(report.built_by.values()))
        workers = f"; {count} worker{'s' * (count != 1)}, job {job.name}" if job else ""
        session.console.print(Text(f"{report} (task {task}{workers})"))
    if report.errors:  # the others are built and saved; the command still fails
        failed = "; ".join(f"{u!r}: {why}" for u, why in list(report.failures.items())[:3])
        raise ProfileBuildError(
            f"{len(report.errors)} profiles failed and kept their stored version ({failed}); "
            "fix the model or its settings and run profile build again",
            report,
        )


def _build_here(
    session: Session, args: argparse.Namespace, memory: ProfileMemory, users: list[str], task: str
) -> RefreshReport:
    """The build in this one process (a folder store without --workers/--job)."""
    strategy = args.profile_strategy or memory.profile_strategy  # else the store's last choice
    llm = None if strategy == "extractive" else session.llm()
    if session.llm_spec.provider != "local" and llm is not None:  # a served model
        return asyncio.run(
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
    return memory.refresh(
        users, llm, task=task, strategy=strategy, show_progress=True, on_error="report"
    )


def _write_gists(
    session: Session, args: argparse.Namespace, memory: ProfileMemory, users: list[str]
) -> GistReport:
    """The style gists of the users' items that have none yet for this model (``--style-gists``),
    so that ``query --style-gists`` with the same model costs 0 gist calls."""
    llm = session.llm()
    if session.llm_spec.provider != "local":  # a served model: calls in flight at once
        gists = StyleGists(memory, llm, max_concurrency=args.concurrency)
        return asyncio.run(gists.aprecompute(users, show_progress=True))
    return StyleGists(memory, llm, max_concurrency=1).precompute(users, show_progress=True)


def cmd_profile_show(session: Session, args: argparse.Namespace) -> None:
    """Print one user's latest profile."""
    memory = session.memory()
    session.known_users(memory, [args.user])
    profile = memory.get_profile(args.user)
    if profile is None:
        raise InvalidArgumentError(
            f"user {args.user!r} has no profile yet; build it with: {PROG} profile build "
            f"--users {args.user!r} --store {session.where}"
        )
    if session.json:
        session.emit(profile.model_dump(mode="json"))
        return
    items = memory.items(args.user)
    print_profile(session.console, profile, len(items), history_hash(items))


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


def cmd_query(session: Session, args: argparse.Namespace) -> None:
    """Generate for an ordered group of users from their profiles and similar history."""
    text = sys.stdin.read() if args.input == "-" else args.input
    if not text.strip():
        raise InvalidArgumentError("the query input is empty; pass the text to personalize")
    memory = session.memory()
    _generate(session, args, text, session.task_name(memory))


def cmd_write(session: Session, args: argparse.Namespace) -> None:
    """Write a research interests list, topic, research questions, abstract or title for an
    ordered author group (``--task``), from ``--input`` when the task takes one."""
    spec = get_task(WRITING_TASKS[args.task])
    given = None
    if args.input == "-":
        given = sys.stdin.read()
    elif args.input is not None:
        given = read_text(Path(args.input))
    fix = f"pass it with `{PROG} write --task {args.task} --input FILE` (or --input - for stdin)"
    _generate(session, args, spec.input_text(given, fix), spec.name)


def _generate(session: Session, args: argparse.Namespace, text: str, task: str) -> None:
    """What ``query`` and ``write`` share: the group's chain on ``text``, then the output
    (``--json``: one object; ``--explain``: what each author put into the prompt)."""
    memory = session.memory()
    users = session.known_users(memory, args.users)
    retriever = StepBackProfileRetriever(memory=memory, k=args.k, user_ids=users)
    chain = create_personalized_chain(
        session.llm(),
        retriever,
        task=task,
        prompt_layout=args.strategy,
        control=not args.no_control,
        candidates=args.candidates,
        return_context=True,
        group_mode=args.group_mode,
        style_gists=args.style_gists,
    )
    usage = LLMUsage()
    result = chain.invoke(text, config={"callbacks": [usage]})
    output = result["output"].strip()
    profiles = [d for d in result["documents"] if d.metadata["kind"] == "profile"]
    history = [d for d in result["documents"] if d.metadata["kind"] == "history"]
    shown = set(result["control"].get("shown", ()))
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
                        "in_prompt": d.id in shown,
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
                        "in_prompt": d.id in shown,
                        **(
                            {"style_gist": d.metadata["style_gist"]}
                            if "style_gist" in d.metadata
                            else {}
                        ),
                    }
                    for d in history
                ],
            }
        )
        return
    console = session.console
    if args.explain:
        _explain(console, result, task, args.k, users)
        console.print(Text("Output:", style="bold"))
    console.print(Text(output))
    calls = usage.calls
    console.print(
        Text(
            f"{calls} LLM call{'s' if calls != 1 else ''}, {usage.total_tokens} tokens",
            style="dim",
        )
    )


def _explain(console: Any, result: dict[str, Any], task: str, k: int, users: list[str]) -> None:
    """``--explain``: each author's profile and retrieved items, in author order, each marked
    with whether the prompt showed it; with two stages each author's proposal and the merge."""
    control = result["control"]
    shown = set(control.get("shown", ()))
    docs = result["documents"]
    # a one-line answer is cut near the lead author's typical length, from their profile
    sets_length = ": it sets the length" if get_task(task).output_format == "line" else ""
    console.print(Text(f"Profiles, in author order (task {task}):", style="bold"))
    for d in (d for d in docs if d.metadata["kind"] == "profile"):
        meta = d.metadata
        where = "in the prompt" if d.id in shown else f"not in the prompt{sets_length}"
        console.print(
            Text(
                f"Author {meta['position'] + 1}: {meta['user_id']} "
                f"(profile v{meta['profile_version']}; {where})",
                style="bold",
            )
        )
        console.print(Text(indent(d.page_content)))
    console.print(Text(f"Retrieved history (top {k} per author):", style="bold"))
    for d in (d for d in docs if d.metadata["kind"] == "history"):
        meta = d.metadata
        title = (meta.get("output") or d.page_content).splitlines()[0]
        mark = "in the prompt" if d.id in shown else "not shown"
        console.print(
            Text(
                f"  Author {meta['position'] + 1} ({meta['user_id']})  score "
                f"{meta['score']:.3f}  {meta['item_id']}: {clip(title, 80)}  [{mark}]"
            )
        )
        if meta.get("style_gist"):
            console.print(Text(f"      style: {meta['style_gist']}", style="dim"))
    console.print(
        Text(
            f"Layout {control['layout']}; answers drawn: {control['candidates']}"
            f"{chosen(control)}; output control: "
            f"{', '.join(control['actions']) or 'nothing to do'}"
            f"{'; fell back (the model chatted or copied)' if control['fallback'] else ''}",
            style="dim",
        )
    )
    for n, proposal in enumerate(control.get("proposals") or [], start=1):
        who = users[n - 1] if n <= len(users) else "?"
        console.print(Text(f"Proposal of author {n} ({who}):", style="dim"))
        console.print(Text(indent(proposal), style="dim"))
    if control.get("merge") is not None:
        kept = "kept" if not control["fallback"] else "unusable: author 1's proposal stands"
        console.print(Text(f"Merge by author 1 ({users[0]}; {kept}):", style="dim"))
        console.print(Text(indent(control["merge"] or "(empty)"), style="dim"))


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
        session.emit({"store": session.where, "users": rows})
        return
    if not rows:
        session.console.print(Text(f"no users in {session.where}"))
        return
    print_table(
        session.console,
        ("user", "items", "profile"),
        [
            (r["user_id"], r["items"], f"v{r['profile_version']}" if r["profile"] else "-")
            for r in rows
        ],
    )


def cmd_eval(session: Session, args: argparse.Namespace) -> None:
    """Compare methods on an evaluation set; write results, report and charts under --out."""
    require_extra("eval", feature=f"`{PROG} eval`")
    from langchain_stepback_profile.evaluation import run_eval
    from langchain_stepback_profile.evaluation.report import results_table

    out = args.out or Path("eval-out") / args.task
    if args.judge and args.task == ATTRIBUTION:
        raise InvalidArgumentError(
            f"--judge compares generated outputs; --task {ATTRIBUTION} has none"
        )
    if (
        args.judge
        and args.judge_methods
        and (len(args.judge_methods) != 2 or not set(args.judge_methods) <= set(args.methods or []))
        and args.methods
    ):
        raise InvalidArgumentError(
            f"--judge-methods names two of --methods ({', '.join(args.methods)}), got "
            f"{', '.join(args.judge_methods)}"
        )
    if args.task == ATTRIBUTION:
        _attribution(session, args, out)
        return
    llm = _deterministic(session.llm())
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
    verdict = _judge(session, args, out, report.config["methods"]) if args.judge else None
    if session.json:
        session.emit({**report.to_dict(), **({"judge": verdict.to_dict()} if verdict else {})})
        return
    session.console.print(
        Text(f"{report.task}: {report.n_items} items, {len(report.rows)} methods", style="bold")
    )
    session.console.print(Text(results_table(report)))
    session.console.print(Text(f"Report, results and charts: {out}/report.md", style="dim"))
    if verdict is not None:
        session.console.print(Text(verdict.markdown()))
        session.console.print(Text(f"Judge verdicts: {out}/judge.json", style="dim"))


def _judge(session: Session, args: argparse.Namespace, out: Path, run: list[str]) -> Any:
    """``eval --judge``: the judge model compares two methods of the run just made."""
    from langchain_stepback_profile.evaluation.judge import judge_run

    methods = args.judge_methods or run[:2]
    if len(methods) != 2 or not set(methods) <= set(run):
        raise InvalidArgumentError(
            f"--judge compares two methods of the run ({', '.join(run)}); give them with "
            "--judge-methods A,B"
        )
    judge = _deterministic(session.chat_model(args.judge, "--judge"))
    return judge_run(out, judge, methods, show_progress=not session.json)


def _deterministic(llm: Any) -> Any:
    """``llm`` at temperature 0 (a field of most chat models, not of BaseChatModel)."""
    if "temperature" in type(llm).model_fields and getattr(llm, "temperature", 0) != 0:
        return llm.model_copy(update={"temperature": 0.0})
    return llm


def _attribution(session: Session, args: argparse.Namespace, out: Path) -> None:
    """``eval --task attribution``: rank held-out items against users' profiles (the chat
    model is loaded only for rows whose profiles need one)."""
    from langchain_stepback_profile.evaluation.attribution import needs_llm, run_attribution
    from langchain_stepback_profile.evaluation.report import attribution_table

    report = run_attribution(
        args.data,
        methods=args.methods,
        limit=args.limit,
        n_candidates=args.n_candidates,
        llm=_deterministic(session.llm()) if needs_llm(args.methods) else None,
        embeddings=session.embeddings(),
        out_dir=out,
        store_dir=getattr(args, "store", None),
        seed=args.seed,
    )
    if session.json:
        session.emit(report.to_dict())
        return
    session.console.print(
        Text(
            f"{report.task}: {report.n_items} held-out items, {len(report.rows)} rows", style="bold"
        )
    )
    session.console.print(Text(attribution_table(report)))
    session.console.print(Text(f"Report and chart: {out}/report.md", style="dim"))


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


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None if ``path`` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing
