"""Waiting in tests: poll a condition until it holds, with a deadline, never a bare sleep.

A plain module (not a conftest), so that every test folder can import it: the integration
tests as ``polling``, the end-to-end tests as ``tests.integration.polling``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
POLL_INTERVAL = 0.05


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "condition",
    interval: float = POLL_INTERVAL,
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "condition",
    interval: float = POLL_INTERVAL,
) -> T:
    """:func:`wait_for` inside a coroutine: the event loop (and the asyncssh clients on it)
    keeps running between polls. ``predicate`` may be a plain function or a coroutine
    function (a login attempt, say)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(interval)
