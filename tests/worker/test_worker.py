# WARNING: this file is generated from test_worker_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_worker_async.py and run `python tools/async_to_sync.py`.

"""Workers: woken by NOTIFY, concurrent, never running a job twice.

Written once, for both clients: tests/worker/test_worker.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import InvalidArgument, Job, Raquel, Worker, completer, producer
from raquel_pg._acompat import current, join, sleep, spawn
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[Any]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        sleep(0.005)


def test_a_worker_is_woken_by_notify_for_a_job_enqueued_from_sql(rq: Raquel, dsn: str) -> None:
    started: list[float] = []

    @rq.subscribe("emails", poll_interval=60)  # no polling: only NOTIFY can wake it in time
    def handler(job: Job) -> None:
        started.append(time.monotonic())

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    with psycopg.connect(dsn, autocommit=True) as other:
        # Idle: its queue found drained, it registered as a waiter, which the enqueue's trigger notifies.
        wait_until(lambda: other.execute("SELECT count(*) FROM raquel.raquel_waiters").fetchone() != (0,))
        other.execute("SELECT raquel_enqueue('emails', 'hi')")
        committed = time.monotonic()
    wait_until(lambda: bool(started), timeout=5)
    handler.stop()
    join([run], 10)
    delay_ms = (started[0] - committed) * 1000
    print(f"\nwake-up delay, commit -> handler start: {delay_ms:.1f} ms")
    assert delay_ms < 1000


def test_a_worker_is_woken_by_notify_again_each_time_it_is_idle(rq: Raquel, conn: Conn, dsn: str) -> None:
    # Each NOTIFY consumes the worker's registration (0009): it must register
    # again after each job, or the next job would wait for the 60 s poll.
    # Two slots: each claim comes back short, so the worker never unregisters.
    started: list[float] = []

    @rq.subscribe("emails", poll_interval=60, concurrency=2)
    def handler(job: Job) -> None:
        started.append(time.monotonic())

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    delays = []
    with psycopg.connect(dsn, autocommit=True) as other:
        for n in range(1, 4):
            wait_until(lambda: conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (1,))
            other.execute("SELECT raquel_enqueue('emails', 'hi')")
            committed = time.monotonic()
            wait_until(lambda: len(started) == n, timeout=5)
            delays.append(started[-1] - committed)
    handler.stop()
    join([run], 10)
    assert max(delays) < 1.0


def test_a_worker_woken_by_a_notification_leaves_its_spent_registration_alone(
    rq: Raquel, conn: Conn, monkeypatch: Any
) -> None:
    # The enqueue that notified the worker deleted its registration (0008): the
    # woken worker, its one slot filled by the claim, has nothing to unregister
    # and makes no raquel_wait_end call before its handler runs.
    ended: list[Any] = []
    wait_end = rq.job_calls.wait_end

    def counted_wait_end(worker: Any) -> None:
        ended.append(worker)
        wait_end(worker)

    monkeypatch.setattr(rq.job_calls, "wait_end", counted_wait_end)
    # Asked once the worker has registered and made its one more claim (an
    # enqueue seen by that claim would find the registration not yet known spent).
    asked_due: list[Any] = []
    next_due = rq.job_calls.next_due

    def counted_next_due(queues: Any) -> Any:
        due = next_due(queues)
        asked_due.append(queues)
        return due

    monkeypatch.setattr(rq.job_calls, "next_due", counted_next_due)
    started: list[float] = []

    @rq.subscribe("emails", poll_interval=60)
    def handler(job: Job) -> None:
        started.append(time.monotonic())

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    wait_until(lambda: bool(asked_due))
    rq.enqueue("emails", "hi")
    wait_until(lambda: bool(started))
    # The enqueue consumed the registration before the handler ran; one now is
    # the worker's next, made once idle again: past where it would have unregistered.
    wait_until(lambda: conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (1,))
    assert ended == []
    handler.stop()
    join([run], 10)


def test_a_worker_runs_a_delayed_job_when_it_is_due(rq: Raquel, conn: Conn) -> None:
    done: list[float] = []

    @rq.subscribe("q", poll_interval=60)
    def handler(job: Job) -> None:
        done.append(time.monotonic())

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    enqueued = time.monotonic()  # before the call: the job is due 400 ms after the server stored it
    rq.enqueue("q", delay=400)
    rq.enqueue("q", "wakes the worker so it learns of the delayed job")
    wait_until(lambda: len(done) == 2, timeout=5)
    handler.stop()
    join([run], 10)
    assert 0.4 <= done[1] - enqueued < 3.0  # not early, and long before the 60 s poll


def test_a_worker_of_a_long_queue_list_runs_the_jobs_of_its_queues_only(rq: Raquel, conn: Conn) -> None:
    # More than 16 queues: the claim walks them with raquel_claim_listed (0006_claim),
    # and the worker sends its list, dumped once, with every claim and registration.
    queues = [f"q{i}" for i in range(40)]
    for name in [*queues[::13], "other"]:
        rq.enqueue(name, name)
    ran: list[str] = []

    @rq.subscribe(*queues, poll_interval=60)
    def handler(job: Job) -> None:
        ran.append(job.queue)

    run = spawn(handler.run, name="worker")
    wait_until(lambda: len(ran) == 4)
    wait_until(lambda: handler.listening)
    rq.enqueue("q39", "woken by NOTIFY")
    wait_until(lambda: len(ran) == 5)
    handler.stop()
    join([run], 10)
    assert sorted(ran) == sorted([*queues[::13], "q39"])
    assert conn.execute("SELECT queue, status FROM raquel_jobs WHERE status <> 'success'").fetchall() == [
        ("other", "queued")
    ]


def test_the_worker_records_outcomes_like_dequeue(rq: Raquel, conn: Conn) -> None:
    ok = (rq.enqueue("q", "ok")).id
    bad = (rq.enqueue("q", "bad")).id

    @rq.subscribe("q")
    def handler(job: Job) -> None:
        if job.payload == "bad":
            raise ValueError("nope")

    run = spawn(handler.run, name="worker")
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM raquel_jobs WHERE status IN ('success', 'failed')").fetchone() == (2,)
        )
    )
    handler.stop()
    join([run], 10)
    statuses = dict(conn.execute("SELECT id, status FROM raquel_jobs").fetchall())
    assert statuses == {ok: "success", bad: "failed"}


def test_two_workers_never_run_the_same_job(rq: Raquel, conn: Conn) -> None:
    runs: list[Any] = []

    def handler(job: Job) -> None:
        runs.append(job.id)

    workers = [rq.subscribe("q", concurrency=3)(handler) for _ in range(2)]
    tasks = [spawn(w.run, name=f"worker-{i}") for i, w in enumerate(workers)]
    for i in range(200):
        rq.enqueue("q", i)
    wait_until(
        lambda: conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone() == (200,),
        timeout=30,
    )
    for w in workers:
        w.stop()
    join(tasks, 10)
    assert len(runs) == len(set(runs)) == 200
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone() == (200,)


def test_concurrency_runs_n_jobs_at_once(rq: Raquel) -> None:
    running, peak = [0], [0]

    @rq.subscribe("q", concurrency=4)
    def handler(job: Job) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        sleep(0.3)
        running[0] -= 1

    for i in range(8):
        rq.enqueue("q", i)
    run = spawn(handler.run, name="worker")
    wait_until(lambda: peak[0] == 4, timeout=10)
    handler.stop()
    join([run], 10)
    assert peak[0] == 4


#: Set by the handler of test_each_job_starts_in_a_context_of_its_own.
JOB_VAR: contextvars.ContextVar[Any] = contextvars.ContextVar("job_var", default=None)


def test_each_job_starts_in_a_context_of_its_own(rq: Raquel) -> None:
    # Jobs share runners; a runner whose job set a context variable retires,
    # so no job sees what an earlier one left (as with a task per job).
    seen: list[Any] = []

    @rq.subscribe("q", concurrency=2)
    def handler(job: Job) -> None:
        seen.append(JOB_VAR.get())
        JOB_VAR.set(job.payload)

    for i in range(6):
        rq.enqueue("q", i)
    run = spawn(handler.run, name="worker")
    wait_until(lambda: len(seen) == 6, timeout=10)
    handler.stop()
    join([run], 10)
    assert seen == [None] * 6


def test_runners_are_started_as_jobs_need_them_and_kept(rq: Raquel) -> None:
    ran_on: list[Any] = []

    @rq.subscribe("q", concurrency=4)
    def handler(job: Job) -> None:
        ran_on.append(current())

    for i in range(40):
        rq.enqueue("q", i)
    run = spawn(handler.run, name="worker")
    wait_until(lambda: len(ran_on) == 40, timeout=10)
    handler.stop()
    join([run], 10)
    assert 1 <= len(set(ran_on)) <= 4  # 40 jobs, at most 4 runners, none started per job


def test_stop_lets_running_jobs_finish(rq: Raquel, conn: Conn) -> None:
    started: list[bool] = []

    @rq.subscribe("q", grace_period=5)
    def handler(job: Job) -> None:
        started.append(True)
        sleep(0.3)

    job_id = (rq.enqueue("q")).id
    run = spawn(handler.run, name="worker")
    wait_until(lambda: bool(started))
    handler.stop()
    assert join([run], 10) == 0
    assert conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == ("success",)


# --- issue 5: batched claims and outcomes ---------------------------------------


def test_the_worker_claims_all_free_slots_in_one_call_and_never_more(rq: Raquel, conn: Conn) -> None:
    release = [False]

    @rq.subscribe("q", concurrency=3)
    def handler(job: Job) -> None:
        while not release[0]:
            sleep(0.01)

    rq.enqueue_many("q", list(range(10)))
    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.running == 3)
    sleep(0.3)  # time for a wrongful second claim
    claims = conn.execute(
        "SELECT claimed_at, count(*) FROM raquel_jobs WHERE status = 'claimed' GROUP BY claimed_at"
    ).fetchall()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert [count for _, count in claims] == [3]  # one call (one claimed_at), three jobs


def test_every_job_of_one_claim_shows_its_claim_as_stored(rq: Raquel, conn: Conn) -> None:
    # The claim query sends the values its rows share (status, claimed_by, claimed_at,
    # lease_expires_at, claim_id) in one row only: each job must still show its own row's.
    seen: dict[uuid.UUID, list[Any]] = {}
    release = [False]

    @rq.subscribe("q", concurrency=5, claim_as="worker-7")
    def handler(job: Job) -> None:
        seen[job.id] = [job.status, job.claimed_by, job.claimed_at, job.lease_expires_at, job.claim_id]
        while not release[0]:
            sleep(0.01)

    rq.enqueue_many("q", list(range(5)))
    run = spawn(handler.run, name="worker")
    wait_until(lambda: len(seen) == 5)
    stored = {
        job_id: rest
        for job_id, *rest in conn.execute(
            "SELECT id, status, claimed_by, raquel_ts(claimed_at), raquel_ts(lease_expires_at), claim_id"
            " FROM raquel_jobs"
        ).fetchall()
    }
    release[0] = True
    handler.stop()
    join([run], 10)
    assert seen == stored
    assert len({shown[-1] for shown in seen.values()}) == 1  # one claim: five rows, one carrying its values


def test_prefetch_claims_ahead_runs_concurrency_at_once_and_stop_hands_the_rest_back(rq: Raquel, conn: Conn) -> None:
    release = [False]
    running = [0, 0]  # now, most at once

    @rq.subscribe("q", concurrency=2, prefetch=3, grace_period=10)
    def handler(job: Job) -> None:
        running[0] += 1
        running[1] = max(running)
        while not release[0]:
            sleep(0.01)
        running[0] -= 1

    rq.enqueue_many("q", list(range(10)))
    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.running == 5 and running[0] == 2)
    sleep(0.3)  # time for a wrongful further claim
    claimed = conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'claimed'").fetchone()
    handler.stop()
    release[0] = True
    join([run], 10)
    assert claimed == (5,) and running[1] == 2
    assert conn.execute("SELECT status, attempts, count(*) FROM raquel_jobs GROUP BY 1, 2 ORDER BY 1").fetchall() == [
        ("queued", 0, 8),
        ("success", 1, 2),
    ]


def test_prefetch_claims_again_once_half_of_it_is_free(rq: Raquel, conn: Conn) -> None:
    allowed = [0]  # jobs the handler may finish so far
    finished = [0]

    @rq.subscribe("q", concurrency=1, prefetch=4, batch_outcomes=False, grace_period=10)
    def handler(job: Job) -> None:
        while finished[0] >= allowed[0]:
            sleep(0.005)
        finished[0] += 1

    def taken() -> int:
        return conn.execute("SELECT count(*) FROM raquel_jobs WHERE status <> 'queued'").fetchone()[0]

    rq.enqueue_many("q", list(range(20)))
    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.running == 5)  # concurrency + prefetch
    allowed[0] = 1
    wait_until(lambda: handler.running == 4)
    sleep(0.3)  # time for a wrongful claim of the one free slot
    after_one = taken()
    allowed[0] = 2
    wait_until(lambda: taken() == 7)  # two free (half the prefetch): one claim of two
    handler.stop()
    allowed[0] = 20
    join([run], 10)
    assert after_one == 5
    # The third job was running at stop and finished; the four held were handed back.
    assert conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1 ORDER BY 1").fetchall() == [
        ("queued", 17),
        ("success", 3),
    ]


def claims_waiting(conn: Conn) -> int:
    """The raquel_claim calls waiting for a lock (a LOCK TABLE of the test's)."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%raquel_claim(%'"
    ).fetchone()[0]


