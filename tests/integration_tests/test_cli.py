"""The ``stepback-profile`` command, run for real in subprocesses: the embedded MiniLM and
SmolLM2 models on a small slice of the LaMP-5-like data (2 authors x 3 papers).

One store is ingested and built once for the module; tests that change a store work on a copy.
Every bad input must exit 2 with one line on stderr, no traceback, and leave the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from langchain_stepback_profile import ProfileMemory, get_task
from langchain_stepback_profile.errors import DataFormatError
from langchain_stepback_profile.loaders import load_histories
from langchain_stepback_profile.output_control import grounding, sentences

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
PREFIX = get_task("scholarly_title").instruction + " "
ENV = {
    **{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def cli(*args: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m langchain_stepback_profile.cli ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "langchain_stepback_profile.cli", *map(str, args)],
        cwd=cwd,
        env=ENV,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(ok(result))


def bad_input(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, one line on stderr that contains every fragment, no traceback, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(store: Path) -> dict:
    """Users, their item ids and profile versions, and the bytes of every index file."""
    with ProfileMemory(store) as memory:
        state: dict = {
            user: (
                sorted(i.id for i in memory.items(user)),
                [p.version for p in memory.profile_versions(user)],
            )
            for user in memory.users()
        }
    state["indexes"] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((store / "indexes").glob("*"))
    }
    return state


@dataclass
class Built:
    """The module's store, ingested and built once."""

    dir: Path
    store: Path
    questions: Path
    users: list[str]
    query: str
    ingest: dict
    build: dict


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, lamp5_questions: list[dict]) -> Built:
    """A questions.json of 2 real authors x 3 papers, ingested and profiled with the local model."""
    chosen: dict[str, dict] = {}
    for question in lamp5_questions:
        if len(question["profile"]) >= 3 and question["user"] not in chosen:
            chosen[question["user"]] = {**question, "profile": question["profile"][:3]}
        if len(chosen) == 2:
            break
    folder = tmp_path_factory.mktemp("cli")
    questions = folder / "questions.json"
    questions.write_text(json.dumps(list(chosen.values())), encoding="utf-8")
    store = folder / "store"
    ingest = as_json(cli("ingest", questions, "--store", store, "--json", cwd=folder))
    build = as_json(  # hybrid: the embedded model writes each summary (auto: extractive)
        cli(
            "profile",
            "build",
            "--store",
            store,
            "--profile-strategy",
            "hybrid",
            "--json",
            cwd=folder,
        )
    )
    first = next(iter(chosen.values()))
    return Built(
        folder,
        store,
        questions,
        list(chosen),
        first["input"].removeprefix(PREFIX),
        ingest,
        build,
    )


def test_ingest_reports_counts_and_skips_what_is_stored(built: Built) -> None:
    assert built.ingest["format"] == "lamp"
    assert built.ingest["users"] == 2
    assert built.ingest["items_read"] == 6
    assert built.ingest["items_added"] == 6
    assert built.ingest["items_already_stored"] == 0

    again = ok(cli("ingest", built.questions, "--store", built.store, cwd=built.dir))
    assert "items read                  6" in again
    assert "items added                 0" in again
    assert "items already stored        6" in again


def test_profile_build_then_a_second_build_costs_no_llm_call(built: Built) -> None:
    assert built.build["built"] == 2
    assert built.build["llm_calls"] >= 2
    assert set(built.build["users"]) == set(built.users)

    second = ok(cli("profile", "build", "--store", built.store, cwd=built.dir))
    assert "0 built, 0 updated, 2 unchanged; 0 LLM calls, 0 tokens" in second
    for user in built.users:
        assert user in second


def test_profile_show_for_people_and_as_json(built: Built) -> None:
    user = built.users[0]
    human = ok(cli("profile", "show", user, "--store", built.store, cwd=built.dir))
    assert human.startswith(f"{user} (profile v1)")
    for label in ("interests", "keywords", "style", "summary", "model", "built", "edited"):
        assert f"  {label}" in human
    assert "3 in the profile, 3 in history (up to date)" in human

    data = as_json(cli("--json", "profile", "show", user, "--store", built.store, cwd=built.dir))
    assert data["user_id"] == user
    assert data["version"] == 1
    assert data["edited"] is False
    assert len(data["item_ids"]) == 3
    assert data["model"] == "llama-cpp-local:SmolLM2-135M-Instruct.Q4_1"


