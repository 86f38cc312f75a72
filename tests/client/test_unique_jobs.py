"""Unique jobs (migration 0004): one unfinished job per unique_key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from raquel_pg import AsyncRaquel, InvalidArgument, Raquel

T = 1_700_000_000_000  # a fixed "now" (ms) for the SQL functions


def enqueue(conn: psycopg.Connection[Any], payload: str, **options: Any) -> UUID:
    """raquel_enqueue('q', payload, option => value, ...) with named arguments."""
    named = [sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in options]
    query = sql.SQL("SELECT raquel_enqueue({})").format(
        sql.SQL(", ").join([sql.Literal("q"), sql.Placeholder("payload"), *named])
    )
    row = conn.execute(query, {"payload": payload, **options}).fetchone()
    assert row is not None
    job_id: UUID = row[0]
    return job_id


def jobs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT id, payload, status FROM raquel_jobs ORDER BY enqueued_at, id").fetchall()


def claim(conn: psycopg.Connection[Any]) -> tuple[UUID, UUID]:
    row = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], 'w', 1, 60000, %s)", (T,)).fetchone()
    assert row is not None
    return row[0], row[1]


# How to bring the job holding key 'k' into each status, by the raquel_* functions.
def to_queued(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "old", unique_key="k", now=T - 1000)


def to_claimed(conn: psycopg.Connection[Any]) -> None:
    to_queued(conn)
    claim(conn)


def to_failed(conn: psycopg.Connection[Any]) -> None:
    to_queued(conn)
    conn.execute("SELECT raquel_fail(%s, %s, 'boom', now => %s)", (*claim(conn), T))


def to_success(conn: psycopg.Connection[Any]) -> None:
    to_queued(conn)
    conn.execute("SELECT raquel_complete(%s, %s, %s)", (*claim(conn), T))


def to_cancelled(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT raquel_cancel(%s)", (enqueue(conn, "old", unique_key="k", now=T - 1000),))


def to_exhausted(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "old", unique_key="k", max_retry_count=0, now=T - 1000)
    conn.execute("SELECT raquel_fail(%s, %s, 'boom', now => %s)", (*claim(conn), T))


def to_expired(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "old", unique_key="k", max_age=10, now=T - 1000)
    conn.execute("SELECT raquel_expire(NULL, %s)", (T,))


HOLDING = {"queued": to_queued, "failed": to_failed, "claimed": to_claimed}
FINISHED = {"success": to_success, "cancelled": to_cancelled, "exhausted": to_exhausted, "expired": to_expired}


@pytest.mark.parametrize("status", list(HOLDING))
@pytest.mark.parametrize("mode", [None, "keep"])
def test_an_unfinished_job_holds_its_key(conn: psycopg.Connection[Any], status: str, mode: str | None) -> None:
    HOLDING[status](conn)
    [(existing, _, before)] = jobs(conn)
    assert before == status
    assert enqueue(conn, "new", unique_key="k", unique_mode=mode) == existing
    assert jobs(conn) == [(existing, "old", status)]


@pytest.mark.parametrize("status", list(FINISHED))
def test_a_finished_job_frees_its_key(conn: psycopg.Connection[Any], status: str) -> None:
    FINISHED[status](conn)
    [(old, _, before)] = jobs(conn)
    assert before == status
    new = enqueue(conn, "new", unique_key="k")
    assert new != old
    assert jobs(conn) == [(old, "old", status), (new, "new", "queued")]


@pytest.mark.parametrize("status", ["queued", "failed"])
def test_replace_rewrites_a_waiting_job(conn: psycopg.Connection[Any], status: str) -> None:
    HOLDING[status](conn)
    [(existing, _, _)] = jobs(conn)
    replaced = enqueue(
        conn, "new", unique_key="k", unique_mode="replace", at=T + 5000, priority=3, max_retry_count=7, now=T + 10
    )
    assert replaced == existing
    row = conn.execute("""SELECT payload, status, scheduled_at, enqueued_at, priority, max_retry_count,
                                 attempts, error FROM raquel_jobs""").fetchall()
    assert row == [("new", "queued", T + 5000, T + 10, 3, 7, 0, None)]


def test_replace_leaves_a_running_job_alone(conn: psycopg.Connection[Any]) -> None:
    to_claimed(conn)
    [(existing, _, _)] = jobs(conn)
    assert enqueue(conn, "new", unique_key="k", unique_mode="replace") == existing
    assert jobs(conn) == [(existing, "old", "claimed")]


def test_keys_are_independent(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    a = rq.enqueue("q", "a", unique_key="user:1").id
    b = rq.enqueue("q", "b", unique_key="user:2").id
    plain = rq.enqueue("q", "c").id
    assert len({a, b, plain}) == 3
    assert rq.enqueue("other-queue", "d", unique_key="user:1").id == a  # keys are global, not per queue
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (3,)


def test_client_replace(rq: Raquel) -> None:
    first = rq.enqueue("q", {"n": 1}, unique_key="k").id
    assert rq.enqueue("q", {"n": 2}, unique_key="k", unique_mode="replace").id == first
    record = rq.get(first)
    assert record is not None and record.payload == {"n": 2}


def test_readme_examples(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    first = rq.enqueue("sync", {"user": 42, "v": 1}, unique_key="sync:42").id
    assert rq.enqueue("sync", {"user": 42, "v": 2}, unique_key="sync:42").id == first  # kept
    rq.enqueue("sync", {"user": 42, "v": 3}, unique_key="sync:42", unique_mode="replace")  # now v=3
    record = rq.get(first)
    assert record is not None and record.payload == {"user": 42, "v": 3}
    conn.execute("TRUNCATE raquel.raquel_jobs")
    conn.execute("""SELECT raquel_enqueue('sync', '{"user": 42, "v": 1}', unique_key => 'sync:42');""")
    conn.execute(
        """SELECT raquel_enqueue('sync', '{"user": 42, "v": 3}', unique_key => 'sync:42', unique_mode => 'replace');"""
    )
    assert conn.execute("SELECT payload FROM raquel_jobs").fetchall() == [('{"user": 42, "v": 3}',)]


async def test_async_client_keep(arq: AsyncRaquel) -> None:
    first = (await arq.enqueue("q", "a", unique_key="k")).id
    assert (await arq.enqueue("q", "b", unique_key="k")).id == first
    assert await arq.count("q") == 1


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"unique_mode": "keep"}, "unique_mode"),
        ({"unique_key": "k", "unique_mode": "merge"}, "unique_mode"),
        ({"unique_key": ""}, "unique_key"),
        ({"unique_key": "x" * 1001}, "unique_key"),
        ({"unique_key": 42}, "unique_key"),
    ],
)
def test_bad_unique_arguments_are_refused(rq: Raquel, options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        rq.enqueue("q", "x", **options)
    assert error.value.argument == argument
    assert rq.count() == 0


@pytest.fixture
def connections(dsn: str) -> Iterator[list[psycopg.Connection[Any]]]:
    """16 autocommit connections, one per racing thread."""
    opened = [psycopg.connect(dsn, autocommit=True) for _ in range(16)]
    yield opened
    for c in opened:
        c.close()


def race(
    connections: list[psycopg.Connection[Any]], call: Callable[[psycopg.Connection[Any], int], UUID]
) -> list[UUID]:
    """Runs call(conn, i) in one thread per connection, all released together; returns the results."""
    barrier = threading.Barrier(len(connections))
    results: list[UUID | BaseException] = [ValueError("not run")] * len(connections)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(connections[i], i)
        except BaseException as error:  # reported below
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(connections))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return [r for r in results if isinstance(r, UUID)]


@pytest.mark.parametrize("mode", ["keep", "replace"])
def test_concurrent_enqueues_of_one_key_make_one_job(
    connections: list[psycopg.Connection[Any]], conn: psycopg.Connection[Any], mode: str
) -> None:
    for round_ in range(20):
        key = f"race:{round_}"
        ids = race(connections, lambda c, i: enqueue(c, f"p{i}", unique_key=key, unique_mode=mode))
        assert len(set(ids)) == 1
        rows = conn.execute("SELECT id FROM raquel_jobs WHERE unique_key = %s", (key,)).fetchall()
        assert rows == [(ids[0],)]


def test_concurrent_enqueues_while_the_holder_finishes(
    connections: list[psycopg.Connection[Any]], conn: psycopg.Connection[Any]
) -> None:
    """Enqueues racing with the completion of the key's job: never two unfinished jobs, never an error."""
    for round_ in range(20):
        key = f"race:{round_}"
        enqueue(conn, "first", unique_key=key)
        claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], 'w', 1, 60000)").fetchone()
        assert claimed is not None

        def call(c: psycopg.Connection[Any], i: int) -> UUID:
            if i == 0:
                c.execute("SELECT raquel_complete(%s, %s)", claimed)
                return UUID(int=0)
            return enqueue(c, f"p{i}", unique_key=key)

        ids = set(race(connections, call)) - {UUID(int=0)}
        live = conn.execute(
            """SELECT id FROM raquel_jobs
                               WHERE unique_key = %s AND status IN ('queued', 'failed', 'claimed')""",
            (key,),
        ).fetchall()
        # Each enqueue saw the claimed job (before it completed) or the one new job (after).
        assert len(live) <= 1
        assert ids <= {claimed[0], *(row[0] for row in live)}
        conn.execute("TRUNCATE raquel.raquel_jobs")
