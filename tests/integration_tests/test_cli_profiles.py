"""`stepback-profile profile edit|export|import|rollback`, run through the CLI's own entry
point on a real store (MiniLM embeddings, extractive profiles: no LLM needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_stepback_profile import MiniLMEmbeddings, ProfileMemory
from langchain_stepback_profile.cli import main

PAPERS = [
    {"id": "p1", "title": "Parsing Chinese with Neural Networks", "abstract": "We parse."},
    {"id": "p2", "title": "Parsing Tweets", "abstract": "We parse tweets."},
]


@pytest.fixture
def store(tmp_path: Path, embeddings: MiniLMEmbeddings) -> Path:
    with ProfileMemory(tmp_path / "store", embeddings=embeddings) as memory:
        memory.add("Regina Barzilay", PAPERS)
        memory.refresh(strategy="extractive")
    return tmp_path / "store"


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_edit_export_import_and_rollback(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "Regina Barzilay"
    code, out, _ = run(
        capsys, "profile", "edit", user, "--summary", "Writes short titles.",
        "--interests", "parsing; syntax", "--tone", "plain", "--store", store,
    )  # fmt: skip
    assert code == 0 and "v2 stored" in out and "interests, style, summary" in out
    code, out, _ = run(capsys, "profile", "show", user, "--json", "--store", store)
    shown = json.loads(out)
    assert shown["summary"] == "Writes short titles." and shown["interests"] == [
        "parsing",
        "syntax",
    ]
    assert shown["style"]["tone"] == "plain" and shown["edited_fields"]

    export = tmp_path / "profiles.json"
    code, out, _ = run(capsys, "profile", "export", "--output", export, "--store", store)
    assert code == 0 and json.loads(out)["versions"] == 2
    data = json.loads(export.read_text())
    assert [v["version"] for v in data["profiles"][user]] == [1, 2]

    other = tmp_path / "other"
    with ProfileMemory(other, embeddings=MiniLMEmbeddings()) as memory:
        memory.add(user, PAPERS)
    code, out, _ = run(capsys, "profile", "import", export, "--json", "--store", other)
    assert code == 0 and json.loads(out) == {"imported": {user: 2}}

    code, out, _ = run(capsys, "profile", "rollback", user, "1", "--store", store)
    assert code == 0 and "v1 is current again, stored as v3" in out
    with ProfileMemory(store, embeddings=MiniLMEmbeddings()) as memory:
        versions = memory.profile_versions(user)
        assert [p.version for p in versions] == [1, 2, 3]
        assert versions[2].summary == versions[0].summary != "Writes short titles."


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["profile", "edit", "Regina Barzilay"], "nothing to edit"),
        (["profile", "edit", "regina barzilay", "--summary", "x"], "did you mean"),
        (["profile", "rollback", "Regina Barzilay", "7"], "no profile version 7"),
        (["profile", "rollback", "Regina Barzilay", "zero"], "expected a positive integer"),
        (["profile", "import", "missing.json"], "missing.json"),
    ],
)
def test_profile_commands_refuse_bad_input_with_exit_2(
    store: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    before = ProfileMemory(store, embeddings=MiniLMEmbeddings())
    versions = [p.version for p in before.profile_versions("Regina Barzilay")]
    before.close()
    try:
        code, _, err = run(capsys, *args, "--store", store)
    except SystemExit as exit_:  # argparse errors
        code, err = int(exit_.code or 0), capsys.readouterr().err
    assert code == 2, err
    assert fragment in err
    with ProfileMemory(store, embeddings=MiniLMEmbeddings()) as after:
        assert [p.version for p in after.profile_versions("Regina Barzilay")] == versions


def test_a_custom_schema_profile_shows_exports_and_refuses_builtin_edits(
    tmp_path: Path, embeddings: MiniLMEmbeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit_tests.test_distill import ScriptedChat
    from tests.unit_tests.test_profile_schema import CHATS, CustomerProfile, customer_answer

    store = tmp_path / "customers"
    llm = ScriptedChat(script=[customer_answer()])
    with ProfileMemory(store, embeddings=embeddings, profile_schema=CustomerProfile) as memory:
        memory.add("cust-1", CHATS)
        memory.refresh(llm=llm, strategy="llm")
    code, out, _ = run(capsys, "profile", "show", "cust-1", "--store", store)
    assert code == 0 and "CustomerProfile" in out
    assert "preferences" in out and "invoices by email" in out and "interests" not in out
    code, _, err = run(capsys, "profile", "edit", "cust-1", "--summary", "x", "--store", store)
    assert code == 2 and "profile_schema=CustomerProfile" in err
    export = tmp_path / "customers.json"
    assert run(capsys, "profile", "export", "--output", export, "--store", store)[0] == 0
    data = json.loads(export.read_text())["profiles"]["cust-1"][-1]
    assert (
        data["schema_name"] == "CustomerProfile" and data["data"]["contact"]["channel"] == "email"
    )
