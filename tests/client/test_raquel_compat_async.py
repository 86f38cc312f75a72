"""raquel 0.3.2's own test cases, rewritten for raquel_pg: code written for raquel runs unchanged.

Each test restates one case of raquel's suite (tests/test_basics, conflict,
dequeue, enqueue, postgres, reclaim, retry and subscribe of
github.com/vduseev/raquel), named after it, against a client built as raquel
users build theirs: from a SQLAlchemy URL. Where raquel_pg deliberately
differs, the test says so ("raquel_pg:") and asserts the documented
behaviour (docs/coming-from-raquel.md):

- the outcome methods of a job (``job.reject()``, ``job.fail()``,
  ``job.reschedule()``) record the outcome at once, fenced by the claim; on
  the async client they are coroutines (``await job.reject()``);
- a claim is held by a lease its holder renews while it lives, instead of
  raquel's fixed ``reclaim_after`` window counted by the claimer: a dead
  holder's job is taken over once its lease (its own ``reclaim_after``)
  runs out;
- waits are for a condition with a deadline, not fixed sleeps, where raquel
  slept "long enough"; delays are 500 ms instead of raquel's 100 ms, so
  that "not claimable yet" holds on a loaded machine.

Then raquel_pg's own tests of the same API: claim() and settling by id and
attempt number, unclaim, expire, cancel, the constructor's forms.

Written once, for both clients: tests/client/test_raquel_compat.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from raquel_pg import AsyncJob, AsyncRaquel, InvalidArgument, StopSubscription
from raquel_pg._acompat import ajoin, asleep, aspawn
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[Any]

#: How long a test waits for a condition before failing.
DEADLINE = 10.0
#: The delays of the scheduling and retry tests (raquel's: 100 ms).
DELAY_MS = 500


def sqlalchemy_url(dsn: str, driver: str) -> str:
    """The SQLAlchemy URL a raquel user would write for the test database."""
    info = conninfo_to_dict(dsn)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    if host.startswith("/"):  # a socket directory (the embedded server): in the query, as libpq reads it
        return f"postgresql+{driver}://{user}{password}@/{info['dbname']}?host={host}&port={port}"
    return f"postgresql+{driver}://{user}{password}@{host}:{port}/{info['dbname']}"


@pytest.fixture
async def arq(dsn: str) -> AsyncIterator[AsyncRaquel]:
    """The client as raquel's fixtures make it: from a SQLAlchemy URL, nothing else."""
    async with AsyncRaquel(sqlalchemy_url(dsn, "asyncpg")) as client:
        yield client


def row(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    values = cur.fetchone()
    assert values is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], values))


async def claim_when_due(arq: AsyncRaquel, *queues: str, **kwargs: Any) -> AsyncJob:
    """Claims from ``queues`` as soon as a job is due (raquel's tests slept "long enough")."""
    deadline = time.monotonic() + DEADLINE
    while True:
        job = await arq.claim(*queues, **kwargs)
        if job is not None:
            return job
        assert time.monotonic() < deadline, "no job became claimable in time"
        await asleep(0.01)


# --- test_basics ----------------------------------------------------------------


async def test_job_enqueued(arq: AsyncRaquel) -> None:
    await arq.enqueue(payload={"foo": "bar"})
    job = (await arq.jobs())[0]
    assert job.queue == "default" == arq.DEFAULT
    assert job.payload == {"foo": "bar"}
    assert job.status == arq.QUEUED
    assert job.max_age is None and job.max_retry_count is None
    assert job.enqueued_at <= datetime.now(timezone.utc)
    assert job.enqueued_at == job.scheduled_at
    assert job.attempts == 0
    assert job.claimed_at is None and job.finished_at is None


async def test_get_nonexistent_job(arq: AsyncRaquel) -> None:
    assert await arq.get(uuid4()) is None


