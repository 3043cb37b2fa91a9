"""The scientific-writing tasks for an ordered author group (research interests, topic, research
questions, abstract, title): each task's prompt and output shape with a fake chat model, and the
``write`` command's exit codes, ``--explain`` and ``--json`` on a store with hashed embeddings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from langchain_stepback_profile import ProfileMemory, create_personalized_chain
from langchain_stepback_profile.cli import Session, main
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.output_control import control, sentences
from langchain_stepback_profile.prompting import QUESTION_HINT
from langchain_stepback_profile.tasks import TASKS, WRITING_TASKS, get_task
from tests.unit_tests.fakes import HashEmbeddings

PAPERS = {
    "ada": [
        {
            "id": "a1",
            "title": "Graph Parsing of Whale Songs",
            "abstract": "We parse humpback whale songs with graph grammars. Songs have structure.",
        },
        {
            "id": "a2",
            "title": "Dependency Parsing for Low-Resource Languages",
            "abstract": "We train dependency parsers with little data. Transfer helps a lot.",
        },
    ],
    "bob": [
        {
            "id": "b1",
            "title": "Neural Machine Translation of Bird Calls",
            "abstract": "We translate bird calls with neural sequence models. It works.",
        },
        {
            "id": "b2",
            "title": "Attention for Acoustic Translation",
            "abstract": "Attention improves the translation of animal sounds into text.",
        },
    ],
}
TOPICS = "whales birds frogs bats seals wolves bees crickets owls dolphins apes elephants"
LONG_ABSTRACT = " ".join(
    f"We study the songs of {animal} with parsers number {n}."
    for n, animal in enumerate(TOPICS.split())
)
ANSWERS = {
    "research_interests": "Sure! Here are the research interests:\n1. graph parsing\n"
    "2. machine translation\n3. graph parsing\n4. whale songs\n5. bird calls\n6. attention\n"
    "7. low-resource languages",
    "research_topic": "Topic: parsing and translating animal songs with graphs, neural models "
    "and attention across many species and languages",
    "research_questions": "1. Can graph grammars parse whale songs?\n2. Does attention help "
    "translate bird calls?\n3. How little data does a parser need?\n4. Is song structure "
    "universal?",
    "abstract": f"Abstract:\n{LONG_ABSTRACT}",
    "scholarly_title": "Title: Graph Parsing and Translation of Animal Songs",
}


class TaskChat(BaseChatModel):
    """Answers each task's request as a chatty model would; records every prompt."""

    model_name: str = "task-chat"
    merged: str = ""
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "task-chat"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        self.prompts.append(list(messages))
        last = str(messages[-1].content)
        if "proposed by the authors" in last and self.merged:
            reply = self.merged
        else:
            task = next(t for t in ANSWERS if TASKS[t].instruction in last)
            reply = ANSWERS[task]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def _docs() -> list[Document]:
    docs = [
        Document(
            f"Research interests / topics: {topic}\nStyle: tone Title Case",
            id=f"{user}#profile",
            metadata={"user_id": user, "kind": "profile", "position": n, "stats": {}},
        )
        for n, (user, topic) in enumerate([("ada", "graph parsing; whale songs"), ("bob", "mt")])
    ]
    for n, user in enumerate(PAPERS):
        for paper in PAPERS[user]:
            docs.append(
                Document(
                    f"{paper['title']}\n{paper['abstract']}",
                    id=f"{user}/{paper['id']}",
                    metadata={
                        "user_id": user,
                        "kind": "history",
                        "position": n,
                        "item_id": paper["id"],
                        "score": 0.5,
                        "input": paper["abstract"],
                        "output": paper["title"],
                        "input_label": "abstract",
                        "output_label": "title",
                    },
                )
            )
    return docs


def _run(task: str, text: str | None = "Whale songs and bird calls.", **kw: Any) -> dict:
    docs = _docs()
    llm = kw.pop("llm", TaskChat())
    chain = create_personalized_chain(
        llm, RunnableLambda(lambda q: docs), task=task, return_context=True, **kw
    )
    return chain.invoke(text)


