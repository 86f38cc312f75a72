"""The ``raquel-pg`` command behind PgBouncer in transaction mode (issue 19).

``--no-prepared-statements`` makes every command work through the pooler;
``--listen-dsn`` (or ``RAQUEL_PG_LISTEN_DSN``) sends a worker's LISTEN
connection straight to the server. Skips where no pgbouncer binary is found.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from tests.cli.test_cli import clean_env, entry_point, new_roles, start_worker, status_of, wait_for

__all__ = ["new_roles"]  # the fixture, used below

Conn = psycopg.Connection[tuple[Any, ...]]

POOLER = ("--no-prepared-statements",)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*entry_point(), *args], capture_output=True, text=True, timeout=60, env=env or clean_env())


def test_enqueue_and_the_read_commands_work_through_the_pooler(pooled_dsn: str, conn: Conn) -> None:
    # Without the flag, 4 enqueues of 5 failed: prepared statement "_pg3_0" already exists.
    ids = []
    for n in range(10):
        result = run("--dsn", pooled_dsn, *POOLER, "enqueue", "q", f"job {n}")
        assert result.returncode == 0, result.stderr
        ids.append(UUID(result.stdout.strip()))
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE id = ANY(%s)", [ids]).fetchone() == (10,)
    for command in (
        ["stats", "--json"],
        ["jobs", "--json"],
        ["show", str(ids[0]), "--json"],
        ["migrate", "--status"],
        ["migrate"],
    ):
        result = run("--dsn", pooled_dsn, *POOLER, *command)
        assert result.returncode == 0, (command, result.stderr)
    stats = json.loads(run("--dsn", pooled_dsn, *POOLER, "stats", "--json").stdout)
    assert stats["queues"]["q"]["queued"] == 10


def test_the_flags_may_follow_the_command(pooled_dsn: str, conn: Conn) -> None:
    result = run("enqueue", "q", "x", "--dsn", pooled_dsn, "--no-prepared-statements")
    assert result.returncode == 0, result.stderr
    assert status_of(conn, UUID(result.stdout.strip())) == "queued"


def test_a_worker_through_the_pooler_listens_direct(pooled_dsn: str, dsn: str, conn: Conn, tmp_path: Path) -> None:
    jobs = [UUID(run("--dsn", pooled_dsn, *POOLER, "enqueue", "q", "0").stdout.strip()) for _ in range(5)]
    worker = start_worker(
        pooled_dsn, tmp_path, "handlers:handle", "-q", "q", "--concurrency", "2", "--listen-dsn", dsn, *POOLER
    )
    wait_for(lambda: all(status_of(conn, j) == "success" for j in jobs))
    wait_for(
        lambda: (
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query = 'LISTEN raquel_jobs'"
            ).fetchone()
            == (1,)
        )
    )
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    assert "do not reach" not in log


def test_an_async_worker_takes_its_listen_dsn_from_the_environment(
    pooled_dsn: str, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    (tmp_path / "handlers.py").write_text("async def ahandle(job):\n    pass\n")
    worker = subprocess.Popen(
        [*entry_point(), "--dsn", pooled_dsn, *POOLER, "worker", "handlers:ahandle", "--async", "-q", "q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), "RAQUEL_PG_LISTEN_DSN": dsn},
    )
    wait_for(
        lambda: (
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query = 'LISTEN raquel_jobs'"
            ).fetchone()
            == (1,)
        )
    )
    job = UUID(run("--dsn", pooled_dsn, *POOLER, "enqueue", "q", "hi").stdout.strip())
    wait_for(lambda: status_of(conn, job) == "success")
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    assert "do not reach" not in log


def test_grant_works_through_the_pooler(pooled_dsn: str, conn: Conn, new_roles: dict[str, str]) -> None:
    # One transaction: its pg_temp helper function is created and called on one server connection.
    result = run("--dsn", pooled_dsn, *POOLER, "grant", "--worker", new_roles["worker"])
    assert result.returncode == 0, result.stderr
    assert conn.execute(
        "SELECT has_function_privilege(%s, 'raquel.raquel_claim'::regproc, 'EXECUTE')", [new_roles["worker"]]
    ).fetchone() == (True,)
