"""Tasks and exactly-once completion across processes (issue 25).

Exactly once for work in the same database: the handler's effect and the
job's success commit together (``job.complete(conn=...)``), so a worker
killed with SIGKILL before the commit leaves neither (the job is rescued and
run again), and one killed after leaves both (the job is not run again).
Two ``raquel-pg worker --tasks`` processes share one module's tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[Any]
SUPPORT = Path(__file__).with_name("tasks_support")


def until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def effects(conn: Conn) -> Conn:
    conn.execute("CREATE TABLE IF NOT EXISTS tasks_effects (job_id uuid NOT NULL)")
    conn.execute("TRUNCATE tasks_effects")
    return conn


def start(dsn: str, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(SUPPORT / "exactly_once_worker.py"), dsn, mode], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def run_to_the_end(dsn: str, effects: Conn, job_id: Any) -> None:
    """A fresh worker (mode plain) until the job has succeeded; then stopped."""
    rescuer = start(dsn, "plain")
    try:
        until(
            lambda: (
                effects.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == ("success",)
            )
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(30)


@pytest.mark.parametrize("mode", ["before-commit", "after-commit"])
def test_work_and_success_commit_together_whatever_the_kill(dsn: str, effects: Conn, mode: str) -> None:
    job_id = effects.execute("SELECT raquel_enqueue('once', '1')").fetchone()[0]  # type: ignore[index]
    victim = start(dsn, mode)
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == ("inside" if mode == "before-commit" else "committed")
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    if mode == "before-commit":
        # The killed session's transaction rolls back: no effect, the job still claimed.
        until(
            lambda: (
                effects.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%'"
                ).fetchone()
                == (0,)
            )
        )
        assert effects.execute("SELECT count(*) FROM tasks_effects").fetchone() == (0,)
        run_to_the_end(dsn, effects, job_id)  # rescued when the 1 s lease runs out, run again
    row = effects.execute("SELECT status, result, attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row == ("success", {"done": True}, 2 if mode == "before-commit" else 1)
    assert effects.execute("SELECT count(*) FROM tasks_effects WHERE job_id = %s", (job_id,)).fetchone() == (1,)


def test_two_worker_processes_share_a_modules_tasks(dsn: str, conn: Conn) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SUPPORT.parent), os.environ.get("PYTHONPATH", "")]),
        "RAQUEL_PG_TASKS_DSN": dsn,
    }
    command = [
        sys.executable,
        "-m",
        "raquel_pg",
        "--dsn",
        dsn,
        "worker",
        "--tasks",
        "tasks_support.math_tasks",
        "--concurrency",
        "2",
        "--log-level",
        "warning",
    ]
    workers = [subprocess.Popen(command, env=env, text=True) for _ in range(2)]
    try:
        os.environ["RAQUEL_PG_TASKS_DSN"] = dsn
        sys.path.insert(0, str(SUPPORT.parent))
        from tasks_support import math_tasks

        with math_tasks.rq:  # the producer enqueues through the same module's tasks
            jobs = [math_tasks.square.enqueue(n) for n in range(20)]
            results = [job.wait(timeout=60) for job in jobs]
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
    assert [r["square"] for r in results] == [n * n for n in range(20)]
    assert all(worker.returncode == 0 for worker in workers)


def test_raquel_pg_show_prints_the_result_as_json(dsn: str, conn: Conn) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('q', '1', timeout => 5000)").fetchone()[0]  # type: ignore[index]
    claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()
    conn.execute("""SELECT raquel_complete(%s, %s, result => '{"sum": 5}')""", claimed)
    shown = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "show", str(job_id)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = {line.split()[0]: line.split(None, 1)[1] for line in shown.splitlines() if line.strip()}
    assert (lines["result"], lines["timeout"]) == ('{"sum": 5}', "5000")
