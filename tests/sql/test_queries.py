"""The runtime query file: each query is sent as written, without the next section's comments.

Regression: a section comment in queries.sql ("-- Operations ...") was loaded
as the tail of the query above it, so a worker's LISTEN showed in
``pg_stat_activity`` as "LISTEN raquel_jobs\\n\\n-- Operations ..." and the
restart test, which counts listeners by their query text, never saw the
workers re-LISTEN.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from raquel_pg import Job, Raquel
from raquel_pg._acompat import join, spawn
from raquel_pg.queries import QUERIES, _statement


def test_a_query_ends_at_its_last_statement_line() -> None:
    assert _statement("\nLISTEN raquel_jobs\n\n-- Operations: the next section.\n\n") == "LISTEN raquel_jobs"
    assert _statement("SELECT 1  -- an inline comment stays\n-- a closing one goes\n") == (
        "SELECT 1  -- an inline comment stays"
    )
    for name, query in QUERIES.items():
        last = query.splitlines()[-1].strip()
        assert last and not last.startswith("--"), name


def count_listeners(conn: psycopg.Connection[Any]) -> int:
    """The backends whose last statement was exactly a worker's LISTEN."""
    count: int = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN raquel_jobs'"
    ).fetchone()[0]  # type: ignore[index]
    return count


def test_a_listening_worker_shows_its_listen_in_pg_stat_activity(rq: Raquel, dsn: str) -> None:
    @rq.subscribe("q", poll_interval=60)
    def handler(job: Job) -> None:
        pass

    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while count_listeners(conn) != 0:  # an earlier test's LISTEN backend may still be exiting
            assert time.monotonic() < deadline, "an earlier LISTEN connection stays"
            time.sleep(0.01)
    run = spawn(handler.run, name="worker")
    while not handler.listening:
        assert time.monotonic() < deadline, "the worker did not LISTEN"
        time.sleep(0.01)
    with psycopg.connect(dsn, autocommit=True) as conn:
        listeners = count_listeners(conn)
    handler.stop()
    join([run], 10)
    assert listeners == 1
