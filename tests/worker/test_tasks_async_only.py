"""Async handlers stopped mid-await: cancel requests and timeouts (issue 25).

Async only: a sync worker's thread cannot be interrupted (it sees
``job.cancel_requested`` instead; tests/worker/test_tasks_worker_async.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from raquel_pg import AsyncJob, AsyncRaquel
from raquel_pg._acompat import ajoin, aspawn

Conn = psycopg.Connection[Any]


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def status(conn: Conn, job_id: Any) -> tuple[Any, ...]:
    row = conn.execute("SELECT status, error, attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


async def test_cancel_running_cancels_an_async_handler_where_it_awaits(arq: AsyncRaquel, conn: Conn) -> None:
    seen: list[str] = []

    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        seen.append("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    job = await arq.enqueue("q", 1)
    run = aspawn(handler.run, name="worker")
    await until(lambda: seen == ["started"])
    asked = time.monotonic()
    assert await arq.cancel(job.id, running=True) is True
    await until(lambda: status(conn, job.id)[0] == "cancelled")
    elapsed_ms = (time.monotonic() - asked) * 1000
    handler.stop()
    await ajoin([run], 10)
    print(f"\ncancel(running=True) -> cancelled: {elapsed_ms:.1f} ms")
    assert seen == ["started", "cancelled"]
    assert status(conn, job.id) == ("cancelled", "cancelled by request", 1)


async def test_an_async_handler_past_its_timeout_is_cancelled_and_fails(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        await asyncio.sleep(30)

    job = await arq.enqueue("q", 1, timeout=150, max_retry_count=0)
    run = aspawn(handler.run, name="worker")
    await until(lambda: status(conn, job.id)[0] == "exhausted")
    handler.stop()
    await ajoin([run], 10)
    assert status(conn, job.id)[1:] == ("timed out after 150 ms", 1)


async def test_an_async_handler_that_swallows_its_cancellation_still_times_out(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # ignores the cancellation and returns as if done
        return "done anyway"

    job = await arq.enqueue("q", 1, timeout=150, max_retry_count=0)
    run = aspawn(handler.run, name="worker")
    await until(lambda: status(conn, job.id)[0] == "exhausted")
    handler.stop()
    await ajoin([run], 10)
    assert status(conn, job.id)[1] == "timed out after 150 ms"


async def test_a_task_of_an_async_client_is_awaited_and_its_result_stored(arq: AsyncRaquel) -> None:
    @arq.task(queue="math", name="slow_add")
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    assert await slow_add(1, 2) == 3  # a direct call runs it here
    job = await slow_add.enqueue(2, 3)
    worker = arq.worker()
    run = aspawn(worker.run, name="worker")
    assert await job.wait(timeout=15) == 5
    worker.stop()
    await ajoin([run], 10)


async def test_an_async_handler_without_a_time_limit_that_swallows_its_cancel_request_ends_cancelled(
    arq: AsyncRaquel, conn: Conn
) -> None:
    seen: list[str] = []

    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")  # ignores the cancellation and returns as if done
        return "done anyway"

    job = await arq.enqueue("q", 1)
    run = aspawn(handler.run, name="worker")
    await until(lambda: status(conn, job.id)[0] == "claimed")
    assert await arq.cancel(job.id, running=True) is True
    await until(lambda: status(conn, job.id)[0] == "cancelled")
    handler.stop()
    await ajoin([run], 10)
    assert seen == ["cancelled"]
    assert status(conn, job.id) == ("cancelled", "cancelled by request", 1)
    assert conn.execute("SELECT result FROM raquel_jobs WHERE id = %s", (job.id,)).fetchone() == (None,)


async def test_a_cancel_request_leaves_the_runner_free_for_the_next_job(arq: AsyncRaquel, conn: Conn) -> None:
    started: list[int] = []

    @arq.subscribe("q")  # one runner: the next job runs on the task whose handler was cancelled
    async def handler(job: AsyncJob) -> None:
        started.append(job.payload)
        if job.payload == 1:
            await asyncio.sleep(30)
        await asyncio.sleep(0.01)  # an await the leftover cancellation would break

    first = await arq.enqueue("q", 1)
    run = aspawn(handler.run, name="worker")
    await until(lambda: started == [1])
    assert await arq.cancel(first.id, running=True) is True
    await until(lambda: status(conn, first.id)[0] == "cancelled")
    second = await arq.enqueue("q", 2)
    await until(lambda: status(conn, second.id)[0] == "success")
    handler.stop()
    await ajoin([run], 10)
    assert status(conn, second.id) == ("success", None, 1)
