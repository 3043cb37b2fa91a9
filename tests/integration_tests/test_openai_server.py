"""Any OpenAI-compatible model, for real: llama-cpp-python's server on 127.0.0.1 with the same
GGUF, reached through langchain-openai's ChatOpenAI from Python and from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from langchain_stepback_profile import (
    ProfileMemory,
    StepBackProfileRetriever,
    create_personalized_chain,
)
from langchain_stepback_profile.usage import LLMUsage
from tests.integration_tests.test_cli import PREFIX, as_json, cli

pytestmark = pytest.mark.slow
MODEL = "SmolLM2-135M-Instruct"


def served(base_url: str, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=base_url, api_key="not-needed", temperature=0, **kwargs)


@pytest.fixture
def histories(lamp5_questions: list[dict]) -> dict[str, list[dict]]:
    return {q["user"]: q["profile"][:3] for q in lamp5_questions[:2]}


def test_profiles_and_a_personalized_query_through_chatopenai(
    openai_server: str, tmp_path: Path, embeddings, histories, lamp5_questions
) -> None:
    llm = served(openai_server, max_tokens=256)
    with ProfileMemory(  # hybrid: the served model writes each summary (auto: extractive)
        tmp_path / "store", embeddings=embeddings, task="scholarly_title", profile_strategy="hybrid"
    ) as memory:
        memory.add_histories(histories)
        report = asyncio.run(memory.arefresh(llm=llm, max_concurrency=2))
        assert report.count("built") == 2 and report.llm_calls >= 2
        for user in histories:
            profile = memory.get_profile(user)
            assert profile.model == f"openai-chat:{MODEL}" and not profile.is_empty()
        assert asyncio.run(memory.arefresh(llm=llm)).llm_calls == 0

        user = next(iter(histories))
        retriever = StepBackProfileRetriever(memory=memory, k=2)
        chain = create_personalized_chain(
            llm, retriever, task="scholarly_title", return_context=True
        )
        usage = LLMUsage()
        abstract = lamp5_questions[0]["input"].removeprefix(PREFIX)
        result = chain.invoke(
            abstract, config={"configurable": {"user_ids": [user]}, "callbacks": [usage]}
        )
    assert result["control"]["layout"] == "few_shot"  # auto: a 135M model, even when served
    assert result["control"]["candidates"] == 3  # seeded samples go through the server too
    assert 3 <= usage.calls <= 4 and usage.input_tokens > 0
    assert result["output"].strip() and len(result["output"].split()) <= 30


def test_the_command_line_with_openai_llm_and_base_url(
    openai_server: str, tmp_path: Path, histories
) -> None:
    data = tmp_path / "papers.jsonl"
    data.write_text(
        "".join(
            json.dumps({"user_id": user, **item}) + "\n"
            for user, items in histories.items()
            for item in items
        )
    )
    store = ["--store", tmp_path / "store"]
    llm = ["--llm", f"openai:{MODEL}", "--base-url", openai_server]
    as_json(cli("ingest", data, *store, "--task", "scholarly_title", "--json", cwd=tmp_path))
    built = as_json(
        cli(
            "profile",
            "build",
            *store,
            *llm,
            "--concurrency",
            "2",
            "--profile-strategy",
            "hybrid",  # the served model writes each summary; the next build remembers it
            "--json",
            cwd=tmp_path,
        )
    )
    assert built["built"] == 2 and built["llm_calls"] >= 2
    again = as_json(cli("profile", "build", *store, *llm, "--json", cwd=tmp_path))
    assert again["llm_calls"] == 0 and again["unchanged"] == 2
    user = next(iter(histories))
    answer = as_json(
        cli(
            "query",
            "--users",
            user,
            *store,
            *llm,
            "--json",
            "We study neural models of discourse coherence.",
            cwd=tmp_path,
        )
    )
    assert answer["output"].strip() and answer["llm_calls"] >= 1
