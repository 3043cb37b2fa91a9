"""StepBackProfileMiddleware: step-back profiles and similar history in an agent's system prompt.

Example:
    ```python
    agent = create_agent(
        model,
        middleware=[StepBackProfileMiddleware(memory)],
        context_schema=UserContext,
    )
    agent.invoke({"messages": [("user", "Title for: We study ...")]}, context=UserContext("alice"))
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelCallResult,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime

from langchain_stepback_profile.agents.context import known_users, run_users
from langchain_stepback_profile.aio import off_loop
from langchain_stepback_profile.chains import render_context
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.memory import ProfileMemory, RefreshReport, check_k
from langchain_stepback_profile.retriever import StepBackProfileRetriever

logger = logging.getLogger(__name__)

DEFAULT_HEADER = (
    "You are writing for the user(s) below. Match their interests and their writing style "
    "(tone, length, vocabulary); do not mention this context unless asked."
)


class ProfileAgentState(AgentState):
    """The agent state plus the user's messages of the current turn (kept out of the graph's
    input and output)."""

    stepback_turn: NotRequired[Annotated[list[str], PrivateStateAttr]]


def latest_user_text(messages: Sequence[AnyMessage]) -> str:
    """The text of the last user message ('' if there is none or it holds no text)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text).strip()
    return ""


def turn_texts(messages: Sequence[AnyMessage]) -> list[str]:
    """The texts of the user messages that end the conversation (the turn being answered)."""
    texts: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, HumanMessage):
            break
        if text := str(message.text).strip():
            texts.append(text)
    return texts[::-1]


def with_context(message: SystemMessage | None, text: str) -> SystemMessage:
    """The system message with ``text`` appended (a new one if there was none)."""
    if message is None:
        return SystemMessage(text)
    if isinstance(message.content, str):
        content: Any = f"{message.content}\n\n{text}" if message.content else text
    else:
        content = [*message.content, {"type": "text", "text": text}]
    return message.model_copy(update={"content": content})


def _config() -> Any:
    """The run's config inside a graph node, ``None`` outside one."""
    try:
        return get_config()
    except RuntimeError:
        return None


