"""Test fixtures: a real PostgreSQL, found or started without any setup.

Server, in order: ``RAQUEL_PG_TEST_DSN`` if set; a testcontainers PostgreSQL
if a Docker engine answers; else an embedded PostgreSQL in a temp dir. The
session gets a fresh database on that server with all migrations applied;
each test starts with an empty jobs table.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import AsyncRaquel, Raquel
from raquel_pg.migrate import migrate


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN for an administrative database on the test server."""
    if os.environ.get("RAQUEL_PG_TEST_DSN"):
        yield os.environ["RAQUEL_PG_TEST_DSN"]
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17", driver=None) as container:
            yield container.get_connection_url()
    else:
        from raquel_pg import embedded

        with embedded.temporary("raquel_pg_test_") as dsn:
            yield dsn


@pytest.fixture(scope="session")
def make_database(server_dsn: str) -> Iterator[object]:
    """A factory of fresh, empty databases on the test server (dropped at the end)."""
    created: list[str] = []

    def create() -> str:
        name = f"raquel_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        created.append(name)
        return make_conninfo(server_dsn, dbname=name)

    yield create
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture(scope="session")
def migrated_dsn(make_database: object) -> str:
    """The session's database, migrated."""
    dsn: str = make_database()  # type: ignore[operator]
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    return dsn


@pytest.fixture
def dsn(migrated_dsn: str) -> str:
    """The migrated database with an empty jobs table, no registered waiter, no queue controls and no
    registered list of queues."""
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_waiters, raquel.raquel_result_waiters")
        # Queue controls (pause, limits, retention) of an earlier test.
        conn.execute("TRUNCATE raquel.raquel_queue_settings")
        # Registered lists of queues (0030_queue_lists).
        conn.execute("TRUNCATE raquel.raquel_queue_lists, raquel.raquel_queue_list_members")
        conn.execute("UPDATE raquel.raquel_retention_default SET retention_ms = NULL")
    return migrated_dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection, for calling the SQL functions and checking rows."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def rq(dsn: str) -> Iterator[Raquel]:
    with Raquel(dsn, lease=2000) as client:
        yield client


@pytest.fixture
async def arq(dsn: str) -> AsyncIterator[AsyncRaquel]:
    async with AsyncRaquel(dsn, lease=2000) as client:
        yield client


@pytest.fixture
def no_schedules(dsn: str) -> str:
    """The migrated database with empty jobs and schedules tables (issue 7's periodic jobs)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("TRUNCATE raquel.raquel_schedules")
    return dsn


# --- reliability tests (issue 4) ---------------------------------------------

#: The reliability tests' worker process (tests/reliability/reliability_worker.py).
WORKER_SCRIPT = Path(__file__).parent / "reliability" / "reliability_worker.py"


@pytest.fixture
def runs(conn: psycopg.Connection[tuple[object, ...]]) -> psycopg.Connection[tuple[object, ...]]:
    """``conn``, with an empty ``raquel_test_runs`` table: one row per handler execution."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raquel_test_runs ("
        " job_id uuid NOT NULL, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    conn.execute("TRUNCATE raquel_test_runs")
    return conn


@pytest.fixture
def spawn_worker(dsn: str) -> Iterator[object]:
    """Starts tests/reliability/reliability_worker.py processes on ``dsn``; kills leftovers at the end.

    ``spawn_worker(queue, *options)`` returns the Popen once the worker listens.
    """
    import subprocess
    import sys

    started: list[subprocess.Popen[str]] = []

    def spawn(queue: str, *options: str, target: str | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), target or dsn, queue, *options],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"worker did not start: {line!r}"
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


# --- PgBouncer (issue 19) ----------------------------------------------------


@pytest.fixture(scope="session")
def pgbouncer_port(server_dsn: str) -> Iterator[int]:
    """A real PgBouncer (``pool_mode = transaction``) in front of the test server; its port.

    Skips, saying why, where no pgbouncer binary (or no user to run it as) is found.
    """
    from bench import pgbouncer

    reason = pgbouncer.missing()
    if reason is not None:
        pytest.skip(reason)
    with pgbouncer.running(server_dsn, pool_size=10) as pooled:
        yield pgbouncer.port_of(pooled)


@pytest.fixture(scope="session")
def pgbouncer_session_port(server_dsn: str) -> Iterator[int]:
    """A real PgBouncer in ``pool_mode = session`` (which carries LISTEN) in front of the test server; its port.

    Skips as :func:`pgbouncer_port` does.
    """
    from bench import pgbouncer

    reason = pgbouncer.missing()
    if reason is not None:
        pytest.skip(reason)
    with pgbouncer.running(server_dsn, pool_mode="session", pool_size=10) as pooled:
        yield pgbouncer.port_of(pooled)


#: The application_name of the tests' connections through PgBouncer, which its server connections
#: take: a server connection idle in the pool after a LISTEN sent through it still shows
#: ``LISTEN raquel_jobs`` in pg_stat_activity, and the tests that count a client's listeners leave
#: those out by this name.
POOLED_APPLICATION = "raquel_pg tests via pgbouncer"


@pytest.fixture
def session_pooled_dsn(dsn: str, pgbouncer_session_port: int) -> str:
    """The test database (emptied as ``dsn`` is) through the session-mode PgBouncer."""
    from bench import pgbouncer

    return make_conninfo(pgbouncer.through(dsn, pgbouncer_session_port), application_name=POOLED_APPLICATION)


@pytest.fixture
def pooled_dsn(dsn: str, pgbouncer_port: int) -> str:
    """The test database (emptied as ``dsn`` is) through the PgBouncer."""
    from bench import pgbouncer

    return make_conninfo(pgbouncer.through(dsn, pgbouncer_port), application_name=POOLED_APPLICATION)
