"""Coercion of user input into HistoryItems: every accepted shape and every refused one."""

from __future__ import annotations

import pytest

from langchain_stepback_profile import HistoryItem, InvalidItemError, to_history_item
from langchain_stepback_profile.errors import InvalidArgumentError, StepBackProfileError
from langchain_stepback_profile.history import (
    check_user_id,
    content_hash,
    history_hash,
    to_history_items,
)


# ---------------------------------------------------------------- accepted shapes
def test_string_becomes_item_with_content_id() -> None:
    item = to_history_item("  I love neural machine translation.  ")
    assert item.text == "I love neural machine translation."
    assert item.id == content_hash(item.text)[:16]
    assert item.input is item.output is item.input_label is item.output_label is None
    assert item.metadata == {}


def test_same_string_gives_same_id() -> None:
    assert to_history_item("same words").id == to_history_item(" same words\n").id
    assert to_history_item("same words").id != to_history_item("other words").id


def test_text_dict() -> None:
    item = to_history_item({"text": "BLEU is not enough"})
    assert item.text == "BLEU is not enough"
    assert item.output is None and item.input is None
    assert item.id == content_hash("BLEU is not enough")[:16]


def test_lamp5_title_abstract() -> None:
    item = to_history_item(
        {"id": "D15-1001", "title": "Deep RL for Text Games", "abstract": "We study text games."}
    )
    assert item.id == "D15-1001"
    assert item.output == "Deep RL for Text Games"
    assert item.input == "We study text games."
    assert (item.output_label, item.input_label) == ("title", "abstract")
    assert item.text == "Deep RL for Text Games\nWe study text games."
    assert item.metadata == {}


def test_lamp7_id_text() -> None:
    item = to_history_item({"id": "tw-1", "text": "just landed in Lisbon, so sunny"})
    assert item.id == "tw-1"
    assert item.text == "just landed in Lisbon, so sunny"
    assert item.output is None and item.input is None
    assert item.metadata == {}


def test_input_output_pair() -> None:
    item = to_history_item({"input": "an article about rain", "output": "Rain, again"})
    assert (item.input, item.output) == ("an article about rain", "Rain, again")
    assert (item.input_label, item.output_label) == ("input", "output")
    assert item.text == "Rain, again\nan article about rain"


@pytest.mark.parametrize("score", [4, 0, 3.5])
def test_lamp3_text_and_numeric_score(score: float) -> None:
    item = to_history_item(
        {"id": "r1", "text": "Great product, works as described.", "score": score}
    )
    assert item.output == str(score)
    assert item.input == "Great product, works as described."
    assert (item.input_label, item.output_label) == ("text", "score")
    assert item.text == f"{score}\nGreat product, works as described."


def test_integer_id_is_accepted_as_string() -> None:
    assert to_history_item({"id": 17, "text": "x"}).id == "17"
    assert to_history_item({"id": "  p1 ", "text": "x"}).id == "p1"


def test_extra_keys_go_into_metadata() -> None:
    item = to_history_item({"id": "p1", "text": "hello", "year": 2015, "venue": "EMNLP"})
    assert item.metadata == {"year": 2015, "venue": "EMNLP"}
    assert item.text == "hello"


def test_explicit_metadata_is_kept_and_merged() -> None:
    item = to_history_item({"text": "hello", "metadata": {"source": "lamp"}, "year": 2015})
    assert item.metadata == {"source": "lamp", "year": 2015}


def test_unused_lamp_fields_are_not_dropped() -> None:
    # LaMP-2N: the text/title pair is the item, the category must not vanish silently.
    item = to_history_item({"id": "n1", "category": "sports", "title": "Cup final", "text": "..."})
    assert (item.output, item.input) == ("Cup final", "...")
    assert item.metadata == {"category": "sports"}


def test_history_item_passes_through_unchanged() -> None:
    original = HistoryItem(id="p1", text="hello", metadata={"a": 1})
    assert to_history_item(original) is original


def test_history_items_accepts_single_item_and_mixed_list() -> None:
    assert [i.text for i in to_history_items("one")] == ["one"]
    assert [i.text for i in to_history_items({"text": "one"})] == ["one"]
    items = to_history_items(["a", {"text": "b"}, HistoryItem(id="c", text="c")])
    assert [i.text for i in items] == ["a", "b", "c"]
    assert to_history_items([]) == []


# ---------------------------------------------------------------- refused shapes
@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_empty_or_blank_string_is_refused(raw: str) -> None:
    with pytest.raises(InvalidItemError, match="empty") as err:
        to_history_item(raw)
    assert "non-blank text" in str(err.value)


@pytest.mark.parametrize("raw", [{"text": ""}, {"text": "   "}, {"title": " ", "abstract": "x"}])
def test_blank_dict_text_is_refused(raw: dict) -> None:
    with pytest.raises(InvalidItemError, match="empty"):
        to_history_item(raw)


@pytest.mark.parametrize("raw", [None, 5, 3.2, ["a", "b"], b"bytes"])
def test_non_string_item_is_refused(raw: object) -> None:
    with pytest.raises(InvalidItemError) as err:
        to_history_item(raw)  # type: ignore[arg-type]
    message = str(err.value)
    assert type(raw).__name__ in message
    assert "string, a dict or a HistoryItem" in message


@pytest.mark.parametrize("value", [5, ["a"], {"x": 1}, b"x"])
def test_non_string_text_field_is_refused(value: object) -> None:
    with pytest.raises(InvalidItemError) as err:
        to_history_item({"text": value})
    message = str(err.value)
    assert "'text'" in message and type(value).__name__ in message
    assert "str()" in message  # how to fix it


