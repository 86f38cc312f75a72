# WARNING: this file is generated from test_queue_lists_worker_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_queue_lists_worker_async.py and run `python tools/async_to_sync.py`.

"""A worker of a long list of queues registers the list once and claims by its id (0030_queue_lists).

Written once, for both clients: tests/worker/test_queue_lists_worker.py (generated from the async file
by tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import Job, Raquel, Worker, producer
from raquel_pg._acompat import join, sleep, spawn
from raquel_pg.producer import REGISTER_LISTS_OVER
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[Any]

#: More queues than a worker sends by name.
QUEUES = [f"q{i}" for i in range(REGISTER_LISTS_OVER + 4)]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        sleep(0.005)


def statuses(conn: Conn) -> list[tuple[str, int]]:
    return [(row[0], row[1]) for row in conn.execute("SELECT status, count(*) FROM raquel_jobs GROUP BY 1 ORDER BY 1")]


def lists(conn: Conn) -> list[tuple[int, int]]:
    """(id, size) of each registered list."""
    return [(row[0], row[1]) for row in conn.execute("SELECT id, size FROM raquel_queue_lists ORDER BY id")]


def run_until(rq: Raquel, conn: Conn, condition: Any) -> Worker:
    """Runs a worker of QUEUES until ``condition(conn)`` holds, then stops it."""

    @rq.subscribe(*QUEUES, concurrency=4, poll_interval=0.2)
    def handler(job: Job) -> None:
        pass

    run = spawn(handler.run, name="worker")
    wait_until(lambda: condition(conn))
    handler.stop()
    join([run], 10)
    return handler


def enqueue_on_every_queue(conn: Conn) -> None:
    for queue in QUEUES:
        conn.execute("SELECT raquel_enqueue(%s, 'x')", (queue,))


def test_a_worker_of_a_long_list_registers_it_once_and_drains_its_queues(rq: Raquel, conn: Conn) -> None:
    enqueue_on_every_queue(conn)
    conn.execute("SELECT raquel_enqueue('other', 'x')")
    run_until(rq, conn, lambda c: statuses(c) == [("queued", 1), ("success", len(QUEUES))])
    assert [size for _, size in lists(conn)] == [len(QUEUES)]


def test_a_worker_of_a_long_list_claims_by_the_registered_list(rq: Raquel, conn: Conn) -> None:
    # The same names give the same list: with q0 taken out of it by hand, the worker never claims q0.
    conn.execute("SELECT raquel_queue_list(%s)", (QUEUES,))
    conn.execute("DELETE FROM raquel_queue_list_members WHERE queue = 'q0'")
    enqueue_on_every_queue(conn)
    run_until(rq, conn, lambda c: statuses(c) == [("queued", 1), ("success", len(QUEUES) - 1)])
    assert conn.execute("SELECT queue FROM raquel_jobs WHERE status = 'queued'").fetchall() == [("q0",)]


def test_a_worker_whose_list_was_deleted_by_hand_registers_it_again(
    rq: Raquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")

    @rq.subscribe(*QUEUES, concurrency=4, poll_interval=0.2)
    def handler(job: Job) -> None:
        pass

    run = spawn(handler.run, name="worker")
    enqueue_on_every_queue(conn)
    wait_until(lambda: statuses(conn) == [("success", len(QUEUES))])
    conn.execute("DELETE FROM raquel_queue_lists")
    enqueue_on_every_queue(conn)
    wait_until(lambda: statuses(conn) == [("success", 2 * len(QUEUES))] and len(lists(conn)) == 1)
    handler.stop()
    join([run], 10)
    assert caplog.text.count("list of queues is gone") == 1


def test_a_worker_of_a_long_list_sends_the_names_for_a_role_not_granted_raquel_queue_list(
    conn: Conn, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    # What `raquel-pg grant --worker` gave before 0030_queue_lists, in the engine and install schemas.
    role = f"raquel_test_worker_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    grant_roles(conn, worker=role)
    for schema in ("raquel", conn.execute("SELECT current_schema()").fetchone()[0]):
        conn.execute(f'REVOKE EXECUTE ON FUNCTION "{schema}".raquel_queue_list(text[]) FROM "{role}"'.encode())
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")
    enqueue_on_every_queue(conn)
    try:
        with Raquel(make_conninfo(dsn, options=f"-c role={role}")) as rq:
            run_until(rq, conn, lambda c: statuses(c) == [("success", len(QUEUES))])
    finally:
        conn.execute(f'DROP OWNED BY "{role}"'.encode())
        conn.execute(f'DROP ROLE "{role}"'.encode())
    assert caplog.text.count("granted raquel_queue_list") == 1
    assert lists(conn) == []


def test_a_running_worker_registers_its_list_again_every_hour_so_that_prune_keeps_it(
    rq: Raquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(producer, "REGISTER_LIST_AGAIN_AFTER", 0.0)  # an hour gone at every claim
    conn.execute("SELECT raquel_queue_list(%s)", (QUEUES,))
    # Unused for 2 hours, as far as the database knows: the worker's next registration marks it in use.
    conn.execute("UPDATE raquel_queue_lists SET used_at = used_at - 7200000")
    run_until(
        rq,
        conn,
        lambda c: c.execute("SELECT raquel_now_ms() - used_at < 3600000 FROM raquel_queue_lists").fetchone() == (True,),
    )
    assert len(lists(conn)) == 1
