"""Who an agent run is for: the runtime context schema and how the users are read from a run.

The users always come from the run itself (``invoke(..., context=...)`` or the config),
never from a global and never from what the model writes.

Example:
    ```python
    agent = create_agent(model, middleware=[...], context_schema=UserContext)
    agent.invoke({"messages": [("user", "hi")]}, context=UserContext(["alice"]))
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.memory import ProfileMemory
from langchain_stepback_profile.retriever import normalize_user_ids

logger = logging.getLogger(__name__)

NO_USERS = (
    "this agent run names no user: pass context=UserContext(user_ids=['alice']) to "
    "invoke()/ainvoke() (and create_agent(..., context_schema=UserContext)), or a context "
    "with a user_ids or user_id field, or config={'configurable': {'user_ids': ['alice']}} "
    "(or 'user_id', or LangGraph's 'langgraph_user_id')"
)


@dataclass(frozen=True)
class UserContext:
    """The runtime context of a personalized agent: one user, or an ordered group (the first
    leads; the paper's author order).

    Use it as ``create_agent(..., context_schema=UserContext)``; any other context with a
    ``user_ids`` (or ``user_id``) field or key works too.

    Example:
        >>> UserContext(["alice", "bob"]).user_ids
        ('alice', 'bob')
        >>> UserContext("alice").user_ids
        ('alice',)
    """

    user_ids: Sequence[str] | str

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_ids", tuple(_normalize(self.user_ids)))


def _normalize(raw: Any) -> list[str]:
    if raw is None or (not isinstance(raw, str) and isinstance(raw, Sequence) and not raw):
        raise InvalidArgumentError(NO_USERS)
    return normalize_user_ids(raw)


def _field(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def run_users(context: Any, config: RunnableConfig | None) -> list[str]:
    """The ordered users of a run: from its runtime context, else from its config.

    Raises:
        InvalidArgumentError: neither names a user (the message says how to pass them).
    """
    for source in (context, (config or {}).get("configurable")):
        if source is None:
            continue
        for name in ("user_ids", "user_id", "langgraph_user_id"):  # the last: langmem's
            raw = _field(source, name)
            if raw is not None:
                return _normalize(raw)
    raise InvalidArgumentError(NO_USERS)


def known_users(memory: ProfileMemory, user_ids: Sequence[str]) -> list[str]:
    """The users the memory holds anything for, in order; a new user (nothing stored yet)
    is left out, so their first conversation runs unpersonalized instead of failing."""
    known = memory.known_users(user_ids)
    if len(known) < len(user_ids):
        logger.info("no history or profile yet for %s", [u for u in user_ids if u not in known])
    return known
