"""Bad input, from SQL and from Python (issue 4, item 6).

Property: every call of raquel_enqueue / enqueue either stores a job that
reads back exactly as given, or is refused with InvalidArgument (SQLSTATE
22023 with the argument in the error's COLUMN field) naming an argument,
having written nothing. Never "bigint out of range" or another stray error.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raquel_pg import InvalidArgument, Raquel

Conn = psycopg.Connection[tuple[Any, ...]]

ENQUEUE_ARGUMENTS = {
    "queue",
    "payload",
    "at",
    "delay",
    "max_age",
    "max_retry_count",
    "min_retry_delay",
    "max_retry_delay",
    "backoff_base",
    "now",
}
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

BIGINT = 2**63
EDGES = [0, -1, 1, 2**62 - 1, 2**62, -(2**62 - 1), -(2**62), BIGINT - 1, -BIGINT]
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
queues = st.one_of(
    texts.filter(bool).map(lambda t: t[:40]),
    st.sampled_from(
        [
            "",
            "'",
            '"',
            "q'; DROP TABLE raquel_jobs; --",
            "line\nbreak\r\n",
            "tab\tq",
            "é" * 500,
            "é" * 501,
            "x" * 10_000,
            "\U0001f642" * 250,
            "\U0001f642" * 251,
            " ",
            "default",
        ]
    ),
)
payloads = st.one_of(st.none(), texts, st.sampled_from(["", "{not json", '{"a": 1}', "null", "\n"]))
bigints = st.one_of(st.none(), st.integers(-(10**7), 10**7), st.sampled_from(EDGES), st.integers(-BIGINT, BIGINT - 1))
integers = st.one_of(st.none(), st.integers(-5, 100), st.sampled_from([2**31 - 1, -(2**31)]))


def job_count(conn: Conn) -> int:
    return conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0]


def assert_round_trip(conn: Conn, job_id: Any, args: dict[str, Any]) -> None:
    row = conn.execute(
        "SELECT queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,"
        " backoff_base, scheduled_at - enqueued_at, scheduled_at FROM raquel_jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row[0:4] == (args["queue"], args["payload"], args["max_age"], args["max_retry_count"])
    assert row[4:7] == (
        1000 if args["min_retry_delay"] is None else args["min_retry_delay"],
        43200000 if args["max_retry_delay"] is None else args["max_retry_delay"],
        1000 if args["backoff_base"] is None else args["backoff_base"],
    )
    if args["at"] is None:
        assert row[7] == (args["delay"] or 0)
    else:
        assert row[8] == args["at"] + (args["delay"] or 0)


@PROPERTY
@given(
    queue=queues,
    payload=payloads,
    at=bigints,
    delay=bigints,
    max_age=bigints,
    max_retry_count=integers,
    min_retry_delay=bigints,
    max_retry_delay=bigints,
    backoff_base=bigints,
)
def test_sql_enqueue_stores_exactly_or_refuses_naming_the_argument(conn: Conn, **args: Any) -> None:
    before = job_count(conn)
    try:
        job_id = conn.execute(
            "SELECT raquel_enqueue(queue => %(queue)s, payload => %(payload)s, at => %(at)s::bigint,"
            " delay => %(delay)s::bigint, max_age => %(max_age)s::bigint,"
            " max_retry_count => %(max_retry_count)s::integer,"
            " min_retry_delay => %(min_retry_delay)s::bigint,"
            " max_retry_delay => %(max_retry_delay)s::bigint, backoff_base => %(backoff_base)s::bigint)",
            args,
        ).fetchone()[0]
    except psycopg.errors.InvalidParameterValue as error:
        assert error.diag.column_name in ENQUEUE_ARGUMENTS
        assert f'invalid argument "{error.diag.column_name}"' in str(error)
        assert job_count(conn) == before
    else:
        assert_round_trip(conn, job_id, args)


py_ints = st.one_of(bigints, st.integers(-(2**70), 2**70))
py_times = st.one_of(
    py_ints,
    st.sampled_from([datetime.min, datetime.max, datetime(1970, 1, 1), datetime(2999, 12, 31, tzinfo=timezone.utc)]),
)
py_durations = st.one_of(
    py_ints,
    st.sampled_from(
        [timedelta.max, timedelta.min, timedelta(0), timedelta(milliseconds=-1), timedelta(days=365 * 1000)]
    ),
)
py_payloads = st.one_of(
    payloads, st.sampled_from([{"a": [1, 2.5, None]}, [], 0, float("nan"), {"bad": {1, 2}}, "nul\x00byte", b"bytes"])
)


@PROPERTY
@given(
    queue=queues,
    payload=py_payloads,
    at=py_times,
    delay=py_durations,
    max_age=py_durations,
    max_retry_count=st.one_of(integers, st.sampled_from([2**31, -(2**31) - 1, True])),
    min_retry_delay=py_durations,
    max_retry_delay=py_durations,
    backoff_base=py_durations,
)
def test_python_enqueue_stores_exactly_or_refuses_naming_the_argument(rq: Raquel, conn: Conn, **args: Any) -> None:
    from raquel_pg import params

    before = job_count(conn)
    try:
        job_id = rq.enqueue(**args).id
    except InvalidArgument as error:
        assert error.argument in ENQUEUE_ARGUMENTS
        assert error.argument in str(error)
        assert job_count(conn) == before
    else:
        stored = params.enqueue_args(**args)  # what the client sent: must read back as is
        assert_round_trip(conn, job_id, stored)


def test_fifty_megabyte_payload_round_trips(rq: Raquel, conn: Conn) -> None:
    payload = json.dumps({"blob": "x" * (50 * 1024 * 1024)})
    job_id = rq.enqueue("q", payload).id

    stored = conn.execute(
        "SELECT octet_length(payload), md5(payload) FROM raquel_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert stored == (len(payload), hashlib.md5(payload.encode()).hexdigest())


def test_notify_limit_never_fails_an_enqueue(dsn: str, conn: Conn) -> None:
    longest_queue = "\U0001f642" * 250  # 1000 bytes, the most a queue name may have
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_jobs")
        listener.execute("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")  # 0008: a waiter
        conn.execute("SELECT raquel_enqueue(%s, repeat('y', 9000))", (longest_queue,))
        notices = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]

    assert notices == [longest_queue]
    assert conn.execute("SELECT octet_length(payload) FROM raquel_jobs").fetchone()[0] == 9000


@pytest.mark.parametrize("queue", ["", "x" * 10_000])
def test_bad_queue_is_refused_by_name_and_writes_nothing(rq: Raquel, conn: Conn, queue: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.enqueue(queue)

    assert refused.value.argument == "queue"
    assert job_count(conn) == 0


def test_time_sum_that_would_overflow_is_refused_by_name(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute("SELECT raquel_enqueue('q', at => 253402214399999, delay => 1)")  # 0020: the range's end

    assert refused.value.diag.column_name == "delay"
    assert job_count(conn) == 0