async def test_claim_in_order(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", {"foo": 1})
    await arq.enqueue("default", {"foo": 2})
    assert await arq.count("default") == 2
    assert await arq.count("default", arq.QUEUED) == 2

    job1 = await arq.claim("default")
    assert job1 is not None and job1.status == arq.CLAIMED and job1.payload == {"foo": 1}
    assert await arq.count("default") == 2
    assert await arq.count("default", arq.QUEUED) == 1
    assert await arq.count("default", arq.CLAIMED) == 1

    job2 = await arq.claim()
    assert job2 is not None and job2.status == arq.CLAIMED and job2.payload == {"foo": 2}
    assert await arq.count("default", arq.QUEUED) == 0
    assert await arq.count("default", arq.CLAIMED) == 2


async def test_cancel_job(arq: AsyncRaquel) -> None:
    job = await arq.enqueue("default", {"foo": 1})
    assert await arq.count("default", arq.QUEUED) == 1
    assert await arq.cancel(job.id) is True
    assert await arq.count("default", arq.QUEUED) == 0
    assert await arq.count("default", arq.CLAIMED) == 0
    assert await arq.count("default", arq.CANCELLED) == 1


async def test_stats(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", {"foo": 1})
    await arq.enqueue("default", {"foo": 2})
    await arq.enqueue("other", {"foo": 3})
    assert await arq.count("default") == 2
    assert await arq.count("other") == 1
    stats = await arq.stats()
    default = stats["default"]
    assert (default.total, default.queued) == (2, 2)
    assert (default.claimed, default.success, default.failed) == (0, 0, 0)
    assert (default.cancelled, default.expired, default.exhausted) == (0, 0, 0)
    assert stats["other"].total == 1


# --- test_conflict --------------------------------------------------------------


async def test_conflict_cancel(arq: AsyncRaquel, conn: Conn) -> None:
    """A cancel that comes after a worker claimed the job loses: the worker's success stands."""
    job = await arq.enqueue("conflict_cancel", 1)

    async def dequeue_job() -> None:
        async with arq.dequeue("conflict_cancel") as claimed:
            assert claimed is not None
            assert claimed.status == arq.CLAIMED and claimed.payload == 1
            deadline = time.monotonic() + DEADLINE
            while not cancelled:  # hold the job until the cancel has been refused
                assert time.monotonic() < deadline
                await asleep(0.01)

    cancelled: list[bool] = []
    worker = aspawn(dequeue_job, name="dequeue")
    deadline = time.monotonic() + DEADLINE
    while row(conn, job.id)["status"] != "claimed":
        assert time.monotonic() < deadline
        await asleep(0.01)
    cancelled.append(await arq.cancel(job.id))
    await ajoin([worker], DEADLINE)
    assert cancelled == [False]
    updated = await arq.get(job.id)
    assert updated is not None and updated.status == arq.SUCCESS


async def test_nested_cancel(arq: AsyncRaquel) -> None:
    """cancel(job_id) from inside the job's own dequeue() does nothing."""
    job = await arq.enqueue("nested_cancel", 1)
    async with arq.dequeue("nested_cancel") as claimed:
        assert claimed is not None and claimed.status == arq.CLAIMED and claimed.payload == 1
        assert await arq.cancel(claimed.id) is False
    updated = await arq.get(job.id)
    assert updated is not None and updated.status == arq.SUCCESS


# --- test_dequeue ---------------------------------------------------------------


async def test_basic_dequeue(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue() as job:
        assert job is not None
        assert job.queue == "default" and job.payload == {"foo": "bar"}
        assert job.status == arq.CLAIMED
        assert job.max_age is None and job.max_retry_count is None
        assert job.enqueued_at <= datetime.now(timezone.utc)
        assert job.enqueued_at == job.scheduled_at
        assert job.attempts == 0
        assert job.claimed_at is not None and job.claimed_at <= datetime.now(timezone.utc)
        assert job.finished_at is None
    assert not await arq.claim("default")


async def test_no_job_dequeue(arq: AsyncRaquel) -> None:
    async with arq.dequeue("default") as job:
        assert job is None


async def test_max_age_in_time_dequeue(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", {"foo": "bar"}, max_age=1000)
    async with arq.dequeue("default") as job:
        assert job is not None and job.payload == {"foo": "bar"} and job.status == arq.CLAIMED


async def test_dequeue_in_order(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", {"foo": 1})
    await arq.enqueue("default", {"foo": 2})
    assert await arq.count("default", arq.QUEUED) == 2
    async with arq.dequeue("default") as job1:
        assert job1 is not None and job1.payload == {"foo": 1}
        assert await arq.count("default", arq.QUEUED) == 1
        assert await arq.count("default", arq.CLAIMED) == 1
    async with arq.dequeue("default") as job2:
        assert job2 is not None and job2.payload == {"foo": 2}
        assert await arq.count("default", arq.QUEUED) == 0
        assert await arq.count("default", arq.CLAIMED) == 1
        assert await arq.count("default", arq.SUCCESS) == 1
    assert await arq.count("default") == 2
    assert await arq.count("default", arq.SUCCESS) == 2


async def test_reject(arq: AsyncRaquel) -> None:
    """raquel_pg: job.reject() records at once (fenced); on the async client it is awaited."""
    enqueued = await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue("default") as job:
        assert job is not None and job.attempts == 0 and job.status == arq.CLAIMED
        await job.reject()
    assert await arq.count("default", arq.QUEUED) == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.claimed_at) == (1, arq.QUEUED, None)


async def test_exception(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue("default") as job:
        assert job is not None and job.attempts == 0
        raise ValueError("Won't do")
    assert await arq.count("default", status="failed") == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.FAILED, "Won't do")
    assert updated.error_trace is not None and "ValueError" in updated.error_trace


async def test_manual_fail(arq: AsyncRaquel) -> None:
    """raquel_pg: job.fail() records at once (fenced); on the async client it is awaited."""
    enqueued = await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue("default") as job:
        assert job is not None and job.attempts == 0
        await job.fail("Won't do")
    assert await arq.count("default", arq.FAILED) == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.FAILED, "Won't do")


async def test_manual_catch_exception_and_fail(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue("default") as job:
        assert job is not None
        try:
            raise ValueError("Won't do")
        except ValueError as error:
            await job.fail(error)
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.FAILED, "Won't do")
    assert updated.error_trace is not None


async def test_manual_catch_exception_no_fail(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})
    async with arq.dequeue("default") as job:
        assert job is not None
        try:
            raise ValueError("Won't do")
        except ValueError:
            pass
    assert await arq.count("default", arq.SUCCESS) == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error, updated.error_trace) == (1, arq.SUCCESS, None, None)


# --- test_enqueue ---------------------------------------------------------------


async def test_basic_enqueue(arq: AsyncRaquel) -> None:
    assert not await arq.queues()
    await arq.enqueue("foo", {"foo": "bar"})
    assert "foo" in await arq.queues()
    assert "default" not in await arq.queues()
    jobs = await arq.jobs("foo")
    assert len(jobs) == 1
    job = jobs[0]
    assert (job.queue, job.payload, job.status) == ("foo", {"foo": "bar"}, "queued")
    assert job.max_age is None and job.max_retry_count is None
    assert job.enqueued_at <= datetime.now(timezone.utc) and job.enqueued_at == job.scheduled_at
    assert job.attempts == 0 and job.claimed_at is None and job.finished_at is None


async def test_at_datetime_enqueue(arq: AsyncRaquel) -> None:
    at = datetime.now(timezone.utc) + timedelta(milliseconds=DELAY_MS)
    await arq.enqueue(payload={"foo": "bar"}, at=at)
    assert not await arq.claim()
    job = await claim_when_due(arq)
    assert datetime.now(timezone.utc) >= at
    assert (job.queue, job.status) == ("default", arq.CLAIMED)


async def test_at_int_enqueue(arq: AsyncRaquel) -> None:
    at = int(datetime.now(timezone.utc).timestamp() * 1000) + DELAY_MS
    await arq.enqueue("default", {"foo": "bar"}, at=at)
    assert not await arq.claim()
    job = await claim_when_due(arq, "default")
    assert datetime.now(timezone.utc).timestamp() * 1000 >= at
    assert (job.queue, job.status) == ("default", arq.CLAIMED)


async def test_delayed_int_enqueue(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"}, delay=DELAY_MS)
    assert not await arq.claim("default")
    job = await claim_when_due(arq, "default")
    assert job.scheduled_at == enqueued.enqueued_at + timedelta(milliseconds=DELAY_MS)
    assert (job.queue, job.status) == ("default", arq.CLAIMED)


async def test_delayed_timedelta_enqueue(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"}, delay=timedelta(milliseconds=DELAY_MS))
    assert not await arq.claim("default")
    job = await claim_when_due(arq, "default")
    assert job.scheduled_at == enqueued.enqueued_at + timedelta(milliseconds=DELAY_MS)
    assert (job.queue, job.status) == ("default", arq.CLAIMED)


async def test_enqueue_in_the_past(arq: AsyncRaquel) -> None:
    """Jobs are claimed by scheduled time, not by enqueue order."""
    now = datetime.now(timezone.utc)
    await arq.enqueue(payload=1)
    await arq.enqueue(payload=2, at=now - timedelta(hours=3))
    await arq.enqueue(payload=3, at=now - timedelta(hours=2))
    claimed = [await arq.claim("default") for _ in range(3)]
    assert [(j.payload, j.status) for j in claimed if j] == [(2, "claimed"), (3, "claimed"), (1, "claimed")]


async def test_enqueue_before(arq: AsyncRaquel) -> None:
    await arq.enqueue(payload=1)
    await arq.enqueue(payload=2, at=datetime.now(timezone.utc) - timedelta(hours=2))
    job_2 = await arq.claim("default", before=datetime.now(timezone.utc) - timedelta(hours=1))
    assert job_2 is not None and job_2.payload == 2
    job_1 = await arq.claim("default")
    assert job_1 is not None and job_1.payload == 1


async def test_no_payload_enqueue(arq: AsyncRaquel) -> None:
    await arq.enqueue()
    job = await arq.claim("default")
    assert job is not None and (job.queue, job.status, job.payload) == ("default", arq.CLAIMED, None)


async def test_str_payload_enqueue(arq: AsyncRaquel) -> None:
    await arq.enqueue("default", "foo")
    job = await arq.claim("default")
    assert job is not None and (job.queue, job.status, job.payload) == ("default", arq.CLAIMED, "foo")


async def test_job_object_payload_enqueue(arq: AsyncRaquel) -> None:
    """A Job built by hand (raquel's defaults) enqueues a job with its queue and payload."""
    job = await arq.enqueue(payload=AsyncJob(queue="job_queue", payload=1))
    assert (job.queue, job.status, job.payload) == ("job_queue", "queued", 1)
    claimed = await arq.claim("job_queue")
    assert claimed is not None and (claimed.queue, claimed.status, claimed.payload) == ("job_queue", arq.CLAIMED, 1)


async def test_max_age_timedelta_enqueue(arq: AsyncRaquel, conn: Conn) -> None:
    """A job not started within max_age is never claimed; the claim marks it 'expired'."""
    job = await arq.enqueue(payload={"foo": "bar"}, max_age=timedelta(milliseconds=50))
    await asleep(0.1)  # the job must get older than its max_age
    assert not await arq.claim("default")
    assert row(conn, job.id)["status"] == "expired"


async def test_max_age_int_enqueue(arq: AsyncRaquel, conn: Conn) -> None:
    job = await arq.enqueue(payload={"foo": "bar"}, max_age=50)
    await asleep(0.1)  # the job must get older than its max_age
    assert not await arq.claim("default")
    assert row(conn, job.id)["status"] == "expired"


# --- test_postgres --------------------------------------------------------------


async def test_concurrent_job_dequeue_in_loop(arq: AsyncRaquel) -> None:
    """One producer and one consumer at once: every job processed once, in order."""
    num_jobs = 5
    seen: list[Any] = []

    async def enqueue_jobs() -> None:
        for i in range(num_jobs):
            await arq.enqueue("concurrent_loop", {"data": i})
            await asleep(0.05)

    async def dequeue_jobs() -> None:
        deadline = time.monotonic() + DEADLINE
        while len(seen) < num_jobs and time.monotonic() < deadline:
            async with arq.dequeue("concurrent_loop") as job:
                if job is None:
                    await asleep(0.01)
                    continue
                assert job.status == arq.CLAIMED
                seen.append(job.payload)

    tasks = [aspawn(enqueue_jobs, name="enqueue"), aspawn(dequeue_jobs, name="dequeue")]
    await ajoin(tasks, DEADLINE + 5)
    assert seen == [{"data": i} for i in range(num_jobs)]
    assert await arq.count("concurrent_loop") == num_jobs
    assert await arq.count("concurrent_loop", arq.SUCCESS) == num_jobs
    assert await arq.count("concurrent_loop", [arq.QUEUED, arq.CLAIMED]) == 0


async def test_continuous_dequeue_for_1_sec(arq: AsyncRaquel) -> None:
    """The consumer starts first and polls an empty queue; the jobs come one by one."""
    num_jobs = 7
    seen: list[Any] = []

    async def dequeue_jobs() -> None:
        deadline = time.monotonic() + DEADLINE
        while len(seen) < num_jobs and time.monotonic() < deadline:
            async with arq.dequeue("continuous_1_sec") as job:
                if job is None:
                    await asleep(0.01)
                    continue
                assert job.status == arq.CLAIMED
                seen.append(job.payload)

    async def enqueue_jobs() -> None:
        for i in range(num_jobs):
            await arq.enqueue("continuous_1_sec", {"data": i})
            await asleep(0.05)

    consumer = aspawn(dequeue_jobs, name="dequeue")
    producer = aspawn(enqueue_jobs, name="enqueue")
    await ajoin([producer, consumer], DEADLINE + 5)
    assert seen == [{"data": i} for i in range(num_jobs)]
    assert await arq.count("continuous_1_sec", arq.SUCCESS) == num_jobs


# --- test_reclaim ---------------------------------------------------------------

#: A worker in another process that claims the job and hangs (raquel's
#: dequeue_in_another_process). raquel_pg: its reclaim_after (300 ms) is the
#: lease of its claim, renewed every 100 ms while it lives.
HOLDER = """
import sys, time
from raquel_pg import Raquel
rq = Raquel(sys.argv[1])
with rq.dequeue("reclaim_killed_worker", claim_as="worker-1", reclaim_after=300) as job:
    time.sleep(60)
"""


async def test_reclaim_unlocked_row(arq: AsyncRaquel, dsn: str) -> None:
    """A killed worker's job is taken over by another; a living worker's is not.

    raquel_pg: a claim is kept by its holder renewing its lease, so it is
    not taken over while the holder lives, even past its reclaim_after (here
    3x); once the holder dies it is, when the lease runs out. raquel's
    ``reclaim_after=0`` on the claimer is accepted (the claimer's own lease
    is then the client's).
    """
    job = await arq.enqueue("reclaim_killed_worker", 1)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, sqlalchemy_url(dsn, "psycopg2")])
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            current = await arq.get(job.id)
            assert current is not None
            if current.status == arq.CLAIMED and current.claimed_by == "worker-1":
                break
            assert time.monotonic() < deadline and holder.poll() is None, "the other process did not claim"
            await asleep(0.01)
        await asleep(0.9)  # 3x the holder's reclaim_after: renewed, so still its
        assert await arq.claim("reclaim_killed_worker", claim_as="worker-2", reclaim_after=0) is None
    finally:
        holder.terminate()
        holder.wait()
    reclaimed = await claim_when_due(arq, "reclaim_killed_worker", claim_as="worker-2", reclaim_after=0)
    assert (reclaimed.id, reclaimed.status, reclaimed.claimed_by, reclaimed.payload) == (
        job.id,
        arq.CLAIMED,
        "worker-2",
        1,
    )


# --- test_retry -----------------------------------------------------------------


async def failed_then_retried(arq: AsyncRaquel, conn: Conn, *queues: str) -> int:
    """Fails the only job in dequeue(), gets it again from dequeue() once due; returns the retry delay (ms)."""
    async with arq.dequeue(*queues) as job:
        assert job is not None and job.status == arq.CLAIMED and job.attempts == 0
        assert job.payload == {"foo": "bar"}
        raise RuntimeError("Something went wrong")
    failed = row(conn, job.id)
    assert not await arq.claim(*queues)  # not back at once
    deadline = time.monotonic() + DEADLINE
    while True:
        async with arq.dequeue(*queues) as again:
            if again is not None:
                assert again.queue == "default" and again.status == arq.CLAIMED
                assert again.attempts == 1
                assert again.claimed_at is not None
                assert row(conn, job.id)["claimed_at"] >= failed["scheduled_at"]
                delay: int = failed["scheduled_at"] - failed["finished_at"]
                return delay
        assert time.monotonic() < deadline, "the job did not come back"
        await asleep(0.01)


async def test_min_retry_delay_int_dequeue(arq: AsyncRaquel, conn: Conn) -> None:
    """raquel_pg: the first retry waits backoff_base (raquel: 2x backoff_base), clamped to the bounds."""
    await arq.enqueue(payload={"foo": "bar"}, min_retry_delay=DELAY_MS, backoff_base=DELAY_MS)
    assert await failed_then_retried(arq, conn) == DELAY_MS


async def test_max_retry_delay_int_dequeue(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue(payload={"foo": "bar"}, min_retry_delay=DELAY_MS, max_retry_delay=DELAY_MS)
    assert await failed_then_retried(arq, conn, "default") == DELAY_MS


async def test_min_max_retry_delay_timedelta_dequeue(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue(
        payload={"foo": "bar"},
        min_retry_delay=timedelta(milliseconds=DELAY_MS),
        max_retry_delay=timedelta(milliseconds=DELAY_MS),
    )
    assert await failed_then_retried(arq, conn, "default") == DELAY_MS


# --- test_subscribe -------------------------------------------------------------


async def test_basic_subscribe(arq: AsyncRaquel) -> None:
    """A subscription runs until its function raises StopSubscription; that job counts as done."""
    await arq.enqueue("default", {"foo": "bar"})
    await arq.enqueue("tasks", 1)

    @arq.subscribe("default", "tasks")
    async def worker(job: AsyncJob) -> None:
        if job.queue == "default":
            assert job.payload == {"foo": "bar"} and job.status == arq.CLAIMED
            assert job.max_age is None and job.max_retry_count is None
            assert job.enqueued_at == job.scheduled_at and job.attempts == 0
            assert job.claimed_at is not None and job.claimed_at <= datetime.now(timezone.utc)
            assert job.finished_at is None
        else:
            assert job.payload == 1
            raise StopSubscription

    await arq.run_subscriptions()
    assert not await arq.claim()
    assert await arq.count(None, arq.SUCCESS) == 2


async def test_reject_subscribe(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})

    async def worker(job: AsyncJob) -> None:
        assert job.status == arq.CLAIMED and job.attempts == 0
        await job.reject()
        raise StopSubscription

    subscription = arq.add_subscription(worker, "default")
    await subscription.run()
    assert await arq.count("default", arq.QUEUED) == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.claimed_at) == (1, arq.QUEUED, None)


async def test_exception_subscribe(arq: AsyncRaquel) -> None:
    """raise_stop_on_unhandled_exc: the job fails (recorded) and the subscription stops."""
    enqueued = await arq.enqueue("default", {"foo": "bar"})

    @arq.subscribe("default", raise_stop_on_unhandled_exc=True)
    async def worker(job: AsyncJob) -> None:
        assert job.status == arq.CLAIMED and job.attempts == 0
        raise ValueError("Won't do")

    await arq.run_subscriptions()
    assert await arq.count("default", arq.FAILED) == 1
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.FAILED, "Won't do")