# ------------------------------------------------------------------ the built-in tasks
def test_the_five_writing_tasks_are_built_in() -> None:
    assert WRITING_TASKS == {
        "interests": "research_interests",
        "topic": "research_topic",
        "questions": "research_questions",
        "abstract": "abstract",
        "title": "scholarly_title",
    }
    shapes = {name: TASKS[task].output_format for name, task in WRITING_TASKS.items()}
    assert shapes == {
        "interests": "list",
        "topic": "line",
        "questions": "list",
        "abstract": "paragraph",
        "title": "line",
    }
    # the title and the abstract need their source; the others fall back on the profiles
    assert [n for n, t in WRITING_TASKS.items() if TASKS[t].needs_input] == ["abstract", "title"]


def test_research_interests_are_a_short_list_of_unique_entries() -> None:
    result = _run("research_interests")
    lines = result["output"].splitlines()
    assert lines == [
        "- graph parsing",
        "- machine translation",
        "- whale songs",
        "- bird calls",
        "- attention",
    ]
    # no example of interests exists in a history: the profiles and papers are in the prompt
    prompt = str(result["messages"][-1].content)
    assert "Author 1 (ada)" in prompt and "Author 2 (bob)" in prompt
    assert prompt.index("ada") < prompt.index("bob")
    assert "one a line" in prompt


def test_interests_without_input_take_the_default_and_copy_the_profile_freely() -> None:
    llm = TaskChat()
    docs = _docs()
    chain = create_personalized_chain(
        llm, RunnableLambda(lambda q: docs), task="research_interests"
    )
    assert chain.invoke("").startswith("- graph parsing")
    assert get_task("research_interests").default_input in str(llm.prompts[0][-1].content)
    # an answer that repeats a profile's interests is what was asked for, not a copy
    profile_line = "graph parsing; whale songs"
    checked = create_personalized_chain(
        TaskChat(merged=""), RunnableLambda(lambda q: docs), task="research_interests"
    )
    assert checked.invoke(None)
    assert control(profile_line, output_format="list").verdict == "ok"


class ChattyChat(TaskChat):
    """Talks about the authors instead of listing anything."""

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        self.prompts.append(list(messages))
        reply = "The topics of the authors' earlier papers are:\nThe authors of the work, including"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def test_unusable_interests_fall_back_on_the_profiles_without_a_plain_retry() -> None:
    llm = ChattyChat()
    result = _run("research_interests", None, llm=llm)
    assert result["control"]["verdicts"] == ["empty"] and result["control"]["fallback"]
    assert len(llm.prompts) == 1  # the plain prompt knows nothing of the authors
    assert result["output"].splitlines() == ["- graph parsing", "- whale songs", "- mt"]


def test_the_authors_names_are_no_research_interests() -> None:
    class NamingChat(TaskChat):
        def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
            reply = "- Ada\n- Author 2\n- bob\n- graph parsing"
            return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])

    assert _run("research_interests", llm=NamingChat())["output"] == "- graph parsing"


def test_research_questions_are_at_most_three_questions() -> None:
    output = _run("research_questions")["output"]
    assert output.splitlines() == [
        "- Can graph grammars parse whale songs?",
        "- Does attention help translate bird calls?",
        "- How little data does a parser need?",
    ]


class RepliesChat(TaskChat):
    """Gives one fixed reply to every prompt."""

    reply: str = ""

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kw: Any):
        self.prompts.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])


def test_research_questions_keep_only_questions_and_ask_for_them() -> None:
    llm = RepliesChat(
        reply="Here are the questions: How do whales sing? Graph parsing of songs\n"
        "Why translate bird calls? And what is next"
    )
    result = _run("research_questions", llm=llm)
    assert result["output"].splitlines() == ["- How do whales sing?", "- Why translate bird calls?"]
    assert QUESTION_HINT in str(llm.prompts[0][-1].content)