class LateClaims:
    """A worker with ``concurrency=1, prefetch=8`` on 40 jobs of 'q', whose handler finishes a job only
    once ``allowed`` says so, and claims held up by a lock on raquel_jobs (plain reads are not)."""

    def __init__(self, rq: Raquel, conn: Conn, dsn: str) -> None:
        self.conn, self.dsn = conn, dsn
        self.allowed = 0  # jobs the handler may finish so far
        self.finished = 0

        @rq.subscribe("q", concurrency=1, prefetch=8, grace_period=10)
        def handler(job: Job) -> None:
            while self.finished >= self.allowed:
                sleep(0.005)
            self.finished += 1

        self.worker = handler

    def start(self, rq: Raquel) -> Any:
        """Enqueues the jobs and runs the worker until its first claim filled its slots."""
        rq.enqueue_many("q", list(range(40)))
        run = spawn(self.worker.run, name="worker")
        wait_until(lambda: self.worker.running == 9)  # concurrency + prefetch
        return run

    def hold_until_late(self) -> None:
        """With claims held up (``LOCK TABLE raquel_jobs IN EXCLUSIVE MODE``): lets the worker send
        a claim (half the prefetch free), then run four more jobs, so that the claim is late."""
        self.allowed += 4
        wait_until(lambda: claims_waiting(self.conn) == 1)  # half the prefetch free: a claim of four
        self.allowed += 4
        wait_until(lambda: self.finished == self.allowed)  # four more free: the claim is late

    def one_late_claim(self) -> None:
        """One late claim, then waits for the worker to hold concurrency + prefetch jobs again: once
        back, that claim's call read which workers claim 'q' (raquel_claimers) on its connection."""
        with psycopg.connect(self.dsn) as locker:
            locker.execute("LOCK TABLE raquel_jobs IN EXCLUSIVE MODE")
            self.hold_until_late()
        wait_until(lambda: self.worker.running == 9 and claims_waiting(self.conn) == 0)


