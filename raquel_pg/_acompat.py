"""The few primitives whose sync and async forms differ (after psycopg_pool's ``_acompat``).

The async modules (``*_async.py``) use the ``A``/``a``-prefixed names; the
sync modules generated from them by ``tools/async_to_sync.py`` use the plain
names. Everything else is shared code.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

# --- async ---------------------------------------------------------------


class AEvent(asyncio.Event):
    """``asyncio.Event`` with a timed wait."""

    async def wait_timeout(self, timeout: float | None) -> bool:
        """Waits until set or ``timeout`` seconds pass; returns whether it is set.

        ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11,
        wait_for loses a cancellation of the waiting task that arrives as the
        event is set (the worker's ``run()`` then went on after being cancelled).
        """
        try:
            async with asyncio.timeout(timeout):
                await self.wait()
        except TimeoutError:
            pass
        return self.is_set()


def aspawn(function: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str) -> asyncio.Task[Any]:
    """Runs ``function(*args)`` as a task of the running loop."""
    return asyncio.create_task(function(*args), name=name)


async def ajoin(tasks: Iterable[asyncio.Task[Any]], timeout: float | None) -> int:
    """Waits up to ``timeout`` seconds for ``tasks`` to end; returns how many still run."""
    pending = [t for t in tasks if not t.done()]
    if not pending:
        return 0
    _, still = await asyncio.wait(pending, timeout=timeout)
    return len(still)


def acancel(tasks: Iterable[asyncio.Task[Any]]) -> bool:
    """Cancels ``tasks``; returns True (tasks can be cancelled, unlike threads)."""
    for task in tasks:
        task.cancel()
    return True


def acurrent() -> asyncio.Task[Any] | None:
    """The running task."""
    return asyncio.current_task()


def araise_if_cancelled() -> None:
    """Raises ``CancelledError`` when the running task was asked to stop and the request got lost.

    On Python 3.11 ``asyncio.wait_for``, which psycopg_pool uses to wait for a
    free connection, can swallow a cancellation that arrives as the wait ends:
    the task goes on with its cancel request counted (``cancelling()``) and
    nothing raised. The worker's loops that run until cancelled (producer,
    success batcher, lease keeper, maintenance) call this before they wait
    again, so such a task still ends.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


asleep = asyncio.sleep


def acall_later(seconds: float, callback: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
    """Calls ``callback(*args)`` on the running loop after ``seconds``; ``.cancel()`` the result to undo."""
    return asyncio.get_running_loop().call_later(seconds, callback, *args)


def aon_signals(signals: Iterable[signal.Signals], callback: Callable[[], None]) -> Callable[[], None]:
    """Calls ``callback()`` in the running loop on each of ``signals``; returns the undo."""
    loop = asyncio.get_running_loop()
    signals = list(signals)
    for signum in signals:
        loop.add_signal_handler(signum, callback)

    def restore() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return restore


# --- sync ----------------------------------------------------------------


class Event(threading.Event):
    """``threading.Event`` with the same timed wait as :class:`AEvent`."""

    def wait_timeout(self, timeout: float | None) -> bool:
        return self.wait(timeout)


def spawn(function: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Runs ``function(*args)`` in a daemon thread."""
    thread = threading.Thread(target=function, args=args, name=name, daemon=True)
    thread.start()
    return thread


def join(threads: Iterable[threading.Thread], timeout: float | None) -> int:
    """Waits up to ``timeout`` seconds for ``threads`` to end; returns how many still run."""
    deadline = None if timeout is None else time.monotonic() + timeout
    alive = 0
    for thread in list(threads):
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive += thread.is_alive()
    return alive


def cancel(threads: Iterable[threading.Thread]) -> bool:
    """Threads cannot be cancelled: returns False and leaves them running."""
    return False


def current() -> threading.Thread:
    """The running thread."""
    return threading.current_thread()


def raise_if_cancelled() -> None:
    """Threads are never cancelled: does nothing."""


sleep = time.sleep


def call_later(seconds: float, callback: Callable[..., None], *args: Any) -> threading.Timer:
    """Calls ``callback(*args)`` in a daemon thread after ``seconds``; ``.cancel()`` the result to undo.

    ``seconds`` beyond ``threading.TIMEOUT_MAX`` (~292 years) waits that long instead: a longer wait
    raised OverflowError in the timer's thread (a job's ``timeout`` may be up to 2^62 ms).
    """
    timer = threading.Timer(min(seconds, threading.TIMEOUT_MAX), callback, args)
    timer.daemon = True
    timer.start()
    return timer


def on_signals(signals: Iterable[signal.Signals], callback: Callable[[], None]) -> Callable[[], None]:
    """Calls ``callback()`` on each of ``signals``; returns the undo (main thread only).

    Raises ValueError when called outside the main thread (Python handles
    signals only there).
    """
    previous = {signum: signal.signal(signum, lambda _signum, _frame: callback()) for signum in signals}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
