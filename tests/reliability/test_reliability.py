"""Reliability: fencing of stale owners, outcomes across dropped connections, shutdown.

Issue 4, items 2 and 5 (the worker processes of items 1 and 2 are in
test_reliability_process.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel

Conn = psycopg.Connection[tuple[Any, ...]]
FAR_FUTURE = 4_000_000_000_000  # ms since epoch, year 2096: every lease has run out by then


def drop_other_connections(conn: Conn) -> None:
    """Terminates every other session on the database: the clients' pooled connections break."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


# --- 5. stale owners are fenced ------------------------------------------------


def test_sql_outcome_of_a_stale_claim_is_refused(conn: Conn) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('q')").fetchone()[0]
    old_claim = conn.execute("SELECT claim_id FROM raquel_claim(lease => 1000)").fetchone()[0]
    # The lease runs out; a later claim rescues the job and takes it again.
    new_claim = conn.execute("SELECT claim_id FROM raquel_claim(now => %s)", (FAR_FUTURE,)).fetchone()[0]

    refused = conn.execute("SELECT raquel_complete(%s, %s)", (job_id, old_claim)).fetchone()[0]

    assert refused is None
    row = conn.execute("SELECT status, claim_id, attempts FROM raquel_jobs").fetchone()
    assert row == ("claimed", new_claim, 1)  # the rescue counted one attempt; the stale complete none


def test_python_outcome_of_a_stale_claim_is_refused_and_logged(
    rq: Raquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    rq.enqueue("q")
    with rq.dequeue("q") as job:
        assert job is not None
        conn.execute("SELECT raquel_claim(now => %s)", (FAR_FUTURE,))  # rescued and re-claimed
        with caplog.at_level(logging.WARNING, logger="raquel_pg"):
            recorded = job.fail("too late")

    assert recorded is False
    assert "claim is no longer current" in caplog.text
    assert conn.execute("SELECT status, error FROM raquel_jobs").fetchone()[0] == "claimed"


def test_stale_worker_moves_on_to_the_next_job(rq: Raquel, conn: Conn) -> None:
    rq.enqueue("q", "first")
    with rq.dequeue("q") as job:
        assert job is not None
        conn.execute("SELECT raquel_claim(now => %s)", (FAR_FUTURE,))
    rq.enqueue("q", "second")

    with rq.dequeue("q") as job:
        assert job is not None and job.payload == "second"

    assert rq.count("q", "success") == 1


# --- outcomes across dropped connections -------------------------------------


def test_outcome_is_retried_after_the_connection_drops(
    rq: Raquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    rq.enqueue("q")
    with caplog.at_level(logging.WARNING, logger="raquel_pg"), rq.dequeue("q") as job:
        assert job is not None
        drop_other_connections(conn)

    assert "complete failed" in caplog.text  # the first attempt met the dropped connection
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 1)


def test_outcome_whose_reply_was_lost_counts_as_recorded(
    rq: Raquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    rq.enqueue("q")
    with caplog.at_level(logging.INFO, logger="raquel_pg"), rq.dequeue("q") as job:
        assert job is not None
        # What a lost reply leaves behind: the call committed, the client never heard.
        conn.execute("SELECT raquel_complete(%s, %s)", (job.id, job.claim_id))
        drop_other_connections(conn)
        recorded = job._settle("complete")

    assert "recorded by an attempt whose reply was lost" in caplog.text
    assert recorded is True and job.status == "success"
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 1)


def test_outcome_is_not_retried_past_the_lease(dsn: str, conn: Conn) -> None:
    with Raquel(dsn, lease=30) as short:
        short.enqueue("q")
        job = short._claim(["q"], None, 1)[0]
        short._leases.discard(job)
        conn.execute("SELECT pg_sleep(0.05)")
        drop_other_connections(conn)
        with pytest.raises(psycopg.OperationalError):
            job._settle("complete")

    assert conn.execute("SELECT status FROM raquel_jobs").fetchone()[0] == "claimed"


# --- 2. graceful shutdown (in process) ---------------------------------------


async def test_stop_lets_a_running_job_finish_within_the_grace_period(arq: AsyncRaquel, conn: Conn) -> None:
    started = asyncio.Event()

    async def handler(job: AsyncJob) -> None:
        started.set()
        await asyncio.sleep(0.5)

    worker = arq.subscribe("q", grace_period=5)(handler)
    await arq.enqueue("q")
    await arq.enqueue("q", delay=0)
    run = asyncio.create_task(worker.run())
    await started.wait()
    worker.stop()
    await asyncio.wait_for(run, 5)

    statuses = sorted(r[0] for r in conn.execute("SELECT status FROM raquel_jobs"))
    assert statuses == ["queued", "success"]  # the running job finished; no new claim


async def test_job_running_past_the_grace_period_is_handed_back(arq: AsyncRaquel, conn: Conn) -> None:
    started = asyncio.Event()

    async def handler(job: AsyncJob) -> None:
        started.set()
        await asyncio.sleep(60)

    worker = arq.subscribe("q", grace_period=0.3)(handler)
    await arq.enqueue("q")
    run = asyncio.create_task(worker.run())
    await started.wait()
    worker.stop()
    await asyncio.wait_for(run, 5)

    assert conn.execute("SELECT status, attempts, claimed_by FROM raquel_jobs").fetchone() == ("queued", 0, None)


async def test_abort_cuts_the_grace_period_short(arq: AsyncRaquel, conn: Conn) -> None:
    started = asyncio.Event()

    async def handler(job: AsyncJob) -> None:
        started.set()
        await asyncio.sleep(60)

    worker = arq.subscribe("q", grace_period=60)(handler)
    await arq.enqueue("q")
    run = asyncio.create_task(worker.run())
    await started.wait()
    worker.stop()
    deadline = time.monotonic() + 10
    while worker.listening:  # it stopped listening: in its grace period, waiting for the job
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)
    worker.abort()
    await asyncio.wait_for(run, 5)

    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("queued", 0)


def test_jobs_claimed_while_stopping_are_handed_back_unstarted(
    rq: Raquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[Job] = []
    worker = rq.subscribe("q", concurrency=3)(ran.append)
    for _ in range(3):
        rq.enqueue("q")
    claim = rq.job_calls.claim

    def claim_then_stop(*args: Any, **kwargs: Any) -> list[Job]:
        jobs = claim(*args, **kwargs)  # really claims, in the database
        worker.stop()  # as if SIGTERM arrived while the claim was in flight
        return jobs

    monkeypatch.setattr(rq.job_calls, "claim", claim_then_stop)
    worker.run()

    assert ran == []
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'queued' AND attempts = 0").fetchone()[0] == 3


def test_claimed_jobs_start_even_when_the_next_call_fails(
    rq: Raquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the restart test: the claim succeeded, the server went down
    # before the worker's next call, and the claimed job was dropped, its
    # lease renewed for ever and its handler never run.
    def handler(job: Job) -> None:
        worker.stop()

    def server_gone(*args: Any) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    worker = rq.subscribe("q", concurrency=2)(handler)
    rq.enqueue("q")
    monkeypatch.setattr(rq.job_calls, "next_due", server_gone)
    safety = threading.Timer(5, worker.stop)  # with the bug, nothing else would stop it
    safety.start()
    worker.run()
    safety.cancel()

    assert conn.execute("SELECT status FROM raquel_jobs").fetchone()[0] == "success"
