"""Concurrency (issue 4, item 4): 8 worker processes and 2 producer processes.

CI size: 50,000 jobs. Stress size (RAQUEL_PG_STRESS=1): 500,000. Every job
must end 'success' exactly once, counted by handler executions recorded in
raquel_test_runs, and none may be left queued or claimed.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[tuple[Any, ...]]
JOBS = 500_000 if os.environ.get("RAQUEL_PG_STRESS") else 50_000
WORKERS = 8
PRODUCERS = 2
CONCURRENCY = 16  # per worker process: it claims up to this many jobs per call
#: Producers enqueue in transactions of BATCH jobs: one NOTIFY per transaction
#: instead of one per job, which otherwise wakes all 8 workers for every job.
BATCH = 100


@pytest.mark.slow
def test_every_job_succeeds_exactly_once_under_concurrency(runs: Conn, spawn_worker: Any) -> None:
    workers = [
        spawn_worker("q", "--async", "--concurrency", str(CONCURRENCY), "--lease", "30000") for _ in range(WORKERS)
    ]
    started = time.monotonic()
    producers = [
        spawn_worker("q", "--produce", str(JOBS // PRODUCERS), "--batch", str(BATCH)) for _ in range(PRODUCERS)
    ]
    for producer in producers:
        assert producer.stdout is not None
        assert producer.stdout.readline().strip() == f"enqueued {JOBS // PRODUCERS} errors 0"
    produced = time.monotonic() - started
    deadline = time.monotonic() + 900
    while runs.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone()[0] < JOBS:
        assert time.monotonic() < deadline, "jobs still unfinished after 900 s"
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0

    print(
        f"{JOBS} jobs, {WORKERS} worker processes x {CONCURRENCY}, {PRODUCERS} producers x {BATCH}: "
        f"enqueued in {produced:.1f} s, all succeeded in {elapsed:.1f} s ({JOBS / elapsed:.0f} jobs/s)"
    )
    assert runs.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1").fetchall() == [("success", JOBS)]
    assert runs.execute("SELECT count(*), count(DISTINCT job_id) FROM raquel_test_runs").fetchone() == (JOBS, JOBS)
    assert (
        runs.execute(
            "SELECT count(*) FROM raquel_jobs j JOIN raquel_test_runs r ON r.job_id = j.id WHERE j.attempts = 1"
        ).fetchone()[0]
        == JOBS
    )
