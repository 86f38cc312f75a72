"""`raquel-pg import-raquel` / import_raquel(): a raquel jobs table copied into raquel_jobs (issue 24).

The source tables are made with raquel's own DDL: RAQUEL_0_3_DDL is what
raquel 0.3.2's ``create_all()`` emits on PostgreSQL (SQLAlchemy's CREATE
TABLE for raquel/models/raw_job.py's RawJob, with its four indexes);
RAQUEL_0_0_DDL is raquel 0.0's ``setup()`` table (bigserial ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from raquel_pg import (
    ImportRefused,
    InvalidArgument,
    Raquel,
    import_raquel,
    import_raquel_async,
    legacy_id,
)
from raquel_pg.cli import main

Conn = psycopg.Connection[tuple[Any, ...]]

RAQUEL_0_3_DDL = """
CREATE TABLE jobs (
    id UUID NOT NULL,
    queue VARCHAR NOT NULL,
    payload VARCHAR,
    status VARCHAR(30) NOT NULL,
    max_age BIGINT,
    max_retry_count INTEGER,
    min_retry_delay INTEGER,
    max_retry_delay INTEGER,
    backoff_base INTEGER,
    enqueued_at BIGINT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    error VARCHAR,
    error_trace VARCHAR,
    claimed_by VARCHAR,
    claimed_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (id)
);
CREATE INDEX ix_jobs_claimed_by ON jobs (claimed_by);
CREATE INDEX ix_jobs_queue ON jobs (queue);
CREATE INDEX ix_jobs_scheduled_at ON jobs (scheduled_at);
CREATE INDEX ix_jobs_status ON jobs (status);
"""

RAQUEL_0_0_DDL = """
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL DEFAULT 'default',
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    locked_by TEXT,
    max_age INTEGER,
    max_retry_count INTEGER,
    max_retry_exponent INTEGER DEFAULT 32,
    min_retry_delay INTEGER NOT NULL DEFAULT 1000,
    max_retry_delay INTEGER NOT NULL DEFAULT 43200000,
    enqueued_at BIGINT NOT NULL DEFAULT CAST(EXTRACT(epoch from (NOW() AT TIME ZONE 'UTC')) * 1000 AS BIGINT),
    scheduled_at BIGINT NOT NULL DEFAULT CAST(EXTRACT(epoch from (NOW() AT TIME ZONE 'UTC')) * 1000 AS BIGINT),
    attempts INTEGER NOT NULL DEFAULT 0,
    failed_error TEXT,
    failed_traceback TEXT,
    cancelled_reason TEXT,
    locked_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX idx_jobs_queue ON jobs (queue);