def test_prefetch_two_claims_in_flight_keep_the_bound_and_stop_hands_both_back(
    rq: Raquel, conn: Conn, dsn: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(producer, "CLAIMERS_READING_STANDS", 3600.0)
    late = LateClaims(rq, conn, dsn)
    run = late.start(rq)
    late.one_late_claim()  # the worker reads that nobody else claims 'q'
    with psycopg.connect(dsn) as locker:
        locker.execute("LOCK TABLE raquel_jobs IN EXCLUSIVE MODE")
        late.hold_until_late()
        wait_until(lambda: claims_waiting(conn) == 2)  # the second claim
        # Both claims are in flight: their eight slots stay reserved (one job held, none free), no
        # third claim goes, and the worker stops with both in flight.
        assert late.worker.running == 1 and claims_waiting(conn) == 2
        late.worker.stop()
        locker.rollback()  # the claims go through, then hand back what they got
    late.allowed = 40
    join([run], 10)
    # Sixteen finished before the stop, the one running then finished; every other job, the two
    # claims' eight among them, is queued again with no attempt counted.
    assert conn.execute("SELECT status, attempts, count(*) FROM raquel_jobs GROUP BY 1, 2 ORDER BY 1").fetchall() == [
        ("queued", 0, 23),
        ("success", 1, 17),
    ]


def test_prefetch_keeps_one_claim_in_flight_while_another_worker_holds_jobs_of_its_queue(
    rq: Raquel, conn: Conn, dsn: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(producer, "CLAIMERS_READING_STANDS", 3600.0)
    conn.execute("SELECT raquel_enqueue('q', 'x')")
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['q'], 'another worker', 1)")
    late = LateClaims(rq, conn, dsn)
    run = late.start(rq)
    late.one_late_claim()  # the worker reads that another worker claims 'q'
    with psycopg.connect(dsn) as locker:
        locker.execute("LOCK TABLE raquel_jobs IN EXCLUSIVE MODE")
        late.hold_until_late()
        sleep(0.3)  # time for a wrongful second claim
        assert late.worker.running == 1 and claims_waiting(conn) == 1
        late.worker.stop()
        locker.rollback()
    late.allowed = 40
    join([run], 10)
    # The late claim's four jobs handed back; the other worker's job still its own.
    assert conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1 ORDER BY 1").fetchall() == [
        ("claimed", 1),
        ("queued", 23),
        ("success", 17),
    ]
    assert conn.execute("SELECT claimed_by FROM raquel_jobs WHERE status = 'claimed'").fetchall() == [
        ("another worker",)
    ]