async def test_manual_fail_subscribe(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})

    async def worker(job: AsyncJob) -> None:
        await job.fail("Won't do")
        raise StopSubscription

    await arq.add_subscription(worker, "default").run()
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.FAILED, "Won't do")


async def test_manual_catch_exception_subscribe(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})

    async def worker(job: AsyncJob) -> None:
        try:
            raise ValueError("Won't do")
        except ValueError:
            pass
        raise StopSubscription

    await arq.add_subscription(worker, "default").run()
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.SUCCESS, None)


async def test_reschedule_subscribe(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("default", {"foo": "bar"})

    async def worker(job: AsyncJob) -> None:
        await job.reschedule(delay=1000)
        raise StopSubscription

    await arq.add_subscription(worker, "default").run()
    updated = await arq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, arq.QUEUED, None)
    assert updated.scheduled_at > datetime.now(timezone.utc)


# --- raquel_pg: claim() and settling by id and attempt number -------------------------


async def test_claimed_job_is_settled_by_id_and_its_attempt_number(arq: AsyncRaquel, conn: Conn) -> None:
    """resolve/reject/fail by id: only the running attempt (attempts + 1) is settled."""
    a, b, c = [await arq.enqueue("byid", n) for n in range(3)]
    for expected in (a, b, c):
        job = await arq.claim("byid")
        assert job is not None and job.id == expected.id
    assert await arq.resolve(a.id, 2) is False  # not its running attempt: nothing written
    assert row(conn, a.id)["status"] == "claimed"
    assert await arq.resolve(a.id, 1) is True
    assert await arq.resolve(a.id, 1) is False  # settled already
    assert await arq.reject(b.id, 1) is True
    assert await arq.fail(c.id, 1, "nope") is True
    assert [(row(conn, j.id)["status"], row(conn, j.id)["attempts"]) for j in (a, b, c)] == [
        ("success", 1),
        ("queued", 1),
        ("failed", 1),
    ]
    assert row(conn, c.id)["error"] == "nope"


