"""Reliability with real worker processes: kill -9, slow jobs, SIGTERM/SIGINT.

Issue 4, items 1 and 2. Workers run tests/reliability/reliability_worker.py with a 1 s
lease; every handler execution is a row in raquel_test_runs.
"""

from __future__ import annotations

import json
import select
import signal
import time
from typing import Any

import psycopg
import pytest

from raquel_pg import Raquel

Conn = psycopg.Connection[tuple[Any, ...]]
LEASE_MS = 1000


def wait_for_line(process: Any, expected: str, timeout: float = 15.0) -> None:
    """The next line ``process`` prints is ``expected``, within ``timeout`` seconds."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"{expected!r} not printed within {timeout} s"
    assert process.stdout.readline().strip() == expected


def wait_for(conn: Conn, query: str, expected: Any, timeout: float = 15.0) -> float:
    """Polls ``query`` until it returns ``expected``; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        value = conn.execute(query).fetchone()[0]
        if value == expected:
            return time.monotonic()
        assert time.monotonic() < deadline, f"{query!r} still {value!r}, expected {expected!r}"
        time.sleep(0.02)


def enqueue_sleeping(conn: Conn, seconds: float) -> Any:
    return conn.execute("SELECT raquel_enqueue('q', %s)", (json.dumps({"sleep": seconds}),)).fetchone()[0]


# --- 1. kill -9 mid-job --------------------------------------------------------


def test_job_of_a_killed_worker_is_rescued_and_succeeds_once(runs: Conn, spawn_worker: Any) -> None:
    job_id = enqueue_sleeping(runs, 3600)
    doomed = spawn_worker("q", "--lease", str(LEASE_MS))
    wait_for(runs, "SELECT count(*) FROM raquel_test_runs", 1)
    runs.execute("UPDATE raquel_jobs SET payload = '{\"sleep\": 0}'")  # the rerun is quick
    spawn_worker("q", "--lease", str(LEASE_MS))  # the rescuer, idle and listening before the kill
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()

    done_at = wait_for(runs, "SELECT status FROM raquel_jobs", "success")

    rescue = done_at - killed_at
    print(f"rescue after kill -9 with a {LEASE_MS} ms lease: {rescue:.2f} s")
    assert rescue < LEASE_MS / 1000 + 2.0  # bounded by the lease (+ worker start-up, polling)
    row = runs.execute("SELECT status, attempts, error FROM raquel_jobs").fetchone()
    assert row[0:2] == ("success", 2)  # the killed run counted as one failed attempt
    executions = runs.execute("SELECT job_id, count(DISTINCT pid) FROM raquel_test_runs GROUP BY 1").fetchall()
    assert executions == [(job_id, 2)]


def test_slow_worker_keeps_its_job_while_it_runs(runs: Conn, spawn_worker: Any, dsn: str) -> None:
    enqueue_sleeping(runs, 3 * LEASE_MS / 1000)  # three leases long
    spawn_worker("q", "--lease", str(LEASE_MS))
    wait_for(runs, "SELECT count(*) FROM raquel_test_runs", 1)

    with Raquel(dsn, lease=LEASE_MS) as rival:
        deadline = time.monotonic() + 3 * LEASE_MS / 1000
        while time.monotonic() < deadline:
            with rival.dequeue("q") as stolen:
                assert stolen is None
            time.sleep(0.1)
    wait_for(runs, "SELECT status FROM raquel_jobs", "success")

    assert runs.execute("SELECT attempts FROM raquel_jobs").fetchone()[0] == 1
    assert runs.execute("SELECT count(*) FROM raquel_test_runs").fetchone()[0] == 1


# --- 2. graceful shutdown on signals -------------------------------------------


def stop_signal_lets_the_running_job_finish(
    runs: Conn, spawn_worker: Any, signum: signal.Signals, *options: str
) -> None:
    running = enqueue_sleeping(runs, 1.0)
    worker = spawn_worker("q", "--grace", "10", *options)
    wait_for(runs, "SELECT count(*) FROM raquel_test_runs", 1)
    enqueue_sleeping(runs, 0)  # waits while the only slot is busy
    worker.send_signal(signum)
    enqueue_sleeping(runs, 0)  # arrives after the signal

    assert worker.wait(10) == 0
    rows = runs.execute("SELECT id = %s, status, attempts FROM raquel_jobs ORDER BY 1", (running,)).fetchall()
    assert rows == [(False, "queued", 0), (False, "queued", 0), (True, "success", 1)]


def test_sigterm_lets_the_running_job_finish_sync(runs: Conn, spawn_worker: Any) -> None:
    stop_signal_lets_the_running_job_finish(runs, spawn_worker, signal.SIGTERM)


def test_sigint_lets_the_running_job_finish_async(runs: Conn, spawn_worker: Any) -> None:
    stop_signal_lets_the_running_job_finish(runs, spawn_worker, signal.SIGINT, "--async")


