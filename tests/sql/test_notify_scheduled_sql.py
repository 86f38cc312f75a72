"""Waiting workers hear of jobs due later (0021_notify_scheduled) when they would sleep past them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.sql.test_sql_functions import one

Conn = psycopg.Connection[Any]


@pytest.fixture
def listener(dsn: str) -> Iterator[Conn]:
    """A waiting worker's LISTEN connection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN raquel_jobs")
        yield conn


def wait_for(conn: Conn, ttl_ms: int, queues: list[str] | None = None) -> None:
    """Registers a worker as waiting for ``queues`` (None: all) for ``ttl_ms``."""
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), %s, %s)", queues, ttl_ms)


def registrations(conn: Conn) -> int:
    count: int = one(conn, "SELECT count(*) FROM raquel_waiters")
    return count


def test_a_job_enqueued_due_later_wakes_a_worker_that_would_sleep_past_it(conn: Conn, listener: Conn) -> None:
    wait_for(conn, 600_000, ["q"])
    conn.execute("SELECT raquel_enqueue('q', 'x', delay => 5000)")
    assert [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)] == ["q"]
    assert registrations(conn) == 0  # consumed: the worker reads raquel_next_due again


def test_a_job_due_later_in_another_queue_wakes_nobody(conn: Conn) -> None:
    wait_for(conn, 600_000, ["q"])
    conn.execute("SELECT raquel_enqueue('other', 'x', delay => 5000)")
    assert registrations(conn) == 1


def test_a_bulk_enqueue_due_later_sends_one_notification_per_queue(conn: Conn, listener: Conn) -> None:
    wait_for(conn, 600_000)
    conn.execute("SELECT raquel_enqueue_many('q', ARRAY['a', 'b', 'c'], delay => 5000)")
    assert [n.payload for n in listener.notifies(timeout=0.5)] == ["q"]


def test_a_job_rescheduled_for_later_wakes_a_worker_that_would_sleep_past_it(conn: Conn, listener: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'x')")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()  # type: ignore[misc]
    wait_for(conn, 600_000, ["q"])
    conn.execute("SELECT raquel_reschedule(%s, %s, delay => 5000)", (job_id, claim_id))
    assert [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)] == ["q"]


def test_a_freed_slot_wakes_a_waiter_when_the_next_job_is_due_later(conn: Conn, listener: Conn) -> None:
    conn.execute("SELECT raquel_set_queue_limits('q', max_running => 1)")
    conn.execute("SELECT raquel_enqueue('q', 'first')")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_enqueue('q', 'next', delay => 60000)")  # before the waiter: heard by nobody
    wait_for(conn, 30_000, ["q"])  # it slept until the first job's lease deadline
    conn.execute("SELECT raquel_complete(%s, %s)", (job_id, claim_id))
    assert [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)] == ["q"]
