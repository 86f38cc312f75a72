"""Safe at the edges, SQL side (issue 18, migration 0020).

One range of times for SQL and Python; a clock that only roles which may
update raquel_jobs can move; a clear error naming the argument (and nothing
written) for every input that used to slip through; raquel_claim(before =>).
The rules are listed in docs/guarantees-edges.md, each with its test here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import InvalidArgument, Raquel, params
from raquel_pg.model import JOB_COLUMNS, JobRecord
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[tuple[Any, ...]]

MIN = -62135510400000  # 0001-01-02 00:00:00.000 UTC: the first time the queue stores
MAX = 253402214399999  # 9999-12-30 23:59:59.999 UTC: the last
T = 1_700_000_000_000  # a fixed now, 2023-11-14
BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)


def job_rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM raquel_jobs ORDER BY id").fetchall()


def refused_naming(conn: Conn, argument: str, statement: str, values: Any = None) -> str:
    """Runs ``statement`` (with ``values``), which must raise 22023 naming ``argument``; returns the message."""
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(statement.encode(), values)
    assert refused.value.diag.column_name == argument
    assert f'invalid argument "{argument}"' in str(refused.value)
    return refused.value.diag.message_primary or ""


def claimed_job(conn: Conn, **enqueue: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """A job enqueued (with these options) and claimed at T: its (id, claim_id)."""
    names = "".join(f", {name} => %({name})s" for name in enqueue)
    conn.execute(f"SELECT raquel_enqueue('q', now => {T}{names})".encode(), enqueue)
    row = conn.execute(f"SELECT id, claim_id FROM raquel_claim(ARRAY['q'], 'w', now => {T})".encode()).fetchone()
    assert row is not None
    return row[0], row[1]


# --- 1. one range of times ---------------------------------------------------------------


def test_the_range_is_what_datetime_represents_in_any_time_zone() -> None:
    assert (params.TIME_MIN_MS, params.TIME_MAX_MS) == (MIN, MAX)  # Python's range is SQL's
    assert params.to_datetime(MIN) == datetime(1, 1, 2, tzinfo=timezone.utc)
    assert params.to_datetime(MAX) == datetime(9999, 12, 30, 23, 59, 59, 999000, tzinfo=timezone.utc)
    for hours in (-23, 23):  # a day inside datetime's own range: local time still converts
        zone = timezone(timedelta(hours=hours))
        assert params.to_datetime(MIN).astimezone(zone).year == 1  # type: ignore[union-attr]
        assert params.to_datetime(MAX).astimezone(zone).year == 9999  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"at": -62135596800001}, "at"),  # before 0001-01-01: issue 18's row that killed workers
        ({"at": MIN - 1}, "at"),
        ({"at": MAX + 1}, "at"),
        ({"at": BIGINT_MIN}, "at"),
        ({"delay": 2**62 - 1}, "delay"),  # now + delay past 9999
        ({"at": MAX, "delay": 1}, "delay"),
        ({"now": -4611686018427387903}, "now"),
        ({"now": MAX + 1}, "now"),
    ],
)
@pytest.mark.parametrize("function", ["raquel_enqueue", "raquel_enqueue_many"])
def test_enqueue_refuses_a_time_outside_the_range_naming_it(
    conn: Conn, function: str, options: dict[str, Any], argument: str
) -> None:
    names = "".join(f", {name} => %({name})s::bigint" for name in options)
    first = "'q'" if function == "raquel_enqueue" else "'q', ARRAY['x']"
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(f"SELECT {function}({first}{names})".encode(), options)
    message = refused.value.diag.message_primary or ""
    assert refused.value.diag.column_name == argument
    assert message.startswith(f'{function}: invalid argument "{argument}"')
    assert "253402214399999" in message  # the range's end, in ms, is named
    assert job_rows(conn) == []


def test_enqueue_takes_both_ends_of_the_range(conn: Conn, rq: Raquel) -> None:
    conn.execute(f"SELECT raquel_enqueue('q', at => {MIN})")
    conn.execute(f"SELECT raquel_enqueue('q', at => {MAX - 5}, delay => 5)")
    conn.execute(f"SELECT raquel_enqueue_many('q', ARRAY['a'], at => {MAX})")

    rows = job_rows(conn)
    assert sorted(JobRecord.from_row(r).scheduled_at.year for r in rows) == [1, 9999, 9999]
    assert all(rq.get(r[0]) is not None for r in rows)


def test_reschedule_refuses_the_smallest_bigint_and_stats_keep_working(conn: Conn, rq: Raquel) -> None:
    job, claim = claimed_job(conn)
    refused_naming(conn, "at", "SELECT raquel_reschedule(%s, %s, at => -9223372036854775808)", (job, claim))

    assert conn.execute("SELECT status, claim_id FROM raquel_jobs").fetchone() == ("claimed", claim)
    assert conn.execute("SELECT queue, claimed FROM raquel_stats()").fetchall() == [("q", 1)]
    assert rq.stats()["q"].claimed == 1


@pytest.mark.parametrize(
    ("at", "delay", "argument"),
    [
        (4611686018427387904, 9000000000000000000, "at"),  # issue 18: was a bare 22003
        (None, 9000000000000000000, "delay"),
        (MAX, 1, "delay"),
        (None, MAX, "delay"),  # now + delay
        (None, -1, "delay"),
    ],
)
def test_reschedule_refuses_times_past_the_range_naming_the_argument(
    conn: Conn, at: int | None, delay: int, argument: str
) -> None:
    job, claim = claimed_job(conn)
    refused_naming(
        conn,
        argument,
        "SELECT raquel_reschedule(%s, %s, at => %s::bigint, delay => %s::bigint)",
        (job, claim, at, delay),
    )
    assert conn.execute("SELECT status, attempts FROM raquel_jobs").fetchone() == ("claimed", 0)


def test_reschedule_by_default_is_capped_at_the_ranges_end(conn: Conn, rq: Raquel) -> None:
    job, claim = claimed_job(conn, min_retry_delay=2**62 - 1, max_retry_delay=2**62 - 1)
    assert conn.execute("SELECT raquel_reschedule(%s, %s)", (job, claim)).fetchone() == ("queued",)

    assert conn.execute("SELECT scheduled_at FROM raquel_jobs").fetchone() == (MAX,)
    record = rq.get(job)
    assert record is not None and record.scheduled_at.year == 9999


def test_a_retry_delay_past_the_range_is_capped_at_its_end(conn: Conn, rq: Raquel) -> None:
    job, claim = claimed_job(conn, min_retry_delay=2**62 - 1, max_retry_delay=2**62 - 1)
    assert conn.execute("SELECT raquel_fail(%s, %s, 'boom')", (job, claim)).fetchone() == ("failed",)

    assert conn.execute("SELECT scheduled_at FROM raquel_jobs").fetchone() == (MAX,)
    record = rq.get(job)
    assert record is not None and record.scheduled_at.year == 9999


def test_a_failure_of_a_row_holding_the_largest_delays_is_recorded(conn: Conn, rq: Raquel) -> None:
    # Written by hand: raquel_enqueue takes at most 2^62 - 1. The delay, computed in float8, rounded
    # up to 2^63 and its cast failed every raquel_fail of the job (0026_retry_delay_range).
    job, claim = claimed_job(conn)
    conn.execute(
        "UPDATE raquel_jobs SET min_retry_delay = %(max)s, max_retry_delay = %(max)s, backoff_base = %(max)s",
        {"max": BIGINT_MAX},
    )
    assert conn.execute("SELECT raquel_fail(%s, %s, 'boom')", (job, claim)).fetchone() == ("failed",)
    assert conn.execute("SELECT scheduled_at FROM raquel_jobs").fetchone() == (MAX,)


@pytest.mark.parametrize(
    ("backoff_base", "min_retry_delay", "max_retry_delay", "delay"),
    [
        (BIGINT_MAX, BIGINT_MAX, BIGINT_MAX, 2**62),
        (BIGINT_MAX - 511, BIGINT_MAX - 511, BIGINT_MAX - 511, 2**62),
        (BIGINT_MIN, BIGINT_MIN, BIGINT_MIN, 0),
        (1000, -5000, -1000, 0),
    ],
)
def test_the_retry_delay_stays_within_0_and_2_to_the_62(
    conn: Conn, backoff_base: int, min_retry_delay: int, max_retry_delay: int, delay: int
) -> None:
    assert conn.execute(
        "SELECT raquel_retry_delay(3, %s, %s, %s)", (backoff_base, min_retry_delay, max_retry_delay)
    ).fetchone() == (delay,)


@pytest.mark.parametrize("lease", [2**63 - 1, MAX])
def test_claim_refuses_a_lease_running_past_the_range(conn: Conn, lease: int) -> None:
    conn.execute("SELECT raquel_enqueue('q')")
    message = refused_naming(conn, "lease", "SELECT * FROM raquel_claim(ARRAY['q'], lease => %s)", (lease,))
    assert "now + lease" in message
    assert conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("queued",)


def test_renew_leases_refuses_a_lease_running_past_the_range(conn: Conn) -> None:
    job, claim = claimed_job(conn)
    refused_naming(
        conn, "lease", "SELECT raquel_renew_leases(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[], %s)", (job, claim, BIGINT_MAX)
    )
    assert conn.execute("SELECT lease_expires_at FROM raquel_jobs").fetchone() == (T + 60000,)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"every": 1000, "first_run_at": MIN - 1}, "first_run_at"),
        ({"every": 1000, "first_run_at": BIGINT_MAX}, "first_run_at"),
        ({"every": BIGINT_MAX}, "every"),
        ({"every": 2**62 - 1}, "every"),  # now + every past 9999
        ({"every": 1000, "max_age": BIGINT_MAX}, "max_age"),  # overflowed every tick's enqueue
        ({"every": 1000, "now": MAX + 1}, "now"),
    ],
)
def test_set_schedule_refuses_times_outside_the_range_naming_them(
    conn: Conn, no_schedules: str, options: dict[str, Any], argument: str
) -> None:
    names = "".join(f", {name} => %({name})s::bigint" for name in options)
    refused_naming(conn, argument, f"SELECT raquel_set_schedule('s', 'q'{names})", options)
    assert conn.execute("SELECT count(*) FROM raquel_schedules").fetchone() == (0,)


@pytest.mark.parametrize(
    ("ticks", "nexts", "argument"),
    [
        ([MIN - 1], [None], "ticks"),
        ([T], [MAX + 1], "next_run_ats"),  # issue 18: moved a schedule to year 100,000,000
        ([T], [10**17], "next_run_ats"),
    ],
)
def test_fire_schedules_refuses_times_outside_the_range(
    conn: Conn, no_schedules: str, ticks: list[int], nexts: list[int | None], argument: str
) -> None:
    conn.execute(f"SELECT raquel_set_schedule('s', 'q', cron => '* * * * *', first_run_at => {T})")
    refused_naming(
        conn,
        argument,
        f"SELECT * FROM raquel_fire_schedules(ARRAY['s'], %s::bigint[], %s::bigint[], now => {T + 1})",
        (ticks, nexts),
    )
    assert conn.execute("SELECT next_run_at, last_run_at FROM raquel_schedules").fetchone() == (T, None)
    assert job_rows(conn) == []


def test_an_interval_schedules_next_tick_is_capped_at_the_ranges_end(conn: Conn, no_schedules: str, rq: Raquel) -> None:
    conn.execute(f"SELECT raquel_set_schedule('s', 'q', every => {2**62 - 1}, first_run_at => {T})")
    fired = conn.execute(
        f"SELECT * FROM raquel_fire_schedules(ARRAY['s'], ARRAY[{T}]::bigint[], ARRAY[NULL]::bigint[], now => {T + 1})"
    ).fetchall()

    assert len(fired) == 1
    assert conn.execute("SELECT next_run_at FROM raquel_schedules").fetchone() == (MAX,)
    assert [s.name for s in rq.schedules()] == ["s"]


def test_stats_never_overflow_whatever_the_rows_hold(conn: Conn, rq: Raquel) -> None:
    # A row written before 0020 (or by hand): the smallest bigint as its time.
    conn.execute("SELECT raquel_enqueue('q')")
    conn.execute(f"UPDATE raquel.raquel_jobs SET scheduled_at = {BIGINT_MIN}")

    now, age = conn.execute("SELECT raquel_now_ms(), oldest_ready_age_ms FROM raquel_stats()").fetchone()
    assert abs(age - (now - MIN)) < 60_000  # the age of a job due at the range's start
    assert conn.execute("SELECT queue, ready FROM raquel_queue_stats").fetchall() == [("q", 1)]
    assert rq.stats()["q"].queued == 1


# --- 2. the clock: only roles that may update raquel_jobs may move it ---------------------


@pytest.fixture
def roles(conn: Conn) -> Iterator[dict[str, str]]:
    """An enqueuer, a worker and an operator (raquel_pg/roles.sql), and "caller": EXECUTE on
    every raquel_* function, no table privilege. Dropped at the end."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"raquel_test_{kind}_{suffix}" for kind in ("enqueuer", "worker", "operator", "caller")}
    for name in names.values():
        conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    grant_roles(conn, enqueuer=names["enqueuer"], worker=names["worker"], operator=names["operator"])
    conn.execute(f'GRANT USAGE ON SCHEMA "{current_schema(conn)}" TO "{names["caller"]}"'.encode())
    for (function,) in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname LIKE"
        " 'raquel\\_%' AND p.prorettype <> 'trigger'::regtype"
    ).fetchall():
        conn.execute(f'GRANT EXECUTE ON FUNCTION {function} TO "{names["caller"]}"'.encode())
    yield names
    for name in names.values():
        conn.execute(f'DROP OWNED BY "{name}"'.encode())
        conn.execute(f'DROP ROLE "{name}"'.encode())


