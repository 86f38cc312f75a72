"""A worker whose batched successes cannot be recorded stops claiming (the outcome backlog).

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
