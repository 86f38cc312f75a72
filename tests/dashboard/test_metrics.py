"""Prometheus metrics: the queues' gauges (dashboard /metrics, raquel-pg metrics) and a worker's own.

Every scrape is parsed with prometheus_client's own text parser.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

prometheus_client = pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel, instrument  # noqa: E402
from raquel_pg.metrics import WorkerMetrics, queue_registry  # noqa: E402

Conn = psycopg.Connection[tuple[Any, ...]]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def a_busy_queue(conn: Conn) -> None:
    for _ in range(3):
        conn.execute("SELECT raquel_enqueue('emails', 'x')")
    conn.execute("SELECT raquel_enqueue('emails', 'later', delay => 3600000)")
    conn.execute("SELECT raquel_claim(ARRAY['emails'], 'w1')")
    conn.execute("SELECT raquel_enqueue('reports', 'y', now => raquel_now_ms() - 90000)")


def test_queue_gauges_count_each_status_and_the_ready_age(dsn: str, conn: Conn) -> None:
    a_busy_queue(conn)
    got = samples(generate_latest(queue_registry(dsn)).decode())
    assert got[("raquel_up", ())] == 1
    assert got[("raquel_queue_jobs", (("queue", "emails"), ("status", "queued")))] == 3
    assert got[("raquel_queue_jobs", (("queue", "emails"), ("status", "claimed")))] == 1
    assert got[("raquel_queue_jobs", (("queue", "emails"), ("status", "success")))] == 0
    assert got[("raquel_queue_ready_jobs", (("queue", "emails"),))] == 2
    assert got[("raquel_queue_scheduled_jobs", (("queue", "emails"),))] == 1
    assert got[("raquel_queue_running_jobs", (("queue", "emails"),))] == 1
    assert got[("raquel_queue_lease_expired_jobs", (("queue", "emails"),))] == 0
    assert 90 <= got[("raquel_queue_oldest_ready_age_seconds", (("queue", "reports"),))] < 150


def test_a_paused_queue_scrapes_as_paused(dsn: str, conn: Conn) -> None:
    a_busy_queue(conn)
    conn.execute("SELECT raquel_pause_queue('emails')")
    got = samples(generate_latest(queue_registry(dsn)).decode())
    assert got[("raquel_queue_paused", (("queue", "emails"),))] == 1
    assert got[("raquel_queue_paused", (("queue", "reports"),))] == 0


def scrape(registry: CollectorRegistry) -> Samples:
    return samples(generate_latest(registry).decode())


def jobs_gauge(got: Samples, queue: str, status: str) -> float:
    return got[("raquel_queue_jobs", (("queue", queue), ("status", status)))]


def test_finished_jobs_are_counted_at_most_once_per_interval_and_live_ones_at_every_scrape(
    dsn: str, conn: Conn
) -> None:
    a_busy_queue(conn)
    registry = queue_registry(dsn, finished_every=3600)
    assert jobs_gauge(scrape(registry), "emails", "success") == 0  # the first scrape counts them
    conn.execute(
        "SELECT raquel_complete(id, claim_id) FROM raquel_claim(ARRAY['emails'], 'w2', batch => 2)"
    )  # two waiting jobs finish: a live change and a finished one
    conn.execute("SELECT raquel_pause_queue('reports')")
    got = scrape(registry)
    assert jobs_gauge(got, "emails", "queued") == 1 and jobs_gauge(got, "emails", "claimed") == 1
    assert got[("raquel_queue_ready_jobs", (("queue", "emails"),))] == 0
    assert got[("raquel_queue_paused", (("queue", "reports"),))] == 1
    assert jobs_gauge(got, "emails", "success") == 0  # as last counted
    assert jobs_gauge(scrape(queue_registry(dsn, finished_every=0)), "emails", "success") == 2


def test_a_queue_with_only_finished_jobs_keeps_its_counts_between_two_counts(dsn: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('done', 'x')")
    conn.execute("SELECT raquel_complete(id, claim_id) FROM raquel_claim(ARRAY['done'], 'w')")
    registry = queue_registry(dsn, finished_every=3600)
    first, second = scrape(registry), scrape(registry)
    assert jobs_gauge(first, "done", "success") == jobs_gauge(second, "done", "success") == 1
    assert jobs_gauge(second, "done", "queued") == 0


def test_a_role_that_may_not_count_every_status_gets_the_waiting_and_running_ones(dsn: str, conn: Conn) -> None:
    role = f"raquel_test_metrics_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    conn.execute(f'GRANT EXECUTE ON FUNCTION raquel.raquel_queue_overview TO "{role}"'.encode())
    try:
        a_busy_queue(conn)
        registry = queue_registry(make_conninfo(dsn, options=f"-c role={role}"), finished_every=0)
        got = scrape(registry)
        assert jobs_gauge(got, "emails", "queued") == 3 and jobs_gauge(got, "emails", "claimed") == 1
        assert ("raquel_queue_jobs", (("queue", "emails"), ("status", "success"))) not in got
        assert jobs_gauge(scrape(registry), "emails", "queued") == 3  # and again: it never counted
    finally:
        conn.execute(f'DROP OWNED BY "{role}"'.encode())
        conn.execute(f'DROP ROLE "{role}"'.encode())


def test_metrics_refuses_a_negative_finished_every(dsn: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "metrics", "--finished-every", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--finished-every: must be >= 0 seconds" in done.stderr


def test_an_unreachable_database_scrapes_as_down(dsn: str) -> None:
    got = samples(generate_latest(queue_registry("postgresql://nobody@127.0.0.1:1/none")).decode())
    assert got == {("raquel_up", ()): 0}


def test_the_dashboard_serves_the_same_gauges(dsn: str, conn: Conn) -> None:
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")
    from dashboard_support import request, running_dashboard

    a_busy_queue(conn)
    with running_dashboard(dsn) as base:
        answer = request(base, "GET", "/metrics")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert got[("raquel_queue_ready_jobs", (("queue", "emails"),))] == 2


def test_raquel_pg_metrics_serves_them_on_its_port(dsn: str, conn: Conn) -> None:
    from dashboard_support import free_port

    a_busy_queue(conn)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "metrics", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert f"metrics on http://127.0.0.1:{port}/metrics" in process.stderr.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            got = samples(response.read().decode())
        assert got[("raquel_queue_jobs", (("queue", "emails"), ("status", "claimed")))] == 1
    finally:
        process.terminate()
        process.wait(30)


# --- a worker's own metrics -----------------------------------------------------------


@pytest.fixture
def worker_metrics() -> Iterator[tuple[WorkerMetrics, CollectorRegistry]]:
    """A WorkerMetrics on a private registry, installed for the test only."""
    registry = CollectorRegistry()
    observer = WorkerMetrics(registry)
    previous = instrument.install(observer)
    yield observer, registry
    instrument.install(previous)


def waiting(conn: Conn) -> bool:
    """Whether a worker waits, registered to take hand-offs (it registers before its LISTEN
    connection is up too, without a listener)."""
    row = conn.execute("SELECT count(*) FROM raquel_waiters WHERE listener_pid IS NOT NULL").fetchone()
    return row != (0,)


def listener_pids(conn: Conn) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN raquel_jobs'"
        )
    ]


def check_worker_samples(registry: CollectorRegistry) -> None:
    got = samples(generate_latest(registry).decode())
    assert got[("raquel_worker_jobs_total", (("outcome", "complete"), ("queue", "emails"), ("status", "success")))] == 1
    assert got[("raquel_worker_jobs_total", (("outcome", "fail"), ("queue", "emails"), ("status", "exhausted")))] == 1
    # A job handed to the worker while it runs the other is handed back (a release, an outcome
    # with its duration) and claimed again (a second batch entry): a race of the two enqueues.
    released = got.get(
        ("raquel_worker_jobs_total", (("outcome", "release"), ("queue", "emails"), ("status", "queued"))), 0
    )
    assert released in (0, 1)
    assert got[("raquel_worker_job_duration_seconds_count", (("queue", "emails"),))] == 2 + released
    assert got[("raquel_worker_claim_batch_size_count", ())] >= 2
    assert got[("raquel_worker_claim_batch_size_sum", ())] == 2 + released
    assert got[("raquel_worker_notifications_total", ())] >= 1
    # The listener killed once; CI on PostgreSQL 15 counted 2 once (a second reconnect, cause not
    # found: see the session note of issue 23).
    assert got[("raquel_worker_reconnects_total", ())] >= 1


def test_a_sync_worker_counts_outcomes_durations_claims_notifications_and_reconnects(
    rq: Raquel, conn: Conn, worker_metrics: tuple[WorkerMetrics, CollectorRegistry]
) -> None:
    @rq.subscribe("emails", poll_interval=0.2)
    def handler(job: Job) -> None:
        if job.payload == "bad":
            raise ValueError("bad payload")

    thread = threading.Thread(target=handler.run)
    thread.start()
    try:
        wait_until(lambda: handler.listening and waiting(conn))
        conn.execute("SELECT raquel_enqueue('emails', 'good')")  # wakes it by NOTIFY
        conn.execute("SELECT raquel_enqueue('emails', 'bad', max_retry_count => 0)")
        wait_until(
            lambda: (
                conn.execute("SELECT count(*) FROM raquel_jobs WHERE status IN ('success', 'exhausted')").fetchone()
                == (2,)
            )
        )
        for pid in listener_pids(conn):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(
            lambda: (
                samples(generate_latest(worker_metrics[1]).decode()).get(("raquel_worker_reconnects_total", ()), 0) >= 1
            )
        )
    finally:
        handler.stop()
        thread.join(30)
    check_worker_samples(worker_metrics[1])


async def test_an_async_worker_counts_outcomes_durations_claims_notifications_and_reconnects(
    arq: AsyncRaquel, conn: Conn, worker_metrics: tuple[WorkerMetrics, CollectorRegistry]
) -> None:
    @arq.subscribe("emails", poll_interval=0.2)
    async def handler(job: AsyncJob) -> None:
        if job.payload == "bad":
            raise ValueError("bad payload")

    async def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 15
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)

    task = asyncio.create_task(handler.run())
    try:
        await until(lambda: handler.listening and waiting(conn))
        conn.execute("SELECT raquel_enqueue('emails', 'good')")
        conn.execute("SELECT raquel_enqueue('emails', 'bad', max_retry_count => 0)")
        await until(
            lambda: (
                conn.execute("SELECT count(*) FROM raquel_jobs WHERE status IN ('success', 'exhausted')").fetchone()
                == (2,)
            )
        )
        for pid in listener_pids(conn):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await until(
            lambda: (
                samples(generate_latest(worker_metrics[1]).decode()).get(("raquel_worker_reconnects_total", ()), 0) >= 1
            )
        )
    finally:
        handler.stop()
        await task
    check_worker_samples(worker_metrics[1])


def test_raquel_pg_worker_metrics_port_serves_the_workers_metrics(dsn: str, conn: Conn, tmp_path: Path) -> None:
    from dashboard_support import free_port

    (tmp_path / "metrics_tasks.py").write_text("def handle(job):\n    pass\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RAQUEL_PG_DSN", "DATABASE_URL")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "raquel_pg",
            "--dsn",
            dsn,
            "worker",
            "metrics_tasks:handle",
            "--queue",
            "m",
            "--metrics-port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        conn.execute("SELECT raquel_enqueue('m', 'x')")
        wait_until(lambda: conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("success",), 30)

        def scraped() -> Samples:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    return samples(response.read().decode())
            except OSError:
                return {}

        wait_until(
            lambda: (
                scraped().get(
                    ("raquel_worker_jobs_total", (("outcome", "complete"), ("queue", "m"), ("status", "success")))
                )
                == 1
            )
        )
    finally:
        process.terminate()
        process.wait(30)
