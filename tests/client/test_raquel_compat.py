# WARNING: this file is generated from test_raquel_compat_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_raquel_compat_async.py and run `python tools/async_to_sync.py`.

"""raquel 0.3.2's own test cases, rewritten for raquel_pg: code written for raquel runs unchanged.

Each test restates one case of raquel's suite (tests/test_basics, conflict,
dequeue, enqueue, postgres, reclaim, retry and subscribe of
github.com/vduseev/raquel), named after it, against a client built as raquel
users build theirs: from a SQLAlchemy URL. Where raquel_pg deliberately
differs, the test says so ("raquel_pg:") and asserts the documented
behaviour (docs/coming-from-raquel.md):

- the outcome methods of a job (``job.reject()``, ``job.fail()``,
  ``job.reschedule()``) record the outcome at once, fenced by the claim; on
  the async client they are coroutines (``job.reject()``);
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
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from raquel_pg import InvalidArgument, Job, Raquel, StopSubscription
from raquel_pg._acompat import join, sleep, spawn
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
def rq(dsn: str) -> Iterator[Raquel]:
    """The client as raquel's fixtures make it: from a SQLAlchemy URL, nothing else."""
    with Raquel(sqlalchemy_url(dsn, "asyncpg")) as client:
        yield client


def row(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    values = cur.fetchone()
    assert values is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], values))


def claim_when_due(rq: Raquel, *queues: str, **kwargs: Any) -> Job:
    """Claims from ``queues`` as soon as a job is due (raquel's tests slept "long enough")."""
    deadline = time.monotonic() + DEADLINE
    while True:
        job = rq.claim(*queues, **kwargs)
        if job is not None:
            return job
        assert time.monotonic() < deadline, "no job became claimable in time"
        sleep(0.01)


# --- test_basics ----------------------------------------------------------------


def test_job_enqueued(rq: Raquel) -> None:
    rq.enqueue(payload={"foo": "bar"})
    job = (rq.jobs())[0]
    assert job.queue == "default" == rq.DEFAULT
    assert job.payload == {"foo": "bar"}
    assert job.status == rq.QUEUED
    assert job.max_age is None and job.max_retry_count is None
    assert job.enqueued_at <= datetime.now(timezone.utc)
    assert job.enqueued_at == job.scheduled_at
    assert job.attempts == 0
    assert job.claimed_at is None and job.finished_at is None


def test_get_nonexistent_job(rq: Raquel) -> None:
    assert rq.get(uuid4()) is None


def test_claim_in_order(rq: Raquel) -> None:
    rq.enqueue("default", {"foo": 1})
    rq.enqueue("default", {"foo": 2})
    assert rq.count("default") == 2
    assert rq.count("default", rq.QUEUED) == 2

    job1 = rq.claim("default")
    assert job1 is not None and job1.status == rq.CLAIMED and job1.payload == {"foo": 1}
    assert rq.count("default") == 2
    assert rq.count("default", rq.QUEUED) == 1
    assert rq.count("default", rq.CLAIMED) == 1

    job2 = rq.claim()
    assert job2 is not None and job2.status == rq.CLAIMED and job2.payload == {"foo": 2}
    assert rq.count("default", rq.QUEUED) == 0
    assert rq.count("default", rq.CLAIMED) == 2


def test_cancel_job(rq: Raquel) -> None:
    job = rq.enqueue("default", {"foo": 1})
    assert rq.count("default", rq.QUEUED) == 1
    assert rq.cancel(job.id) is True
    assert rq.count("default", rq.QUEUED) == 0
    assert rq.count("default", rq.CLAIMED) == 0
    assert rq.count("default", rq.CANCELLED) == 1


