"""Style gists end to end with the real parts: MiniLM, SQLite, FAISS and the embedded SmolLM2
model write the gists during refresh; the chain and the ``query --style-gists`` command then
show them beside the retrieved items at 0 gist calls, and ``profile build --style-gists``
finds them cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_stepback_profile import (
    MiniLMEmbeddings,
    ProfileMemory,
    StepBackProfileRetriever,
    create_personalized_chain,
)
from langchain_stepback_profile.llms import default_chat_model
from langchain_stepback_profile.style_gists import GIST_KIND, GIST_WORDS

from .test_cli import as_json, cli

pytestmark = pytest.mark.slow


def test_gists_written_in_refresh_serve_the_chain_and_the_command(
    tmp_path: Path, embeddings: MiniLMEmbeddings, lamp5_questions: list[dict]
) -> None:
    store = tmp_path / "store"
    question = lamp5_questions[0]
    llm = default_chat_model()
    with ProfileMemory(store, embeddings=embeddings, task="scholarly_title") as memory:
        memory.add("author", question["profile"][:3])
        report = memory.refresh(llm=llm, strategy="extractive", style_gists=True)
        assert report.gists is not None and report.gists.items == 3
        assert report.gists.written + report.gists.failed == 3 and report.gists.written >= 1
        hashes = [item.content_hash for item in memory.items("author")]
        stored = memory.get_annotations("author", GIST_KIND, hashes)
        for note in stored.values():  # one line, bounded
            assert "\n" not in note.text and len(note.text.split()) <= GIST_WORDS + 1

        retriever = StepBackProfileRetriever(memory=memory, k=2, user_ids=["author"])
        chain = create_personalized_chain(
            llm, retriever, prompt_layout="paper", style_gists=True, return_context=True
        )
        result = chain.invoke(question["input"])
        assert result["output"].strip()
        history = [d for d in result["documents"] if d.metadata["kind"] == "history"]
        # only the items whose gist failed in refresh are tried again
        sources = [d.metadata["style_gist_source"] for d in history]
        assert result["control"]["gist_calls"] == sum(s != "cached" for s in sources)
        for doc in (d for d in history if d.metadata.get("style_gist")):
            assert f"Style note: {doc.metadata['style_gist']}" in result["messages"][0].content
        stored = memory.get_annotations("author", GIST_KIND, hashes)
        missing = sum(d.metadata["style_gist_source"] == "failed" for d in history)

    built = as_json(
        cli("profile", "build", "--style-gists", "--json", "--store", store, cwd=tmp_path)
    )
    # the command finds the gists refresh wrote (the same model): no gist call for them
    assert built["style_gists"]["items"] == 3 and built["unchanged"] == 1
    assert built["style_gists"]["llm_calls"] == built["style_gists"]["items"] - len(stored)
    assert built["llm_calls"] == built["style_gists"]["llm_calls"]

    out = as_json(
        cli(
            "query", "--users", "author", "--k", "2", "--strategy", "paper", "--style-gists",
            "--json", question["input"], "--store", store, cwd=tmp_path,
        )
    )  # fmt: skip
    assert out["control"]["gist_calls"] == missing  # cached above (the same model)
    assert out["llm_calls"] in (1, 2)  # the answer alone (and one retry)
    gists = [h["style_gist"] for h in out["history"] if "style_gist" in h]
    assert gists and set(gists) <= {note.text for note in stored.values()}