def test_query_explains_both_profiles_in_author_order(built: Built) -> None:
    second, first = built.users  # the order of --users, not the store's, is the author order
    out = ok(
        cli(
            "query",
            "--users",
            f"{first},{second}",
            "--k",
            "1",
            "--explain",
            built.query,
            "--store",
            built.store,
            cwd=built.dir,
        )
    )
    one = out.index(f"Author 1: {first} (profile v1; not in the prompt: it sets the length)")
    two = out.index(f"Author 2: {second} (profile v1;")
    assert one < two < out.index("Retrieved history")
    # the few-shot prompt holds the first author's item and the co-author's best one
    assert out.count("[in the prompt]") == 2
    retrieved = [line for line in out.splitlines() if " score " in line]
    assert [line.split("(")[1].split(")")[0] for line in retrieved] == [first, second]
    generated, _, usage = out.partition("Output:\n")[2].rstrip().rpartition("\n")
    assert generated.strip()
    # the embedded model draws three answers and keeps the best grounded
    assert "Layout few_shot; answers drawn: 3" in out
    assert usage.startswith(("3 LLM calls, ", "4 LLM calls, "))  # 4: none was usable


def test_query_candidates_option_sets_the_answers_drawn(built: Built) -> None:
    first = built.users[1]
    args = ["query", "--users", first, "--k", "1", "--json", built.query, "--store", built.store]
    one = json.loads(ok(cli(*args, "--candidates", "1", cwd=built.dir)))
    two = json.loads(ok(cli(*args, "--candidates", "2", cwd=built.dir)))
    assert one["control"]["candidates"] == 1 and one["llm_calls"] in (1, 2)
    assert two["control"]["candidates"] == 2 and two["llm_calls"] in (2, 3)
    # the first answer is the greedy one in both runs: with two, the kept one is at least as
    # grounded in the input
    assert two["control"]["verdicts"][0] == one["control"]["verdicts"][0]
    if one["control"]["verdicts"][0] == "ok":
        assert grounding(two["output"], built.query) >= grounding(one["output"], built.query)


def test_write_an_abstract_and_interests_for_the_author_group(built: Built, tmp_path: Path) -> None:
    first, second = built.users
    group = ["--users", f"{first},{second}", "--k", "1", "--store", str(built.store)]
    title = tmp_path / "title.txt"
    title.write_text("Learning Policies for Text-Based Games\n", encoding="utf-8")
    out = ok(
        cli("write", "--task", "abstract", "--input", title, "--explain", *group, cwd=tmp_path)
    )
    assert out.index(f"Author 1: {first} (profile v1;") < out.index(f"Author 2: {second}")
    assert "[in the prompt]" in out and "Layout few_shot; answers drawn: 1" in out
    abstract, _, usage = out.partition("Output:\n")[2].rstrip().rpartition("\n")
    spec = get_task("abstract")
    # one paragraph of whole sentences, within the task's bounds, not a title's length
    assert abstract.strip() and "\n" not in abstract
    assert len(abstract.split()) <= spec.max_words
    assert len(sentences(abstract)) <= spec.max_sentences
    assert usage.startswith(("1 LLM call, ", "2 LLM calls, "))

    data = as_json(cli("write", "--task", "interests", "--json", *group, cwd=tmp_path))
    entries = data["output"].splitlines()
    assert 1 <= len(entries) <= get_task("research_interests").max_items
    assert all(e.startswith("- ") for e in entries)
    assert data["control"]["layout"] == "paper"  # no history item holds interests
    assert [p["user_id"] for p in data["profiles"]] == [first, second]
    assert all(p["in_prompt"] for p in data["profiles"])

    bad_input(
        cli("write", "--task", "title", *group, cwd=tmp_path),
        "scholarly_title task needs an input (the paper's abstract)",
        "write --task title --input FILE",
    )


