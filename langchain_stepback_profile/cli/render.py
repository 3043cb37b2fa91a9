"""Output rendering: aligned tables and label/value lines, a profile, a refresh report as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.text import Text

from langchain_stepback_profile.memory import RefreshReport
from langchain_stepback_profile.profile import UserProfile


def report_dict(report: RefreshReport, task: str) -> dict[str, Any]:
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
        **_workers(report),
        **_gists(report),
    }


def _gists(report: RefreshReport) -> dict[str, Any]:
    """The style gists written with ``--style-gists``."""
    if report.gists is None:
        return {}
    return {"style_gists": {**asdict(report.gists), "llm_calls": report.gists.llm_calls}}


def _workers(report: RefreshReport) -> dict[str, Any]:
    """A shared build's fields: each user's worker, and what each worker did."""
    if not report.built_by:
        return {}
    workers: dict[str, dict[str, int]] = {}
    for user, worker in report.built_by.items():
        counts = workers.setdefault(worker, dict.fromkeys(("built", "updated", "unchanged"), 0))
        build = report.builds.get(user)
        status = build.mode if build is not None else "failed"
        counts[status] = counts.get(status, 0) + 1
    return {"built_by": dict(report.built_by), "workers": workers}


def print_pairs(console: Console, rows: Sequence[tuple[str, object]]) -> None:
    """Indented ``label  value`` lines, labels aligned and bold; continuation lines indented."""
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        lines = str(value).splitlines() or [""]
        text = Text(f"  {label:<{width}}", style="bold")
        text.append("\n".join([lines[0], *(" " * (width + 2) + line for line in lines[1:])]))
        console.print(text)


def print_table(console: Console, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns aligned with two spaces between them; the header bold; no trailing blanks."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for number, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        console.print(Text(line, style="bold" if number == 0 else ""))


def print_profile(console: Console, profile: UserProfile, items: int, current: str) -> None:
    style = "; ".join(f"{k}: {v}" for k, v in profile.style.model_dump().items() if v)
    fresh = "up to date" if current == profile.history_hash else "out of date: run profile build"
    console.print(Text(f"{profile.user_id} (profile v{profile.version})", style="bold"))
    if profile.data is not None:  # a custom schema: its fields as the profile renders them
        lines = [line.split(": ", 1) for line in profile.render().splitlines()]
        content = [("schema", profile.schema_name), *((k.lower(), v) for k, v in lines)]
    else:
        content = [
            ("interests", "; ".join(profile.interests) or "-"),
            ("keywords", ", ".join(profile.keywords) or "-"),
            ("style", style or "-"),
            ("summary", profile.summary.strip() or "-"),
        ]
    print_pairs(
        console,
        [
            *content,
            ("unsupported", "; ".join(profile.unsupported()) or "-"),
            ("faithfulness", faithfulness(profile)),
            ("version", profile.version),
            ("task", profile.task),
            ("strategy", profile.strategy),
            ("model", profile.model or "-"),
            ("items", f"{len(profile.item_ids)} in the profile, {items} in history ({fresh})"),
            ("built", profile.created_at.isoformat(timespec="seconds")),
            ("edited", "yes" if profile.edited else "no"),
        ],
    )


def faithfulness(profile: UserProfile) -> str:
    """How many of the profile's claims the history supports, for a person."""
    if profile.faithfulness is None:
        return "not checked"
    return (
        f"{profile.faithfulness:.0%} of {len(profile.support)} claims have their words in the "
        "history"
    )


def indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def chosen(control: dict[str, Any]) -> str:
    if control["candidates"] < 2 or control["chosen"] is None:
        return ""
    return f" (kept answer {control['chosen'] + 1}, the one that invents least)"
