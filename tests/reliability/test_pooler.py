# WARNING: this file is generated from test_pooler_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_pooler_async.py and run `python tools/async_to_sync.py`.

"""Behind PgBouncer in transaction mode (issue 19): every call through the pooler, LISTEN direct.

A real PgBouncer (``pool_mode = transaction``, 10 server connections) stands
in front of the test server (the ``pgbouncer_port`` fixture; these tests skip
where no pgbouncer binary is found). The client is
``Raquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False)``; one
test puts a PgBouncer in session mode, which carries LISTEN, in front instead.
Written once, for both clients: tests/reliability/test_pooler.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from raquel_pg import InvalidArgument, Job, Raquel
from raquel_pg._acompat import join, sleep, spawn

Conn = psycopg.Connection[Any]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        sleep(0.005)


@pytest.fixture
def rq(pooled_dsn: str, dsn: str) -> Iterator[Raquel]:
    """A client whose every call goes through the pooler, and whose LISTEN goes direct."""
    with Raquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False, lease=2000) as client:
        yield client


def statuses(conn: Conn) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY status").fetchall())


def test_enqueue_and_enqueue_many_through_the_pooler(rq: Raquel, conn: Conn) -> None:
    # With prepared statements (the default) these failed through the
    # pooler: "prepared statement "_pg3_1" does not exist".
    ids = [(rq.enqueue("q", f"job {n}")).id for n in range(100)]
    ids += rq.enqueue_many("q", [f"many {n}" for n in range(500)])
    assert len(set(ids)) == 600
    assert statuses(conn) == {"queued": 600}
    job = rq.get(ids[0])
    assert job is not None and job.payload == "job 0"


def test_a_transactional_enqueue_through_the_pooler_commits_or_rolls_back_with_the_caller(
    rq: Raquel, pooled_dsn: str, conn: Conn
) -> None:
    # The caller's own connection keeps psycopg's default prepare_threshold:
    # the client prepares nothing on it either.
    with psycopg.Connection.connect(pooled_dsn) as own:
        for n in range(8):
            with own.transaction():
                rq.enqueue("q", f"kept {n}", conn=own)
                rq.enqueue_many("q", ["kept too"], conn=own)
        with pytest.raises(ZeroDivisionError):
            with own.transaction():
                rq.enqueue("q", "rolled back", conn=own)
                raise ZeroDivisionError
    assert statuses(conn) == {"queued": 16}
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE payload = 'rolled back'").fetchone() == (0,)


@pytest.mark.parametrize("batch_outcomes", [False, True], ids=["immediate", "batched"])
def test_a_worker_through_the_pooler_runs_every_job_once(rq: Raquel, conn: Conn, batch_outcomes: bool) -> None:
    rq.enqueue_many("q", [str(n) for n in range(300)])
    ran: list[str] = []

    @rq.subscribe("q", concurrency=8, batch_outcomes=batch_outcomes, poll_interval=0.5)
    def handler(job: Job) -> None:
        ran.append(str(job.payload))

    run = spawn(handler.run, name="worker")
    wait_until(lambda: statuses(conn) == {"success": 300}, timeout=30)
    assert handler.listening  # the LISTEN connection is direct: its probe came back
    handler.stop()
    join([run], 10)
    assert sorted(ran) == sorted(str(n) for n in range(300))
    assert conn.execute("SELECT max(attempts) FROM raquel_jobs").fetchone() == (1,)


def test_a_worker_behind_the_pooler_is_woken_by_notify_on_its_direct_listen(rq: Raquel, pooled_dsn: str) -> None:
    started: list[float] = []

    @rq.subscribe("q", poll_interval=60)  # no polling: only NOTIFY can wake it in time
    def handler(job: Job) -> None:
        started.append(time.monotonic())

    run = spawn(handler.run, name="worker")
    wait_until(lambda: handler.listening)
    with psycopg.connect(pooled_dsn, autocommit=True, prepare_threshold=None) as producer:
        for n in range(1, 4):
            wait_until(lambda: producer.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (1,))
            producer.execute("SELECT raquel_enqueue('q', 'hi')")  # enqueued through the pooler
            committed = time.monotonic()
            wait_until(lambda: len(started) == n, timeout=5)
            assert started[-1] - committed < 1.0
    handler.stop()
    join([run], 10)


def test_a_worker_listening_through_a_session_pooler_registers_the_servers_pid_and_is_handed_jobs(
    session_pooled_dsn: str, dsn: str, conn: Conn
) -> None:
    # Behind PgBouncer the client's backend pid is PgBouncer's own: registered,
    # it named no live session and the worker was never handed a job.
    started: list[float] = []
    with Raquel(session_pooled_dsn) as client:

        @client.subscribe("q", poll_interval=60)
        def handler(job: Job) -> None:
            started.append(time.monotonic())

        run = spawn(handler.run, name="worker")
        registered = "SELECT listener_pid FROM raquel_waiters WHERE listener_pid IS NOT NULL"
        wait_until(lambda: conn.execute(registered).fetchone() is not None)
        listener = conn.execute(registered).fetchone()[0]  # type: ignore[index]
        assert conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [listener]).fetchone() == (
            "LISTEN raquel_jobs",
        )
        with psycopg.connect(dsn, autocommit=True) as watcher:
            watcher.execute("LISTEN raquel_handoff")
            job_id = conn.execute("SELECT raquel_enqueue('q', 'hi')").fetchone()[0]  # type: ignore[index]
            handed = [n.payload.split()[1] for n in watcher.notifies(timeout=5, stop_after=1)]
        wait_until(lambda: len(started) == 1)
        handler.stop()
        join([run], 10)
    assert handed == [str(job_id)]


def test_leases_are_renewed_through_the_pooler(pooled_dsn: str, dsn: str, conn: Conn) -> None:
    with Raquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False, lease=300) as client:
        client.enqueue("q", "slow")
        with client.dequeue("q") as job:
            assert job is not None
            # > 3 leases since the claim: only renewals keep it ours.
            wait_until(
                lambda: (
                    conn.execute("SELECT raquel_now_ms() >= claimed_at + 900 FROM raquel_jobs").fetchone() == (True,)
                )
            )
            claim = conn.execute("SELECT claim_id, lease_expires_at > raquel_now_ms() FROM raquel_jobs").fetchone()
            assert claim == (job.claim_id, True)
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 1)


def test_a_job_of_a_dead_worker_is_rescued_through_the_pooler(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q", "orphan")).id
    # A worker that claimed it with a 50 ms lease and died.
    conn.execute("SELECT id FROM raquel_claim(ARRAY['q'], 'dead worker', 1, 50)")
    wait_until(lambda: conn.execute("SELECT lease_expires_at < raquel_now_ms() FROM raquel_jobs").fetchone() == (True,))
    with rq.dequeue("q") as job:
        assert job is not None and job.id == job_id
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 2)


def test_schedules_fire_through_the_pooler(rq: Raquel, no_schedules: str, conn: Conn) -> None:
    rq.schedule("tick", "q", "tock", every=60_000, first_run_at=0)
    assert [s.name for s in rq.schedules()] == ["tick"]
    fired = rq.run_schedules()
    assert len(fired) == 1 and rq.run_schedules() == []
    assert conn.execute("SELECT queue, payload FROM raquel_jobs").fetchall() == [("q", "tock")]
    assert rq.unschedule("tick")


def test_expiry_through_the_pooler_does_not_hang_on_a_session_setting(rq: Raquel, pooled_dsn: str, conn: Conn) -> None:
    # raquel_claim keeps a per-session hint (raquel.expired_at) so that claims
    # under a backlog expire stale jobs at most once a second. Through a
    # pooler that hint lives on a server connection other clients share: a
    # claim that comes back short still expires at once.
    with psycopg.connect(pooled_dsn, autocommit=True, prepare_threshold=None) as other:
        other.execute("SELECT set_config('raquel.expired_at', raquel_now_ms()::text, false)")
    conn.execute("SELECT raquel_enqueue('q', 'stale', max_age => 1)")
    wait_until(lambda: conn.execute("SELECT raquel_now_ms() > enqueued_at + 1 FROM raquel_jobs").fetchone() == (True,))
    with rq.dequeue("q") as job:
        assert job is None
    assert statuses(conn) == {"expired": 1}


def test_prepared_statements_and_listen_dsn_are_checked(dsn: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        Raquel(dsn, prepared_statements="no")  # type: ignore[arg-type]
    assert error.value.argument == "prepared_statements"
    with pytest.raises(InvalidArgument) as error:
        Raquel(dsn, listen_dsn=5432)  # type: ignore[arg-type]
    assert error.value.argument == "listen_dsn"


def test_listen_dsn_defaults_to_the_environment(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAQUEL_PG_LISTEN_DSN", "postgresql://elsewhere/db")
    assert Raquel(dsn).listen_dsn == "postgresql://elsewhere/db"
    assert Raquel(dsn, listen_dsn=dsn).listen_dsn == dsn
    monkeypatch.delenv("RAQUEL_PG_LISTEN_DSN")
    assert Raquel(dsn).listen_dsn is None