def test_stats(rq: Raquel) -> None:
    rq.enqueue("default", {"foo": 1})
    rq.enqueue("default", {"foo": 2})
    rq.enqueue("other", {"foo": 3})
    assert rq.count("default") == 2
    assert rq.count("other") == 1
    stats = rq.stats()
    default = stats["default"]
    assert (default.total, default.queued) == (2, 2)
    assert (default.claimed, default.success, default.failed) == (0, 0, 0)
    assert (default.cancelled, default.expired, default.exhausted) == (0, 0, 0)
    assert stats["other"].total == 1


# --- test_conflict --------------------------------------------------------------


def test_conflict_cancel(rq: Raquel, conn: Conn) -> None:
    """A cancel that comes after a worker claimed the job loses: the worker's success stands."""
    job = rq.enqueue("conflict_cancel", 1)

    def dequeue_job() -> None:
        with rq.dequeue("conflict_cancel") as claimed:
            assert claimed is not None
            assert claimed.status == rq.CLAIMED and claimed.payload == 1
            deadline = time.monotonic() + DEADLINE
            while not cancelled:  # hold the job until the cancel has been refused
                assert time.monotonic() < deadline
                sleep(0.01)

    cancelled: list[bool] = []
    worker = spawn(dequeue_job, name="dequeue")
    deadline = time.monotonic() + DEADLINE
    while row(conn, job.id)["status"] != "claimed":
        assert time.monotonic() < deadline
        sleep(0.01)
    cancelled.append(rq.cancel(job.id))
    join([worker], DEADLINE)
    assert cancelled == [False]
    updated = rq.get(job.id)
    assert updated is not None and updated.status == rq.SUCCESS


def test_nested_cancel(rq: Raquel) -> None:
    """cancel(job_id) from inside the job's own dequeue() does nothing."""
    job = rq.enqueue("nested_cancel", 1)
    with rq.dequeue("nested_cancel") as claimed:
        assert claimed is not None and claimed.status == rq.CLAIMED and claimed.payload == 1
        assert rq.cancel(claimed.id) is False
    updated = rq.get(job.id)
    assert updated is not None and updated.status == rq.SUCCESS


# --- test_dequeue ---------------------------------------------------------------


def test_basic_dequeue(rq: Raquel) -> None:
    rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue() as job:
        assert job is not None
        assert job.queue == "default" and job.payload == {"foo": "bar"}
        assert job.status == rq.CLAIMED
        assert job.max_age is None and job.max_retry_count is None
        assert job.enqueued_at <= datetime.now(timezone.utc)
        assert job.enqueued_at == job.scheduled_at
        assert job.attempts == 0
        assert job.claimed_at is not None and job.claimed_at <= datetime.now(timezone.utc)
        assert job.finished_at is None
    assert not rq.claim("default")


def test_no_job_dequeue(rq: Raquel) -> None:
    with rq.dequeue("default") as job:
        assert job is None


def test_max_age_in_time_dequeue(rq: Raquel) -> None:
    rq.enqueue("default", {"foo": "bar"}, max_age=1000)
    with rq.dequeue("default") as job:
        assert job is not None and job.payload == {"foo": "bar"} and job.status == rq.CLAIMED


def test_dequeue_in_order(rq: Raquel) -> None:
    rq.enqueue("default", {"foo": 1})
    rq.enqueue("default", {"foo": 2})
    assert rq.count("default", rq.QUEUED) == 2
    with rq.dequeue("default") as job1:
        assert job1 is not None and job1.payload == {"foo": 1}
        assert rq.count("default", rq.QUEUED) == 1
        assert rq.count("default", rq.CLAIMED) == 1
    with rq.dequeue("default") as job2:
        assert job2 is not None and job2.payload == {"foo": 2}
        assert rq.count("default", rq.QUEUED) == 0
        assert rq.count("default", rq.CLAIMED) == 1
        assert rq.count("default", rq.SUCCESS) == 1
    assert rq.count("default") == 2
    assert rq.count("default", rq.SUCCESS) == 2


