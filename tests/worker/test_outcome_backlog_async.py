"""A worker whose batched successes cannot be recorded stops claiming (the outcome backlog), and a
success the database refuses costs only its own job.

Written once, for both clients: tests/worker/test_outcome_backlog.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client. The handler is a plain function (a
thread in both workers).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from raquel_pg import AsyncJob, AsyncRaquel, executor_async
from raquel_pg._acompat import ajoin, asleep, aspawn

Conn = psycopg.Connection[Any]

#: The backlog limit these tests set (the worker's own is 5,000).
LIMIT = 20


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asleep(0.01)


def counts(conn: Conn) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1").fetchall())


async def test_a_flush_held_up_stops_the_claims_at_the_backlog_limit_and_its_return_resumes_them(
    dsn: str, conn: Conn, monkeypatch: Any
) -> None:
    monkeypatch.setattr(executor_async, "OUTCOME_BACKLOG", LIMIT)
    locked = threading.Event()
    async with AsyncRaquel(dsn) as arq:  # a lease of 60 s: none runs out while the flush waits
        first = (await arq.enqueue("q", "first")).id
        await arq.enqueue_many("q", ["x"] * 200)

        # poll_interval 60: only the flush's return can wake the producer within the test.
        @arq.subscribe("q", concurrency=2, poll_interval=60)
        def handler(job: AsyncJob) -> None:
            if job.id == first:
                assert locked.wait(10)

        run = aspawn(handler.run, name="worker")
        with psycopg.connect(dsn) as locker:
            # The first job's row locked while it runs: the flush that records its success waits.
            await until(lambda: counts(conn).get("claimed", 0) > 0)
            locker.execute("SELECT 1 FROM raquel_jobs WHERE id = %s FOR UPDATE", (first,))
            locked.set()
            # Its runners go idle with jobs still queued: the worker stopped claiming.
            await until(lambda: handler.running == 0 and counts(conn).get("claimed", 0) > LIMIT)
            held = counts(conn)
            assert held.get("queued", 0) > 0
            # Its claimed rows: the successes not recorded, at most the limit plus its two slots.
            assert held["claimed"] <= LIMIT + 2
            locker.rollback()
        # The flush returns, and the worker claims and runs the rest.
        await until(lambda: counts(conn) == {"success": 201})
        handler.stop()
        await ajoin([run], 10)


async def test_a_success_the_database_refuses_leaves_the_others_of_its_batch_recorded(dsn: str, conn: Conn) -> None:
    # A trigger of the user's that refuses one job's success: the batch that holds it fails whole.
    conn.execute(
        "CREATE FUNCTION public.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'poison refused'; END $$"
    )
    conn.execute(
        "CREATE TRIGGER refuse_poison BEFORE UPDATE ON raquel.raquel_jobs FOR EACH ROW "
        "WHEN (NEW.payload = 'poison' AND NEW.status = 'success') EXECUTE FUNCTION public.refuse_poison()"
    )
    try:
        async with AsyncRaquel(dsn) as arq:
            poison = (await arq.enqueue("q", "poison")).id
            await arq.enqueue_many("q", ["ok"] * 30)
            ran: list[str] = []

            @arq.subscribe("q", concurrency=4, prefetch=40)  # one claim takes them all: one batch or a few
            def handler(job: AsyncJob) -> None:
                ran.append(job.payload)

            run = aspawn(handler.run, name="worker")
            await until(lambda: counts(conn).get("success", 0) == 30)
            assert conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (poison,)).fetchone() == ("claimed",)
            assert sorted(ran) == ["ok"] * 30 + ["poison"]
            handler.stop()
            await ajoin([run], 10)
    finally:
        conn.execute("DROP TRIGGER refuse_poison ON raquel.raquel_jobs")
        conn.execute("DROP FUNCTION public.refuse_poison()")