def current_schema(conn: Conn) -> str:
    schema: str = conn.execute("SELECT current_schema()").fetchone()[0]
    return schema


def as_role(dsn: str, role: str) -> str:
    return make_conninfo(dsn, options=f"-c role={role}")


def refused_now(dsn: str, statement: str, *args: Any) -> None:
    """``statement``, run by the session ``dsn``, raises 42501 naming ``now``."""
    with psycopg.connect(dsn, autocommit=True) as session:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            session.execute(statement.encode(), args or None)
    assert refused.value.diag.column_name == "now"
    assert 'argument "now"' in str(refused.value)


#: Every function that takes now (a new one must be added here, and check it).
TAKES_NOW = {
    "raquel_enqueue",
    "raquel_enqueue_row",
    "raquel_enqueue_many",
    "raquel_expire",
    "raquel_rescue",
    "raquel_claim",
    "raquel_renew_leases",
    "raquel_complete",
    "raquel_complete_many",
    "raquel_fail",
    "raquel_reschedule",
    "raquel_cancel",
    "raquel_stats",
    "raquel_retry",
    "raquel_retry_jobs",
    "raquel_purge",
    "raquel_set_schedule",
    "raquel_fire_schedules",
    "raquel_queue_overview",
    "raquel_throughput",
    "raquel_set_queue_limits",
    "raquel_prune",
}