def test_research_questions_without_a_question_fall_back_on_questions() -> None:
    no_question = RepliesChat(reply="- graph parsing\n- whale songs")
    result = _run("research_questions", None, llm=no_question)
    assert result["control"]["verdicts"] == ["empty"] and result["control"]["fallback"]
    assert result["output"].splitlines() == [
        "- What are the open problems in graph parsing?",
        "- What are the open problems in whale songs?",
        "- What are the open problems in mt?",
    ]
    given = _run("research_questions", "Whale songs and bird calls.", llm=no_question)
    assert given["output"] == "- What are the open problems in Whale songs and bird calls?"


def test_a_list_entry_that_copies_a_shown_title_or_label_is_dropped() -> None:
    llm = RepliesChat(reply="- Graph Parsing of Whale Songs\n- Author 1: acoustic models\n- mt")
    result = _run("research_interests", llm=llm)
    assert result["output"].splitlines() == ["- acoustic models", "- mt"]
    assert "dropped copies" in result["control"]["actions"]
    only_copies = RepliesChat(reply="- Graph Parsing of Whale Songs")
    assert _run("research_interests", llm=only_copies)["control"]["verdicts"] == ["copy"]


def test_a_topic_is_one_short_line() -> None:
    output = _run("research_topic")["output"]
    assert "\n" not in output and not output.lower().startswith("topic")
    assert len(output.split()) <= get_task("research_topic").max_words


def test_an_abstract_is_one_paragraph_not_cut_to_a_title_length() -> None:
    result = _run("abstract", "Graph Parsing of Whale Songs", prompt_layout="paper")
    output = result["output"]
    spec = get_task("abstract")
    assert "\n" not in output and not output.startswith("Abstract")
    assert len(sentences(output)) == spec.max_sentences  # whole sentences, the task's limit
    assert 60 < len(output.split()) <= spec.max_words  # a title-length habit does not cut it
    assert result["control"]["verdicts"] == ["ok"]


def test_a_small_model_writes_an_abstract_from_title_to_abstract_examples() -> None:
    llm = TaskChat(model_name="tiny-135m")
    result = _run("abstract", "Graph Parsing of Whale Songs", llm=llm)
    assert result["control"]["layout"] == "few_shot"
    assert result["control"]["candidates"] == 1  # three answers to choose from: titles only
    messages = result["messages"]
    # a paper stored as abstract -> title is shown as title -> abstract
    shots = [(m.content, n.content) for m, n in zip(messages[:-1:2], messages[1::2], strict=True)]
    assert all(
        isinstance(h, str) and h.startswith(get_task("abstract").instruction) for h, _ in shots
    )
    titles = {p["title"] for papers in PAPERS.values() for p in papers}
    abstracts = {p["abstract"] for papers in PAPERS.values() for p in papers}
    assert all(h.split(": ", 1)[1] in titles and a in abstracts for h, a in shots)
    # and for tasks no history item holds, a small model gets the paper layout
    assert (
        _run("research_questions", llm=TaskChat(model_name="tiny-135m"))["control"]["layout"]
        == "paper"
    )


def test_a_title_is_one_line() -> None:
    output = _run("scholarly_title", "We parse whale songs with graph grammars.")["output"]
    assert output == "Graph Parsing and Translation of Animal Songs"


def test_two_stage_merges_lists_in_the_task_shape() -> None:
    llm = TaskChat(merged="- graph parsing\n- graph parsing\n- translation")
    result = _run("research_interests", group_mode="two_stage", llm=llm)
    assert result["output"] == "- graph parsing\n- translation"
    assert len(result["control"]["proposals"]) == 2
    assert result["control"]["merge"] == result["output"]
    merge_prompt = str(llm.prompts[-1][-1].content)
    assert merge_prompt.startswith("Research interests proposed by the authors")


def test_a_task_that_needs_an_input_names_it() -> None:
    with pytest.raises(InvalidArgumentError, match=r"abstract task needs an input \(the paper's"):
        _run("abstract", "  ")
    with pytest.raises(InvalidArgumentError, match="scholarly_title task needs an input"):
        _run("scholarly_title", None)


