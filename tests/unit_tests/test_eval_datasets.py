"""Evaluation data: LaMP and PSW-like folders read into items, the seeded subset, and every
kind of bad input giving a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_stepback_profile.errors import DataFormatError, InvalidArgumentError
from langchain_stepback_profile.evaluation.datasets import load_items, load_lamp, load_psw, select
from tests.unit_tests.eval_data import TITLE, write_lamp3, write_lamp5, write_lamp7, write_psw


# ---------------------------------------------------------------- LaMP
def test_lamp5_items_without_the_instruction(tmp_path: Path) -> None:
    items = load_lamp(write_lamp5(tmp_path), "LaMP-5")
    assert [i.id for i in items] == ["q1", "q2", "q3"]
    first = items[0]
    assert first.input_text == "We parse hashtags with graph models."
    assert first.instruction == TITLE.strip()
    assert first.prompt == TITLE + first.input_text
    assert first.gold == "Graph Parsing of Hashtags"
    assert first.user_ids == ["ada"]
    assert [p["id"] for p in first.history["ada"]] == ["a1", "a2"]


def test_lamp7_user_is_the_query_id(tmp_path: Path) -> None:
    items = load_lamp(write_lamp7(tmp_path), "LaMP-7")
    assert [i.user_ids for i in items] == [["7"], ["8"]]
    assert items[0].input_text == "I am very tired today."
    assert items[0].history["7"][0] == {"id": "7_p0", "text": "im so tired lol"}


def test_store_id_follows_the_history(tmp_path: Path) -> None:
    """The same user with another history (a later query) is another stored user."""
    folder = write_lamp5(tmp_path)
    questions = json.loads((folder / "questions.json").read_text())
    questions[1]["user"] = "ada"  # ada again, with bob's papers as her history
    questions.append({**questions[0], "id": "q4"})  # ada with the same history as q1
    (folder / "questions.json").write_text(json.dumps(questions))
    golds = json.loads((folder / "outputs.json").read_text())
    golds["golds"].append({"id": "q4", "output": "x"})
    (folder / "outputs.json").write_text(json.dumps(golds))
    items = {i.id: i for i in load_lamp(folder, "LaMP-5")}
    assert items["q1"].store_ids == items["q4"].store_ids
    assert items["q1"].store_ids != items["q2"].store_ids
    assert items["q1"].store_ids[0].startswith("ada@")


def test_lamp3_rating_prefix_and_numeric_golds(tmp_path: Path) -> None:
    items = load_lamp(write_lamp3(tmp_path), "LaMP-3")
    assert items[0].input_text == "Great blender, works well."
    assert items[0].instruction.endswith("review:")
    assert [i.gold for i in items] == ["5", "1"]


def test_lamp2_movie_items_become_text_to_tag_pairs(tmp_path: Path) -> None:
    prompt = (
        "Which tag does this movie relate to among the following tags? Just answer with the "
        "tag name without further explanation. tags: [sci-fi, comedy] description: A robot "
        "learns to love."
    )
    questions = [
        {"id": "m1", "input": prompt, "profile": [{"id": "p", "tag": "comedy", "description": "A"}]}
    ]
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    (tmp_path / "outputs.json").write_text(
        json.dumps({"task": "LaMP_2", "golds": [{"id": "m1", "output": "sci-fi"}]})
    )
    [item] = load_lamp(tmp_path, "LaMP-2")
    assert item.input_text == "A robot learns to love."
    assert item.history["m1"] == [{"id": "p", "text": "A", "tag": "comedy"}]


def test_lamp_query_with_empty_profile_is_skipped(tmp_path: Path) -> None:
    folder = write_lamp7(tmp_path)
    questions = json.loads((folder / "questions.json").read_text())
    questions[1]["profile"] = []
    (folder / "questions.json").write_text(json.dumps(questions))
    assert [i.id for i in load_lamp(folder, "LaMP-7")] == ["7"]


# ---------------------------------------------------------------- PSW
def test_psw_title_groups_in_author_order(tmp_path: Path) -> None:
    items = load_psw(write_psw(tmp_path), field="title")
    t1 = items[0]
    assert t1.id == "t1"
    assert t1.user_ids == ["ada", "bob"]  # author order; zed has no history
    assert t1.input_text == "We parse tweets about whales with graph models."
    assert t1.gold == "Graph Models of Whale Tweets"
    assert t1.history["bob"][0] == {
        "id": "b1",
        "title": "Translating Whale Songs",
        "abstract": "We translate whale songs into English text.",
    }
    assert t1.prompt == TITLE + t1.input_text


def test_psw_abstract_reverses_the_pairs(tmp_path: Path) -> None:
    items = load_items("PSW-abstract", write_psw(tmp_path))
    t1 = items[0]
    assert t1.input_text == "Graph Models of Whale Tweets"
    assert t1.gold.startswith("We parse tweets")
    assert t1.history["ada"][0] == {
        "id": "a1",
        "input": "Parsing Tweets with Graphs",
        "output": "We parse tweets with graph neural networks.",
    }


# ---------------------------------------------------------------- subset
def test_select_is_seeded_and_nested(tmp_path: Path) -> None:
    items = load_lamp(write_lamp5(tmp_path), "LaMP-5")
    assert [i.id for i in select(items, 2, seed=3)] == [i.id for i in select(items, 2, seed=3)]
    assert select(items, 2, seed=3) == select(items, 3, seed=3)[:2]
    assert sorted(i.id for i in select(items, None)) == ["q1", "q2", "q3"]
    assert len(select(items, 10)) == 3


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_select_refuses_bad_limits(tmp_path: Path, limit: object) -> None:
    items = load_lamp(write_lamp5(tmp_path), "LaMP-5")
    with pytest.raises(InvalidArgumentError, match="limit"):
        select(items, limit)  # type: ignore[arg-type]


# ---------------------------------------------------------------- bad input
def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such folder"):
        load_items("LaMP-5", tmp_path / "nope")


def test_missing_file_names_it(tmp_path: Path) -> None:
    folder = write_lamp5(tmp_path)
    (folder / "outputs.json").unlink()
    with pytest.raises(DataFormatError, match=r"outputs\.json not found"):
        load_items("LaMP-5", folder)


def test_psw_folder_given_to_a_lamp_task_says_which_task(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="use --task PSW-title or PSW-abstract"):
        load_items("LaMP-5", write_psw(tmp_path))
    with pytest.raises(DataFormatError, match=r"use --task LaMP-1 \.\.\. LaMP-7"):
        load_items("PSW-title", write_lamp5(tmp_path / "lamp"))


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    folder = write_lamp5(tmp_path)
    (folder / "questions.json").write_text('[{"id": "q1",\n  "input": }]')
    with pytest.raises(DataFormatError, match=r"questions\.json, line 2, column 12: malformed"):
        load_items("LaMP-5", folder)


def test_malformed_jsonl_line(tmp_path: Path) -> None:
    folder = write_psw(tmp_path)
    with (folder / "targets.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(DataFormatError, match=r"targets\.jsonl, line 3, column 2"):
        load_items("PSW-title", folder)


def test_wrong_shape(tmp_path: Path) -> None:
    folder = write_lamp5(tmp_path)
    (folder / "questions.json").write_text('{"id": "q1"}')
    with pytest.raises(DataFormatError, match="expected a JSON list of queries"):
        load_items("LaMP-5", folder)
    (folder / "questions.json").write_text('[{"id": "q1", "input": "x", "profile": {}}]')
    with pytest.raises(DataFormatError, match="'profile' must be a list"):
        load_items("LaMP-5", folder)


def test_missing_golds(tmp_path: Path) -> None:
    folder = write_lamp5(tmp_path)
    (folder / "outputs.json").write_text(
        json.dumps({"task": "LaMP_5", "golds": [{"id": "q1", "output": "T"}]})
    )
    with pytest.raises(DataFormatError, match=r"no gold output for 2 of the queries.*'q2'"):
        load_items("LaMP-5", folder)


def test_golds_of_another_task(tmp_path: Path) -> None:
    with pytest.raises(
        DataFormatError, match="golds of 'LaMP_7', not of LaMP-5; pass --task LaMP-7"
    ):
        load_items("LaMP-5", write_lamp7(tmp_path))


def test_bad_profile_item(tmp_path: Path) -> None:
    folder = write_lamp7(tmp_path)
    questions = json.loads((folder / "questions.json").read_text())
    questions[0]["profile"][1] = {"id": "7_p1", "text": "  "}
    (folder / "questions.json").write_text(json.dumps(questions))
    with pytest.raises(DataFormatError, match=r"query 0 \(id 7\), profile item 1"):
        load_items("LaMP-7", folder)


def test_psw_unknown_paper(tmp_path: Path) -> None:
    folder = write_psw(tmp_path)
    text = (folder / "targets.jsonl").read_text().replace('"c1"', '"c9"')
    (folder / "targets.jsonl").write_text(text)
    with pytest.raises(DataFormatError, match=r"paper 'c9' is not in .*papers\.jsonl"):
        load_items("PSW-title", folder)


def test_unknown_task() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown evaluation task 'LaMP-9'"):
        load_items("LaMP-9", ".")


def test_label_golds_must_be_in_the_label_set(tmp_path: Path) -> None:
    prompt = 'For an author who has written the paper with the title "T", which reference ...'
    questions = [{"id": "c1", "input": prompt, "profile": [{"id": "p", "title": "T"}]}]
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    (tmp_path / "outputs.json").write_text(
        json.dumps({"task": "LaMP_1", "golds": [{"id": "c1", "output": "[3]"}]})
    )
    with pytest.raises(DataFormatError, match=r"the gold '\[3\]' of query 'c1' is not a LaMP-1"):
        load_items("LaMP-1", tmp_path)