def test_non_string_title_is_refused_not_stringified() -> None:
    with pytest.raises(InvalidItemError, match=r"'title'.*list"):
        to_history_item({"title": ["a", "b"], "abstract": "x"})


def test_none_text_field_counts_as_missing() -> None:
    with pytest.raises(InvalidItemError) as err:
        to_history_item({"text": None})
    assert "no text field" in str(err.value) and "non-None" in str(err.value)


def test_dict_without_text_field_is_refused() -> None:
    with pytest.raises(InvalidItemError) as err:
        to_history_item({"id": "p1", "body_text": "x", "year": 2015})
    message = str(err.value)
    assert "no text field" in message
    assert "body_text" in message and "year" in message  # what it got
    assert "'text'" in message and "'abstract'" in message  # how to fix it


@pytest.mark.parametrize("bad_id", ["", "   ", 1.5, ["p1"], True, {"a": 1}])
def test_bad_id_is_refused(bad_id: object) -> None:
    with pytest.raises(InvalidItemError, match="item id must be a non-empty string"):
        to_history_item({"id": bad_id, "text": "x"})


def test_blank_id_of_history_item_is_refused() -> None:
    with pytest.raises(InvalidItemError, match="item id"):
        to_history_item(HistoryItem(id="  ", text="hello"))


def test_blank_text_of_history_item_is_refused() -> None:
    with pytest.raises(InvalidItemError, match="empty"):
        to_history_item(HistoryItem(id="p1", text="  "))


def test_non_dict_metadata_is_refused() -> None:
    with pytest.raises(InvalidItemError, match="'metadata' must be a dict"):
        to_history_item({"text": "x", "metadata": "source=lamp"})


def test_errors_are_package_errors_and_value_errors() -> None:
    with pytest.raises(StepBackProfileError):
        to_history_item("")
    with pytest.raises(ValueError):
        to_history_item("")


def test_history_items_names_position_of_bad_item() -> None:
    with pytest.raises(InvalidItemError) as err:
        to_history_items(["fine", {"text": "also fine"}, {"text": "  "}, "never reached"])
    message = str(err.value)
    assert message.startswith("item 2: ")
    assert "'text'" in message and "empty" in message


def test_history_items_position_for_generator_input() -> None:
    with pytest.raises(InvalidItemError, match=r"^item 1: .*NoneType"):
        to_history_items(x for x in ["ok", None])


# ---------------------------------------------------------------- history_hash
def _items(*texts: str) -> list[HistoryItem]:
    return [HistoryItem(id=f"id{i}", text=t) for i, t in enumerate(texts)]


def test_history_hash_is_order_independent() -> None:
    items = _items("a", "b", "c")
    assert history_hash(items) == history_hash(list(reversed(items)))
    assert history_hash(iter(items)) == history_hash(items)


def test_history_hash_changes_with_content_ids_and_membership() -> None:
    base = history_hash(_items("a", "b"))
    assert history_hash(_items("a", "B")) != base  # content changed
    assert history_hash(_items("a")) != base  # item removed
    assert history_hash(_items("a", "b", "c")) != base  # item added
    renamed = [HistoryItem(id="other", text="a"), HistoryItem(id="id1", text="b")]
    assert history_hash(renamed) != base  # id changed
    assert history_hash([]) != base


def test_history_hash_ignores_metadata() -> None:
    plain = [HistoryItem(id="p", text="a")]
    tagged = [HistoryItem(id="p", text="a", metadata={"year": 1})]
    assert history_hash(plain) == history_hash(tagged)


def test_content_hash_is_independent_of_id() -> None:
    assert HistoryItem(id="a", text="x").content_hash == HistoryItem(id="b", text="x").content_hash
    assert HistoryItem(id="a", text="x").content_hash != HistoryItem(id="a", text="y").content_hash


@pytest.mark.parametrize(
    ("user_id", "problem"),
    [
        ("alice ", "leading or trailing whitespace"),
        (" alice", "leading or trailing whitespace"),
        ("alice\t", "leading or trailing whitespace"),
        ("ali\u200bce", "invisible characters"),
        ("ali\x00ce", "control or invisible"),
        ("Rene\u0301", "NFC"),
        ("", "non-empty string"),
        (7, "non-empty string"),
    ],
)
def test_look_alike_user_ids_are_refused(user_id: object, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=problem):
        check_user_id(user_id)


@pytest.mark.parametrize("user_id", ["alice", "Regina Barzilay", "a/b", "René", "用户 1", "x%2F"])
def test_user_ids_are_kept_exactly(user_id: str) -> None:
    assert check_user_id(user_id) == user_id


def test_documents_and_the_users_chat_messages_become_items() -> None:
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    doc = Document("Parsing tweets with neural nets.", id="d1", metadata={"year": 2016})
    item = to_history_item(doc)
    assert (item.id, item.text, item.metadata) == ("d1", doc.page_content, {"year": 2016})
    transcript = [
        SystemMessage("You are helpful."),
        HumanMessage("I am writing about sign language translation."),
        AIMessage("Great topic!"),
        HumanMessage("It uses video transformers."),
    ]
    assert [i.text for i in to_history_items(transcript)] == [
        "I am writing about sign language translation.",
        "It uses video transformers.",
    ]
    with pytest.raises(InvalidItemError, match="AIMessage is not something the user wrote"):
        to_history_item(AIMessage("not the user's"))
