"""Plans under skewed statistics: a small queue beside a big backlog.

The claim and raquel_next_due run cached PL/pgSQL plans. A plan that took the
all-queues index and filtered on the queue would walk the big queue's entries
to serve the small one (measured: 17.5 ms per claim beside 200,000 jobs,
against 0.4 ms). Each call is made more than five times, past the point where
PL/pgSQL's plan cache may switch to a generic plan, and the buffers the last
call touched are counted: under a hundred pages, where the claim's plan forced
generic touched about 1,500 per call (measured while writing these tests).
The database is a fresh one, so these statistics reach no other test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from raquel_pg.migrate import migrate

BIG = 50_000
#: Steady calls touch 80-100 buffers; walking the big queue's entries, about 1,500.
MAX_BUFFERS = 300


@pytest.fixture(scope="module")
def skewed(make_database: Any) -> Iterator[psycopg.Connection[Any]]:
    """A database with BIG ready jobs in queue 'big', analyzed, and nothing else."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[%s]))", [BIG])
        conn.execute("VACUUM ANALYZE raquel_jobs")
        yield conn


def buffers(conn: psycopg.Connection[Any], statement: str, times: int = 8) -> int:
    """Shared buffers (hit + read) the last of ``times`` runs of ``statement`` touched."""
    for _ in range(times - 1):
        conn.execute(statement)
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}").fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def test_claiming_from_a_small_queue_does_not_walk_the_big_one(skewed: psycopg.Connection[Any]) -> None:
    skewed.execute("SELECT count(*) FROM raquel_enqueue_many('small', array_fill('x'::text, ARRAY[100]))")
    touched = buffers(skewed, "SELECT * FROM raquel_claim(ARRAY['small'], 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS


def test_next_due_of_a_small_queue_does_not_walk_the_big_one(skewed: psycopg.Connection[Any]) -> None:
    skewed.execute("SELECT count(*) FROM raquel_enqueue_many('later', ARRAY['x'], delay => 3600000)")
    touched = buffers(skewed, "SELECT raquel_next_due(ARRAY['later'])")
    assert touched <= MAX_BUFFERS


def test_an_empty_queue_is_found_empty_at_once(skewed: psycopg.Connection[Any]) -> None:
    touched = buffers(skewed, "SELECT * FROM raquel_claim(ARRAY['none'], 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS
