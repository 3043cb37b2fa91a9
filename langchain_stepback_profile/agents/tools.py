"""Tools an agent calls to read and extend the current user's profile memory.

Every tool reads its users from the run (``ToolRuntime``: the runtime context, else the
config), never from its arguments: the model sees only ``query`` or ``text``, so whatever it
writes into a call, it reaches no other user's data.

Example:
    ```python
    agent = create_agent(model, tools=create_profile_tools(memory), context_schema=UserContext)
    agent.invoke({"messages": [("user", "What did I write about BLEU?")]},
                 context=UserContext("alice"))
    ```
"""

from __future__ import annotations

from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, StructuredTool

from langchain_stepback_profile.agents.context import known_users, run_users
from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.chains import render_context
from langchain_stepback_profile.memory import ProfileMemory, check_k
from langchain_stepback_profile.retriever import StepBackProfileRetriever

AnyToolRuntime = ToolRuntime[Any, Any]
"""What the tools get injected: any context type (an unparametrised ``ToolRuntime`` expects
``None`` and makes pydantic warn about every real context)."""

NOTHING_STORED = "Nothing is stored for this user yet."
NO_PROFILE = "This user has no profile yet."


def _users(runtime: AnyToolRuntime) -> list[str]:
    return run_users(runtime.context, runtime.config)


def _note(text: str) -> list[dict[str, Any]]:
    return [{"text": text, "metadata": {"source": "agent_tool"}}]


def create_profile_tools(memory: ProfileMemory, *, k: int = 4) -> list[BaseTool]:
    """Three tools scoped to the run's user(s): ``search_user_history`` (their ``k`` most similar
    history items each), ``read_user_profile`` (their step-back profiles, in order) and
    ``remember_about_user`` (adds a note to the first user's history).

    Results are rendered by :func:`~langchain_stepback_profile.chains.render_context`, like
    every other face. Each tool works in sync and async agents.

    Example:
        ```python
        tools = create_profile_tools(memory, k=3)
        [t.name for t in tools]
        # -> ['search_user_history', 'read_user_profile', 'remember_about_user']
        ```
    """
    history = StepBackProfileRetriever(memory=memory, k=check_k(k), include_profiles=False)
    profiles = StepBackProfileRetriever(memory=memory, include_history=False)  # ignores its query

    def search_user_history(query: str, runtime: AnyToolRuntime) -> str:
        users = known_users(memory, _users(runtime))
        if not users:
            return NOTHING_STORED
        return render_context(history.invoke(query, user_ids=users)) or NOTHING_STORED

    async def asearch_user_history(query: str, runtime: AnyToolRuntime) -> str:
        users = await off_loop(known_users, memory, _users(runtime))
        if not users:
            return NOTHING_STORED
        return render_context(await history.ainvoke(query, user_ids=users)) or NOTHING_STORED

    def read_user_profile(runtime: AnyToolRuntime) -> str:
        users = known_users(memory, _users(runtime))
        if not users:
            return NO_PROFILE
        return render_context(profiles.invoke("", user_ids=users)) or NO_PROFILE

    async def aread_user_profile(runtime: AnyToolRuntime) -> str:
        users = await off_loop(known_users, memory, _users(runtime))
        if not users:
            return NO_PROFILE
        return render_context(await profiles.ainvoke("", user_ids=users)) or NO_PROFILE

    def remember_about_user(text: str, runtime: AnyToolRuntime) -> str:
        memory.add(_users(runtime)[0], _note(text))
        return "Saved to the user's history."

    async def aremember_about_user(text: str, runtime: AnyToolRuntime) -> str:
        await memory.aadd(_users(runtime)[0], _note(text))
        return "Saved to the user's history."

    return [
        StructuredTool.from_function(
            search_user_history,
            coroutine=asearch_user_history,
            description=(
                "Search the current user's own earlier writing and notes for the items most "
                "similar to `query`."
            ),
        ),
        StructuredTool.from_function(
            read_user_profile,
            coroutine=aread_user_profile,
            description=(
                "Read the current user's profile: their interests, keywords and writing style."
            ),
        ),
        StructuredTool.from_function(
            remember_about_user,
            coroutine=aremember_about_user,
            description=(
                "Save `text` (a fact, preference or piece of the user's writing) to the current "
                "user's history, so later answers can use it."
            ),
        ),
    ]