def test_reject(rq: Raquel) -> None:
    """raquel_pg: job.reject() records at once (fenced); on the async client it is awaited."""
    enqueued = rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue("default") as job:
        assert job is not None and job.attempts == 0 and job.status == rq.CLAIMED
        job.reject()
    assert rq.count("default", rq.QUEUED) == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.claimed_at) == (1, rq.QUEUED, None)


def test_exception(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue("default") as job:
        assert job is not None and job.attempts == 0
        raise ValueError("Won't do")
    assert rq.count("default", status="failed") == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.FAILED, "Won't do")
    assert updated.error_trace is not None and "ValueError" in updated.error_trace


def test_manual_fail(rq: Raquel) -> None:
    """raquel_pg: job.fail() records at once (fenced); on the async client it is awaited."""
    enqueued = rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue("default") as job:
        assert job is not None and job.attempts == 0
        job.fail("Won't do")
    assert rq.count("default", rq.FAILED) == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.FAILED, "Won't do")


def test_manual_catch_exception_and_fail(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue("default") as job:
        assert job is not None
        try:
            raise ValueError("Won't do")
        except ValueError as error:
            job.fail(error)
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.FAILED, "Won't do")
    assert updated.error_trace is not None


def test_manual_catch_exception_no_fail(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})
    with rq.dequeue("default") as job:
        assert job is not None
        try:
            raise ValueError("Won't do")
        except ValueError:
            pass
    assert rq.count("default", rq.SUCCESS) == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error, updated.error_trace) == (1, rq.SUCCESS, None, None)


# --- test_enqueue ---------------------------------------------------------------


def test_basic_enqueue(rq: Raquel) -> None:
    assert not rq.queues()
    rq.enqueue("foo", {"foo": "bar"})
    assert "foo" in rq.queues()
    assert "default" not in rq.queues()
    jobs = rq.jobs("foo")
    assert len(jobs) == 1
    job = jobs[0]
    assert (job.queue, job.payload, job.status) == ("foo", {"foo": "bar"}, "queued")
    assert job.max_age is None and job.max_retry_count is None
    assert job.enqueued_at <= datetime.now(timezone.utc) and job.enqueued_at == job.scheduled_at
    assert job.attempts == 0 and job.claimed_at is None and job.finished_at is None


def test_at_datetime_enqueue(rq: Raquel) -> None:
    at = datetime.now(timezone.utc) + timedelta(milliseconds=DELAY_MS)
    rq.enqueue(payload={"foo": "bar"}, at=at)
    assert not rq.claim()
    job = claim_when_due(rq)
    assert datetime.now(timezone.utc) >= at
    assert (job.queue, job.status) == ("default", rq.CLAIMED)


def test_at_int_enqueue(rq: Raquel) -> None:
    at = int(datetime.now(timezone.utc).timestamp() * 1000) + DELAY_MS
    rq.enqueue("default", {"foo": "bar"}, at=at)
    assert not rq.claim()
    job = claim_when_due(rq, "default")
    assert datetime.now(timezone.utc).timestamp() * 1000 >= at
    assert (job.queue, job.status) == ("default", rq.CLAIMED)