def test_users_lists_item_counts_and_profiles(built: Built) -> None:
    human = ok(cli("users", "--store", built.store, cwd=built.dir)).splitlines()
    assert human[0].split() == ["user", "items", "profile"]
    for user in built.users:
        assert any(line.startswith(user) and line.split()[-2:] == ["3", "v1"] for line in human)

    data = as_json(cli("users", "--json", "--store", built.store, cwd=built.dir))
    assert data["users"] == [
        {"user_id": u, "items": 3, "profile": True, "profile_version": 1}
        for u in sorted(built.users)
    ]


def test_the_installed_script_takes_options_before_the_command(built: Built) -> None:
    script = shutil.which("stepback-profile") or ROOT / ".venv" / "bin" / "stepback-profile"
    result = subprocess.run(
        [str(script), "--store", str(built.store), "--json", "users"],
        cwd=built.dir,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [u["user_id"] for u in as_json(result)["users"]] == sorted(built.users)


def test_forget_removes_the_user_everywhere(built: Built, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(built.store, store)
    user, other = built.users
    removed = as_json(cli("forget", user, "--store", store, "--json", cwd=tmp_path))
    assert removed == {"user_id": user, "items": 3, "vectors": 3, "profile_versions": 1}

    bad_input(cli("profile", "show", user, "--store", store, cwd=tmp_path), f"{user!r}")
    left = as_json(cli("users", "--store", store, "--json", cwd=tmp_path))["users"]
    assert [u["user_id"] for u in left] == [other]
    human = ok(cli("forget", other, "--store", store, cwd=tmp_path))
    assert human.strip() == f"Forgot {other!r}: removed 3 items, 3 vectors, 1 profile versions"


BAD_FILES = {
    "malformed.json": '[{"id": "q1", "user": "x",\n "profile": [}]',
    "malformed.jsonl": '{"user_id": "new", "text": "fine"}\n{"user_id": "new", "text": \n',
    "no_user.csv": "author,text\nnew,hello\n",
    "conflict.jsonl": '{"user_id": "new", "text": "fine"}\n'
    '{"user_id": "{user}", "id": "{item}", "text": "another text under a stored id"}\n',
}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["ingest", "missing.json"], ["missing.json", "no such file"], id="missing file"
        ),
        pytest.param(
            ["ingest", "malformed.json"],
            ["malformed.json, line 2", "malformed JSON"],
            id="malformed json",
        ),
        pytest.param(
            ["ingest", "malformed.jsonl"],
            ["malformed.jsonl, line 2", "malformed JSON"],
            id="malformed jsonl line",
        ),
        pytest.param(
            ["ingest", "no_user.csv"],
            ["no_user.csv", "no user_id column", "--user"],
            id="csv without user_id",
        ),
        pytest.param(
            ["ingest", "conflict.jsonl"],
            ["conflict.jsonl", "different text", "nothing was ingested"],
            id="item id stored with other text",
        ),
        pytest.param(
            ["profile", "show", "Nobody"], ["unknown user 'Nobody'"], id="unknown user show"
        ),
        pytest.param(
            ["query", "--users", "{user},Nobody", "a text"],
            ["unknown user 'Nobody'"],
            id="unknown user query",
        ),
        pytest.param(["forget", "Nobody"], ["unknown user 'Nobody'"], id="unknown user forget"),
        pytest.param(
            ["forget", "{user} "], ["leading or trailing whitespace"], id="look-alike user id"
        ),
        pytest.param(
            ["query", "--users", "{user},bo\tb", "x"], ["control or invisible"], id="tab in id"
        ),
        pytest.param(
            ["profile", "build", "--task", "haiku"],
            ["unknown task 'haiku'", "scholarly_title"],
            id="unknown task",
        ),
        pytest.param(
            ["query", "--users", "{user}", "--llm", "gpt-4", "x"],
            ["unknown model 'gpt-4'", "openai:MODEL"],
            id="bad llm spec",
        ),
        pytest.param(
            ["profile", "build", "--llm", "openai:"],
            ["unknown model 'openai:'"],
            id="llm spec without model",
        ),
        pytest.param(
            ["query", "--users", "{user}", "--llm", "ollama:llama3", "x"],
            ["--llm ollama:llama3", "pip install langchain-ollama"],
            id="provider package missing",
        ),
        pytest.param(
            ["profile", "build", "--llm", "nosuchprovider:m"],
            ["--llm nosuchprovider:m", "provider"],
            id="unknown provider",
        ),
        pytest.param(
            ["query", "--users", "{user}", "--llm", "openai:m", "x"],
            ["OPENAI_API_KEY", "--base-url"],
            id="openai without key",
        ),
        pytest.param(
            ["query", "--users", "{user}", "  "], ["input is empty"], id="empty query input"
        ),
        pytest.param(
            ["query", "--users", "{user}", "--candidates", "0", "x"],
            ["--candidates", "expected a positive integer, got '0'"],
            id="zero candidates",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_keeps_the_store(
    built: Built, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    user = built.users[0]
    item = json.loads(built.questions.read_text())[0]["profile"][0]["id"]
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text.replace("{user}", user).replace("{item}", item))
    before = snapshot(built.store)
    args = [a.replace("{user}", user) for a in args]
    bad_input(cli(*args, "--store", built.store, cwd=tmp_path), *fragments)
    assert snapshot(built.store) == before


@pytest.mark.parametrize(
    "args", [["profile", "build"], ["query", "--users", "alice", "a text"], ["users"]]
)
def test_commands_on_a_new_store_exit_2_and_create_nothing(tmp_path: Path, args: list[str]) -> None:
    store = tmp_path / "new" / "store"
    bad_input(cli(*args, "--store", store, cwd=tmp_path), f"no store at {store}", "ingest")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["ingest"],
        ["profile"],
        ["profile", "build"],
        ["profile", "show"],
        ["query"],
        ["forget"],
        ["users"],
        ["demo"],
    ],
    ids=lambda command: " ".join(command) or "top",
)
def test_help_of_every_command_shows_an_example(tmp_path: Path, command: list[str]) -> None:
    out = ok(cli(*command, "--help", cwd=tmp_path))
    example = out[out.index("Example:") :]
    assert f"stepback-profile {' '.join(command)}".strip() in example
    assert "--store PATH" in out


