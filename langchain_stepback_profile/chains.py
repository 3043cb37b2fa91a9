"""Personalized LCEL chains: retrieved profiles and history rendered into one prompt, one LLM call.

Example:
    ```python
    chain = create_personalized_chain(llm, retriever, task="scholarly_title")
    chain.invoke("We study...", config={"configurable": {"user_ids": ["alice", "bob"]}})
    # -> 'Neural Machine Translation with ...'
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.tasks import TaskSpec, get_task


def _input_text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("input")
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(
            f'the chain input must be a non-empty string or {{"input": "..."}}, got {value!r}'
        )
    return value


def format_profiles(docs: Sequence[Document]) -> str:
    """P_U = [P_u1; ...; P_un]: the profile documents, numbered in author order."""
    blocks = [
        f"Author {d.metadata['position'] + 1} ({d.metadata['user_id']}):\n{d.page_content}"
        for d in docs
        if d.metadata.get("kind") == "profile"
    ]
    return "\n\n".join(blocks)


def format_history(docs: Sequence[Document]) -> str:
    """R_1,k; ...; R_n,k: retrieved history items, grouped by author in order."""
    lines = []
    for d in docs:
        if d.metadata.get("kind") != "history":
            continue
        who = f"Author {d.metadata['position'] + 1}"
        if d.metadata.get("output"):
            out_label = str(d.metadata.get("output_label") or "output").capitalize()
            in_label = str(d.metadata.get("input_label") or "input").capitalize()
            lines.append(
                f"[{who}] {in_label}: {d.metadata['input']}\n{out_label}: {d.metadata['output']}"
            )
        else:
            lines.append(f"[{who}] {d.page_content}")
    return "\n\n".join(lines)


def render_context(docs: Sequence[Document]) -> str:
    """P_U then the retrieved items as one text block ('' when there is nothing to say).

    The one rendering of retrieved context shared by chains, agent middleware and LlamaIndex
    memory, so every face shows the model the same thing.
    """
    sections = []
    profiles = format_profiles(docs)
    if profiles:
        sections.append(
            f"Profiles of the authors, in author order (the first author leads):\n{profiles}"
        )
    history = format_history(docs)
    if history:
        sections.append(f"Earlier work of the authors, most similar first:\n{history}")
    return "\n\n".join(sections)


def build_messages(text: str, docs: Sequence[Document], task: TaskSpec) -> list[BaseMessage]:
    """The paper's layout: profiles, retrieved items, then the instruction right next to the input.

    Everything sits in one user turn, so small models keep the instruction beside the text.
    """
    context = render_context(docs)
    sections = [context] if context else []
    sections.append(
        f"{task.instruction} {text}\n\nWrite only the {task.output_name}, in the authors' style, "
        "with no explanation."
    )
    return [HumanMessage("\n\n".join(sections))]


def create_personalized_chain(
    llm: BaseChatModel,
    retriever: Runnable[str, list[Document]],
    *,
    task: str | TaskSpec | None = None,
    return_context: bool = False,
) -> Runnable:
    """A chain ``input -> personalized output`` that makes exactly one LLM call per query.

    The input is a string (or ``{"input": str}``); the users come from the retriever
    (its ``user_ids``, or ``config={"configurable": {"user_ids": [...]}}`` on the chain).
    With ``return_context=True`` the chain returns ``{"output", "documents", "messages"}``.

    Example:
        ```python
        chain = create_personalized_chain(llm, retriever, task="tweet_paraphrase")
        chain.invoke({"input": "so tired today"}, config={"configurable": {"user_ids": ["u1"]}})
        ```
    """
    spec = get_task(task)
    gather = RunnableParallel(
        input=RunnableLambda(_input_text), documents=RunnableLambda(_input_text) | retriever
    )
    prompt = RunnableLambda(
        lambda state: {
            **state,
            "messages": build_messages(state["input"], state["documents"], spec),
        }
    )
    generate = RunnableLambda(lambda state: state["messages"]) | llm | StrOutputParser()
    if not return_context:
        return (gather | prompt | generate).with_config(run_name="personalized_chain")
    return (
        gather
        | prompt
        | RunnableParallel(
            output=generate,
            documents=RunnableLambda(lambda s: s["documents"]),
            messages=RunnableLambda(lambda s: s["messages"]),
        )
    ).with_config(run_name="personalized_chain")
