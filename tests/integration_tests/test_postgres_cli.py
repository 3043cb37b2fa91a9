"""``stepback-profile --store postgresql://...``: the commands, run in subprocesses, on one
PostgreSQL database (a real server) instead of a folder; nothing is written to the disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration_tests.test_cli import as_json, bad_input, cli, ok

pytestmark = pytest.mark.slow


def test_commands_on_a_postgres_url(
    postgres_url: str, tmp_path: Path, lamp5_questions: list[dict]
) -> None:
    chosen = [{**q, "profile": q["profile"][:3]} for q in lamp5_questions[:2]]
    users = [q["user"] for q in chosen]
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(chosen), encoding="utf-8")
    work = tmp_path / "cwd"
    work.mkdir()

    ingest = as_json(cli("ingest", questions, "--store", postgres_url, "--json", cwd=work))
    assert ingest["users"] == 2 and ingest["items_added"] == 6
    assert ingest["store"].startswith("postgresql://")
    listed = as_json(cli("users", "--store", postgres_url, "--json", cwd=work))
    assert [u["user_id"] for u in listed["users"]] == sorted(users)
    build = ["profile", "build", "--profile-strategy", "extractive", "--json"]
    built = as_json(cli(*build, "--store", postgres_url, cwd=work))
    assert built is not None
    shown = ok(cli("profile", "show", users[0], "--store", postgres_url, cwd=work))
    assert users[0] in shown
    forgot = as_json(cli("forget", users[0], "--store", postgres_url, "--json", cwd=work))
    assert forgot["items"] == 3 and forgot["vectors"] == 3
    listed = as_json(cli("users", "--store", postgres_url, "--json", cwd=work))
    assert [u["user_id"] for u in listed["users"]] == [users[1]]
    assert os.listdir(work) == []  # no store folder, no index files


def test_an_unreachable_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"postgresql://app:secret@/profiles?host={tmp_path}"
    line = bad_input(cli("users", "--store", url, cwd=tmp_path), "cannot reach PostgreSQL")
    assert "secret" not in line and "app:***@" in line
