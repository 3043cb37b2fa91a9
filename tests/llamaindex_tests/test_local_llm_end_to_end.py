"""End to end with real local models: llama-cpp-python's OpenAI-compatible server on 127.0.0.1
writes a profile through ``llama-index-llms-openai-like``, and the embedded model answers in a
LlamaIndex ReActAgent whose memory holds the profile block. Real MiniLM, FAISS and SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.memory import InsertMethod, Memory
from llama_index.llms.openai_like import OpenAILike

from langchain_stepback_profile import MiniLMEmbeddings, ProfileDraft, ProfileMemory
from langchain_stepback_profile.llms import default_chat_model
from llamaindex_integration import LangChainLLM, StepBackProfileMemoryBlock
from tests.llamaindex_tests.helpers import shown_profile

pytestmark = pytest.mark.slow

PREFIX = "Generate a title for the following abstract of a paper: "


class PromptRecorder(BaseCallbackHandler):
    """Keeps the messages of every call of the LangChain chat model it is attached to."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.prompts.extend(messages)


async def test_served_model_writes_the_profile_the_embedded_model_then_answers_with(
    server_url: str,
    tmp_path: Path,
    embeddings: MiniLMEmbeddings,
    lamp_slice: dict[str, dict[str, Any]],
) -> None:
    alice, bob, _ = lamp_slice
    writer = OpenAILike(
        model="SmolLM2-135M-Instruct",
        api_base=server_url,
        api_key="unused",
        is_chat_model=True,
        context_window=2048,
        max_tokens=200,
        temperature=0.0,
        timeout=120,
        # the server's JSON-schema grammar keeps a 135M model's answer valid JSON
        additional_kwargs={
            "response_format": {"type": "json_object", "schema": ProfileDraft.model_json_schema()}
        },
    )
    with ProfileMemory(  # hybrid: the served model writes each summary (auto: extractive)
        tmp_path / "store", embeddings=embeddings, task="scholarly_title", profile_strategy="hybrid"
    ) as store:
        store.add_histories(
            {u: lamp_slice[u]["profile"][:3] for u in (alice, bob)}, show_progress=False
        )
        store.set_profile(bob, ProfileDraft(interests=["question answering"], summary="Bob QA."))
        block = StepBackProfileMemoryBlock(memory=store, user_ids=alice, k=1, llm=writer)

        report = await block.arefresh()
        profile = store.get_profile(alice)
        assert report.count("built") == 1
        assert report.tokens > 0  # the server's token counts came through the adapter
        assert profile.model == "llamaindex:SmolLM2-135M-Instruct"
        shown = shown_profile(store, alice)
        assert shown.strip()

        recorder = PromptRecorder()
        llm = LangChainLLM(chat_model=default_chat_model(max_tokens=32, callbacks=[recorder]))
        # ReActAgent replaces the first system message with its own: memory goes to the user turn
        memory = Memory.from_defaults(
            session_id="alice", memory_blocks=[block], insert_method=InsertMethod.USER
        )
        question = lamp_slice[alice]["input"].removeprefix(PREFIX)
        result = await ReActAgent(llm=llm, tools=[]).run(
            user_msg=f"Suggest a title for: {question}", memory=memory
        )

    assert str(result).strip()
    assert len(recorder.prompts) == 1
    prompt = "\n".join(str(m.content) for m in recorder.prompts[0])
    assert shown in prompt
    assert f"Author 1 ({alice})" in prompt
    assert bob not in prompt and "Bob QA." not in prompt
    assert not any(p["abstract"] in prompt for p in lamp_slice[bob]["profile"][:3])
