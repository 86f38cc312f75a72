"""Safe at the edges, by property (issue 18, migration 0020).

enqueue, reschedule and the schedules, driven from SQL and from Python with
arbitrary integers, datetimes and timedeltas, either refuse naming the
argument (SQLSTATE 22023 / InvalidArgument) having written nothing, or write
rows whose every time lies in the shared range and that every reader handles:
JobRecord.from_row, rq.get, rq.stats(), raquel_stats(), raquel_queue_stats and
rq.schedules().
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raquel_pg import InvalidArgument, Raquel
from raquel_pg.model import JOB_COLUMNS, JobRecord

Conn = psycopg.Connection[tuple[Any, ...]]

MIN = -62135510400000  # 0001-01-02 UTC
MAX = 253402214399999  # 9999-12-30 23:59:59.999 UTC
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

EDGES = [
    0,
    -1,
    1,
    MIN,
    MIN - 1,
    MAX,
    MAX + 1,
    -62135596800001,
    2**62 - 1,
    2**62,
    -(2**62),
    2**63 - 1,
    -(2**63),
    1_700_000_000_000,
    10**17,
]
ints = st.one_of(st.none(), st.sampled_from(EDGES), st.integers(-(2**63), 2**63 - 1), st.integers(-(10**12), 10**13))
py_times = st.one_of(
    ints,
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        [
            datetime.min,
            datetime.max,
            datetime(1, 1, 2),
            datetime(9999, 12, 30, 23, 59, 59, 999000),
            datetime(9999, 12, 31, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2030, 1, 1, tzinfo=timezone.utc),
        ]
    ),
)
py_durations = st.one_of(
    ints,
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        [
            timedelta.max,
            timedelta.min,
            timedelta(0),
            timedelta(weeks=53375995),
            timedelta(days=365 * 8000),
            timedelta(milliseconds=-1),
            timedelta(hours=1),
        ]
    ),
)

TIMES = [name for name in JOB_COLUMNS if name.endswith("_at")]


def reset(conn: Conn) -> None:
    conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_schedules")


def snapshot(conn: Conn) -> list[tuple[Any, ...]]:
    return (
        conn.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM raquel_jobs ORDER BY id").fetchall()
        + conn.execute("SELECT * FROM raquel_schedules ORDER BY name").fetchall()
    )


def assert_every_reader_handles(conn: Conn, rq: Raquel) -> None:
    """Every time in the tables lies in the range, and every reader reads every row."""
    out = conn.execute(
        f"SELECT count(*) FROM raquel_jobs WHERE {' OR '.join(f'{t} NOT BETWEEN {MIN} AND {MAX}' for t in TIMES)}"
    ).fetchone()
    assert out == (0,)
    assert conn.execute(
        "SELECT count(*) FROM raquel_schedules WHERE next_run_at NOT BETWEEN %s AND %s"
        " OR last_run_at NOT BETWEEN %s AND %s OR created_at NOT BETWEEN %s AND %s",
        (MIN, MAX) * 3,
    ).fetchone() == (0,)
    rows = conn.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM raquel_jobs").fetchall()
    for row in rows:
        JobRecord.from_row(row)
        assert rq.get(row[0]) is not None
    assert sum(s.total for s in rq.stats().values()) == len(rows)
    conn.execute("SELECT * FROM raquel_stats()").fetchall()
    conn.execute("SELECT * FROM raquel_queue_stats").fetchall()
    rq.schedules()


def refused(conn: Conn, call: str, values: Any, arguments: set[str]) -> bool:
    """Runs ``call``: True when it was refused with 22023 naming one of ``arguments``, writing nothing."""
    before = snapshot(conn)
    try:
        conn.execute(call.encode(), values)
    except psycopg.errors.InvalidParameterValue as error:
        assert error.diag.column_name in arguments, error
        assert f'invalid argument "{error.diag.column_name}"' in str(error)
        assert snapshot(conn) == before
        return True
    return False


@PROPERTY
@given(at=ints, delay=ints, now=ints)
def test_sql_enqueue_refuses_by_name_or_writes_readable_rows(
    conn: Conn, rq: Raquel, at: int | None, delay: int | None, now: int | None
) -> None:
    reset(conn)
    args = {"at": at, "delay": delay, "now": now}
    for call in (
        "SELECT raquel_enqueue('q', at => %(at)s::bigint, delay => %(delay)s::bigint, now => %(now)s::bigint)",
        "SELECT raquel_enqueue_many('q', ARRAY['a', 'b'], at => %(at)s::bigint,"
        " delay => %(delay)s::bigint, now => %(now)s::bigint)",
    ):
        refused(conn, call, args, {"at", "delay", "now"})
    assert_every_reader_handles(conn, rq)


@PROPERTY
@given(at=ints, delay=ints, now=ints, min_retry_delay=st.one_of(st.none(), st.sampled_from([0, 2**62 - 1])))
def test_sql_reschedule_refuses_by_name_or_writes_readable_rows(
    conn: Conn, rq: Raquel, at: int | None, delay: int | None, now: int | None, min_retry_delay: int | None
) -> None:
    reset(conn)
    conn.execute(
        "SELECT raquel_enqueue('q', min_retry_delay => %s::bigint, max_retry_delay => %s::bigint)",
        (min_retry_delay, min_retry_delay),
    )
    job, claim = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], 'w')").fetchone()
    if not refused(
        conn,
        "SELECT raquel_reschedule(%s, %s, at => %s::bigint, delay => %s::bigint, now => %s::bigint)",
        (job, claim, at, delay, now),
        {"at", "delay", "now"},
    ):
        assert conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("queued",)
    assert_every_reader_handles(conn, rq)


@PROPERTY
@given(every=ints, first_run_at=ints, max_age=ints, now=ints, fire_now=ints)
def test_sql_schedules_refuse_by_name_or_write_readable_rows(
    conn: Conn,
    rq: Raquel,
    every: int | None,
    first_run_at: int | None,
    max_age: int | None,
    now: int | None,
    fire_now: int | None,
) -> None:
    reset(conn)
    declared = not refused(
        conn,
        "SELECT raquel_set_schedule('s', 'q', every => %s::bigint, first_run_at => %s::bigint,"
        " max_age => %s::bigint, now => %s::bigint)",
        (every, first_run_at, max_age, now),
        {"cron", "every", "first_run_at", "max_age", "now"},
    )
    if declared:
        tick = conn.execute("SELECT next_run_at FROM raquel_schedules").fetchone()[0]
        refused(
            conn,
            "SELECT * FROM raquel_fire_schedules(ARRAY['s'], ARRAY[%s]::bigint[],"
            " ARRAY[NULL]::bigint[], now => %s::bigint)",
            (tick, fire_now),
            {"now", "next_run_ats"},
        )
    assert_every_reader_handles(conn, rq)


@PROPERTY
@given(at=py_times, delay=py_durations)
def test_python_enqueue_refuses_by_name_or_writes_readable_rows(conn: Conn, rq: Raquel, at: Any, delay: Any) -> None:
    reset(conn)
    try:
        rq.enqueue("q", "x", at=at, delay=delay)
    except InvalidArgument as error:
        assert error.argument in {"at", "delay"}
        assert snapshot(conn) == []
    assert_every_reader_handles(conn, rq)


@PROPERTY
@given(at=py_times, delay=py_durations)
def test_python_reschedule_refuses_by_name_or_writes_readable_rows(conn: Conn, rq: Raquel, at: Any, delay: Any) -> None:
    reset(conn)
    conn.execute("SELECT raquel_enqueue('q')")
    [job] = rq._claim(["q"], None, 1)
    try:
        job.reschedule(at=at, delay=delay)
    except InvalidArgument as error:
        assert error.argument in {"at", "delay"}
        assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("claimed", 0)
        conn.execute("SELECT raquel_cancel(%s, %s)", (job.id, job.claim_id))  # ends the claim
    assert_every_reader_handles(conn, rq)


@PROPERTY
@given(every=py_durations, first_run_at=py_times, now=py_times)
def test_python_schedules_refuse_by_name_or_write_readable_rows(
    conn: Conn, rq: Raquel, every: Any, first_run_at: Any, now: Any
) -> None:
    reset(conn)
    try:
        rq.schedule("s", "q", every=every, first_run_at=first_run_at)
    except InvalidArgument as error:
        assert error.argument in {"cron", "every", "first_run_at"}
        assert snapshot(conn) == []
    else:
        try:
            rq.run_schedules(now=now)
        except InvalidArgument as error:
            assert error.argument in {"now", "next_run_ats"}
    assert_every_reader_handles(conn, rq)