def test_prefetch_keeps_two_claims_in_flight_for_a_role_not_granted_raquel_claimers(
    conn: Conn, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    # What `raquel-pg grant --worker` gave before 0028_claimers, in the engine and install schemas.
    role = f"raquel_test_worker_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    grant_roles(conn, worker=role)
    for schema in ("raquel", conn.execute("SELECT current_schema()").fetchone()[0]):
        conn.execute(
            f'REVOKE EXECUTE ON FUNCTION "{schema}".raquel_claimers(text[], text, integer) FROM "{role}"'.encode()
        )
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")
    try:
        with Raquel(make_conninfo(dsn, options=f"-c role={role}")) as rq:
            late = LateClaims(rq, conn, dsn)
            run = late.start(rq)
            late.one_late_claim()  # its reading refused: it claims as before
            with psycopg.connect(dsn) as locker:
                locker.execute("LOCK TABLE raquel_jobs IN EXCLUSIVE MODE")
                late.hold_until_late()
                wait_until(lambda: claims_waiting(conn) == 2)  # the second claim
                late.worker.stop()
                locker.rollback()
            late.allowed = 40
            join([run], 10)
    finally:
        conn.execute(f'DROP OWNED BY "{role}"'.encode())
        conn.execute(f'DROP ROLE "{role}"'.encode())
    assert caplog.text.count("granted raquel_claimers") == 1
    assert conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1 ORDER BY 1").fetchall() == [
        ("queued", 23),
        ("success", 17),
    ]


