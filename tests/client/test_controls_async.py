"""Queue controls from Python (issue 21): pause/resume, limits, retention, the worker's maintenance.

Written once, for both clients: tests/client/test_controls.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncJob, AsyncRaquel, InvalidArgument
from raquel_pg._acompat import ajoin, asleep, aspawn

Conn = psycopg.Connection[Any]


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asleep(0.005)


def count(conn: Conn, queue: str, status: str) -> int:
    row = conn.execute("SELECT count(*) FROM raquel_jobs WHERE queue = %s AND status = %s", (queue, status)).fetchone()
    assert row is not None
    return int(row[0])


def waiting_workers(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM raquel_waiters").fetchone()
    assert row is not None
    return int(row[0])


async def test_pause_returns_true_then_false(arq: AsyncRaquel) -> None:
    assert await arq.pause("a") is True
    assert await arq.pause("a") is False


async def test_a_paused_queue_gives_dequeue_nothing(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("a", "x")
    await arq.pause("a")
    async with arq.dequeue("a") as job:
        assert job is None
    assert count(conn, "a", "queued") == 1


async def test_resume_returns_whether_the_queue_was_paused(arq: AsyncRaquel) -> None:
    assert await arq.resume("a") is False
    await arq.pause("a")
    assert await arq.resume("a") is True


async def test_resume_wakes_a_waiting_worker_at_once(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("a", "x")
    await arq.pause("a")
    done: list[float] = []

    @arq.subscribe("a", poll_interval=60)  # no polling: only the resume's NOTIFY can wake it in time
    async def handler(job: AsyncJob) -> None:
        done.append(time.monotonic())

    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: handler.listening and waiting_workers(conn) == 1)
    resumed = time.monotonic()
    await arq.resume("a")
    await wait_until(lambda: bool(done), timeout=5)
    handler.stop()
    await ajoin([run], 10)
    assert done[0] - resumed < 5
    assert count(conn, "a", "success") == 1


async def test_a_worker_never_runs_more_than_max_running(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.set_queue_limits("a", max_running=2)
    await arq.enqueue_many("a", ["x"] * 12)
    lock = threading.Lock()
    running = [0]
    most = [0]

    @arq.subscribe("a", concurrency=6, poll_interval=0.05)
    async def handler(job: AsyncJob) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        await asleep(0.03)
        with lock:
            running[0] -= 1

    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: count(conn, "a", "success") == 12, timeout=30)
    handler.stop()
    await ajoin([run], 10)
    assert most[0] == 2


async def test_a_worker_of_every_queue_beside_a_limited_queue_runs_every_job(arq: AsyncRaquel, conn: Conn) -> None:
    # One slot: each claim is of one job, which the limited queue's own claim may take whole
    # (0023: the claim of the other queues then spun for ever).
    await arq.set_queue_limits("a", max_running=1)
    await arq.enqueue_many("a", ["x"] * 3)
    await arq.enqueue_many("b", ["x"] * 3)

    @arq.subscribe(poll_interval=60)
    async def handler(job: AsyncJob) -> None:
        pass

    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: count(conn, "a", "success") + count(conn, "b", "success") == 6, timeout=10)
    handler.stop()
    assert await ajoin([run], 10) == 0  # stopped


async def test_a_worker_held_by_max_running_claims_once_its_batched_success_is_recorded(
    arq: AsyncRaquel, conn: Conn
) -> None:
    await arq.set_queue_limits("a", max_running=1)
    await arq.enqueue_many("a", ["x"] * 10)

    @arq.subscribe("a", poll_interval=60)  # successes batched (the default); no polling to fall back on
    async def handler(job: AsyncJob) -> None:
        pass

    run = aspawn(handler.run, name="worker")
    # Not woken when a batch records a success, it ran one job every 2 s.
    await wait_until(lambda: count(conn, "a", "success") == 10, timeout=5)
    handler.stop()
    await ajoin([run], 10)
    assert count(conn, "a", "queued") == 0


async def test_a_job_enqueued_with_a_delay_while_the_worker_sleeps_starts_when_due(
    arq: AsyncRaquel, conn: Conn
) -> None:
    started: list[float] = []

    @arq.subscribe("a", poll_interval=60)  # no polling: only the delayed job's notification can wake it
    async def handler(job: AsyncJob) -> None:
        started.append(time.monotonic())

    run = aspawn(handler.run, name="worker")
    # Asleep: registered, and it has asked raquel_next_due when to wake (nothing due: its poll_interval).
    # (It may have asked twice, on two pooled connections: once more after the wake-up its LISTEN
    # connection makes when it comes up; CI on PostgreSQL 15 saw two.)
    asked = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle'"
        " AND query LIKE '%raquel_next_due%'"
    )
    await wait_until(lambda: waiting_workers(conn) == 1 and conn.execute(asked).fetchone() != (0,))
    enqueued = time.monotonic()
    await arq.enqueue("a", "x", delay=300)
    await wait_until(lambda: bool(started), timeout=5)
    handler.stop()
    await ajoin([run], 10)
    assert started[0] - enqueued >= 0.29  # when due, not before


async def test_a_worker_held_by_per_second_sleeps_until_its_next_token(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.set_queue_limits("a", per_second=5)  # a bucket of one token, one every 200 ms
    await arq.enqueue_many("a", ["x"] * 3)

    @arq.subscribe("a", poll_interval=60)  # only the engine's next permitted time can wake it in time
    async def handler(job: AsyncJob) -> None:
        pass

    started = time.monotonic()
    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: count(conn, "a", "success") == 3, timeout=20)
    took = time.monotonic() - started
    handler.stop()
    await ajoin([run], 10)
    assert 0.35 <= took < 20


async def test_set_queue_limits_refuses_a_max_running_below_one(arq: AsyncRaquel, conn: Conn) -> None:
    with pytest.raises(InvalidArgument, match="max_running"):
        await arq.set_queue_limits("a", max_running=0)
    assert await arq.queue_controls() == []


@pytest.mark.parametrize("rate", [0, -1.5, float("inf"), float("nan"), True])
async def test_set_queue_limits_refuses_a_bad_per_second(arq: AsyncRaquel, rate: Any) -> None:
    with pytest.raises(InvalidArgument, match="per_second"):
        await arq.set_queue_limits("a", per_second=rate)
    assert await arq.queue_controls() == []


async def test_queue_controls_show_pause_limits_and_retention(arq: AsyncRaquel) -> None:
    await arq.pause("a")
    await arq.set_queue_limits("b", max_running=3, per_second=1.5)
    await arq.set_retention("b", timedelta(days=1))
    await arq.set_retention(None, timedelta(days=7))
    a, b, default = await arq.queue_controls()
    assert (a.queue, a.paused, a.max_running) == ("a", True, None)
    assert (b.queue, b.paused, b.max_running, b.per_second, b.retention) == ("b", False, 3, 1.5, timedelta(days=1))
    assert (default.queue, default.retention) == (None, timedelta(days=7))


async def test_a_queue_kept_forever_shows_timedelta_max_beside_a_default(arq: AsyncRaquel) -> None:
    await arq.set_retention(None, timedelta(days=30))
    await arq.set_retention("audit", None)
    audit, default = await arq.queue_controls()
    assert (audit.queue, audit.retention) == ("audit", timedelta.max)
    assert (default.queue, default.retention) == (None, timedelta(days=30))


async def finish(arq: AsyncRaquel, queue: str, n: int) -> None:
    await arq.enqueue_many(queue, ["x"] * n)
    for _ in range(n):
        async with arq.dequeue(queue) as job:
            assert job is not None


async def test_prune_keeps_everything_without_a_retention(arq: AsyncRaquel, conn: Conn) -> None:
    await finish(arq, "a", 2)
    assert await arq.prune() == 0
    assert count(conn, "a", "success") == 2


async def test_prune_deletes_finished_jobs_past_the_retention_in_batches(arq: AsyncRaquel, conn: Conn) -> None:
    await finish(arq, "a", 5)
    await arq.enqueue("a", "waiting")
    await arq.set_retention("a", timedelta(0))
    await wait_until(lambda: conn.execute("SELECT max(finished_at) < raquel_now_ms() FROM raquel_jobs").fetchone()[0])
    assert await arq.prune(batch_size=2) == 5
    assert (count(conn, "a", "success"), count(conn, "a", "queued")) == (0, 1)
    [controls] = await arq.queue_controls()
    assert controls.pruned == 5


async def test_set_retention_refuses_a_negative_keep(arq: AsyncRaquel) -> None:
    with pytest.raises(InvalidArgument, match="keep"):
        await arq.set_retention("a", timedelta(seconds=-1))
    assert await arq.queue_controls() == []


async def test_the_workers_maintenance_prunes_past_the_retention(arq: AsyncRaquel, conn: Conn) -> None:
    await finish(arq, "old", 3)
    await arq.set_retention(None, timedelta(0))

    @arq.subscribe("a", poll_interval=0.5)
    async def handler(job: AsyncJob) -> None:
        pass

    handler.maintenance_interval = 0.05
    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: count(conn, "old", "success") == 0, timeout=20)
    handler.stop()
    await ajoin([run], 10)
