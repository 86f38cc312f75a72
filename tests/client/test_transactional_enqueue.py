"""Transactional enqueue: a job exists, and workers hear of it, iff the caller's transaction commits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from raquel_pg import AsyncRaquel, InvalidArgument, Raquel


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A business table next to the queue."""
    conn.execute("DROP TABLE IF EXISTS orders")
    conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, email text NOT NULL)")
    yield
    conn.execute("DROP TABLE orders")


@pytest.fixture
def listener(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection LISTENing on the workers' channel."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("LISTEN raquel_jobs")
        connection.execute("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")  # 0008: a waiter
        yield connection


def heard(listener: psycopg.Connection[Any]) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.5)]


def counts(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM raquel_jobs)").fetchone()
    assert row is not None
    return row[0], row[1]


def test_job_appears_only_when_the_transaction_commits(
    rq: Raquel, dsn: str, conn: psycopg.Connection[Any], orders: None, listener: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(dsn) as tx:  # not autocommit: a transaction starts with the first statement
        tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
        job_id = rq.enqueue("emails", {"order": 1}, conn=tx).id
        assert counts(conn) == (0, 0)  # not visible outside the transaction yet
        assert heard(listener) == []
        tx.commit()
    assert counts(conn) == (1, 1)
    assert heard(listener) == ["emails"]
    record = rq.get(job_id)
    assert record is not None and record.payload == {"order": 1}


def test_rollback_leaves_no_job_and_wakes_no_worker(
    rq: Raquel, dsn: str, conn: psycopg.Connection[Any], orders: None, listener: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(dsn) as tx:
        tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
        rq.enqueue("emails", {"order": 1}, conn=tx)
        tx.rollback()
    assert counts(conn) == (0, 0)
    assert heard(listener) == []


def test_enqueue_inside_a_transaction_block(rq: Raquel, dsn: str, conn: psycopg.Connection[Any], orders: None) -> None:
    with psycopg.connect(dsn, autocommit=True) as tx:
        with pytest.raises(RuntimeError):
            with tx.transaction():
                tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
                rq.enqueue("emails", "order 1", conn=tx, unique_key="order:1", priority=5)
                raise RuntimeError("the business write failed after the enqueue")
    assert counts(conn) == (0, 0)


def test_a_database_error_aborts_the_callers_transaction(rq: Raquel, dsn: str, conn: psycopg.Connection[Any]) -> None:
    with psycopg.connect(dsn) as tx:
        with pytest.raises(InvalidArgument):
            rq.enqueue("emails", "x", delay=-1, conn=tx)
        assert tx.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        tx.rollback()
    assert rq.count() == 0


async def test_async_rollback_leaves_no_job(
    arq: AsyncRaquel, dsn: str, orders: None, listener: psycopg.Connection[Any]
) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as tx:
        await tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
        await arq.enqueue("emails", {"order": 1}, conn=tx)
        await tx.rollback()
        await arq.enqueue("emails", {"order": 2}, conn=tx)
        await tx.commit()
    assert await arq.count("emails") == 1
    assert heard(listener) == ["emails"]


def test_plain_sql_transaction(conn: psycopg.Connection[Any], orders: None) -> None:
    # The README's psql example, verbatim.
    conn.execute("""
BEGIN;
INSERT INTO orders (id, email) VALUES (42, 'a@b.c');
SELECT raquel_enqueue('emails', '{"order": 42}');
COMMIT;
""")
    assert counts(conn) == (1, 1)


def test_sqlalchemy_session(rq: Raquel, dsn: str, conn: psycopg.Connection[Any], orders: None) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    # The README's SQLAlchemy example, verbatim.
    with Session(engine) as session, session.begin():
        session.execute(sqlalchemy.text("INSERT INTO orders (id, email) VALUES (42, 'a@b.c')"))
        rq.enqueue("emails", {"order": 42}, conn=session.connection().connection.driver_connection)
    assert counts(conn) == (1, 1)

    with pytest.raises(RuntimeError):
        with Session(engine) as session, session.begin():
            session.execute(sqlalchemy.text("INSERT INTO orders (id, email) VALUES (43, 'a@b.c')"))
            rq.enqueue("emails", {"order": 43}, conn=session.connection().connection.driver_connection)
            raise RuntimeError("rolled back")
    assert counts(conn) == (1, 1)
    engine.dispose()


def test_a_connection_with_client_side_binding_and_dict_rows_takes_the_enqueue(
    rq: Raquel, dsn: str, conn: psycopg.Connection[Any], orders: None
) -> None:
    # Django's psycopg connections make client-side-binding cursors (ClientCursor) by default,
    # which refuse binary results; an application may also give its connection dict rows.
    with psycopg.connect(dsn, cursor_factory=psycopg.ClientCursor, row_factory=dict_row) as tx:
        tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
        job = rq.enqueue("emails", {"order": 1}, conn=tx)
        many = rq.enqueue_many("emails", ["x", "y"], conn=tx)
        tx.commit()
    assert counts(conn) == (1, 3)
    assert job.status == "queued" and len(many) == 2


async def test_an_async_connection_with_client_side_binding_and_dict_rows_takes_the_enqueue(
    arq: AsyncRaquel, dsn: str, conn: psycopg.Connection[Any], orders: None
) -> None:
    async with await psycopg.AsyncConnection.connect(
        dsn, cursor_factory=psycopg.AsyncClientCursor, row_factory=dict_row
    ) as tx:
        await tx.execute("INSERT INTO orders VALUES (1, 'a@b.c')")
        job = await arq.enqueue("emails", {"order": 1}, conn=tx)
        many = await arq.enqueue_many("emails", ["x", "y"], conn=tx)
        await tx.commit()
    assert counts(conn) == (1, 3)
    assert job.status == "queued" and len(many) == 2


async def test_a_connection_of_the_other_kind_is_refused_before_anything_is_written(
    rq: Raquel, arq: AsyncRaquel, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as sync_conn:
        with pytest.raises(InvalidArgument, match="conn: expected a psycopg AsyncConnection") as refused:
            await arq.enqueue("emails", "x", conn=sync_conn)  # type: ignore[arg-type]
        assert refused.value.argument == "conn"
        with pytest.raises(InvalidArgument, match="conn: expected a psycopg AsyncConnection"):
            await arq.enqueue_many("emails", ["x"], conn=sync_conn)  # type: ignore[arg-type]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as async_conn:
        with pytest.raises(InvalidArgument, match="conn: expected a psycopg Connection"):
            rq.enqueue("emails", "x", conn=async_conn)  # type: ignore[arg-type]
    assert counts_jobs(conn) == 0


def counts_jobs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()
    assert row is not None
    return int(row[0])