def test_delayed_int_enqueue(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"}, delay=DELAY_MS)
    assert not rq.claim("default")
    job = claim_when_due(rq, "default")
    assert job.scheduled_at == enqueued.enqueued_at + timedelta(milliseconds=DELAY_MS)
    assert (job.queue, job.status) == ("default", rq.CLAIMED)


def test_delayed_timedelta_enqueue(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"}, delay=timedelta(milliseconds=DELAY_MS))
    assert not rq.claim("default")
    job = claim_when_due(rq, "default")
    assert job.scheduled_at == enqueued.enqueued_at + timedelta(milliseconds=DELAY_MS)
    assert (job.queue, job.status) == ("default", rq.CLAIMED)


def test_enqueue_in_the_past(rq: Raquel) -> None:
    """Jobs are claimed by scheduled time, not by enqueue order."""
    now = datetime.now(timezone.utc)
    rq.enqueue(payload=1)
    rq.enqueue(payload=2, at=now - timedelta(hours=3))
    rq.enqueue(payload=3, at=now - timedelta(hours=2))
    claimed = [rq.claim("default") for _ in range(3)]
    assert [(j.payload, j.status) for j in claimed if j] == [(2, "claimed"), (3, "claimed"), (1, "claimed")]


def test_enqueue_before(rq: Raquel) -> None:
    rq.enqueue(payload=1)
    rq.enqueue(payload=2, at=datetime.now(timezone.utc) - timedelta(hours=2))
    job_2 = rq.claim("default", before=datetime.now(timezone.utc) - timedelta(hours=1))
    assert job_2 is not None and job_2.payload == 2
    job_1 = rq.claim("default")
    assert job_1 is not None and job_1.payload == 1


def test_no_payload_enqueue(rq: Raquel) -> None:
    rq.enqueue()
    job = rq.claim("default")
    assert job is not None and (job.queue, job.status, job.payload) == ("default", rq.CLAIMED, None)


def test_str_payload_enqueue(rq: Raquel) -> None:
    rq.enqueue("default", "foo")
    job = rq.claim("default")
    assert job is not None and (job.queue, job.status, job.payload) == ("default", rq.CLAIMED, "foo")


def test_job_object_payload_enqueue(rq: Raquel) -> None:
    """A Job built by hand (raquel's defaults) enqueues a job with its queue and payload."""
    job = rq.enqueue(payload=Job(queue="job_queue", payload=1))
    assert (job.queue, job.status, job.payload) == ("job_queue", "queued", 1)
    claimed = rq.claim("job_queue")
    assert claimed is not None and (claimed.queue, claimed.status, claimed.payload) == ("job_queue", rq.CLAIMED, 1)


def test_max_age_timedelta_enqueue(rq: Raquel, conn: Conn) -> None:
    """A job not started within max_age is never claimed; the claim marks it 'expired'."""
    job = rq.enqueue(payload={"foo": "bar"}, max_age=timedelta(milliseconds=50))
    sleep(0.1)  # the job must get older than its max_age
    assert not rq.claim("default")
    assert row(conn, job.id)["status"] == "expired"


def test_max_age_int_enqueue(rq: Raquel, conn: Conn) -> None:
    job = rq.enqueue(payload={"foo": "bar"}, max_age=50)
    sleep(0.1)  # the job must get older than its max_age
    assert not rq.claim("default")
    assert row(conn, job.id)["status"] == "expired"


# --- test_postgres --------------------------------------------------------------


def test_concurrent_job_dequeue_in_loop(rq: Raquel) -> None:
    """One producer and one consumer at once: every job processed once, in order."""
    num_jobs = 5
    seen: list[Any] = []

    def enqueue_jobs() -> None:
        for i in range(num_jobs):
            rq.enqueue("concurrent_loop", {"data": i})
            sleep(0.05)

    def dequeue_jobs() -> None:
        deadline = time.monotonic() + DEADLINE
        while len(seen) < num_jobs and time.monotonic() < deadline:
            with rq.dequeue("concurrent_loop") as job:
                if job is None:
                    sleep(0.01)
                    continue
                assert job.status == rq.CLAIMED
                seen.append(job.payload)

    tasks = [spawn(enqueue_jobs, name="enqueue"), spawn(dequeue_jobs, name="dequeue")]
    join(tasks, DEADLINE + 5)
    assert seen == [{"data": i} for i in range(num_jobs)]
    assert rq.count("concurrent_loop") == num_jobs
    assert rq.count("concurrent_loop", rq.SUCCESS) == num_jobs
    assert rq.count("concurrent_loop", [rq.QUEUED, rq.CLAIMED]) == 0


def test_continuous_dequeue_for_1_sec(rq: Raquel) -> None:
    """The consumer starts first and polls an empty queue; the jobs come one by one."""
    num_jobs = 7
    seen: list[Any] = []

    def dequeue_jobs() -> None:
        deadline = time.monotonic() + DEADLINE
        while len(seen) < num_jobs and time.monotonic() < deadline:
            with rq.dequeue("continuous_1_sec") as job:
                if job is None:
                    sleep(0.01)
                    continue
                assert job.status == rq.CLAIMED
                seen.append(job.payload)

    def enqueue_jobs() -> None:
        for i in range(num_jobs):
            rq.enqueue("continuous_1_sec", {"data": i})
            sleep(0.05)

    consumer = spawn(dequeue_jobs, name="dequeue")
    producer = spawn(enqueue_jobs, name="enqueue")
    join([producer, consumer], DEADLINE + 5)
    assert seen == [{"data": i} for i in range(num_jobs)]
    assert rq.count("continuous_1_sec", rq.SUCCESS) == num_jobs


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


def test_reclaim_unlocked_row(rq: Raquel, dsn: str) -> None:
    """A killed worker's job is taken over by another; a living worker's is not.

    raquel_pg: a claim is kept by its holder renewing its lease, so it is
    not taken over while the holder lives, even past its reclaim_after (here
    3x); once the holder dies it is, when the lease runs out. raquel's
    ``reclaim_after=0`` on the claimer is accepted (the claimer's own lease
    is then the client's).
    """
    job = rq.enqueue("reclaim_killed_worker", 1)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, sqlalchemy_url(dsn, "psycopg2")])
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            current = rq.get(job.id)
            assert current is not None
            if current.status == rq.CLAIMED and current.claimed_by == "worker-1":
                break
            assert time.monotonic() < deadline and holder.poll() is None, "the other process did not claim"
            sleep(0.01)
        sleep(0.9)  # 3x the holder's reclaim_after: renewed, so still its
        assert rq.claim("reclaim_killed_worker", claim_as="worker-2", reclaim_after=0) is None
    finally:
        holder.terminate()
        holder.wait()
    reclaimed = claim_when_due(rq, "reclaim_killed_worker", claim_as="worker-2", reclaim_after=0)
    assert (reclaimed.id, reclaimed.status, reclaimed.claimed_by, reclaimed.payload) == (
        job.id,
        rq.CLAIMED,
        "worker-2",
        1,
    )