def test_every_function_taking_now_refuses_it_from_a_role_that_may_not_update_the_jobs(
    dsn: str, conn: Conn, roles: dict[str, str]
) -> None:
    functions = conn.execute(
        "SELECT p.proname, p.pronargs - p.pronargdefaults FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND 'now' = ANY (p.proargnames)"
        "   AND p.pronamespace = 'raquel'::regnamespace"
    ).fetchall()  # the engine (0001_engine_schema)
    assert {name for name, _ in functions} == TAKES_NOW
    job, claim = claimed_job(conn)
    before = job_rows(conn)
    caller = as_role(dsn, roles["caller"])
    for name, required in functions:
        nulls = "NULL, " * required
        refused_now(caller, f"SELECT * FROM {name}({nulls}now => {T + 3_600_000})")
    assert job_rows(conn) == before


def test_a_worker_cannot_rescue_live_claims_by_moving_the_clock(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    conn.execute("SELECT raquel_enqueue('q')")
    honest = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], 'honest')").fetchone()
    worker = as_role(dsn, roles["worker"])
    for queues in ("ARRAY['q']", "NULL"):
        refused_now(worker, f"SELECT * FROM raquel_claim({queues}, 'rogue', 1, now => raquel_now_ms() + 3600000)")

    assert conn.execute("SELECT status, claimed_by, claim_id FROM raquel_jobs").fetchone() == (
        "claimed",
        "honest",
        honest[1],
    )
    with psycopg.connect(worker, autocommit=True) as session:  # the worker's own claims still work
        assert session.execute("SELECT raquel_complete(%s, %s)", honest).fetchone() == ("success",)