CREATE INDEX idx_jobs_status ON jobs (status);
CREATE INDEX idx_jobs_scheduled_at ON jobs (scheduled_at);
"""

#: Columns compared between a raquel row and its copy.
COLUMNS = (
    "id",
    "queue",
    "payload",
    "status",
    "max_age",
    "max_retry_count",
    "min_retry_delay",
    "max_retry_delay",
    "backoff_base",
    "enqueued_at",
    "scheduled_at",
    "attempts",
    "error",
    "error_trace",
    "claimed_by",
    "claimed_at",
    "finished_at",
)
T = 1_700_000_000_000  # a fixed past time, ms


@pytest.fixture
def raquel_table(conn: Conn) -> Iterator[Conn]:
    """``conn`` with an empty raquel 0.3 ``jobs`` table beside raquel_jobs."""
    conn.execute("DROP TABLE IF EXISTS jobs")
    conn.execute(RAQUEL_0_3_DDL.encode())
    yield conn
    conn.execute("DROP TABLE IF EXISTS jobs")


def add(conn: Conn, **values: Any) -> UUID:
    """Inserts one raquel job as raquel 0.3 writes it; returns its id."""
    row: dict[str, Any] = {
        "id": uuid4(),
        "queue": "emails",
        "payload": '{"to": "a@b.c"}',
        "status": "queued",
        "max_age": None,
        "max_retry_count": None,
        "min_retry_delay": 1000,
        "max_retry_delay": 43200000,
        "backoff_base": 1000,
        "enqueued_at": T,
        "scheduled_at": T,
        "attempts": 0,
        "error": None,
        "error_trace": None,
        "claimed_by": None,
        "claimed_at": None,
        "finished_at": None,
    }
    row.update(values)
    conn.execute("INSERT INTO jobs (" + ", ".join(row) + ") VALUES (" + ", ".join(f"%({k})s" for k in row) + ")", row)
    job_id: UUID = row["id"]
    return job_id


def every_status(conn: Conn) -> dict[str, UUID]:
    """One raquel job in each of raquel's seven statuses, each with its own values."""
    return {
        "queued": add(conn, status="queued", max_age=60_000, max_retry_count=5),
        "claimed": add(
            conn,
            status="claimed",
            attempts=2,
            claimed_by="worker-1",
            claimed_at=T + 10,
            error="earlier",
            error_trace="Traceback: earlier",
        ),
        "success": add(
            conn,
            status="success",
            attempts=1,
            claimed_by="worker-2",
            claimed_at=T + 20,
            finished_at=T + 30,
            payload=None,
            queue="reports",
        ),
        "failed": add(
            conn,
            status="failed",
            attempts=3,
            scheduled_at=T + 8000,
            error="Won't do",
            error_trace="Traceback ... ValueError: Won't do",
            claimed_by="worker-3",
            claimed_at=T + 40,
            finished_at=T + 50,
            min_retry_delay=None,
            max_retry_delay=None,
            backoff_base=None,
        ),
        "cancelled": add(conn, status="cancelled", finished_at=T + 60),
        "expired": add(conn, status="expired", max_age=1000, finished_at=T + 70),
        "exhausted": add(
            conn,
            status="exhausted",
            attempts=4,
            max_retry_count=3,
            error="boom",
            error_trace="Traceback: boom",
            claimed_by="worker-4",
            claimed_at=T + 80,
            finished_at=T + 90,
            min_retry_delay=500,
            max_retry_delay=9000,
            backoff_base=250,
        ),
    }


def rows(conn: Conn, table: str) -> dict[UUID, dict[str, Any]]:
    cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {table}".encode())
    return {r[0]: dict(zip(COLUMNS, r)) for r in cursor.fetchall()}


def expected_copy(source: dict[str, Any]) -> dict[str, Any]:
    """The raquel_jobs row a raquel row becomes: NULL options take their defaults, a claim is undone."""
    copy = dict(source)
    for column, default in (("min_retry_delay", 1000), ("max_retry_delay", 43200000), ("backoff_base", 1000)):
        if copy[column] is None:
            copy[column] = default
    if copy["status"] == "claimed":
        copy.update(status="queued", claimed_by=None, claimed_at=None, finished_at=None)
    return copy


def test_import_copies_every_status_with_ids_attempts_errors_and_timings(raquel_table: Conn) -> None:
    ids = every_status(raquel_table)
    report = import_raquel(raquel_table)
    assert (report.source_rows, report.copied, report.already_present, report.invalid) == (7, 7, 0, [])
    source = rows(raquel_table, "jobs")
    assert rows(raquel_table, "raquel_jobs") == {i: expected_copy(r) for i, r in source.items()}
    status = dict(raquel_table.execute("SELECT id, status FROM raquel_jobs").fetchall())
    assert {name: status[job_id] for name, job_id in ids.items()} == {
        "queued": "queued",
        "claimed": "queued",
        "success": "success",
        "failed": "failed",
        "cancelled": "cancelled",
        "expired": "expired",
        "exhausted": "exhausted",
    }


