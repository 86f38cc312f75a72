"""Behind PgBouncer in transaction mode (issue 19): every call through the pooler, LISTEN direct.

A real PgBouncer (``pool_mode = transaction``, 10 server connections) stands
in front of the test server (the ``pgbouncer_port`` fixture; these tests skip
where no pgbouncer binary is found). The client is
``AsyncRaquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False)``; one
test puts a PgBouncer in session mode, which carries LISTEN, in front instead.
Written once, for both clients: tests/reliability/test_pooler.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
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


@pytest.fixture
async def arq(pooled_dsn: str, dsn: str) -> AsyncIterator[AsyncRaquel]:
    """A client whose every call goes through the pooler, and whose LISTEN goes direct."""
    async with AsyncRaquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False, lease=2000) as client:
        yield client


def statuses(conn: Conn) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY status").fetchall())


async def test_enqueue_and_enqueue_many_through_the_pooler(arq: AsyncRaquel, conn: Conn) -> None:
    # With prepared statements (the default) these failed through the
    # pooler: "prepared statement "_pg3_1" does not exist".
    ids = [(await arq.enqueue("q", f"job {n}")).id for n in range(100)]
    ids += await arq.enqueue_many("q", [f"many {n}" for n in range(500)])
    assert len(set(ids)) == 600
    assert statuses(conn) == {"queued": 600}
    job = await arq.get(ids[0])
    assert job is not None and job.payload == "job 0"


async def test_a_transactional_enqueue_through_the_pooler_commits_or_rolls_back_with_the_caller(
    arq: AsyncRaquel, pooled_dsn: str, conn: Conn
) -> None:
    # The caller's own connection keeps psycopg's default prepare_threshold:
    # the client prepares nothing on it either.
    async with await psycopg.AsyncConnection.connect(pooled_dsn) as own:
        for n in range(8):
            async with own.transaction():
                await arq.enqueue("q", f"kept {n}", conn=own)
                await arq.enqueue_many("q", ["kept too"], conn=own)
        with pytest.raises(ZeroDivisionError):
            async with own.transaction():
                await arq.enqueue("q", "rolled back", conn=own)
                raise ZeroDivisionError
    assert statuses(conn) == {"queued": 16}
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE payload = 'rolled back'").fetchone() == (0,)


@pytest.mark.parametrize("batch_outcomes", [False, True], ids=["immediate", "batched"])
async def test_a_worker_through_the_pooler_runs_every_job_once(
    arq: AsyncRaquel, conn: Conn, batch_outcomes: bool
) -> None:
    await arq.enqueue_many("q", [str(n) for n in range(300)])
    ran: list[str] = []

    @arq.subscribe("q", concurrency=8, batch_outcomes=batch_outcomes, poll_interval=0.5)
    async def handler(job: AsyncJob) -> None:
        ran.append(str(job.payload))

    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: statuses(conn) == {"success": 300}, timeout=30)
    assert handler.listening  # the LISTEN connection is direct: its probe came back
    handler.stop()
    await ajoin([run], 10)
    assert sorted(ran) == sorted(str(n) for n in range(300))
    assert conn.execute("SELECT max(attempts) FROM raquel_jobs").fetchone() == (1,)


async def test_a_worker_behind_the_pooler_is_woken_by_notify_on_its_direct_listen(
    arq: AsyncRaquel, pooled_dsn: str
) -> None:
    started: list[float] = []

    @arq.subscribe("q", poll_interval=60)  # no polling: only NOTIFY can wake it in time
    async def handler(job: AsyncJob) -> None:
        started.append(time.monotonic())

    run = aspawn(handler.run, name="worker")
    await wait_until(lambda: handler.listening)
    with psycopg.connect(pooled_dsn, autocommit=True, prepare_threshold=None) as producer:
        for n in range(1, 4):
            await wait_until(lambda: producer.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (1,))
            producer.execute("SELECT raquel_enqueue('q', 'hi')")  # enqueued through the pooler
            committed = time.monotonic()
            await wait_until(lambda: len(started) == n, timeout=5)
            assert started[-1] - committed < 1.0
    handler.stop()
    await ajoin([run], 10)


async def test_a_worker_listening_through_a_session_pooler_registers_the_servers_pid_and_is_handed_jobs(
    session_pooled_dsn: str, dsn: str, conn: Conn
) -> None:
    # Behind PgBouncer the client's backend pid is PgBouncer's own: registered,
    # it named no live session and the worker was never handed a job.
    started: list[float] = []
    async with AsyncRaquel(session_pooled_dsn) as client:

        @client.subscribe("q", poll_interval=60)
        async def handler(job: AsyncJob) -> None:
            started.append(time.monotonic())

        run = aspawn(handler.run, name="worker")
        registered = "SELECT listener_pid FROM raquel_waiters WHERE listener_pid IS NOT NULL"
        await wait_until(lambda: conn.execute(registered).fetchone() is not None)
        listener = conn.execute(registered).fetchone()[0]  # type: ignore[index]
        assert conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [listener]).fetchone() == (
            "LISTEN raquel_jobs",
        )
        with psycopg.connect(dsn, autocommit=True) as watcher:
            watcher.execute("LISTEN raquel_handoff")
            job_id = conn.execute("SELECT raquel_enqueue('q', 'hi')").fetchone()[0]  # type: ignore[index]
            handed = [n.payload.split()[1] for n in watcher.notifies(timeout=5, stop_after=1)]
        await wait_until(lambda: len(started) == 1)
        handler.stop()
        await ajoin([run], 10)
    assert handed == [str(job_id)]


async def test_leases_are_renewed_through_the_pooler(pooled_dsn: str, dsn: str, conn: Conn) -> None:
    async with AsyncRaquel(pooled_dsn, listen_dsn=dsn, prepared_statements=False, lease=300) as client:
        await client.enqueue("q", "slow")
        async with client.dequeue("q") as job:
            assert job is not None
            # > 3 leases since the claim: only renewals keep it ours.
            await wait_until(
                lambda: (
                    conn.execute("SELECT raquel_now_ms() >= claimed_at + 900 FROM raquel_jobs").fetchone() == (True,)
                )
            )
            claim = conn.execute("SELECT claim_id, lease_expires_at > raquel_now_ms() FROM raquel_jobs").fetchone()
            assert claim == (job.claim_id, True)
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 1)


async def test_a_job_of_a_dead_worker_is_rescued_through_the_pooler(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q", "orphan")).id
    # A worker that claimed it with a 50 ms lease and died.
    conn.execute("SELECT id FROM raquel_claim(ARRAY['q'], 'dead worker', 1, 50)")
    await wait_until(
        lambda: conn.execute("SELECT lease_expires_at < raquel_now_ms() FROM raquel_jobs").fetchone() == (True,)
    )
    async with arq.dequeue("q") as job:
        assert job is not None and job.id == job_id
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 2)


async def test_schedules_fire_through_the_pooler(arq: AsyncRaquel, no_schedules: str, conn: Conn) -> None:
    await arq.schedule("tick", "q", "tock", every=60_000, first_run_at=0)
    assert [s.name for s in await arq.schedules()] == ["tick"]
    fired = await arq.run_schedules()
    assert len(fired) == 1 and await arq.run_schedules() == []
    assert conn.execute("SELECT queue, payload FROM raquel_jobs").fetchall() == [("q", "tock")]
    assert await arq.unschedule("tick")


async def test_expiry_through_the_pooler_does_not_hang_on_a_session_setting(
    arq: AsyncRaquel, pooled_dsn: str, conn: Conn
) -> None:
    # raquel_claim keeps a per-session hint (raquel.expired_at) so that claims
    # under a backlog expire stale jobs at most once a second. Through a
    # pooler that hint lives on a server connection other clients share: a
    # claim that comes back short still expires at once.
    with psycopg.connect(pooled_dsn, autocommit=True, prepare_threshold=None) as other:
        other.execute("SELECT set_config('raquel.expired_at', raquel_now_ms()::text, false)")
    conn.execute("SELECT raquel_enqueue('q', 'stale', max_age => 1)")
    await wait_until(
        lambda: conn.execute("SELECT raquel_now_ms() > enqueued_at + 1 FROM raquel_jobs").fetchone() == (True,)
    )
    async with arq.dequeue("q") as job:
        assert job is None
    assert statuses(conn) == {"expired": 1}


async def test_prepared_statements_and_listen_dsn_are_checked(dsn: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        AsyncRaquel(dsn, prepared_statements="no")  # type: ignore[arg-type]
    assert error.value.argument == "prepared_statements"
    with pytest.raises(InvalidArgument) as error:
        AsyncRaquel(dsn, listen_dsn=5432)  # type: ignore[arg-type]
    assert error.value.argument == "listen_dsn"


async def test_listen_dsn_defaults_to_the_environment(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAQUEL_PG_LISTEN_DSN", "postgresql://elsewhere/db")
    assert AsyncRaquel(dsn).listen_dsn == "postgresql://elsewhere/db"
    assert AsyncRaquel(dsn, listen_dsn=dsn).listen_dsn == dsn
    monkeypatch.delenv("RAQUEL_PG_LISTEN_DSN")
    assert AsyncRaquel(dsn).listen_dsn is None