def test_prefetch_must_be_an_int_of_at_least_zero(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument, match="prefetch"):
        rq.subscribe("q", prefetch=-1)(lambda job: None)


def drain(rq: Raquel, conn: Conn, handler: Worker, jobs: int) -> None:
    """Enqueues ``jobs`` jobs on 'q' and runs ``handler`` until they all succeeded, then stops it."""
    rq.enqueue_many("q", list(range(jobs)))
    run = spawn(handler.run, name="worker")
    wait_until(lambda: conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone() == (jobs,))
    handler.stop()
    join([run], 10)


def test_batched_outcomes_record_successes_in_one_call(rq: Raquel, conn: Conn) -> None:
    @rq.subscribe("q", concurrency=10, batch_outcomes=True)
    def handler(job: Job) -> None:
        pass

    drain(rq, conn, handler, 10)
    # Each raquel_complete_many call stamps its jobs with one finished_at.
    calls = conn.execute("SELECT count(DISTINCT finished_at) FROM raquel_jobs").fetchone()[0]
    assert calls < 10


@pytest.fixture
def claim_commits(conn: Conn) -> Iterator[Any]:
    """Records synchronous_commit as each claim's transaction sees it; returns a reader."""
    conn.execute("CREATE TABLE test_claim_commits (mode text)")
    conn.execute(
        "CREATE FUNCTION test_record_claim_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN INSERT INTO public.test_claim_commits VALUES (current_setting('synchronous_commit'));"
        " RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER test_record_claim_commit AFTER UPDATE ON raquel.raquel_jobs FOR EACH ROW"
        " WHEN (NEW.status = 'claimed') EXECUTE FUNCTION test_record_claim_commit()"
    )
    try:
        yield lambda: {mode for (mode,) in conn.execute("SELECT mode FROM test_claim_commits")}
    finally:
        conn.execute("DROP TRIGGER test_record_claim_commit ON raquel.raquel_jobs")
        conn.execute("DROP FUNCTION test_record_claim_commit")
        conn.execute("DROP TABLE test_claim_commits")


