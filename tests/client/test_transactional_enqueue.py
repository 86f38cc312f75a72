"""Transactional enqueue: a job exists, and workers hear of it, iff the caller's transaction commits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

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
