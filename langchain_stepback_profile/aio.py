"""Async twins without duplicated bodies: a synchronous operation runs in a worker thread,
and a store with an async API is driven on the caller's event loop meanwhile.

Every ``a...`` method of the package awaits :func:`off_loop` on its synchronous twin. The
worker thread knows the loop that awaits it (:func:`caller_loop`), so a store such as
:class:`~langchain_stepback_profile.langgraph_store.LangGraphProfileStore` sends its
operations through the wrapped store's ``abatch`` on that loop (an async-only store, an async
connection pool) instead of its blocking ``batch``.

Example:
    >>> import asyncio
    >>> asyncio.run(off_loop(lambda: caller_loop() is not None))
    True
    >>> caller_loop() is None  # not inside an async twin
    True
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_CALLER: ContextVar[tuple[asyncio.AbstractEventLoop, int] | None] = ContextVar(
    "stepback_profile_caller_loop", default=None
)


async def off_loop(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a worker thread that knows the awaiting loop."""
    token = _CALLER.set((asyncio.get_running_loop(), threading.get_ident()))
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    finally:
        _CALLER.reset(token)


def caller_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop awaiting this worker thread, when called inside :func:`off_loop`'s
    worker (never on the loop's own thread, where waiting on it would deadlock)."""
    caller = _CALLER.get()
    if caller is None:
        return None
    loop, loop_thread = caller
    if loop_thread == threading.get_ident() or not loop.is_running():
        return None
    return loop
