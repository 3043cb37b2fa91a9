"""Hand-made evaluation folders (LaMP and PSW-like) and a recording chat model for the
evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

TITLE = "Generate a title for the following abstract of a paper: "
TWEET = "Paraphrase the following tweet without any explanation before or after it: "
RATING = (
    "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, "
    "4, or 5 without further explanation. review: "
)

# Three authors with distinctive topics, so a prompt shows whose history it holds.
PAPERS = {
    "ada": [
        ("a1", "Parsing Tweets with Graphs", "We parse tweets with graph neural networks."),
        ("a2", "Graph Parsers for Social Media", "Graph parsers read noisy social media text."),
    ],
    "bob": [
        ("b1", "Translating Whale Songs", "We translate whale songs into English text."),
        ("b2", "Acoustic Models of Whales", "Acoustic models describe whale song units."),
    ],
    "cy": [
        ("c1", "Volcano Reports as Data", "We mine volcano eruption reports for events."),
        ("c2", "Eruption Event Extraction", "Eruption events are extracted from lava reports."),
    ],
}
QUERIES = [
    ("q1", "ada", "We parse hashtags with graph models.", "Graph Parsing of Hashtags"),
    ("q2", "bob", "We study humpback whale song translation.", "Whale Song Translation"),
    ("q3", "cy", "We extract eruption events from volcano logs.", "Eruption Events from Logs"),
]


def _profile(user: str) -> list[dict[str, str]]:
    return [{"id": i, "title": t, "abstract": a} for i, t, a in PAPERS[user]]


def write_lamp5(folder: Path) -> Path:
    """A LaMP-5-format folder with three users (the ``user`` field), one query each."""
    folder.mkdir(parents=True, exist_ok=True)
    questions = [
        {"id": q, "user": u, "input": TITLE + text, "profile": _profile(u)}
        for q, u, text, _ in QUERIES
    ]
    golds = {"task": "LaMP_5", "golds": [{"id": q, "output": g} for q, _, _, g in QUERIES]}
    (folder / "questions.json").write_text(json.dumps(questions))
    (folder / "outputs.json").write_text(json.dumps(golds))
    return folder


def write_lamp7(folder: Path) -> Path:
    """A LaMP-7-format folder: no ``user`` field (the query id is the user), text items."""
    folder.mkdir(parents=True, exist_ok=True)
    questions = [
        {
            "id": "7",
            "input": TWEET + "I am very tired today.",
            "profile": [{"id": "7_p0", "text": "im so tired lol"}, {"id": "7_p1", "text": "ok"}],
        },
        {
            "id": "8",
            "input": TWEET + "The game was great.",
            "profile": [{"id": "8_p0", "text": "GREAT GAME!!!"}],
        },
    ]
    golds = {
        "task": "LaMP_7",
        "golds": [{"id": "7", "output": "im so tired"}, {"id": "8", "output": "great game!!"}],
    }
    (folder / "questions.json").write_text(json.dumps(questions))
    (folder / "outputs.json").write_text(json.dumps(golds))
    return folder


def write_lamp3(folder: Path) -> Path:
    """A LaMP-3-format folder (ratings), two users."""
    folder.mkdir(parents=True, exist_ok=True)
    questions = [
        {
            "id": "r1",
            "input": RATING + "Great blender, works well.",
            "profile": [{"id": "p1", "text": "Loved it.", "score": "5"}],
        },
        {
            "id": "r2",
            "input": RATING + "Broke after a day.",
            "profile": [{"id": "p2", "text": "Awful.", "score": "1"}],
        },
    ]
    golds = {"task": "LaMP_3", "golds": [{"id": "r1", "output": "5"}, {"id": "r2", "output": "1"}]}
    (folder / "questions.json").write_text(json.dumps(questions))
    (folder / "outputs.json").write_text(json.dumps(golds))
    return folder


def write_psw(folder: Path) -> Path:
    """A PSW-like folder: two targets by ordered author groups; 'zed' has no history."""
    folder.mkdir(parents=True, exist_ok=True)
    papers = [
        {"paper_id": pid, "title": t, "abstract": a, "authors": [user], "year": 2014}
        for user, rows in PAPERS.items()
        for pid, t, a in rows
    ]
    papers += [
        {
            "paper_id": "t1",
            "title": "Graph Models of Whale Tweets",
            "abstract": "We parse tweets about whales with graph models.",
            "authors": ["zed", "ada", "bob"],
            "year": 2015,
        },
        {
            "paper_id": "t2",
            "title": "Volcano Songs",
            "abstract": "We record the songs of volcanoes.",
            "authors": ["cy", "zed"],
            "year": 2015,
        },
    ]
    targets = [
        {
            "target_paper_id": "t1",
            "authors": ["zed", "ada", "bob"],
            "author_profiles": {"bob": ["b1", "b2"], "ada": ["a1", "a2"]},
        },
        {"target_paper_id": "t2", "authors": ["cy", "zed"], "author_profiles": {"cy": ["c1"]}},
    ]
    (folder / "papers.jsonl").write_text("\n".join(json.dumps(p) for p in papers) + "\n")
    (folder / "targets.jsonl").write_text("\n".join(json.dumps(t) for t in targets) + "\n")
    return folder


class EchoChat(BaseChatModel):
    """Records every prompt; answers with the first words of the last message's input in
    reverse order (deterministic, and no verbatim piece of the input, which output control
    would refuse). After ``fail_after`` calls it raises (an interrupted run)."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    fail_after: int | None = None
    words: int = 4
    model_name: str = "echo"
    """A name with ``135m`` in it makes the package treat this model as a small one."""

    @property
    def _llm_type(self) -> str:
        return "echo-chat"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        if self.fail_after is not None and len(self.prompts) >= self.fail_after:
            raise RuntimeError("the model went away")
        self.prompts.append(list(messages))
        last = str(messages[-1].content).split(":")[-1].split()
        text = " ".join(last[: self.words][::-1]) or "empty"
        usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(text, usage_metadata=usage))]
        )


def prompt_text(messages: list[BaseMessage]) -> str:
    """Every message of one prompt, as one string."""
    return "\n".join(str(m.content) for m in messages)
