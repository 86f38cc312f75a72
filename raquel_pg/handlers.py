"""What kind of handler a worker was given, and the refusals of the wrong kind (no I/O).

Shared by the async worker and the sync worker generated from it (the
messages name both clients, which the generator would rename if they were
written there).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


def is_async_handler(handler: Callable[..., Any]) -> bool:
    """Whether calling ``handler`` gives a coroutine.

    True for an ``async def`` function, a ``functools.partial`` of one, and an
    object whose ``__call__`` is one.
    """
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None))


def refuse_async_handler(handler: Callable[..., Any]) -> None:
    """Raises TypeError when a sync worker is given a coroutine function.

    A sync worker calling it would get a coroutine, never run it, and record
    the job as a success: refused when the worker is made.
    """
    if is_async_handler(handler):
        raise TypeError(
            f"handler {_name(handler)} is a coroutine function (async def): a sync worker cannot run "
            "it; use AsyncRaquel(...).subscribe() (raquel-pg worker picks the async worker for it), "
            "or make the handler a plain function"
        )


def refuse_async_task(name: str, function: Callable[..., Any]) -> None:
    """Raises TypeError when a sync client's worker would run task ``name`` whose function is a
    coroutine function: each of its jobs would fail at every attempt, so the worker is refused
    when made (enqueuing such a task from a sync client stays fine)."""
    if is_async_handler(function):
        raise TypeError(
            f"task {name!r} is a coroutine function (async def): a sync worker cannot run it; register it "
            "on an AsyncRaquel (raquel-pg worker --tasks then runs the async worker), or make it a plain function"
        )


def refuse_awaitable(result: Any, handler: Callable[..., Any]) -> None:
    """Raises TypeError when a sync handler returned an awaitable (the job did not run).

    The worker records the job as failed with this message; a coroutine is
    closed first, so Python does not also warn that it was never awaited.
    """
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError(
            f"handler {_name(handler)} returned an awaitable ({type(result).__name__}), which a sync "
            "worker cannot run: the job did not run; use an async worker (AsyncRaquel) for it"
        )


async def run_in_thread(handler: Callable[..., Any], job: Any) -> Any:
    """Runs a plain-function handler of an async worker in a thread (``asyncio.to_thread``); returns its value.

    The event loop goes on meanwhile; what the handler returns is awaited if
    it is awaitable (a lambda returning a coroutine).
    """
    result = await asyncio.to_thread(handler, job)
    if inspect.isawaitable(result):
        result = await result
    return result


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
