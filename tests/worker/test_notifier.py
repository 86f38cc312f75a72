# WARNING: this file is generated from test_notifier_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_notifier_async.py and run `python tools/async_to_sync.py`.

"""One LISTEN connection per client, proved to hear its notifications (issue 19).

Written once, for both clients: tests/worker/test_notifier.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import psycopg
import pytest

from raquel_pg import Job, Raquel, Worker, notifier
from raquel_pg._acompat import Event, join, sleep, spawn
from raquel_pg.job import JobCalls
from raquel_pg.producer import Producer

Conn = psycopg.Connection[Any]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        sleep(0.005)


def listeners(conn: Conn) -> int:
    count: int = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN raquel_jobs'"
        # A server connection of the tests' PgBouncer keeps showing a LISTEN sent through it while it
        # idles in the pool (tests/conftest.py, POOLED_APPLICATION): not a client's listener.
        " AND application_name <> 'raquel_pg tests via pgbouncer'"
    ).fetchone()[0]
    return count


def recorder(rq: Raquel, queue: str, started: dict[str, list[float]]) -> Worker:
    @rq.subscribe(queue, poll_interval=60)  # no polling: only NOTIFY wakes it in time
    def handler(job: Job) -> None:
        started.setdefault(queue, []).append(time.monotonic())

    return handler


def test_the_workers_of_a_client_share_one_listen_connection_and_each_hears_its_queues(rq: Raquel, conn: Conn) -> None:
    # An earlier test's LISTEN backend may still be exiting after its client closed.
    wait_until(lambda: listeners(conn) == 0)
    started: dict[str, list[float]] = {}
    workers = [recorder(rq, f"q{n}", started) for n in range(20)]
    runs = [spawn(w.run, name=f"worker {n}") for n, w in enumerate(workers)]
    wait_until(lambda: all(w.listening for w in workers))
    assert listeners(conn) == 1
    for n in (3, 17, 3):
        queue = f"q{n}"
        before = len(started.get(queue, []))
        wait_until(
            lambda: (
                conn.execute("SELECT count(*) FROM raquel_waiters WHERE queues = ARRAY[%s::text]", [queue]).fetchone()
                == (1,)
            )
        )
        conn.execute("SELECT raquel_enqueue(%s, 'hi')", [queue])
        committed = time.monotonic()
        wait_until(lambda: len(started.get(queue, [])) == before + 1, timeout=5)
        assert started[queue][-1] - committed < 1.0
    assert sorted(started) == ["q17", "q3"] and len(started["q3"]) == 2
    for w in workers:
        w.stop()
    join(runs, 10)
    wait_until(lambda: listeners(conn) == 0)  # the last worker to stop closed it


def test_a_listen_that_hears_nothing_is_reported_once_and_the_worker_polls(
    pooled_dsn: str, conn: Conn, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LISTEN through a transaction pooler: the LISTEN lands on a server
    # connection that goes back to the pool; nothing reaches the client.
    caplog.set_level(logging.DEBUG, logger="raquel_pg.worker")
    monkeypatch.setattr(notifier, "PROBE_TIMEOUT", 0.3)
    ran: list[str] = []
    with Raquel(pooled_dsn, prepared_statements=False, lease=2000) as client:

        @client.subscribe("q", poll_interval=0.2)
        def handler(job: Job) -> None:
            ran.append(str(job.payload))

        run = spawn(handler.run, name="worker")
        wait_until(lambda: "set listen_dsn" in caplog.text)
        assert not handler.listening
        for n in range(3):
            conn.execute("SELECT raquel_enqueue('q', %s)", [str(n)])
            wait_until(lambda: len(ran) == n + 1, timeout=5)  # found by polling
        # It tries again (new connection, new probe) and stays quiet about it.
        wait_until(lambda: caplog.text.count("the probe did not come back") >= 2)
        assert not handler.listening
        handler.stop()
        join([run], 10)
    warnings = [r for r in caplog.records if "notifications do not reach the LISTEN connection" in r.getMessage()]
    assert len(warnings) == 1
    assert "a transaction pooler? set listen_dsn" in warnings[0].getMessage()


def test_a_direct_listen_connection_is_heard_and_says_nothing(rq: Raquel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")

    @rq.subscribe("q", poll_interval=60)
    def handler(job: Job) -> None:
        pass

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    handler.stop()
    join([run], 10)
    assert not handler.listening
    assert caplog.records == []


def idle_worker(rq: Raquel, conn: Conn, started: dict[str, list[float]]) -> tuple[Worker, Any]:
    """A recorder of queue q, running (the task or thread returned), once registered to accept hand-offs."""
    worker = recorder(rq, "q", started)
    run = spawn(worker.run, name="worker")
    wait_until(
        lambda: conn.execute("SELECT count(*) FROM raquel_waiters WHERE listener_pid IS NOT NULL").fetchone() == (1,)
    )
    return worker, run


def test_an_idle_worker_is_handed_the_job_its_enqueue_commits_and_runs_it_once(
    rq: Raquel, conn: Conn, dsn: str
) -> None:
    started: dict[str, list[float]] = {}
    worker, run = idle_worker(rq, conn, started)
    with psycopg.connect(dsn, autocommit=True) as watcher:
        watcher.execute("LISTEN raquel_handoff")
        job_id = conn.execute("SELECT raquel_enqueue('q', 'hi')").fetchone()[0]  # type: ignore[index]
        wait_until(lambda: len(started.get("q", [])) == 1)
        handed = [n.payload.split()[1] for n in watcher.notifies(timeout=1, stop_after=1)]
    assert handed == [str(job_id)]
    wait_until(
        lambda: conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", [job_id]).fetchone() == ("success",)
    )
    assert conn.execute(
        "SELECT attempts, claimed_at IS NOT NULL FROM raquel_jobs WHERE id = %s", [job_id]
    ).fetchone() == (
        1,
        True,
    )
    worker.stop()
    join([run], 10)
    assert started["q"] and len(started["q"]) == 1


def test_a_hand_off_notification_sent_by_hand_with_no_job_is_ignored(rq: Raquel, conn: Conn) -> None:
    started: dict[str, list[float]] = {}
    worker, run = idle_worker(rq, conn, started)
    waiter = conn.execute("SELECT worker FROM raquel_waiters").fetchone()[0]  # type: ignore[index]
    conn.execute("SELECT pg_notify('raquel_handoff', %s)", [f"{waiter} not-a-job"])
    conn.execute("SELECT raquel_enqueue('q')")
    wait_until(lambda: len(started.get("q", [])) == 1)
    worker.stop()
    join([run], 10)


def test_a_worker_that_stops_while_an_enqueue_holds_its_registration_is_not_handed_that_job(
    rq: Raquel, conn: Conn, dsn: str
) -> None:
    started: dict[str, list[float]] = {}
    worker, run = idle_worker(rq, conn, started)
    listener_pid = conn.execute("SELECT listener_pid FROM raquel_waiters").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(dsn) as producer:  # its transaction stays open across the stop, then commits
        job_id = producer.execute("SELECT raquel_enqueue('q')").fetchone()[0]  # type: ignore[index]
        worker.stop()
        join([run], 10)
        wait_until(
            lambda: (
                conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [listener_pid]).fetchone() == (0,)
            )
        )
    row = conn.execute("SELECT status, attempts, claimed_by FROM raquel_jobs WHERE id = %s", [job_id]).fetchone()
    assert row == ("queued", 0, None)
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,)
    assert "q" not in started


def test_a_stopping_worker_ends_its_registration_before_its_running_jobs_finish(rq: Raquel, conn: Conn) -> None:
    release = [False]

    @rq.subscribe("q", concurrency=2, poll_interval=60)
    def handler(job: Job) -> None:
        while not release[0]:
            sleep(0.01)

    conn.execute("SELECT raquel_enqueue('q', 'long')")
    run = spawn(handler.run, name="worker")
    # One job running, one slot free: registered to be handed the next job.
    wait_until(
        lambda: conn.execute("SELECT count(*) FROM raquel_waiters WHERE listener_pid IS NOT NULL").fetchone() == (1,)
    )
    handler.stop()
    wait_until(lambda: conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,))
    job_id = conn.execute("SELECT raquel_enqueue('q', 'after the stop')").fetchone()[0]  # type: ignore[index]
    state = conn.execute("SELECT status, claimed_by FROM raquel_jobs WHERE id = %s", [job_id]).fetchone()
    assert handler.running == 1  # still in its grace period
    release[0] = True
    join([run], 10)
    assert state == ("queued", None)  # not handed to the stopping worker, left for another


def test_a_job_handed_to_a_worker_that_became_busy_meanwhile_is_handed_back(rq: Raquel, conn: Conn, dsn: str) -> None:
    release = [False]
    ran: list[str] = []

    @rq.subscribe("q", poll_interval=60)
    def handler(job: Job) -> None:
        ran.append(job.payload)
        while job.payload == "long" and not release[0]:
            sleep(0.01)

    run = spawn(handler.run, name="worker")
    registered = "SELECT count(*) FROM raquel_waiters WHERE listener_pid IS NOT NULL"
    wait_until(lambda: conn.execute(registered).fetchone() == (1,))
    with psycopg.connect(dsn) as producer:  # its enqueue takes the registration; it commits later
        job_id = producer.execute("SELECT raquel_enqueue('q', 'handed')").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT raquel_enqueue_many('q', ARRAY['long', 'later'])")  # the worker wakes, takes 'long'
        wait_until(lambda: ran == ["long"])
    # Handed at that commit to a worker whose one slot is busy: given back to the queue at once.
    wait_until(
        lambda: (
            conn.execute("SELECT status, claimed_by FROM raquel_jobs WHERE id = %s", [job_id]).fetchone()
            == ("queued", None)
        )
    )
    release[0] = True
    wait_until(lambda: sorted(ran) == ["handed", "later", "long"])
    handler.stop()
    join([run], 10)
    assert conn.execute("SELECT attempts FROM raquel_jobs WHERE id = %s", [job_id]).fetchone() == (1,)


class ReleasingSlots:
    """A producer's slots that start nothing: what it starts is kept, what it hands back is released."""

    def __init__(self, calls: JobCalls) -> None:
        self.calls = calls
        self.started: list[Job] = []

    @property
    def running(self) -> int:
        return len(self.started)

    def full(self) -> bool:
        return False

    def free(self) -> int:
        return 1

    def start(self, jobs: list[Job]) -> None:
        self.started += jobs

    def hand_back(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.calls.release(job)


def test_a_stopping_producer_hands_back_at_once_a_job_handed_to_it(rq: Raquel, conn: Conn, dsn: str) -> None:
    stopping = Event()
    slots = ReleasingSlots(rq.job_calls)
    producer = Producer(
        rq.job_calls, slots, stopping, queues=["q"], claim_as="w1", durable=True, lease_ms=60_000, poll_interval=60
    )
    with psycopg.connect(dsn, autocommit=True) as listening:  # plays the producer's LISTEN session
        listening.execute("LISTEN raquel_handoff")
        listening.execute("SELECT pg_advisory_lock(1903257711, pg_backend_pid())")
        conn.execute(
            "SELECT raquel_wait_begin(%s, ARRAY['q'], 600000, 'w1', 60000, %s)",
            [producer.waiter_id, listening.info.backend_pid],
        )
        job_id = conn.execute("SELECT raquel_enqueue('q')").fetchone()[0]  # type: ignore[index]
        payloads = [n.payload for n in listening.notifies(timeout=5, stop_after=1)]
    stopping.set()
    producer.handed(payloads[0])  # heard as the worker stops
    producer.unregister()
    assert slots.started == []
    row = conn.execute("SELECT status, attempts, claimed_by FROM raquel_jobs WHERE id = %s", [job_id]).fetchone()
    assert row == ("queued", 0, None)


def handed_pair(conn: Conn, listening: Conn, lease_ms: int = 60_000, payload: str = "") -> tuple[Any, Any]:
    """A job of queue q (``payload``) handed to a worker whose LISTEN session is ``listening`` (it
    takes the listener lock here): its (job id, claim id), as the raquel_handoff notification names them."""
    listening.execute("LISTEN raquel_handoff")
    listening.execute("SELECT pg_advisory_lock(1903257711, pg_backend_pid())")
    conn.execute(
        "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['q'], 600000, 'w1', %s, %s)",
        [lease_ms, listening.info.backend_pid],
    )
    conn.execute("SELECT raquel_enqueue('q', %s)", [payload])
    (handoff,) = [n.payload for n in listening.notifies(timeout=5, stop_after=1)]
    _, job_id, claim_id = handoff.split()
    return uuid.UUID(job_id), uuid.UUID(claim_id)


TAKEN = "SELECT claimed_at IS NOT NULL, lease_expires_at - raquel_now_ms() FROM raquel_jobs WHERE id = %s"


def test_a_handed_job_is_read_to_start_at_once_and_taken_once_started(rq: Raquel, conn: Conn, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        conn.execute("UPDATE raquel_jobs SET lease_expires_at = raquel_now_ms() + 40000 WHERE id = %s", [job_id])
        (job,) = rq.job_calls.handoffs.take([(job_id, claim_id)], lease_ms=60_000, claim_as="w1", queues=["q"])
        assert (job.id, job.status) == (job_id, "claimed")
        assert conn.execute(TAKEN, [job_id]).fetchone()[0] is False  # read, not taken: nothing written
        rq.job_calls.handoffs.take_started([job])
    taken, lease_left = conn.execute(TAKEN, [job_id]).fetchone()  # type: ignore[misc]
    assert taken and lease_left > 50_000  # taken, the lease renewed from the take


def test_a_handed_job_with_less_than_half_its_lease_left_is_taken_before_it_starts(
    rq: Raquel, conn: Conn, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        conn.execute("UPDATE raquel_jobs SET lease_expires_at = raquel_now_ms() + 20000 WHERE id = %s", [job_id])
        (job,) = rq.job_calls.handoffs.take([(job_id, claim_id)], lease_ms=60_000, claim_as="w1", queues=["q"])
    taken, lease_left = conn.execute(TAKEN, [job_id]).fetchone()  # type: ignore[misc]  # before it starts
    assert taken and lease_left > 50_000


def test_taking_a_started_job_whose_success_is_recorded_writes_and_logs_nothing(
    rq: Raquel, conn: Conn, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        (job,) = rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as="w1", queues=["q"])
    assert job.complete()
    rq.job_calls.handoffs.take_started([job])
    assert conn.execute("SELECT status, attempts, claimed_at FROM raquel_jobs WHERE id = %s", [job_id]).fetchone()[
        :2
    ] == ("success", 1)
    assert "handed" not in caplog.text


def test_taking_a_started_job_released_meanwhile_by_someone_else_is_logged(
    rq: Raquel, conn: Conn, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        (job,) = rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as="w1", queues=["q"])
    conn.execute("SELECT raquel_release(%s, %s)", [job_id, claim_id])
    rq.job_calls.handoffs.take_started([job])
    assert conn.execute("SELECT status, claimed_at FROM raquel_jobs WHERE id = %s", [job_id]).fetchone() == (
        "queued",
        None,
    )
    assert "no longer handed to this worker as it started" in caplog.text


@pytest.mark.parametrize(("claim_as", "queues"), [("w2", ["q"]), ("w1", ["other"])])
def test_a_notification_naming_a_job_handed_to_another_worker_gives_nothing(
    rq: Raquel, conn: Conn, dsn: str, claim_as: str, queues: list[str]
) -> None:
    # Sent by hand with the pair of a genuine hand-off to w1 of queue q: read, never started.
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        assert rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as=claim_as, queues=queues) == []
    assert conn.execute(TAKEN, [job_id]).fetchone()[0] is False


def test_a_client_takes_a_hand_off_once_whatever_the_notifications_naming_it(rq: Raquel, conn: Conn, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        job_id, claim_id = handed_pair(conn, listening)
        first = rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as="w1", queues=["q"])
        again = rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as="w1", queues=["q"])
    assert [job.id for job in first] == [job_id]
    assert again == []


def test_a_handed_job_whose_payload_cannot_be_decoded_is_set_aside_beside_the_others(
    rq: Raquel, conn: Conn, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as listening:
        bad = handed_pair(conn, listening, payload="[" * 5_000 + "]" * 5_000)
        good = handed_pair(conn, listening)
        jobs = rq.job_calls.handoffs.take([bad, good], claim_as="w1", queues=["q"])
    assert [job.id for job in jobs] == [good[0]]
    assert conn.execute(TAKEN, [good[0]]).fetchone()[0] is False  # read, to start before it is taken
    row = conn.execute("SELECT status, attempts, error FROM raquel_jobs WHERE id = %s", [bad[0]]).fetchone()
    assert row is not None and row[:2] == ("failed", 1) and "nested deeper" in row[2]