# --- test_retry -----------------------------------------------------------------


def failed_then_retried(rq: Raquel, conn: Conn, *queues: str) -> int:
    """Fails the only job in dequeue(), gets it again from dequeue() once due; returns the retry delay (ms)."""
    with rq.dequeue(*queues) as job:
        assert job is not None and job.status == rq.CLAIMED and job.attempts == 0
        assert job.payload == {"foo": "bar"}
        raise RuntimeError("Something went wrong")
    failed = row(conn, job.id)
    assert not rq.claim(*queues)  # not back at once
    deadline = time.monotonic() + DEADLINE
    while True:
        with rq.dequeue(*queues) as again:
            if again is not None:
                assert again.queue == "default" and again.status == rq.CLAIMED
                assert again.attempts == 1
                assert again.claimed_at is not None
                assert row(conn, job.id)["claimed_at"] >= failed["scheduled_at"]
                delay: int = failed["scheduled_at"] - failed["finished_at"]
                return delay
        assert time.monotonic() < deadline, "the job did not come back"
        sleep(0.01)


def test_min_retry_delay_int_dequeue(rq: Raquel, conn: Conn) -> None:
    """raquel_pg: the first retry waits backoff_base (raquel: 2x backoff_base), clamped to the bounds."""
    rq.enqueue(payload={"foo": "bar"}, min_retry_delay=DELAY_MS, backoff_base=DELAY_MS)
    assert failed_then_retried(rq, conn) == DELAY_MS


def test_max_retry_delay_int_dequeue(rq: Raquel, conn: Conn) -> None:
    rq.enqueue(payload={"foo": "bar"}, min_retry_delay=DELAY_MS, max_retry_delay=DELAY_MS)
    assert failed_then_retried(rq, conn, "default") == DELAY_MS