async def test_fail_by_job_takes_an_exception(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("byid", 1)
    job = await arq.claim("byid")
    assert job is not None
    try:
        raise ValueError("Won't do")
    except ValueError as error:
        assert await arq.fail(job, job.attempts + 1, error) is True
    stored = row(conn, job.id)
    assert (stored["status"], stored["error"]) == ("failed", "Won't do")
    assert "ValueError" in stored["error_trace"]


async def test_a_job_settled_by_id_refuses_its_outcome_method(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("byid", 1)
    job = await arq.claim("byid")
    assert job is not None
    assert await arq.resolve(job.id, job.attempts + 1) is True
    assert await job.fail("late") is False
    assert row(conn, job.id)["status"] == "success"


async def test_attempt_number_below_one_is_refused(arq: AsyncRaquel) -> None:
    job = await arq.enqueue("byid", 1)
    with pytest.raises(InvalidArgument) as refused:
        await arq.resolve(job.id, 0)
    assert refused.value.argument == "attempt_num"


async def test_unclaim_puts_a_claimed_job_back_and_fences_its_holder(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("byid", 1)
    job = await arq.claim("byid")
    assert job is not None
    assert await arq.unclaim(job.id) is True
    stored = row(conn, job.id)
    assert (stored["status"], stored["attempts"], stored["claimed_at"]) == ("queued", 0, None)
    assert await arq.unclaim(job.id) is False
    assert await job.reject() is False  # the holder's claim is no longer current


async def test_claim_with_reclaim_after_leases_it_for_that_long(arq: AsyncRaquel, conn: Conn) -> None:
    await arq.enqueue("byid", 1)
    job = await arq.claim("byid", reclaim_after=timedelta(seconds=5))
    assert job is not None
    stored = row(conn, job.id)
    assert 5000 <= stored["lease_expires_at"] - stored["claimed_at"] < 6000  # (renewals add the time since)
    with pytest.raises(InvalidArgument) as refused:
        await arq.claim("byid", reclaim_after=-1)
    assert refused.value.argument == "reclaim_after"


async def test_a_claimed_job_is_renewed_until_the_client_closes(dsn: str, conn: Conn) -> None:
    """Held while the client is open (renewed every lease/3); once closed, its lease runs out."""
    async with AsyncRaquel(dsn) as client:
        await client.enqueue("held", 1)
        job = await client.claim("held", reclaim_after=300)
        assert job is not None
        first = row(conn, job.id)["lease_expires_at"]
        deadline = time.monotonic() + DEADLINE
        while row(conn, job.id)["lease_expires_at"] == first:
            assert time.monotonic() < deadline, "the lease was not renewed"
            await asleep(0.02)
    last = row(conn, job.id)["lease_expires_at"]
    await asleep(0.5)  # longer than the renewal interval (100 ms): nobody renews it now
    assert row(conn, job.id)["lease_expires_at"] == last


async def test_cancel_takes_a_failed_job_but_not_a_finished_one(arq: AsyncRaquel, conn: Conn) -> None:
    failed = await arq.enqueue("cancel", 1, min_retry_delay=60_000, backoff_base=60_000)
    async with arq.dequeue("cancel"):
        raise ValueError("retry later")
    assert await arq.cancel(failed.id) is True
    assert row(conn, failed.id)["status"] == "cancelled"
    assert await arq.cancel(failed.id) is False


async def test_expire_marks_waiting_jobs_past_their_max_age(arq: AsyncRaquel, conn: Conn) -> None:
    old = await arq.enqueue("exp", 1, max_age=1)
    other = await arq.enqueue("other", 1, max_age=1)
    fresh = await arq.enqueue("exp", 2, max_age=60_000)
    await asleep(0.05)  # older than max_age
    assert await arq.expire("exp") == 1
    assert [row(conn, j.id)["status"] for j in (old, other, fresh)] == ["expired", "queued", "queued"]


async def test_jobs_lists_the_latest_scheduled_first(arq: AsyncRaquel) -> None:
    now = datetime.now(timezone.utc)
    await arq.enqueue("a", 1, at=now - timedelta(hours=1))
    await arq.enqueue("b", 2, at=now + timedelta(hours=1))
    await arq.enqueue("a", 3, at=now)
    assert [j.payload for j in await arq.jobs()] == [2, 3, 1]
    assert [j.payload for j in await arq.jobs("a")] == [3, 1]


async def test_stats_and_count_take_raquels_forms(arq: AsyncRaquel) -> None:
    for queue in ("a", "b", "c"):
        await arq.enqueue(queue)
    assert set(await arq.stats("a", "b")) == {"a", "b"}
    assert set(await arq.stats(queue="c")) == {"c"}
    assert await arq.count("a", {arq.QUEUED, arq.SUCCESS}) == 1


async def test_stop_subscription_in_dequeue_records_success_and_propagates(arq: AsyncRaquel, conn: Conn) -> None:
    job = await arq.enqueue("stop", 1)
    with pytest.raises(StopSubscription):
        async with arq.dequeue("stop"):
            raise StopSubscription
    assert row(conn, job.id)["status"] == "success"


async def test_run_subscriptions_without_any_returns(arq: AsyncRaquel) -> None:
    await arq.run_subscriptions()


@pytest.fixture
def worker_role(conn: Conn) -> Iterator[str]:
    """A fresh role granted raquel_pg's worker privileges (raquel_pg/roles.sql); dropped at the end."""
    name = f"raquel_test_worker_{uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    grant_roles(conn, worker=name)
    yield name
    conn.execute(f'DROP OWNED BY "{name}"'.encode())
    conn.execute(f'DROP ROLE "{name}"'.encode())


async def test_the_worker_role_may_use_raquels_calls(dsn: str, conn: Conn, worker_role: str) -> None:
    """claim, settle by id, unclaim, cancel and jobs run with the worker's grants; expire is the operator's."""
    async with AsyncRaquel(make_conninfo(dsn, options=f"-c role={worker_role}")) as worker:
        first, second, waiting = [await worker.enqueue("w", n) for n in range(3)]
        for _ in range(2):
            assert await worker.claim("w") is not None
        assert await worker.resolve(first.id, 1) is True
        assert await worker.unclaim(second.id) is True
        assert await worker.cancel(waiting.id) is True
        assert [j.payload for j in await worker.jobs("w")] == [2, 1, 0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await worker.expire()
    assert [row(conn, j.id)["status"] for j in (first, second, waiting)] == ["success", "queued", "cancelled"]


# --- raquel_pg: what the constructor takes -----------------------------------------


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg", "asyncpg"])
async def test_sqlalchemy_url_strings_connect(dsn: str, driver: str) -> None:
    async with AsyncRaquel(sqlalchemy_url(dsn, driver)) as client:
        assert (await client.enqueue("url", 1)).queue == "url"


async def test_sqlalchemy_url_and_engines_connect(dsn: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = sqlalchemy_url(dsn, "psycopg")
    for database in (make_url(url), create_engine(url), create_async_engine(url)):
        async with AsyncRaquel(database) as client:
            assert await client.count("none") == 0


@pytest.mark.parametrize("database", ["sqlite:///:memory:", "mysql+pymysql://u@h/db", 42])
async def test_a_database_other_than_postgresql_is_refused(database: Any) -> None:
    with pytest.raises(InvalidArgument) as refused:
        AsyncRaquel(database)
    assert refused.value.argument == "dsn"