async def test_import_copies_every_status_async(raquel_table: Conn, dsn: str) -> None:
    every_status(raquel_table)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        report = await import_raquel_async(aconn)
    assert (report.source_rows, report.copied, report.invalid) == (7, 7, [])
    source = rows(raquel_table, "jobs")
    assert rows(raquel_table, "raquel_jobs") == {i: expected_copy(r) for i, r in source.items()}


def test_a_claimed_job_comes_over_claimable_and_a_worker_runs_it(raquel_table: Conn, rq: Raquel) -> None:
    job_id = add(raquel_table, status="claimed", attempts=1, claimed_by="dead-worker", claimed_at=T)
    import_raquel(raquel_table)
    with rq.dequeue("emails") as job:
        assert job is not None and job.id == job_id
    assert raquel_table.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("success", 2)


def test_running_the_import_twice_copies_nothing_twice(raquel_table: Conn) -> None:
    ids = every_status(raquel_table)
    import_raquel(raquel_table)
    raquel_table.execute("UPDATE raquel_jobs SET payload = 'worked on since' WHERE id = %s", (ids["queued"],))
    new_id = add(raquel_table, queue="late")
    report = import_raquel(raquel_table)
    assert (report.source_rows, report.copied, report.already_present) == (8, 1, 7)
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (8,)
    assert raquel_table.execute("SELECT payload FROM raquel_jobs WHERE id = %s", (ids["queued"],)).fetchone() == (
        "worked on since",
    )
    assert raquel_table.execute("SELECT queue FROM raquel_jobs WHERE id = %s", (new_id,)).fetchone() == ("late",)


async def test_running_the_import_twice_copies_nothing_twice_async(raquel_table: Conn, dsn: str) -> None:
    every_status(raquel_table)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        first = await import_raquel_async(aconn)
        second = await import_raquel_async(aconn)
    assert (first.copied, second.copied, second.already_present) == (7, 0, 7)
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (7,)


def bad_rows(conn: Conn) -> dict[str, UUID]:
    return {
        "status": add(conn, status="paused"),
        "delay": add(conn, min_retry_delay=-5),
        "two": add(conn, queue="", max_age=0),
        "order": add(conn, min_retry_delay=5000, max_retry_delay=1000),
    }


def test_rows_breaking_a_rule_refuse_the_whole_import_each_named_with_its_reason(raquel_table: Conn) -> None:
    every_status(raquel_table)
    bad = bad_rows(raquel_table)
    with pytest.raises(ImportRefused) as refused:
        import_raquel(raquel_table)
    assert dict(refused.value.report.invalid) == {
        str(bad["status"]): "unknown status 'paused'",
        str(bad["delay"]): "min_retry_delay -5 ms (must be >= 0)",
        str(bad["two"]): "empty queue name; max_age 0 ms (must be > 0)",
        str(bad["order"]): "max_retry_delay 1000 ms below min_retry_delay 5000 ms",
    }
    assert refused.value.report.source_rows == 11
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


async def test_rows_breaking_a_rule_refuse_the_whole_import_async(raquel_table: Conn, dsn: str) -> None:
    every_status(raquel_table)
    bad = add(raquel_table, status="paused")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        with pytest.raises(ImportRefused) as refused:
            await import_raquel_async(aconn)
    assert refused.value.report.invalid == [(str(bad), "unknown status 'paused'")]
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


def test_skip_invalid_copies_the_valid_rows_and_reports_the_skipped(raquel_table: Conn) -> None:
    every_status(raquel_table)
    bad = bad_rows(raquel_table)
    report = import_raquel(raquel_table, skip_invalid=True)
    assert (report.source_rows, report.copied, report.already_present) == (11, 7, 0)
    assert {UUID(job_id) for job_id, _ in report.invalid} == set(bad.values())
    copied = {r[0] for r in raquel_table.execute("SELECT id FROM raquel_jobs").fetchall()}
    assert len(copied) == 7 and not copied & set(bad.values())