def test_min_max_retry_delay_timedelta_dequeue(rq: Raquel, conn: Conn) -> None:
    rq.enqueue(
        payload={"foo": "bar"},
        min_retry_delay=timedelta(milliseconds=DELAY_MS),
        max_retry_delay=timedelta(milliseconds=DELAY_MS),
    )
    assert failed_then_retried(rq, conn, "default") == DELAY_MS


# --- test_subscribe -------------------------------------------------------------


def test_basic_subscribe(rq: Raquel) -> None:
    """A subscription runs until its function raises StopSubscription; that job counts as done."""
    rq.enqueue("default", {"foo": "bar"})
    rq.enqueue("tasks", 1)

    @rq.subscribe("default", "tasks")
    def worker(job: Job) -> None:
        if job.queue == "default":
            assert job.payload == {"foo": "bar"} and job.status == rq.CLAIMED
            assert job.max_age is None and job.max_retry_count is None
            assert job.enqueued_at == job.scheduled_at and job.attempts == 0
            assert job.claimed_at is not None and job.claimed_at <= datetime.now(timezone.utc)
            assert job.finished_at is None
        else:
            assert job.payload == 1
            raise StopSubscription

    rq.run_subscriptions()
    assert not rq.claim()
    assert rq.count(None, rq.SUCCESS) == 2


def test_reject_subscribe(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})

    def worker(job: Job) -> None:
        assert job.status == rq.CLAIMED and job.attempts == 0
        job.reject()
        raise StopSubscription

    subscription = rq.add_subscription(worker, "default")
    subscription.run()
    assert rq.count("default", rq.QUEUED) == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.claimed_at) == (1, rq.QUEUED, None)


def test_exception_subscribe(rq: Raquel) -> None:
    """raise_stop_on_unhandled_exc: the job fails (recorded) and the subscription stops."""
    enqueued = rq.enqueue("default", {"foo": "bar"})

    @rq.subscribe("default", raise_stop_on_unhandled_exc=True)
    def worker(job: Job) -> None:
        assert job.status == rq.CLAIMED and job.attempts == 0
        raise ValueError("Won't do")

    rq.run_subscriptions()
    assert rq.count("default", rq.FAILED) == 1
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.FAILED, "Won't do")


def test_manual_fail_subscribe(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})

    def worker(job: Job) -> None:
        job.fail("Won't do")
        raise StopSubscription

    rq.add_subscription(worker, "default").run()
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.FAILED, "Won't do")


def test_manual_catch_exception_subscribe(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})

    def worker(job: Job) -> None:
        try:
            raise ValueError("Won't do")
        except ValueError:
            pass
        raise StopSubscription

    rq.add_subscription(worker, "default").run()
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.SUCCESS, None)


def test_reschedule_subscribe(rq: Raquel) -> None:
    enqueued = rq.enqueue("default", {"foo": "bar"})

    def worker(job: Job) -> None:
        job.reschedule(delay=1000)
        raise StopSubscription

    rq.add_subscription(worker, "default").run()
    updated = rq.get(enqueued.id)
    assert updated is not None
    assert (updated.attempts, updated.status, updated.error) == (1, rq.QUEUED, None)
    assert updated.scheduled_at > datetime.now(timezone.utc)


# --- raquel_pg: claim() and settling by id and attempt number -------------------------