def test_claims_are_durable_by_default(rq: Raquel, conn: Conn, claim_commits: Any) -> None:
    @rq.subscribe("q", concurrency=2)
    def handler(job: Job) -> None:
        pass

    drain(rq, conn, handler, 4)
    assert claim_commits() == {conn.execute("SHOW synchronous_commit").fetchone()[0]}


def test_durable_claims_false_commits_each_claim_asynchronously(rq: Raquel, conn: Conn, claim_commits: Any) -> None:
    @rq.subscribe("q", concurrency=2, durable_claims=False)
    def handler(job: Job) -> None:
        pass

    drain(rq, conn, handler, 4)
    assert claim_commits() == {"off"}
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success' AND attempts = 1").fetchone() == (4,)


def test_durable_claims_must_be_a_bool(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument, match="durable_claims"):
        rq.subscribe("q", durable_claims="no")(lambda job: None)  # type: ignore[arg-type]


def buffering_worker(
    rq: Raquel, monkeypatch: Any, *, fails: bool = False, **options: Any
) -> tuple[Worker, Any, Any, list[bool], list[bool]]:
    """A worker on queue 'q' (``options``: subscribe()'s; batch_outcomes=True unless given,
    None: left to subscribe()'s default) whose flush waits 60 s, started on one new job
    while a job enqueued before it runs until ``release[0]`` is set (a worker with nothing
    to run would flush at once).

    Returns the worker, its run handle, the job's id, the list its handler
    appends to (it raises after appending when ``fails``) and ``release``.
    """
    monkeypatch.setattr(completer, "OUTCOME_FLUSH_INTERVAL", 60.0)
    done: list[bool] = []
    release = [False]
    settings = {"batch_outcomes": True, "concurrency": 2} | options
    if settings["batch_outcomes"] is None:
        del settings["batch_outcomes"]

    @rq.subscribe("q", **settings)
    def handler(job: Job) -> None:
        if job.payload == "busy":
            while not release[0]:
                sleep(0.01)
            return
        done.append(True)
        if fails:
            raise ValueError("nope")

    rq.enqueue("q", "busy")
    job_id = (rq.enqueue("q")).id
    return handler, spawn(handler.run, name="worker"), job_id, done, release


