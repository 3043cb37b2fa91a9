"""LangChain's standard integration tests for the agent profile tools, invoked as an agent's
ToolNode invokes them (a tool call whose ``runtime`` names the run's user) over a real store
(default MiniLM embeddings, FAISS, SQLite) holding alice's history and profile."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests

from langchain_stepback_profile import ProfileMemory
from langchain_stepback_profile.agents import create_profile_tools
from tests.agents_tests.data import HISTORIES, PROFILES
from tests.unit_tests.test_standard import tool_runtime

pytestmark = pytest.mark.slow

_STATE: dict[str, Any] = {}


def _tool(name: str) -> BaseTool:
    """One of the profile tools over the module's store, created on first use."""
    if "memory" not in _STATE:
        folder = Path(tempfile.mkdtemp(prefix="stepback-tools-"))
        memory = ProfileMemory(folder / "store")  # the default, real embeddings
        memory.add_histories(HISTORIES, show_progress=False)
        for user_id, draft in PROFILES.items():
            memory.set_profile(user_id, draft)
        _STATE.update(folder=folder, memory=memory)
        _STATE["tools"] = {t.name: t for t in create_profile_tools(memory)}
    return _STATE["tools"][name]


@pytest.fixture(scope="module", autouse=True)
def _store_lifetime() -> Iterator[None]:
    yield
    memory = _STATE.pop("memory", None)
    if memory is not None:
        memory.close()
        shutil.rmtree(_STATE.pop("folder"), ignore_errors=True)
    _STATE.clear()


class TestSearchUserHistoryToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("search_user_history")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "translation with synthetic data", "runtime": tool_runtime()}


class TestReadUserProfileToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("read_user_profile")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"runtime": tool_runtime()}


class TestRememberAboutUserToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tool("remember_about_user")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "Prefers titles under eight words.", "runtime": tool_runtime()}


def test_the_tools_answer_from_the_run_users_data() -> None:
    """The standard tests check the shape of the answers; these are alice's own."""
    runtime = tool_runtime("alice")
    found = _tool("search_user_history").invoke({"query": "back-translation", "runtime": runtime})
    assert "Back-Translation for Low-Resource Languages" in found
    assert "sourdough" not in found.lower()
    profile = _tool("read_user_profile").invoke({"runtime": runtime})
    assert profile and "This user has no profile yet." not in profile