def test_claimed_job_is_settled_by_id_and_its_attempt_number(rq: Raquel, conn: Conn) -> None:
    """resolve/reject/fail by id: only the running attempt (attempts + 1) is settled."""
    a, b, c = [rq.enqueue("byid", n) for n in range(3)]
    for expected in (a, b, c):
        job = rq.claim("byid")
        assert job is not None and job.id == expected.id
    assert rq.resolve(a.id, 2) is False  # not its running attempt: nothing written
    assert row(conn, a.id)["status"] == "claimed"
    assert rq.resolve(a.id, 1) is True
    assert rq.resolve(a.id, 1) is False  # settled already
    assert rq.reject(b.id, 1) is True
    assert rq.fail(c.id, 1, "nope") is True
    assert [(row(conn, j.id)["status"], row(conn, j.id)["attempts"]) for j in (a, b, c)] == [
        ("success", 1),
        ("queued", 1),
        ("failed", 1),
    ]
    assert row(conn, c.id)["error"] == "nope"


def test_fail_by_job_takes_an_exception(rq: Raquel, conn: Conn) -> None:
    rq.enqueue("byid", 1)
    job = rq.claim("byid")
    assert job is not None
    try:
        raise ValueError("Won't do")
    except ValueError as error:
        assert rq.fail(job, job.attempts + 1, error) is True
    stored = row(conn, job.id)
    assert (stored["status"], stored["error"]) == ("failed", "Won't do")
    assert "ValueError" in stored["error_trace"]


def test_a_job_settled_by_id_refuses_its_outcome_method(rq: Raquel, conn: Conn) -> None:
    rq.enqueue("byid", 1)
    job = rq.claim("byid")
    assert job is not None
    assert rq.resolve(job.id, job.attempts + 1) is True
    assert job.fail("late") is False
    assert row(conn, job.id)["status"] == "success"


def test_attempt_number_below_one_is_refused(rq: Raquel) -> None:
    job = rq.enqueue("byid", 1)
    with pytest.raises(InvalidArgument) as refused:
        rq.resolve(job.id, 0)
    assert refused.value.argument == "attempt_num"


def test_unclaim_puts_a_claimed_job_back_and_fences_its_holder(rq: Raquel, conn: Conn) -> None:
    rq.enqueue("byid", 1)
    job = rq.claim("byid")
    assert job is not None
    assert rq.unclaim(job.id) is True
    stored = row(conn, job.id)
    assert (stored["status"], stored["attempts"], stored["claimed_at"]) == ("queued", 0, None)
    assert rq.unclaim(job.id) is False
    assert job.reject() is False  # the holder's claim is no longer current


def test_claim_with_reclaim_after_leases_it_for_that_long(rq: Raquel, conn: Conn) -> None:
    rq.enqueue("byid", 1)
    job = rq.claim("byid", reclaim_after=timedelta(seconds=5))
    assert job is not None
    stored = row(conn, job.id)
    assert 5000 <= stored["lease_expires_at"] - stored["claimed_at"] < 6000  # (renewals add the time since)
    with pytest.raises(InvalidArgument) as refused:
        rq.claim("byid", reclaim_after=-1)
    assert refused.value.argument == "reclaim_after"


def test_a_claimed_job_is_renewed_until_the_client_closes(dsn: str, conn: Conn) -> None:
    """Held while the client is open (renewed every lease/3); once closed, its lease runs out."""
    with Raquel(dsn) as client:
        client.enqueue("held", 1)
        job = client.claim("held", reclaim_after=300)
        assert job is not None
        first = row(conn, job.id)["lease_expires_at"]
        deadline = time.monotonic() + DEADLINE
        while row(conn, job.id)["lease_expires_at"] == first:
            assert time.monotonic() < deadline, "the lease was not renewed"
            sleep(0.02)
    last = row(conn, job.id)["lease_expires_at"]
    sleep(0.5)  # longer than the renewal interval (100 ms): nobody renews it now
    assert row(conn, job.id)["lease_expires_at"] == last


def test_cancel_takes_a_failed_job_but_not_a_finished_one(rq: Raquel, conn: Conn) -> None:
    failed = rq.enqueue("cancel", 1, min_retry_delay=60_000, backoff_base=60_000)
    with rq.dequeue("cancel"):
        raise ValueError("retry later")
    assert rq.cancel(failed.id) is True
    assert row(conn, failed.id)["status"] == "cancelled"
    assert rq.cancel(failed.id) is False