def test_a_worker_batches_its_successes_by_default(rq: Raquel, conn: Conn, monkeypatch: Any) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch, batch_outcomes=None)
    wait_until(lambda: bool(done) and handler.running == 1)
    status = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert status == ("claimed",)  # buffered, waiting for the (held) flush
    assert conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == ("success",)


def test_batch_outcomes_false_records_each_success_before_the_slot_frees(
    rq: Raquel, conn: Conn, monkeypatch: Any
) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch, batch_outcomes=False)
    wait_until(lambda: bool(done) and handler.running == 1)
    status = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert status == ("success",)


def test_batched_successes_wait_for_the_flush_and_stop_flushes_them(rq: Raquel, conn: Conn, monkeypatch: Any) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch)
    wait_until(lambda: bool(done) and handler.running == 1)
    status = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert status == ("claimed",)
    assert conn.execute("SELECT status, attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == (
        "success",
        1,
    )


def test_a_worker_with_nothing_else_to_run_records_its_batched_success_at_once(
    rq: Raquel, conn: Conn, monkeypatch: Any
) -> None:
    monkeypatch.setattr(completer, "OUTCOME_FLUSH_INTERVAL", 60.0)

    @rq.subscribe("q")  # successes batched (the default)
    def handler(job: Job) -> None:
        pass

    job_id = (rq.enqueue("q")).id
    run = spawn(handler.run, name="worker")
    # Not held for the flush interval: no other job runs and the queue is empty.
    wait_until(
        lambda: conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == ("success",)
    )
    handler.stop()
    join([run], 10)


def test_a_buffered_success_keeps_its_lease_renewed(rq: Raquel, conn: Conn, monkeypatch: Any) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch)
    wait_until(lambda: bool(done))
    first = conn.execute("SELECT lease_expires_at FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()[0]

    def renewed() -> bool:  # the first lease has run out, and the lease was renewed past it
        return conn.execute(
            "SELECT raquel_now_ms() > %s AND lease_expires_at > %s FROM raquel_jobs WHERE id = %s",
            (first, first + 1000, job_id),
        ).fetchone() == (True,)

    wait_until(renewed, timeout=10)
    row = conn.execute("SELECT status, lease_expires_at FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert row[0] == "claimed" and row[1] > first + 1000
    assert conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == ("success",)


def test_a_buffered_success_is_fenced_by_its_claim(rq: Raquel, conn: Conn, monkeypatch: Any) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch)
    wait_until(lambda: bool(done))
    # As if the lease had run out and another worker had claimed the job.
    conn.execute("UPDATE raquel_jobs SET claim_id = gen_random_uuid(), claimed_by = 'other' WHERE id = %s", (job_id,))
    release[0] = True
    handler.stop()
    join([run], 10)
    assert conn.execute("SELECT status, claimed_by, attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == (
        "claimed",
        "other",
        0,
    )


def test_batched_outcomes_still_record_a_failure_at_once(rq: Raquel, conn: Conn, monkeypatch: Any) -> None:
    handler, run, job_id, done, release = buffering_worker(rq, monkeypatch, fails=True)
    wait_until(lambda: bool(done) and handler.running == 1)
    status = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    release[0] = True
    handler.stop()
    join([run], 10)
    assert status == ("failed",)