class StepBackProfileMiddleware(AgentMiddleware[ProfileAgentState, Any]):
    """Personalizes a ``create_agent`` agent with step-back profiling.

    Before each model call it appends to the system prompt the profiles of the run's users (in
    order) and each user's ``k`` history items most similar to the latest user message, rendered
    by :func:`~langchain_stepback_profile.chains.render_context` exactly as the chains do. The
    users come from the run: ``invoke(..., context=UserContext([...]))`` (any context with
    ``user_ids`` or ``user_id``), else ``config={"configurable": {"user_ids": [...]}}``. A user
    with nothing stored yet is skipped, so a first conversation runs unpersonalized.

    Args:
        memory: the :class:`ProfileMemory` holding histories and profiles.
        k: history items per user.
        include_profiles: add the users' profiles.
        include_history: add the users' most similar history items.
        record: after each run, add the user's messages of that turn to the first user's
            history (a later run retrieves them; profiles change only by ``refresh_after``).
        refresh_after: after a run, rebuild the first user's profile once this many of their
            items are new (or removed) since it was written; ``None`` never (refresh elsewhere,
            e.g. a nightly ``memory.arefresh()``). The refresh runs before the run returns.
        llm: the model that writes profiles on refresh; default the memory's.
        header: the instruction placed before the profiles in the system prompt.

    Example:
        ```python
        middleware = StepBackProfileMiddleware(memory, k=2, record=True, refresh_after=5)
        agent = create_agent(model, tools, middleware=[middleware], context_schema=UserContext)
        agent.invoke({"messages": [("user", "Draft an abstract on ...")]},
                     context=UserContext(["alice", "bob"]))
        ```
    """

    state_schema = ProfileAgentState

    def __init__(
        self,
        memory: ProfileMemory,
        *,
        k: int = 4,
        include_profiles: bool = True,
        include_history: bool = True,
        record: bool = False,
        refresh_after: int | None = None,
        llm: BaseChatModel | None = None,
        header: str = DEFAULT_HEADER,
    ) -> None:
        if refresh_after is not None and (
            isinstance(refresh_after, bool)
            or not isinstance(refresh_after, int)
            or refresh_after < 1
        ):
            raise InvalidArgumentError(
                f"refresh_after must be a positive number of items or None, got {refresh_after!r}"
            )
        if not (include_profiles or include_history):
            raise InvalidArgumentError(
                "include_profiles and include_history are both False: the middleware would "
                "add nothing; keep at least one"
            )
        super().__init__()
        self.memory = memory
        self.retriever = StepBackProfileRetriever(
            memory=memory,
            k=check_k(k),
            include_profiles=include_profiles,
            include_history=include_history,
        )
        self._profiles_only = self.retriever.model_copy(update={"include_history": False})
        self.record = record
        self.refresh_after = refresh_after
        self.last_refresh: RefreshReport | None = None
        """The report of the latest refresh after a turn (``failures`` says what failed)."""
        self.llm = llm
        self.header = header

    # ----------------------------------------------------------------- prompt
    def _retriever(self, query: str) -> StepBackProfileRetriever:
        # Without a user text there is nothing to search for: profiles only.
        return self.retriever if query else self._profiles_only

    def _request_with(self, request: ModelRequest, docs: list[Document]) -> ModelRequest:
        context = render_context(docs)
        if not context:
            return request
        message = with_context(request.system_message, f"{self.header}\n\n{context}")
        return request.override(system_message=message)

    def _request_users(self, request: ModelRequest) -> list[str]:
        return run_users(getattr(request.runtime, "context", None), _config())

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelCallResult:
        """Add the users' profiles and similar history to the system prompt, then call."""
        users = known_users(self.memory, self._request_users(request))
        if not users:
            return handler(request)
        query = latest_user_text(request.messages)
        docs = self._retriever(query).invoke(query, user_ids=users)
        return handler(self._request_with(request, docs))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelCallResult:
        """Async :meth:`wrap_model_call`."""
        users = await off_loop(known_users, self.memory, self._request_users(request))
        if not users:
            return await handler(request)
        query = latest_user_text(request.messages)
        docs = await self._retriever(query).ainvoke(query, user_ids=users)
        return await handler(self._request_with(request, docs))

    # ----------------------------------------------------------------- recording
    def before_agent(
        self, state: ProfileAgentState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Remember the user messages this run answers (recorded after the run)."""
        if not self.record:
            return None
        return {"stepback_turn": turn_texts(state["messages"])}

    def _after(
        self, state: ProfileAgentState, runtime: Runtime[Any]
    ) -> tuple[str, list[dict[str, Any]]]:
        """The user whose history a run updates, and the items to add to it."""
        user = run_users(runtime.context, _config())[0]
        texts = state.get("stepback_turn", []) if self.record else []
        return user, [{"text": text, "metadata": {"source": "agent"}} for text in texts]

    def _refresh_due(self, user_id: str) -> bool:
        return (
            self.refresh_after is not None
            and self.memory.has_user(user_id)
            and self.memory.pending_changes(user_id) >= self.refresh_after
        )

    def after_agent(self, state: ProfileAgentState, runtime: Runtime[Any]) -> None:
        """Record the turn and refresh the profile, as configured. A failed refresh is logged
        and kept in :attr:`last_refresh`, never raised into the user's turn (it has been
        answered); the stored profile stays as it was."""
        if not (self.record or self.refresh_after):
            return
        user, items = self._after(state, runtime)
        if items:
            self.memory.add(user, items)
        if self._refresh_due(user):
            self._refreshed(self.memory.refresh([user], llm=self.llm, on_error="report"))

    async def aafter_agent(self, state: ProfileAgentState, runtime: Runtime[Any]) -> None:
        """Async :meth:`after_agent`."""
        if not (self.record or self.refresh_after):
            return
        user, items = self._after(state, runtime)
        if items:
            await self.memory.aadd(user, items)
        if await off_loop(self._refresh_due, user):
            self._refreshed(await self.memory.arefresh([user], llm=self.llm, on_error="report"))

    def _refreshed(self, report: RefreshReport) -> None:
        self.last_refresh = report
        for user, why in report.failures.items():
            logger.warning("profile refresh of user %r after the turn failed: %s", user, why)
