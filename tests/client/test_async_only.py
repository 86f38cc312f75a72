"""What only the asyncio variant has: task cancellation and many jobs on one event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncJob, AsyncRaquel
from raquel_pg._acompat import AEvent

Conn = psycopg.Connection[Any]


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def statuses(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT status, attempts, error FROM raquel_jobs").fetchall()


async def test_cancelling_run_hands_running_jobs_back_untouched(arq: AsyncRaquel, conn: Conn) -> None:
    started = asyncio.Event()

    @arq.subscribe("q", grace_period=60)
    async def handler(job: AsyncJob) -> None:
        started.set()
        await asyncio.sleep(60)

    await arq.enqueue("q")
    run = asyncio.create_task(handler.run())
    await asyncio.wait_for(started.wait(), 10)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert run.cancelled()
    assert statuses(conn) == [("queued", 0, None)]  # not failed, no attempt counted


async def test_cancelling_run_leaves_no_transaction_open(arq: AsyncRaquel, conn: Conn, dsn: str) -> None:
    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        await asyncio.sleep(60)

    await arq.enqueue("q")
    run = asyncio.create_task(handler.run())
    await wait_until(lambda: handler.running == 1)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    open_transactions = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%%'"
    ).fetchone()
    assert open_transactions == (0,)
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'claimed'").fetchone() == (0,)


async def test_a_cancelled_error_in_a_handler_is_not_a_job_failure(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("q")
    try:
        async with arq.dequeue("q") as job:
            assert job is not None
            raise asyncio.CancelledError()
    except asyncio.CancelledError:
        pass
    assert statuses(conn) == [("queued", 0, None)]


async def test_concurrency_beyond_the_pool_size_never_exceeds_the_pool(dsn: str, conn: Conn) -> None:
    running, peak = [0], [0]
    async with AsyncRaquel(dsn, pool_size=2) as client:

        @client.subscribe("q", concurrency=8)
        async def handler(job: AsyncJob) -> None:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            await asyncio.sleep(0.2)
            running[0] -= 1

        for i in range(16):
            await client.enqueue("q", i)
        run = asyncio.create_task(handler.run())
        await wait_until(
            lambda: conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone() == (16,),
            timeout=20,
        )
        handler.stop()
        await run
    assert peak[0] == 8


async def test_a_cancellation_arriving_as_the_wake_event_is_set_is_not_lost() -> None:
    # The worker waits on AEvent.wait_timeout; with asyncio.wait_for (Python
    # 3.11) a cancel that came after the event's inner waiter had finished but
    # before the waiting task resumed was swallowed, and a cancelled run()
    # went on claiming (seen once in CI). Whatever the moment, a task still
    # running when cancelled must end cancelled.
    for loop_turns in range(4):
        event = AEvent()
        waiting = asyncio.create_task(event.wait_timeout(10))
        await asyncio.sleep(0)  # the task is waiting
        event.set()
        for _ in range(loop_turns):
            await asyncio.sleep(0)
        still_running = not waiting.done()
        waiting.cancel()
        if still_running:
            with pytest.raises(asyncio.CancelledError):
                await waiting
        else:
            assert waiting.result() is True
