"""Workers with results, tasks, cancel requests and timeouts (issue 25).

Written once, for both clients: tests/worker/test_tasks_worker.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client. The handlers here
are plain functions (a thread in both workers), so that both run them alike;
async handlers cancelled while they wait are in tests/worker/test_tasks_async_only.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncJob, AsyncRaquel, AsyncWorker
from raquel_pg._acompat import ajoin, asleep, aspawn

Conn = psycopg.Connection[Any]


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asleep(0.01)


def status(conn: Conn, job_id: Any) -> tuple[Any, ...]:
    row = conn.execute("SELECT status, result, error, attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


@asynccontextmanager
async def running(worker: AsyncWorker) -> AsyncIterator[AsyncWorker]:
    """Runs ``worker`` in the background while the block lasts; stops it and waits after."""
    run = aspawn(worker.run, name="worker")
    await until(lambda: worker.listening)
    try:
        yield worker
    finally:
        worker.stop()
        await ajoin([run], 30)


@pytest.mark.parametrize("batch_outcomes", [False, True])
async def test_a_handlers_return_value_is_stored_with_its_success(
    arq: AsyncRaquel, conn: Conn, batch_outcomes: bool
) -> None:
    def handler(job: AsyncJob) -> Any:
        return {"doubled": job.payload * 2}

    worker = arq.subscribe("q", batch_outcomes=batch_outcomes, concurrency=2)(handler)
    jobs = [await arq.enqueue("q", n) for n in range(4)]
    async with running(worker):
        for job in jobs:
            assert await job.wait(timeout=15) == {"doubled": job.payload * 2}
    assert [status(conn, job.id)[:2] for job in jobs] == [("success", {"doubled": 2 * n}) for n in range(4)]


async def test_a_return_value_that_is_not_json_is_not_stored_and_the_success_stands(
    arq: AsyncRaquel, conn: Conn
) -> None:
    worker = arq.subscribe("q")(lambda job: object())
    job = await arq.enqueue("q", 1)
    async with running(worker):
        assert await job.wait(timeout=15) is None
    assert status(conn, job.id)[:2] == ("success", None)


@pytest.mark.parametrize("batch_outcomes", [False, True])
async def test_a_return_value_holding_a_lone_surrogate_is_not_stored_and_the_success_stands(
    arq: AsyncRaquel, conn: Conn, batch_outcomes: bool
) -> None:
    # As os.fsdecode gives for a file name that is not UTF-8: json.dumps escapes it, jsonb refuses
    # it, and the success was refused with it (the job ran again at each lease's end).
    worker = arq.subscribe("q", batch_outcomes=batch_outcomes)(lambda job: "report-\udcff.pdf")
    job = await arq.enqueue("q", 1)
    async with running(worker):
        assert await job.wait(timeout=15) is None
    assert status(conn, job.id)[:2] == ("success", None)


async def test_a_worker_runs_registered_tasks(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.task(queue="math", name="add")
    def add(a: int, b: int = 0) -> int:
        return a + b

    @arq.task(queue="text", name="shout")
    def shout(word: str) -> str:
        return word.upper()

    worker = arq.worker(concurrency=2)
    assert sorted(worker.queues or []) == ["math", "text"]
    summed, shouted = await add.enqueue(2, b=3), await shout.options(priority=5).enqueue("hi")
    async with running(worker):
        assert await summed.wait(timeout=15) == 5
        assert await arq.result(shouted.id, timeout=15) == "HI"


async def test_a_task_enqueued_from_sql_runs_the_same_way(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.task(queue="math", name="add")
    def add(a: int, b: int) -> int:
        return a + b

    job_id = conn.execute("""SELECT raquel_enqueue('math', '{"task": "add", "args": [2, 3]}')""").fetchone()[0]  # type: ignore[index]
    async with running(arq.worker()):
        assert await arq.result(job_id, timeout=15) == 5


async def test_a_job_naming_an_unknown_task_fails_saying_so(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.task(queue="math", name="add")
    def add(a: int, b: int) -> int:
        return a + b

    unknown = await arq.enqueue("math", {"task": "subtract", "args": [3, 2]}, max_retry_count=0)
    not_a_task = await arq.enqueue("math", "plain text", max_retry_count=0)
    async with running(arq.worker()):
        await until(lambda: status(conn, unknown.id)[0] == "exhausted" == status(conn, not_a_task.id)[0])
    assert "unknown task 'subtract': this worker runs 'add'" in status(conn, unknown.id)[2]
    assert "not a task job" in status(conn, not_a_task.id)[2]


async def test_a_running_job_cancelled_from_psql_ends_cancelled(
    arq: AsyncRaquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="raquel_pg")
    started = threading.Event()

    def handler(job: AsyncJob) -> None:
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job.raise_if_cancel_requested()  # a sync handler checks between steps
            time.sleep(0.01)

    job = await arq.enqueue("q", 1)
    async with running(arq.subscribe("q")(handler)):
        await until(started.is_set)
        asked = time.monotonic()
        assert conn.execute("SELECT raquel_cancel(%s, running => true)", (job.id,)).fetchone() == ("cancel_requested",)
        await until(lambda: status(conn, job.id)[0] == "cancelled")
        print(f"\ncancel request -> cancelled: {(time.monotonic() - asked) * 1000:.1f} ms")
    assert status(conn, job.id)[2:] == ("cancelled by request", 1)
    # Logged as cancelled, not as a handler's failure.
    said = [(r.levelname, r.getMessage()) for r in caplog.records if str(job.id) in r.getMessage()]
    assert [m for level, m in said if level == "INFO" and m.startswith(f"job {job.id} (queue q) cancelled: ")]
    assert not [message for level, message in said if level == "WARNING"]


async def test_a_cancel_notification_sent_by_hand_does_not_stop_a_job(arq: AsyncRaquel, conn: Conn) -> None:
    # Any role that may connect can NOTIFY raquel_cancel: the worker stops a job only when the
    # database says its claim was asked to stop.
    started = {"forged": threading.Event(), "asked": threading.Event()}
    release = threading.Event()

    def handler(job: AsyncJob) -> None:
        started[job.payload].set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (job.payload == "forged" and release.is_set()):
            job.raise_if_cancel_requested()
            time.sleep(0.01)

    forged = await arq.enqueue("q", "forged")
    asked = await arq.enqueue("q", "asked")
    async with running(arq.subscribe("q", concurrency=2)(handler)):
        await until(lambda: all(event.is_set() for event in started.values()))
        conn.execute("SELECT pg_notify('raquel_cancel', %s)", (str(forged.id),))
        # A real request after it: once it has stopped its job, the forged one was heard too.
        conn.execute("SELECT raquel_cancel(%s, running => true)", (asked.id,))
        await until(lambda: status(conn, asked.id)[0] == "cancelled")
        release.set()
        await until(lambda: status(conn, forged.id)[0] == "success")
    assert status(conn, forged.id)[2:] == (None, 1)


async def test_a_job_past_its_timeout_fails_timed_out_and_is_retried(arq: AsyncRaquel, conn: Conn) -> None:
    def handler(job: AsyncJob) -> None:
        while not job.cancel_requested:
            time.sleep(0.01)

    job = await arq.enqueue("q", 1, timeout=200)
    async with running(arq.subscribe("q")(handler)):
        await until(lambda: status(conn, job.id)[3] == 1)
    assert status(conn, job.id)[0] in ("failed", "claimed")  # retried later (the backoff)
    assert status(conn, job.id)[2] == "timed out after 200 ms"


async def test_the_workers_timeout_applies_to_jobs_that_set_none(arq: AsyncRaquel, conn: Conn) -> None:
    def handler(job: AsyncJob) -> None:
        while not job.cancel_requested:
            time.sleep(0.01)

    job = await arq.enqueue("q", 1, max_retry_count=0)
    async with running(arq.subscribe("q", timeout=150)(handler)):
        await until(lambda: status(conn, job.id)[0] == "exhausted")
    assert status(conn, job.id)[2] == "timed out after 150 ms"


async def test_a_timeout_on_a_handler_that_ignores_it_stops_renewing_the_lease(arq: AsyncRaquel, conn: Conn) -> None:
    release = threading.Event()

    def handler(job: AsyncJob) -> None:
        release.wait(60)  # never looks at cancel_requested

    job = await arq.enqueue("q", 1, timeout=100, max_retry_count=0)
    async with running(arq.subscribe("q")(handler)):
        # The client's lease is 2 s: renewed every ~0.7 s while it runs, not after its timeout.
        await until(lambda: conn.execute("SELECT raquel_rescue()").fetchone() == (1,), timeout=20)
        release.set()
    assert status(conn, job.id)[0] == "exhausted"
    assert "lease expired" in status(conn, job.id)[2]  # the rescue's, not overwritten by the worker


async def test_a_cancel_request_missed_while_not_listening_is_read_on_reconnect(arq: AsyncRaquel, conn: Conn) -> None:
    started = threading.Event()

    def handler(job: AsyncJob) -> None:
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job.raise_if_cancel_requested()
            time.sleep(0.01)

    job = await arq.enqueue("q", 1)
    async with running(arq.subscribe("q")(handler)):
        await until(started.is_set)
        # A request whose NOTIFY never reached the worker (written by hand), then its LISTEN
        # connection drops and comes back.
        conn.execute("UPDATE raquel_jobs SET cancel_claim_id = claim_id WHERE id = %s", (job.id,))
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = 'LISTEN raquel_jobs'"
        )
        await until(lambda: status(conn, job.id)[0] == "cancelled")
