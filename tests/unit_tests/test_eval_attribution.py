"""The attribution task: rank metrics computed by hand, candidate draws, held-out items, and a
tiny run with a bag-of-words embedder whose answer is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langchain_stepback_profile.cli.parser import build_parser
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.evaluation import load_items, run_attribution
from langchain_stepback_profile.evaluation.attribution import (
    DEFAULT_ROWS,
    ROWS,
    Author,
    attribution_source,
    authors_of,
    candidate_sets,
    needs_llm,
    profile_text,
    rank_all,
    rank_metrics,
    resolve_rows,
)
from langchain_stepback_profile.evaluation.tasks import ATTRIBUTION_ROWS, get_eval_task
from langchain_stepback_profile.history import to_history_item
from langchain_stepback_profile.profile import UserProfile, WritingStyle
from tests.unit_tests.eval_data import write_lamp5, write_psw

pytestmark = pytest.mark.filterwarnings("ignore::langchain_stepback_profile.errors.FewItemsWarning")

VOCAB = [
    "graph",
    "parse",
    "parsing",
    "parsers",
    "tweets",
    "hashtags",
    "social",
    "media",
    "whale",
    "whales",
    "song",
    "songs",
    "translate",
    "translation",
    "acoustic",
    "humpback",
    "volcano",
    "eruption",
    "eruptions",
    "events",
    "reports",
    "lava",
    "logs",
    "extract",
]


class WordEmbeddings(Embeddings):
    """Counts of a fixed vocabulary (stems by prefix): texts that share topic words are close."""

    def _one(self, text: str) -> list[float]:
        words = [w.strip(".,:;").lower() for w in text.split()]
        vector = [float(sum(w.startswith(v[:5]) for w in words)) for v in VOCAB]
        return [*vector, 0.01]  # never all zero

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


# ---------------------------------------------------------------- metrics by hand
def test_rank_metrics_by_hand() -> None:
    assert rank_metrics([0.9, 0.5, 0.1], 0) == (1.0, 1.0)
    assert rank_metrics([0.1, 0.5, 0.9], 0) == (0.0, pytest.approx(1 / 3))
    assert rank_metrics([0.5, 0.9, 0.1], 0) == (0.0, 0.5)
    # tied for first with one other: first or second, equally likely
    assert rank_metrics([0.7, 0.7, 0.1], 0) == (0.5, pytest.approx((1 + 1 / 2) / 2))
    # one above, tied with one: second or third
    assert rank_metrics([0.5, 0.9, 0.5], 0) == (0.0, pytest.approx((1 / 2 + 1 / 3) / 2))


def test_all_tied_is_exactly_chance() -> None:
    accuracy, rr = rank_metrics([0.0] * 10, 0)
    assert accuracy == pytest.approx(0.1)
    assert rr == pytest.approx(sum(1 / k for k in range(1, 11)) / 10)  # 0.2929
    # a missing profile (-inf) never outranks one that exists, and ties with other missing ones
    assert rank_metrics([-math.inf, 0.2, -math.inf], 0) == (0.0, pytest.approx((1 / 2 + 1 / 3) / 2))


def test_rank_all_on_a_known_case() -> None:
    # rows: held-out items 0..2; columns: authors 0..3
    similarity = np.array(
        [
            [0.9, 0.1, 0.3, 0.0],  # item 0 among [0, 1, 2]: its author first
            [0.5, 0.2, 0.0, 0.1],  # item 1 among [1, 0, 3]: author 0 above -> rank 2
            [0.4, 0.0, 0.1, 0.4],  # item 2 among [2, 3, 0]: two above -> rank 3
        ]
    )
    per_item = rank_all(similarity, [[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    assert per_item["acc@1"] == [1.0, 0.0, 0.0]
    assert per_item["MRR"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert np.mean(per_item["acc@1"]) == pytest.approx(1 / 3)
    assert np.mean(per_item["MRR"]) == pytest.approx(11 / 18)


# ---------------------------------------------------------------- users and candidates
def _author(user: str, held: str, history: list[str], coauthors: tuple[str, ...] = ()) -> Author:
    items = [to_history_item({"id": i, "text": i}) for i in history]
    return Author(
        user=user,
        key=f"{user}@x",
        history=items,
        held_out=to_history_item({"id": held, "text": held}),
        coauthors=frozenset({user, *coauthors}),
        item_ids=frozenset({held, *history}),
    )


def test_candidates_never_include_who_wrote_the_item() -> None:
    authors = [
        _author("a", "p9", ["p1"], coauthors=("b",)),  # b co-wrote a's held-out item
        _author("b", "p8", ["p2"]),
        _author("c", "p7", ["p9"]),  # c's history holds a's held-out item (an earlier author)
        _author("d", "p6", ["p3"]),
        _author("e", "p5", ["p4"]),
    ]
    sets = candidate_sets(authors, 3, seed=0)
    assert [s[0] for s in sets] == [0, 1, 2, 3, 4]  # each item's author first
    assert all(len(set(s)) == 3 for s in sets)
    assert set(sets[0][1:]) == {3, 4}  # neither b nor c
    assert sets == candidate_sets(authors, 3, seed=0)  # seeded
    with pytest.raises(InvalidArgumentError, match="fewer than the 4"):
        candidate_sets(authors, 5)


def test_the_held_out_item_is_the_users_latest(tmp_path: Path) -> None:
    items = load_items("LaMP-5", write_lamp5(tmp_path))
    authors = authors_of(items)
    assert [a.user for a in authors] == ["ada", "bob", "cy"]
    ada = authors[0]
    assert ada.held_out.id == "q1"
    assert ada.held_out.text.startswith("Graph Parsing of Hashtags\nWe parse hashtags")
    assert [h.id for h in ada.history] == ["a1", "a2"]
    assert "q1" not in {h.id for h in ada.history}


def test_psw_coauthors_are_the_items_users(tmp_path: Path) -> None:
    items = load_items("PSW-title", write_psw(tmp_path))
    for author in authors_of(items):
        assert author.user in author.coauthors
        assert author.held_out.id not in {h.id for h in author.history}


def test_the_source_task_is_read_from_the_folder(tmp_path: Path) -> None:
    assert attribution_source(write_lamp5(tmp_path / "l")).name == "LaMP-5"
    assert attribution_source(write_psw(tmp_path / "p")).name == "PSW-title"
    with pytest.raises(InvalidArgumentError, match="not a PSW-like folder"):
        attribution_source(tmp_path)


# ---------------------------------------------------------------- rows
def test_rows() -> None:
    assert tuple(ROWS) == ATTRIBUTION_ROWS
    names = [r.name for r in resolve_rows(["hybrid"])]
    assert names == ["centroid", "hybrid", "hybrid-topics"]  # centroid: the comparison
    assert "llm" not in [r.name for r in resolve_rows()]
    assert set(DEFAULT_ROWS) <= {r.name for r in resolve_rows()}
    assert not needs_llm(["chance", "extractive", "extractive-wide"])
    assert needs_llm(["schema"]) and needs_llm(None)
    with pytest.raises(InvalidArgumentError, match="unknown attribution row 'paper'"):
        resolve_rows(["paper"])


def test_topical_text_leaves_the_style_out() -> None:
    profile = UserProfile(
        user_id="u",
        interests=["whale songs"],
        style=WritingStyle(tone="Title Case", length="8 words"),
    )
    assert "Style:" in (profile_text(profile) or "")
    assert profile_text(profile, topics=True) == "Research interests / topics: whale songs"
    assert profile_text(None) is None
    custom = UserProfile(user_id="u", data={"topics": ["whales"]}, schema_name="TopicProfile")
    assert profile_text(custom, topics=True) == "Topics: whales"


def test_the_eval_command_takes_the_task() -> None:
    args = build_parser().parse_args(
        ["eval", "--task", "attribution", "--data", "d", "--n-candidates", "3"]
    )
    assert (args.task, args.n_candidates) == ("attribution", 3)


# ---------------------------------------------------------------- a tiny run
def test_a_run_with_a_known_answer(tmp_path: Path) -> None:
    data, out = write_lamp5(tmp_path / "data"), tmp_path / "out"
    report = run_attribution(
        data,
        methods=["chance", "centroid", "extractive"],
        n_candidates=3,
        embeddings=WordEmbeddings(),
        out_dir=out,
        show_progress=False,
    )
    assert report.n_items == 3 and report.config["source"] == "LaMP-5"
    assert list(report.rows) == ["chance", "centroid", "extractive", "extractive-topics"]
    chance = report.rows["chance"]["metrics"]
    assert chance["acc@1"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert chance["MRR"]["value"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3, abs=1e-4)
    # three users with disjoint topics: the centroid and the profile find every author
    for name in ("centroid", "extractive", "extractive-topics"):
        assert report.rows[name]["metrics"]["acc@1"]["value"] == 1.0
        assert report.rows[name]["metrics"]["MRR"]["value"] == 1.0
    assert report.rows["chance"]["vs_centroid"]["MRR"]["diff"] == pytest.approx(-7 / 18, abs=1e-4)
    profile = report.rows["extractive"]["profile"]
    assert profile["users"] == 3 and profile["failed"] == 0 and profile["llm_calls_per_user"] == 0
    assert profile["words"] > report.rows["extractive-topics"]["profile"]["words"]  # no style
    assert 0 <= profile["faithfulness"] <= 1
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "metrics.png"}
    assert "| centroid | 1.000 [n/a]" in (out / "report.md").read_text()
    cached = (out / "profiles" / "extractive.jsonl").read_text().splitlines()
    assert len(cached) == 3

    again = run_attribution(  # a rerun builds nothing again
        data,
        methods=["centroid", "extractive"],
        n_candidates=3,
        embeddings=WordEmbeddings(),
        out_dir=out,
        show_progress=False,
    )
    assert again.rows["extractive"]["metrics"] == report.rows["extractive"]["metrics"]
    assert len((out / "profiles" / "extractive.jsonl").read_text().splitlines()) == 3
    with pytest.raises(InvalidArgumentError, match="another run"):
        run_attribution(
            data, methods=["centroid"], n_candidates=2, embeddings=WordEmbeddings(), out_dir=out
        )
    assert json.loads((out / "report.json").read_text())["kind"] == "attribution"


def test_the_source_of_items_can_be_given(tmp_path: Path) -> None:
    report = run_attribution(
        write_lamp5(tmp_path / "data"),
        source=get_eval_task("LaMP-5"),
        methods=["centroid"],
        n_candidates=2,
        embeddings=WordEmbeddings(),
        out_dir=tmp_path / "out",
        show_progress=False,
    )
    assert report.rows["centroid"]["metrics"]["acc@1"]["value"] == 1.0