def test_shown_lists_what_the_prompt_holds() -> None:
    result = _run("research_interests")
    assert set(result["control"]["shown"]) == {d.id for d in _docs()}
    few = _run("scholarly_title", "We parse songs.", llm=TaskChat(model_name="tiny-135m"))
    # the few-shot layout keeps the profiles out and shows the lead's pairs and one co-author's
    assert not any(i.endswith("#profile") for i in few["control"]["shown"])
    assert {"ada/a1", "ada/a2"} <= set(few["control"]["shown"])


# ------------------------------------------------------------------ the write command
@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with ProfileMemory(path, embeddings=HashEmbeddings(), task="scholarly_title") as memory:
        memory.add_histories(PAPERS)
        memory.refresh(strategy="extractive")
    return path


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> TaskChat:
    llm = TaskChat(merged="- merged interest")
    monkeypatch.setattr(Session, "llm", lambda self: llm)
    monkeypatch.setattr(Session, "embeddings", lambda self: HashEmbeddings())
    return llm


def write(store: Path, *args: str) -> list[str]:
    return ["write", *args, "--users", "ada,bob", "--store", str(store)]


def test_write_without_a_needed_input_exits_2_naming_the_fix(
    store: Path, chat: TaskChat, capsys: pytest.CaptureFixture[str]
) -> None:
    for task in ("abstract", "title"):
        assert main(write(store, "--task", task)) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert f"write --task {task} --input FILE" in err and "needs an input" in err
    assert chat.prompts == []  # refused before any call
    assert main(write(store, "--task", "abstract", "--input", str(store / "nowhere.txt"))) == 2
    assert "no such file" in capsys.readouterr().err


def test_write_an_unknown_task_is_a_usage_error(
    store: Path, chat: TaskChat, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(write(store, "--task", "poem"))
    assert exit_.value.code == 2
    assert "invalid choice: 'poem'" in capsys.readouterr().err


def test_write_interests_needs_no_input(
    store: Path, chat: TaskChat, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(write(store, "--task", "interests")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["- graph parsing", "- machine translation"]
    assert out[-1] == "1 LLM call, 0 tokens"


def test_write_abstract_from_a_file_and_stdin(
    store: Path,
    chat: TaskChat,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notes = tmp_path / "title.txt"
    notes.write_text("Graph Parsing of Whale Songs\n")
    assert main(write(store, "--task", "abstract", "--input", str(notes), "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "abstract"
    assert len(sentences(data["output"])) == get_task("abstract").max_sentences
    assert "Graph Parsing of Whale Songs" in str(chat.prompts[-1][-1].content)

    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("We parse whale songs with graphs."))
    assert main(write(store, "--task", "title", "--input", "-")) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "Graph Parsing and Translation of Animal Songs"
    )


def test_write_explain_shows_each_authors_contribution(
    store: Path, chat: TaskChat, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(write(store, "--task", "questions", "--k", "1", "--explain")) == 0
    out = capsys.readouterr().out
    ada = out.index("Author 1: ada (profile v1; in the prompt)")
    bob = out.index("Author 2: bob (profile v1; in the prompt)")
    assert ada < bob < out.index("Retrieved history (top 1 per author):")
    retrieved = [line for line in out.splitlines() if " score " in line]
    assert [line.split("(")[1].split(")")[0] for line in retrieved] == ["ada", "bob"]
    assert all(line.endswith("[in the prompt]") for line in retrieved)
    assert "Layout paper" in out
    assert out.partition("Output:\n")[2].startswith("- Can graph grammars parse whale songs?")


def test_write_two_stage_explain_shows_proposals_and_the_merge(
    store: Path, chat: TaskChat, capsys: pytest.CaptureFixture[str]
) -> None:
    args = write(store, "--task", "interests", "--k", "1", "--group-mode", "two_stage")
    assert main([*args, "--explain"]) == 0
    out = capsys.readouterr().out
    one = out.index("Proposal of author 1 (ada):")
    two = out.index("Proposal of author 2 (bob):")
    merge = out.index("Merge by author 1 (ada; kept):")
    assert one < two < merge < out.index("Output:\n- merged interest")
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["control"]["group_mode"] == "two_stage"
    assert data["control"]["merge"] == data["output"] == "- merged interest"
    assert data["llm_calls"] == 3
    assert all(p["in_prompt"] for p in data["profiles"])
