"""Workers of an older raquel_pg keep running every job once through the newest ``migrate``.

docs/deploying.md, "Upgrading while workers run": the new version's migrations are applied while
the old version's workers claim and finish jobs, then new workers join them on the same queues.
The old version is taken from this repository's history (``git archive``); without git or that
history (a source tarball) the test skips, saying so.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Older versions, by the commit and the last migration they shipped: 0026, before the claim's
#: probes (0027), the claimers count (0028) and the queue lists, whose migration (0030) drops
#: raquel_claim and creates it again with one more argument; 0029, just before that.
OLD_VERSIONS = {"0026": "22ca998^", "0029": "7c5ee79"}

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(params=sorted(OLD_VERSIONS))
def old_tree(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The raquel_pg, bench and migrations of an older commit, in a folder of their own."""
    revision = OLD_VERSIONS[request.param]
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the older version comes from this repository's history")
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=ROOT)
    if found.returncode != 0:
        pytest.skip(f"commit {revision} is not in this checkout's history (a shallow clone or a tarball?)")
    archive = subprocess.run(
        ["git", "archive", revision, "raquel_pg", "bench", "migrations"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    return tmp_path


def run(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` importing raquel_pg from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", *args], cwd=tree, env=env, capture_output=True, text=True)


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts ``bench.worker_proc e2e`` workers (no-op handlers, 10 slots) from a tree; stops them all."""
    started: list[subprocess.Popen[str]] = []

    def start(tree: Path, dsn: str, queue: str, *flags: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "bench.worker_proc", "e2e", dsn, queue, "10", *flags]
        process = subprocess.Popen(
            command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return process

    yield start
    for process in started:
        process.terminate()
    for process in started:
        process.wait(30)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_old_workers_run_every_job_once_through_the_newest_migrate(
    old_tree: Path, make_database: Any, workers: Callable[..., subprocess.Popen[str]]
) -> None:
    dsn: str = make_database()
    assert run(old_tree, "raquel_pg", "--dsn", dsn, "migrate").returncode == 0
    conn: Conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SELECT raquel_set_queue_limits('limited', max_running => 3)")
    old = [
        workers(old_tree, dsn, "q", "batch"),
        workers(old_tree, dsn, "q", "batch", "nondurable", "prefetch=50"),
        workers(old_tree, dsn, "limited", "batch"),
    ]
    enqueued = 0

    def enqueue() -> None:  # an enqueuer in SQL, as any client: some jobs due later, a tenth limited
        nonlocal enqueued
        with psycopg.connect(dsn, autocommit=True) as sql:
            for i in range(1500):
                queue = "limited" if i % 10 == 0 else "q"
                sql.execute("SELECT raquel_enqueue(%s, %s, delay => %s)", (queue, str(i), random.choice([0, 0, 300])))
                enqueued += 1
                time.sleep(0.002)

    enqueuer = threading.Thread(target=enqueue)
    enqueuer.start()
    try:
        wait_for(lambda: enqueued >= 300)
        migrated = run(ROOT, "raquel_pg", "--dsn", dsn, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        (after_migrate,) = conn.execute("SELECT raquel_now_ms()").fetchone() or (None,)
        workers(ROOT, dsn, "q", "batch", "nondurable", "prefetch=50")
        workers(ROOT, dsn, "limited", "batch")
    finally:
        enqueuer.join()

    def unfinished() -> int:
        row = conn.execute("SELECT count(*) FROM raquel_jobs WHERE status <> 'success'").fetchone()
        return -1 if row is None else int(row[0])

    wait_for(lambda: unfinished() == 0)
    attempts = conn.execute("SELECT attempts, count(*) FROM raquel_jobs GROUP BY 1").fetchall()
    assert attempts == [(1, 1500)]  # every job ran once
    old_names = [f"%:{process.pid}" for process in old]
    (old_after,) = conn.execute(
        "SELECT count(*) FROM raquel_jobs WHERE claimed_at > %s AND claimed_by LIKE ANY (%s)",
        (after_migrate, old_names),
    ).fetchone() or (0,)
    assert old_after > 0  # the old workers claimed and finished jobs after the migration too
    for process in old:
        assert process.poll() is None  # and still run
    conn.close()