def test_a_worker_cannot_claim_delayed_jobs_early(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    conn.execute("SELECT raquel_enqueue('q', delay => 3600000)")
    refused_now(
        as_role(dsn, roles["worker"]),
        "SELECT * FROM raquel_claim(ARRAY['q'], 'rogue', now => raquel_now_ms() + 3600000)",
    )
    assert conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("queued",)


def test_a_worker_cannot_fire_schedules_early_or_move_them(
    dsn: str, conn: Conn, no_schedules: str, roles: dict[str, str]
) -> None:
    tick = conn.execute("SELECT raquel_set_schedule('s', 'q', every => 3600000)").fetchone()[0]
    refused_now(
        as_role(dsn, roles["worker"]),
        "SELECT * FROM raquel_fire_schedules(ARRAY['s'], ARRAY[%s]::bigint[], ARRAY[NULL]::bigint[], now => %s)",
        tick,
        tick,
    )
    assert conn.execute("SELECT next_run_at, last_run_at FROM raquel_schedules").fetchone() == (tick, None)
    assert job_rows(conn) == []


def test_a_worker_cannot_move_an_interval_schedules_next_tick(
    dsn: str, conn: Conn, no_schedules: str, roles: dict[str, str]
) -> None:
    tick = conn.execute("SELECT raquel_set_schedule('s', 'q', every => 3600000)").fetchone()[0]
    conn.execute("UPDATE raquel.raquel_schedules SET next_run_at = raquel_now_ms() - 1000 WHERE name = 's'")
    due = conn.execute("SELECT next_run_at FROM raquel_schedules").fetchone()[0]
    with psycopg.connect(as_role(dsn, roles["worker"]), autocommit=True) as worker:
        worker.execute(
            "SELECT * FROM raquel_fire_schedules(ARRAY['s'], ARRAY[%s]::bigint[], ARRAY[%s]::bigint[])", (due, MAX)
        )
    assert conn.execute("SELECT next_run_at FROM raquel_schedules").fetchone() == (due + 3600000,)
    assert len(job_rows(conn)) == 1 and tick is not None


def test_an_enqueuer_cannot_backdate_a_job(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    refused_now(as_role(dsn, roles["enqueuer"]), "SELECT raquel_enqueue('q', now => 0)")
    assert job_rows(conn) == []


def test_an_operator_may_still_move_the_clock(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    # It may update raquel_jobs by hand anyway; the CLI's purge passes now for one cutoff.
    with psycopg.connect(as_role(dsn, roles["operator"]), autocommit=True) as operator:
        operator.execute("SELECT raquel_enqueue('q', now => %s)", (T,))
        assert operator.execute("SELECT count(*) FROM raquel_claim(ARRAY['q'], 'op', now => %s)", (T,)).fetchone() == (
            1,
        )
        assert operator.execute("SELECT raquel_purge('1 day', now => %s)", (T,)).fetchone() == (0,)
    assert conn.execute("SELECT claimed_at FROM raquel_jobs").fetchone() == (T,)


def test_a_worker_runs_schedules_on_the_database_clock(
    dsn: str, conn: Conn, no_schedules: str, roles: dict[str, str]
) -> None:
    conn.execute(f"SELECT raquel_set_schedule('s', 'q', every => 60000, first_run_at => {T})")
    with Raquel(as_role(dsn, roles["worker"])) as worker:
        assert len(worker.run_schedules()) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            worker.run_schedules(now=MAX)


# --- 3. clear errors ---------------------------------------------------------------------


@pytest.mark.parametrize("since", ["infinity", "-infinity"])
def test_retry_jobs_refuses_an_infinite_since(conn: Conn, since: str) -> None:
    job, claim = claimed_job(conn, max_retry_count=0)
    conn.execute("SELECT raquel_fail(%s, %s, 'boom')", (job, claim))

    message = refused_naming(conn, "since", "SELECT raquel_retry_jobs(since => %s::timestamptz)", (since,))
    assert "must be a finite time" in message
    assert conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("exhausted",)


def test_purge_refuses_an_infinite_interval(conn: Conn) -> None:
    if conn.info.server_version < 170000:
        pytest.skip("infinite intervals exist from PostgreSQL 17 on")
    job, claim = claimed_job(conn)
    conn.execute("SELECT raquel_complete(%s, %s)", (job, claim))

    refused_naming(conn, "older_than", "SELECT raquel_purge('infinity'::interval)")
    refused_naming(conn, "older_than", "SELECT raquel_purge('-infinity'::interval)")
    assert len(job_rows(conn)) == 1


def test_purge_takes_the_longest_interval_without_overflow(conn: Conn) -> None:
    job, claim = claimed_job(conn)
    conn.execute("SELECT raquel_complete(%s, %s)", (job, claim))
    longest = "178000000 years 2147483647 days 2562047 hours"
    assert conn.execute("SELECT raquel_purge(%s::interval)", (longest,)).fetchone() == (0,)
    assert conn.execute("SELECT raquel_purge('0')").fetchone() == (1,)


@pytest.mark.parametrize("function", ["raquel_enqueue('q'", "raquel_enqueue_many('q', ARRAY['x']"])
def test_enqueue_blames_min_retry_delay_when_it_alone_exceeds_the_default_max(conn: Conn, function: str) -> None:
    message = refused_naming(conn, "min_retry_delay", f"SELECT {function}, min_retry_delay => 43200001)")
    assert message.endswith("must be <= max_retry_delay (by default 43200000 ms), got 43200001")
    refused_naming(conn, "max_retry_delay", f"SELECT {function}, min_retry_delay => 5, max_retry_delay => 4)")
    assert job_rows(conn) == []


@pytest.mark.parametrize(("job_ids", "claim_ids"), [(2, 1), (1, 2), (1, None), (None, 1), (0, 1)])
def test_renew_leases_refuses_arrays_of_different_lengths(
    conn: Conn, job_ids: int | None, claim_ids: int | None
) -> None:
    job, claim = claimed_job(conn)
    ids = None if job_ids is None else [job] * job_ids
    claims = None if claim_ids is None else [claim] * claim_ids
    refused_naming(conn, "claim_ids", "SELECT raquel_renew_leases(%s::uuid[], %s::uuid[], 120000)", (ids, claims))
    assert conn.execute("SELECT lease_expires_at FROM raquel_jobs").fetchone() == (T + 60000,)


INT_MAX = 2**31 - 1


def hand_written(conn: Conn, attempts: int, payload: str = "x") -> uuid.UUID:
    """A job written from psql with this attempts count, due at T."""
    row = conn.execute(
        f"INSERT INTO raquel_jobs (queue, payload, attempts, scheduled_at) VALUES ('q', %s, %s, {T}) RETURNING id",
        (payload, attempts),
    ).fetchone()
    assert row is not None
    return row[0]


def test_a_lease_run_out_on_a_job_at_integers_largest_attempts_stops_no_claim(conn: Conn) -> None:
    job = hand_written(conn, INT_MAX, "poison")
    conn.execute(f"SELECT raquel_claim(ARRAY['q'], 'w', 1, 1, {T})")
    conn.execute(f"SELECT raquel_enqueue('q', 'y', now => {T})")
    # Its lease has run out: the next claim rescues it (failed, to run again), then claims both.
    claimed = conn.execute(f"SELECT payload FROM raquel_claim(ARRAY['q'], 'w', 2, now => {T + 10})").fetchall()
    assert sorted(claimed) == [("poison",), ("y",)]
    assert conn.execute("SELECT attempts, error FROM raquel_jobs WHERE id = %s", (job,)).fetchone() == (
        INT_MAX,
        "lease expired at 1700000000001: worker w stopped renewing its claim",
    )


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("SELECT raquel_complete(%(id)s, %(claim)s)", "success"),
        ("SELECT raquel_complete_many(ARRAY[%(id)s]::uuid[], ARRAY[%(claim)s]::uuid[])", "success"),
        ("SELECT raquel_fail(%(id)s, %(claim)s, 'boom')", "failed"),
        ("SELECT raquel_reject(%(id)s, %(claim)s)", "queued"),
        ("SELECT raquel_reschedule(%(id)s, %(claim)s)", "queued"),
    ],
)
@pytest.mark.parametrize("attempts", [INT_MAX - 1, INT_MAX])
def test_an_outcome_of_a_job_at_the_top_of_attempts_is_recorded(
    conn: Conn, outcome: str, status: str, attempts: int
) -> None:
    job = hand_written(conn, attempts)
    claim = conn.execute(f"SELECT claim_id FROM raquel_claim(ARRAY['q'], 'w', now => {T})").fetchone()[0]  # type: ignore[index]
    conn.execute(outcome.encode(), {"id": job, "claim": claim})
    assert conn.execute("SELECT status, attempts FROM raquel_jobs WHERE id = %s", (job,)).fetchone() == (
        status,
        INT_MAX,
    )


def test_the_running_attempt_of_a_job_at_integers_largest_attempts_is_no_error(conn: Conn) -> None:
    job = hand_written(conn, INT_MAX)
    conn.execute(f"SELECT raquel_claim(ARRAY['q'], 'w', now => {T})")
    assert conn.execute("SELECT raquel_attempt_claim(%s, %s)", (job, INT_MAX)).fetchone() == (None,)


@pytest.mark.parametrize("batch", [134217728, 2**31 - 1, 0, None])
def test_claim_refuses_a_batch_outside_its_range_naming_it(conn: Conn, batch: int | None) -> None:
    conn.execute(f"SELECT raquel_enqueue('q', 'x', now => {T})")
    message = refused_naming(conn, "batch", f"SELECT raquel_claim(ARRAY['q'], 'w', %s, now => {T})", (batch,))
    assert message.endswith(f"must be between 1 and 134217727, got {'NULL' if batch is None else batch}")
    assert conn.execute("SELECT status FROM raquel_jobs").fetchall() == [("queued",)]


def test_claim_takes_the_largest_batch(conn: Conn) -> None:
    conn.execute(f"SELECT raquel_enqueue('q', 'x', now => {T})")
    rows = conn.execute(f"SELECT payload FROM raquel_claim(NULL, 'w', 134217727, now => {T})").fetchall()
    assert rows == [("x",)]


@pytest.mark.parametrize(
    "traceparent",
    [
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # a trace id of zeros
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # a parent id of zeros
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        "raquel_enqueue('q', 'x', trace_context => %s)",
        "raquel_enqueue_many('q', ARRAY['x'], trace_context => %s)",
    ],
)
def test_enqueue_refuses_a_traceparent_w3c_calls_invalid(conn: Conn, traceparent: str, call: str) -> None:
    carrier = f'{{"traceparent": "{traceparent}"}}'
    message = refused_naming(conn, "trace_context", f"SELECT {call}", (carrier,))
    assert "version ff and ids of zeros only are invalid" in message
    assert job_rows(conn) == []


# --- 4. raquel_claim(before =>) ----------------------------------------------------------


@pytest.mark.parametrize("queues", [None, ["a"], ["a", "b"]])
def test_claim_before_takes_only_jobs_scheduled_at_or_before_it(conn: Conn, queues: list[str] | None) -> None:
    for offset in (3000, 2000, 1000):
        conn.execute("SELECT raquel_enqueue('a', %s, at => %s, now => %s)", (str(offset), T - offset, T))

    claimed = conn.execute(
        "SELECT payload FROM raquel_claim(%s, 'w', 10, before => %s, now => %s)", (queues, T - 2000, T)
    ).fetchall()
    assert claimed == [("3000",), ("2000",)]
    later = conn.execute(
        "SELECT payload FROM raquel_claim(%s, 'w', 10, before => %s, now => %s)", (queues, T + 10**9, T)
    ).fetchall()
    assert later == [("1000",)]  # before later than now: now still bounds the claim


def test_claim_before_from_the_client(rq: Raquel, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'old', at => 1000)")
    conn.execute("SELECT raquel_enqueue('q', 'new')")

    jobs = rq._claim(["q"], None, 10, before=2000)
    assert [j.payload for j in jobs] == ["old"]
    assert conn.execute("SELECT payload, status FROM raquel_jobs ORDER BY payload").fetchall() == [
        ("new", "queued"),
        ("old", "claimed"),
    ]
    assert jobs[0].cancel()


# --- Python mirrors the range ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"at": -(10**14)}, "at"),
        ({"at": datetime(1, 1, 1)}, "at"),
        ({"at": datetime.max}, "at"),
        ({"at": MAX + 1}, "at"),
        ({"delay": 2**62}, "delay"),
        ({"max_age": -(2**62)}, "max_age"),
    ],
)
def test_python_refuses_a_time_outside_the_range_before_any_sql(
    conn: Conn, options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        params.enqueue_args(
            "q", None, options.get("at"), options.get("delay"), options.get("max_age"), None, None, None, None
        )
    assert refused.value.argument == argument


def test_python_enqueue_with_a_delay_past_the_range_is_refused_naming_delay(rq: Raquel, conn: Conn) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.enqueue("q", delay=timedelta(weeks=53375995))  # the CLI's --delay 53375995w
    assert refused.value.argument == "delay"
    assert job_rows(conn) == []