def test_second_signal_stops_the_sync_worker_at_once(runs: Conn, spawn_worker: Any) -> None:
    enqueue_sleeping(runs, 3600)
    worker = spawn_worker("q", "--grace", "3600", "--lease", str(LEASE_MS))
    wait_for(runs, "SELECT count(*) FROM raquel_test_runs", 1)
    worker.send_signal(signal.SIGTERM)
    wait_for_line(worker, "stopping")  # two signals before the first is handled arrive as one
    worker.send_signal(signal.SIGTERM)

    assert worker.wait(5) == 0
    # The thread could not be interrupted: its job waits for its lease to run
    # out, and the next claim rescues it.
    wait_for(runs, "SELECT count(*) FROM raquel_claim(batch => 1, lease => 1000)", 1)
    assert runs.execute("SELECT attempts, error LIKE 'lease expired%%' FROM raquel_jobs").fetchone() == (1, True)


def test_second_signal_hands_back_async_jobs_at_once(runs: Conn, spawn_worker: Any) -> None:
    enqueue_sleeping(runs, 3600)
    worker = spawn_worker("q", "--grace", "3600", "--async")
    wait_for(runs, "SELECT count(*) FROM raquel_test_runs", 1)
    worker.send_signal(signal.SIGTERM)
    wait_for_line(worker, "stopping")  # two signals before the first is handled arrive as one
    worker.send_signal(signal.SIGTERM)

    assert worker.wait(5) == 0
    assert runs.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("queued", 0)


# --- 3. a prefetching worker stopped or killed mid-drain -----------------------

#: The drains below: quick jobs, and a worker whose claims (at least PREFETCH / 2 jobs, a second
#: one beside a late one while there is a backlog) keep up to CONCURRENCY + PREFETCH jobs claimed.
DRAIN_JOBS, DRAIN_CONCURRENCY, DRAIN_PREFETCH = 2000, 4, 40


def start_draining(runs: Conn, spawn_worker: Any, *options: str) -> Any:
    """Enqueues DRAIN_JOBS quick jobs, starts a prefetching worker, returns it once 300 have run."""
    runs.execute("SELECT count(raquel_enqueue('q', '{\"sleep\": 0}')) FROM generate_series(1, %s)", (DRAIN_JOBS,))
    worker = spawn_worker(
        "q",
        *("--concurrency", str(DRAIN_CONCURRENCY), "--prefetch", str(DRAIN_PREFETCH), "--lease", str(LEASE_MS)),
        *options,
    )
    wait_for(runs, "SELECT count(*) >= 300 FROM raquel_test_runs", True)
    return worker


@pytest.mark.parametrize("options", [(), ("--async",)], ids=["sync", "async"])
def test_sigterm_mid_drain_hands_back_the_prefetched_jobs(runs: Conn, spawn_worker: Any, options: Any) -> None:
    worker = start_draining(runs, spawn_worker, *options)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0

    # Each job that ran succeeded, once; the others, its prefetched jobs and its claims in flight
    # among them, are queued again with no attempt counted; none is left claimed.
    ran, runs_made = runs.execute("SELECT count(DISTINCT job_id), count(*) FROM raquel_test_runs").fetchone()
    assert ran == runs_made
    statuses = runs.execute("SELECT status, attempts, count(*) FROM raquel_jobs GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert statuses == [("queued", 0, DRAIN_JOBS - ran)] * (ran < DRAIN_JOBS) + [("success", 1, ran)]
    assert runs.execute(
        "SELECT count(*) FROM raquel_test_runs r JOIN raquel_jobs j ON j.id = r.job_id WHERE j.status <> 'success'"
    ).fetchone() == (0,)


@pytest.mark.parametrize("options", [(), ("--async",)], ids=["sync", "async"])
def test_kill_mid_drain_reruns_only_what_the_worker_held(runs: Conn, spawn_worker: Any, options: Any) -> None:
    doomed = start_draining(runs, spawn_worker, *options)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    spawn_worker("q", "--concurrency", str(DRAIN_CONCURRENCY), "--lease", str(LEASE_MS), *options)

    wait_for(runs, "SELECT count(*) FROM raquel_jobs WHERE status = 'success'", DRAIN_JOBS, timeout=60)
    # Every job ran and succeeded once; a job ran twice only when the killed worker held it
    # (claimed: running, prefetched or in a claim in flight; or its success still buffered).
    assert runs.execute(
        "SELECT count(*) FROM raquel_jobs j WHERE NOT EXISTS (SELECT FROM raquel_test_runs r WHERE r.job_id = j.id)"
    ).fetchone() == (0,)
    twice = runs.execute(
        "SELECT count(*) FILTER (WHERE n = 2), count(*) FILTER (WHERE n > 2)"
        " FROM (SELECT count(*) AS n FROM raquel_test_runs GROUP BY job_id) AS r"
    ).fetchone()
    print(f"jobs run twice after kill -9: {twice[0]}")
    assert twice[1] == 0
    assert runs.execute(
        "SELECT count(*) FROM (SELECT job_id FROM raquel_test_runs GROUP BY 1 HAVING count(*) = 2) AS t"
        " WHERE NOT EXISTS (SELECT FROM raquel_test_runs r WHERE r.job_id = t.job_id AND r.pid = %s)",
        (doomed.pid,),
    ).fetchone() == (0,)