def test_loaders_read_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text(
        '{"user_id": "alice", "id": "t1", "text": "so tired of reviewing"}\n\n'
        '{"user": "bob", "title": "Neural MT", "abstract": "We study MT."}\n'
        '{"text": "no user on this line"}\n',
        encoding="utf-8",
    )
    assert load_histories(jsonl, user="alice") == {
        "alice": [{"id": "t1", "text": "so tired of reviewing"}, {"text": "no user on this line"}]
    }
    with pytest.raises(DataFormatError, match=r"items\.jsonl, line 4: .*no user_id"):
        load_histories(jsonl)

    table = tmp_path / "papers.csv"
    table.write_text(
        'user_id,id,title,abstract,year\nalice,p1,"MT, again",We study MT.,2015\n'
        "bob,p2,,Only an abstract.,\n",
        encoding="utf-8",
    )
    assert load_histories(table) == {
        "alice": [{"id": "p1", "title": "MT, again", "abstract": "We study MT.", "year": "2015"}],
        "bob": [{"id": "p2", "abstract": "Only an abstract."}],
    }
    # ids are never trimmed: " alice" and "alice\t" are refused, not merged into "alice"
    jsonl.write_text(
        '{"user_id": "alice", "text": "one"}\n{"user_id": " alice", "text": "two"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataFormatError, match=r"line 2: user id ' alice' has leading"):
        load_histories(jsonl)
    table.write_text("user_id,id,text\nbob,x,one\nbob,x,two\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"papers\.csv, line 3: item id 'x' .* at line 2"):
        load_histories(table)