def test_a_dry_run_reports_what_it_would_copy_and_writes_nothing(raquel_table: Conn) -> None:
    every_status(raquel_table)
    report = import_raquel(raquel_table, dry_run=True)
    assert (report.dry_run, report.source_rows, report.copied) == (True, 7, 7)
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)
    assert raquel_table.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'raquel_import%'").fetchone() == (0,)


def test_raquel_0_0_bigserial_ids_become_stable_uuids(conn: Conn) -> None:
    conn.execute("DROP TABLE IF EXISTS jobs")
    conn.execute(RAQUEL_0_0_DDL.encode())
    try:
        conn.execute(
            "INSERT INTO jobs (id, queue, status, attempts, locked_by, locked_at, failed_error,"
            " failed_traceback, cancelled_reason, finished_at, enqueued_at, scheduled_at) VALUES"
            " (41, 'q', 'locked', 1, 'w', %(t)s, NULL, NULL, NULL, NULL, %(t)s, %(t)s),"
            " (42, 'q', 'failed', 2, 'w', %(t)s, 'oops', 'Traceback: oops', NULL, %(t)s, %(t)s, %(t)s),"
            " (43, 'q', 'cancelled', 0, NULL, NULL, NULL, NULL, 'not needed', %(t)s, %(t)s, %(t)s)",
            {"t": T},
        )
        assert import_raquel(conn).copied == 3
        copied = rows(conn, "raquel_jobs")
        assert set(copied) == {legacy_id(41), legacy_id(42), legacy_id(43)}
        assert legacy_id(42) == UUID("2c7e06b9-68db-3ab5-94fa-5dfce83735e8")  # fixed forever
        assert copied[legacy_id(41)]["status"] == "queued" and copied[legacy_id(41)]["claimed_by"] is None
        assert (
            copied[legacy_id(42)]["error"],
            copied[legacy_id(42)]["error_trace"],
            copied[legacy_id(42)]["claimed_by"],
        ) == ("oops", "Traceback: oops", "w")
        assert copied[legacy_id(43)]["error"] == "not needed"
        assert import_raquel(conn).copied == 0
    finally:
        conn.execute("DROP TABLE IF EXISTS jobs")


@pytest.mark.parametrize(
    "table, message",
    [
        ("no_such_table", "no table 'no_such_table'"),
        ("raquel_schedules", "is not a raquel jobs table (no column id, status, enqueued_at, scheduled_at, attempts)"),
    ],
)
def test_a_missing_or_foreign_table_is_refused_by_name(conn: Conn, table: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)) as error:
        import_raquel(conn, table)
    assert error.value.argument == "table"


def test_cli_imports_and_reports(raquel_table: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    every_status(raquel_table)
    assert main(["--dsn", dsn, "import-raquel", "--dry-run"]) == 0
    assert capsys.readouterr().out == "would copy 7 of 7 jobs from jobs (0 already present, 0 skipped)\n"
    assert main(["--dsn", dsn, "import-raquel", "--table", "public.jobs"]) == 0
    assert capsys.readouterr().out == "copied 7 of 7 jobs from public.jobs (0 already present, 0 skipped)\n"
    assert main(["--dsn", dsn, "import-raquel", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "table": "jobs",
        "source_rows": 7,
        "copied": 0,
        "already_present": 7,
        "invalid": [],
        "refused": False,
        "dry_run": False,
    }


def test_cli_refuses_invalid_rows_with_status_1(
    raquel_table: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    every_status(raquel_table)
    bad = add(raquel_table, status="paused")
    assert main(["--dsn", dsn, "import-raquel"]) == 1
    err = capsys.readouterr().err
    assert f"refused row {bad}: unknown status 'paused'" in err
    assert "nothing copied: 1 of 8 rows of jobs break a rule of raquel_jobs" in err
    assert raquel_table.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)
    assert main(["--dsn", dsn, "import-raquel", "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert f"skipped row {bad}" in captured.err
    assert captured.out == "copied 7 of 8 jobs from jobs (0 already present, 1 skipped)\n"
