"""Run by test_light_install.py inside a venv that holds the core install only (no extras).

It runs the README quick start with fake models (any LangChain chat model and ``Embeddings``
work without the extras), records which optional libraries got imported, and collects the
errors of the embedded defaults, which need the ``[local]`` extra. The findings are printed
as one JSON object on the last line of stdout.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

OPTIONAL = (
    "torch",
    "sentence_transformers",
    "transformers",
    "llama_cpp",
    "rouge_score",
    "matplotlib",
    "scipy",
    "rich",
    "langchain",
    "langgraph",
    "llama_index",
)
"""Libraries of the extras (rich is core but only the CLI uses it)."""

PROFILE = json.dumps(
    {
        "interests": ["machine translation", "discourse coherence"],
        "summary": "Writes short titles about neural models of language.",
    }
)
TITLE = "Neural Discourse Models for Low-Resource Translation"


def loaded() -> list[str]:
    return sorted(m for m in OPTIONAL if sys.modules.get(m) is not None)


def quick_start(folder: Path) -> str:
    """The README quick start, with fake models in place of the embedded ones."""
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.language_models import GenericFakeChatModel

    from langchain_stepback_profile import (
        ProfileMemory,
        StepBackProfileRetriever,
        create_personalized_chain,
    )

    profile_llm = GenericFakeChatModel(messages=itertools.cycle([PROFILE]))
    llm = GenericFakeChatModel(messages=itertools.cycle([TITLE]))
    with ProfileMemory(
        folder,
        llm=profile_llm,
        embeddings=DeterministicFakeEmbedding(size=64),
        task="scholarly_title",
    ) as memory:
        memory.add(
            "alice",
            [{"id": "p1", "title": "Neural MT for Low-Resource Languages", "abstract": "We ..."}],
        )
        memory.add(
            "bob",
            [{"id": "q1", "title": "Discourse Coherence with Neural Nets", "abstract": "We ..."}],
        )
        memory.refresh()
        chain = create_personalized_chain(
            llm, StepBackProfileRetriever(memory=memory, k=2), task="scholarly_title"
        )
        answer = chain.invoke(
            "We propose ...", config={"configurable": {"user_ids": ["alice", "bob"]}}
        )
    return str(answer)


def default_errors(folder: Path) -> dict[str, dict[str, Any]]:
    """What each embedded default raises without the ``[local]`` extra."""
    from langchain_stepback_profile import MiniLMEmbeddings, MissingExtraError, ProfileMemory

    def chat_model() -> object:
        from langchain_stepback_profile.llms import default_chat_model

        return default_chat_model()

    attempts: dict[str, Callable[[], object]] = {
        "MiniLMEmbeddings()": MiniLMEmbeddings,
        "ProfileMemory(path)": lambda: ProfileMemory(folder),
        "default_chat_model()": chat_model,
    }
    found: dict[str, dict[str, Any]] = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except MissingExtraError as err:
            found[name] = {
                "extra": err.extra,
                "message": str(err),
                "import_error": isinstance(err, ImportError),
            }
        else:
            found[name] = {"extra": None, "message": "no error"}
    found["ProfileMemory(path)"]["folder_created"] = folder.exists()
    return found


def main() -> None:
    import langchain_stepback_profile  # noqa: F401 - the import under test

    findings: dict[str, Any] = {"after_import": loaded()}
    with tempfile.TemporaryDirectory() as tmp:
        findings["answer"] = quick_start(Path(tmp) / "profiles")
        findings["after_quick_start"] = loaded()
        findings["errors"] = default_errors(Path(tmp) / "no-embeddings")
    findings["after_errors"] = loaded()
    print(json.dumps(findings))


if __name__ == "__main__":
    main()