def test_expire_marks_waiting_jobs_past_their_max_age(rq: Raquel, conn: Conn) -> None:
    old = rq.enqueue("exp", 1, max_age=1)
    other = rq.enqueue("other", 1, max_age=1)
    fresh = rq.enqueue("exp", 2, max_age=60_000)
    sleep(0.05)  # older than max_age
    assert rq.expire("exp") == 1
    assert [row(conn, j.id)["status"] for j in (old, other, fresh)] == ["expired", "queued", "queued"]


def test_jobs_lists_the_latest_scheduled_first(rq: Raquel) -> None:
    now = datetime.now(timezone.utc)
    rq.enqueue("a", 1, at=now - timedelta(hours=1))
    rq.enqueue("b", 2, at=now + timedelta(hours=1))
    rq.enqueue("a", 3, at=now)
    assert [j.payload for j in rq.jobs()] == [2, 3, 1]
    assert [j.payload for j in rq.jobs("a")] == [3, 1]


def test_stats_and_count_take_raquels_forms(rq: Raquel) -> None:
    for queue in ("a", "b", "c"):
        rq.enqueue(queue)
    assert set(rq.stats("a", "b")) == {"a", "b"}
    assert set(rq.stats(queue="c")) == {"c"}
    assert rq.count("a", {rq.QUEUED, rq.SUCCESS}) == 1


def test_stop_subscription_in_dequeue_records_success_and_propagates(rq: Raquel, conn: Conn) -> None:
    job = rq.enqueue("stop", 1)
    with pytest.raises(StopSubscription):
        with rq.dequeue("stop"):
            raise StopSubscription
    assert row(conn, job.id)["status"] == "success"


def test_run_subscriptions_without_any_returns(rq: Raquel) -> None:
    rq.run_subscriptions()


@pytest.fixture
def worker_role(conn: Conn) -> Iterator[str]:
    """A fresh role granted raquel_pg's worker privileges (raquel_pg/roles.sql); dropped at the end."""
    name = f"raquel_test_worker_{uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    grant_roles(conn, worker=name)
    yield name
    conn.execute(f'DROP OWNED BY "{name}"'.encode())
    conn.execute(f'DROP ROLE "{name}"'.encode())


def test_the_worker_role_may_use_raquels_calls(dsn: str, conn: Conn, worker_role: str) -> None:
    """claim, settle by id, unclaim, cancel and jobs run with the worker's grants; expire is the operator's."""
    with Raquel(make_conninfo(dsn, options=f"-c role={worker_role}")) as worker:
        first, second, waiting = [worker.enqueue("w", n) for n in range(3)]
        for _ in range(2):
            assert worker.claim("w") is not None
        assert worker.resolve(first.id, 1) is True
        assert worker.unclaim(second.id) is True
        assert worker.cancel(waiting.id) is True
        assert [j.payload for j in worker.jobs("w")] == [2, 1, 0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.expire()
    assert [row(conn, j.id)["status"] for j in (first, second, waiting)] == ["success", "queued", "cancelled"]


# --- raquel_pg: what the constructor takes -----------------------------------------


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg", "asyncpg"])
def test_sqlalchemy_url_strings_connect(dsn: str, driver: str) -> None:
    with Raquel(sqlalchemy_url(dsn, driver)) as client:
        assert (client.enqueue("url", 1)).queue == "url"


def test_sqlalchemy_url_and_engines_connect(dsn: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = sqlalchemy_url(dsn, "psycopg")
    for database in (make_url(url), create_engine(url), create_async_engine(url)):
        with Raquel(database) as client:
            assert client.count("none") == 0


@pytest.mark.parametrize("database", ["sqlite:///:memory:", "mysql+pymysql://u@h/db", 42])
def test_a_database_other_than_postgresql_is_refused(database: Any) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Raquel(database)
    assert refused.value.argument == "dsn"
