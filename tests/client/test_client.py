# WARNING: this file is generated from test_client_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_client_async.py and run `python tools/async_to_sync.py`.

"""The client API (enqueue, dequeue, job outcomes, stats), as the README shows it.

Written once, for both clients: tests/client/test_client.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg
import pytest

from raquel_pg import InvalidArgument, QueueStats, Raquel

Conn = psycopg.Connection[Any]


def row(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    values = cur.fetchone()
    assert values is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], values))


def count(conn: Conn) -> int:
    result = conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()
    assert result is not None
    return int(result[0])


# --- enqueue ------------------------------------------------------------------


def test_enqueue_returns_the_job_as_stored(rq: Raquel, conn: Conn) -> None:
    job = rq.enqueue("emails", {"to": "a@b.c"}, delay=60_000, priority=3)
    assert isinstance(job.id, UUID)
    assert job == rq.get(job.id)
    assert (job.queue, job.payload, job.status, job.priority) == ("emails", {"to": "a@b.c"}, "queued", 3)
    assert row(conn, job.id)["scheduled_at"] == row(conn, job.id)["enqueued_at"] + 60_000


def test_enqueue_without_options_returns_the_job_with_the_defaults(rq: Raquel) -> None:
    # Migration enqueue_speed: a call without optional arguments passes raquel_enqueue_row's guard.
    job = rq.enqueue("plain", "x")
    assert job == rq.get(job.id)
    assert (
        job.status,
        job.attempts,
        job.min_retry_delay,
        job.max_retry_delay,
        job.backoff_base,
        job.priority,
        job.scheduled_at,
    ) == ("queued", 0, 1000, 43_200_000, 1000, 0, job.enqueued_at)


def test_calls_after_an_error_and_after_a_closed_connection_run_as_before(rq: Raquel) -> None:
    # _fetch keeps a cursor per pooled connection: an error leaves it usable,
    # and a connection closed under the client is replaced with its cursor.
    with pytest.raises(InvalidArgument):
        rq.enqueue("", "x")
    first = rq.enqueue("q", "x")
    with rq.connection() as conn:
        conn.close()
    second = rq.enqueue("q", "y")
    assert [(rq.get(j.id)) == j for j in (first, second)] == [True, True]


def test_enqueue_of_a_job_enqueues_a_copy_with_the_arguments_given(rq: Raquel) -> None:
    original = rq.enqueue("ingest", "data", max_retry_count=3, min_retry_delay=2000, priority=5)
    copy = rq.enqueue(payload=original, max_retry_count=7)
    assert copy.id != original.id
    assert (copy.queue, copy.raw_payload, copy.min_retry_delay, copy.priority) == ("ingest", "data", 2000, 5)
    assert (copy.max_retry_count, original.max_retry_count) == (7, 3)
    assert (rq.enqueue("other", original)).queue == "other"


def test_enqueue_with_a_kept_unique_key_returns_the_job_holding_it(rq: Raquel) -> None:
    first = rq.enqueue("q", "first", unique_key="k")
    again = rq.enqueue("q", "second", unique_key="k")
    assert (again.id, again.raw_payload) == (first.id, "first")


def test_enqueue_stores_a_str_payload_as_is_and_others_as_json(rq: Raquel, conn: Conn) -> None:
    assert row(conn, (rq.enqueue("q", "Hello, World!")).id)["payload"] == "Hello, World!"
    assert row(conn, (rq.enqueue("q", {"data": [1, 2]})).id)["payload"] == '{"data": [1, 2]}'
    assert row(conn, (rq.enqueue("q", 10_000)).id)["payload"] == "10000"
    assert row(conn, (rq.enqueue("q")).id)["payload"] is None


def test_enqueue_puts_jobs_in_the_default_queue(rq: Raquel, conn: Conn) -> None:
    assert row(conn, (rq.enqueue(payload="x")).id)["queue"] == "default"


def test_enqueue_at_a_datetime_plus_a_timedelta(rq: Raquel, conn: Conn) -> None:
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    job = row(conn, (rq.enqueue("q", at=at, delay=timedelta(seconds=2))).id)
    assert job["scheduled_at"] == int(at.timestamp() * 1000) + 2000


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process's local time zone is America/New_York (UTC-5 in January) for the test."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_enqueue_takes_a_naive_datetime_as_local_time_as_raquel_does(rq: Raquel, conn: Conn, new_york: Any) -> None:
    # raquel converts with datetime.timestamp(): datetime.now() + timedelta(...) means from now, on any host.
    naive = row(conn, (rq.enqueue("q", at=datetime(2030, 1, 1))).id)
    assert naive["scheduled_at"] == int(datetime(2030, 1, 1, 5, tzinfo=timezone.utc).timestamp() * 1000)


def test_enqueue_takes_ints_as_ms(rq: Raquel, conn: Conn) -> None:
    job = row(
        conn,
        (
            rq.enqueue(
                "q",
                delay=1500,
                max_age=timedelta(minutes=1),
                max_retry_count=3,
                min_retry_delay=100,
                max_retry_delay=timedelta(seconds=10),
                backoff_base=200,
            )
        ).id,
    )
    assert job["scheduled_at"] - job["enqueued_at"] == 1500
    assert (
        job["max_age"],
        job["max_retry_count"],
        job["min_retry_delay"],
        job["max_retry_delay"],
        job["backoff_base"],
    ) == (60_000, 3, 100, 10_000, 200)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"queue": ""}, "queue"),
        ({"delay": -5}, "delay"),
        ({"delay": timedelta(seconds=-1)}, "delay"),
        ({"max_age": 0}, "max_age"),
        ({"max_retry_count": -1}, "max_retry_count"),
        ({"min_retry_delay": 10, "max_retry_delay": 5}, "max_retry_delay"),
        ({"payload": {1, 2}}, "payload"),
        ({"payload": float("nan")}, "payload"),
        ({"at": "tomorrow"}, "at"),
        ({"delay": 1.5}, "delay"),
        ({"queue": 7}, "queue"),
    ],
)
def test_enqueue_refuses_bad_input_naming_the_argument_and_writes_nothing(
    rq: Raquel, conn: Conn, kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValueError) as raised:
        rq.enqueue(**kwargs)
    assert isinstance(raised.value, InvalidArgument)
    assert raised.value.argument == argument
    assert argument in str(raised.value)
    assert count(conn) == 0


# --- dequeue ------------------------------------------------------------------


def test_dequeue_yields_none_when_no_job_is_ready(rq: Raquel) -> None:
    with rq.dequeue() as job:
        assert job is None


def test_dequeue_yields_the_job_and_records_success(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("tasks", {"foo": "bar"})).id
    with rq.dequeue("tasks") as job:
        assert job is not None
        assert (job.id, job.payload, job.status, job.attempts) == (job_id, {"foo": "bar"}, rq.CLAIMED, 0)
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("success", 1)
    assert stored["finished_at"] is not None


def test_dequeue_takes_only_the_named_queues(rq: Raquel) -> None:
    rq.enqueue("other", "x")
    with rq.dequeue("tasks") as job:
        assert job is None
    with rq.dequeue("tasks", "other") as job:
        assert job is not None and job.queue == "other"


def test_dequeue_records_claim_as(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue(claim_as="worker-1"):
        assert row(conn, job_id)["claimed_by"] == "worker-1"


def test_an_exception_fails_the_job_with_message_and_traceback(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q", min_retry_delay=100)).id
    with rq.dequeue("q") as job:
        assert job is not None
        raise RuntimeError("Something went wrong")
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("failed", 1)
    assert stored["error"] == "Something went wrong"  # the message only, as raquel stores it
    assert "Traceback" in stored["error_trace"] and "RuntimeError: Something went wrong" in stored["error_trace"]
    assert stored["scheduled_at"] == stored["finished_at"] + 1000  # backoff_base * 2^0


def test_a_failed_job_is_retried_after_its_backoff(rq: Raquel) -> None:
    rq.enqueue("q", min_retry_delay=0, backoff_base=100)
    with rq.dequeue("q") as job:
        raise RuntimeError("first attempt")
    with rq.dequeue("q") as job:
        assert job is None
    _sleep(0.15)
    with rq.dequeue("q") as job:
        assert job is not None and job.attempts == 1 and job.status == rq.CLAIMED


def test_job_fail_by_hand_replaces_success(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue("q") as job:
        assert job is not None
        assert job.fail("upstream said no") is True
    stored = row(conn, job_id)
    assert (stored["status"], stored["error"], stored["error_trace"]) == ("failed", "upstream said no", None)


def test_max_retry_count_exhausts_the_job(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q", max_retry_count=1, min_retry_delay=0, backoff_base=0)).id
    for _ in range(2):
        with rq.dequeue("q") as job:
            assert job is not None
            raise ValueError("bad")
    assert row(conn, job_id)["status"] == "exhausted"
    with rq.dequeue("q") as job:
        assert job is None


def test_max_age_expires_a_job_not_started_in_time(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q", max_age=50)).id
    _sleep(0.1)
    with rq.dequeue("q") as job:
        assert job is None
    assert row(conn, job_id)["status"] == "expired"


def test_reschedule_puts_the_job_back_for_later(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue("q") as job:
        assert job is not None
        job.reschedule(delay=timedelta(minutes=10))
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("queued", 1)
    assert stored["scheduled_at"] - stored["claimed_at"] >= 600_000


def test_reject_lets_another_worker_take_the_job_at_once(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue("q", claim_as="picky") as job:
        assert job is not None
        job.reject()
    stored = row(conn, job_id)
    assert (stored["status"], stored["claimed_by"], stored["attempts"]) == ("queued", None, 1)
    with rq.dequeue("q") as job:
        assert job is not None and job.id == job_id


def test_cancel_inside_dequeue_cancels_the_job(rq: Raquel, conn: Conn) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue("q") as job:
        assert job is not None
        job.cancel()
    assert row(conn, job_id)["status"] == "cancelled"


def test_a_job_takes_one_outcome_only(rq: Raquel) -> None:
    rq.enqueue("q")
    with rq.dequeue("q") as job:
        assert job is not None
        job.reject()
        with pytest.raises(Exception, match="already has an outcome"):
            job.fail("again")


def test_an_outcome_from_a_stale_claim_is_refused_and_logged(
    rq: Raquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = (rq.enqueue("q")).id
    with rq.dequeue("q", claim_as="slow") as job:
        assert job is not None
        # Its lease runs out and another worker rescues and claims it.
        conn.execute("UPDATE raquel_jobs SET lease_expires_at = 0 WHERE id = %s", (job_id,))
        conn.execute("SELECT raquel_claim(claim_as => 'new-owner')")
        with caplog.at_level(logging.WARNING, logger="raquel_pg"):
            assert job.fail("too late") is False
    stored = row(conn, job_id)
    assert (stored["status"], stored["claimed_by"]) == ("claimed", "new-owner")
    assert "no longer current" in caplog.text


def test_the_lease_is_renewed_while_a_long_job_runs(dsn: str, conn: Conn) -> None:
    with Raquel(dsn, lease=300) as client:
        job_id = (client.enqueue("q")).id
        with client.dequeue("q") as job:
            assert job is not None
            # Three leases have passed since the claim, and renewals keep the job ours.
            deadline = time.monotonic() + 10
            while conn.execute(
                "SELECT raquel_now_ms() < claimed_at + 900 FROM raquel_jobs WHERE id = %s", (job_id,)
            ).fetchone() != (False,):
                assert time.monotonic() < deadline, "timed out"
                _sleep(0.01)
            assert row(conn, job_id)["lease_expires_at"] > row(conn, job_id)["claimed_at"] + 900
        stored = row(conn, job_id)
        assert (stored["status"], stored["attempts"]) == ("success", 1)


# --- reading ------------------------------------------------------------------


def test_get_returns_the_job_or_none(rq: Raquel) -> None:
    job_id = (rq.enqueue("q", {"a": 1})).id
    job = rq.get(job_id)
    assert job is not None and (job.id, job.payload, job.raw_payload, job.status) == (
        job_id,
        {"a": 1},
        '{"a": 1}',
        "queued",
    )
    assert rq.get(UUID(int=0)) is None


def test_get_shows_priority_and_unique_key(rq: Raquel) -> None:
    plain = rq.get((rq.enqueue("q", 1)).id)
    keyed = rq.get((rq.enqueue("q", 2, priority=5, unique_key="report:7")).id)
    assert plain is not None and (plain.priority, plain.unique_key) == (0, None)
    assert keyed is not None and (keyed.priority, keyed.unique_key) == (5, "report:7")


#: Every call that takes a job id, with the id in place of ``job_id``.
BY_JOB_ID = {
    "get": lambda rq, job_id: rq.get(job_id),
    "cancel": lambda rq, job_id: rq.cancel(job_id),
    "cancel running": lambda rq, job_id: rq.cancel(job_id, running=True),
    "set_priority": lambda rq, job_id: rq.set_priority(job_id, 1),
    "unclaim": lambda rq, job_id: rq.unclaim(job_id),
    "resolve": lambda rq, job_id: rq.resolve(job_id, 1),
    "reject": lambda rq, job_id: rq.reject(job_id, 1),
    "fail": lambda rq, job_id: rq.fail(job_id, 1, "boom"),
    "result": lambda rq, job_id: rq.result(job_id, timeout=0.1),
}


@pytest.mark.parametrize("call", sorted(BY_JOB_ID))
@pytest.mark.parametrize("bad_id", ["not-a-uuid", 12345, None, b"0" * 16])
def test_a_call_given_something_else_than_a_job_id_names_job_id_and_writes_nothing(
    rq: Raquel, conn: Conn, call: str, bad_id: Any
) -> None:
    job_id = (rq.enqueue("q", 1)).id
    before = row(conn, job_id)
    with pytest.raises(InvalidArgument) as raised:
        BY_JOB_ID[call](rq, bad_id)
    assert raised.value.argument == "job_id"
    assert "job_id" in str(raised.value)
    assert row(conn, job_id) == before and count(conn) == 1


def test_a_job_id_may_be_given_as_text_in_any_form_uuid_reads(rq: Raquel) -> None:
    job_id = (rq.enqueue("q", 1)).id
    for text in (str(job_id), job_id.hex, str(job_id).upper(), "{" + str(job_id) + "}"):
        job = rq.get(text)
        assert job is not None and job.id == job_id


def test_a_claimed_job_shows_its_priority(rq: Raquel) -> None:
    rq.enqueue("q", 1, priority=3)
    with rq.dequeue("q") as job:
        assert job is not None and job.priority == 3


def test_queues_count_and_stats(rq: Raquel) -> None:
    for queue in ("default", "default", "tasks"):
        rq.enqueue(queue)
    with rq.dequeue("tasks"):
        pass
    assert rq.queues() == ["default", "tasks"]
    assert rq.count() == 3
    assert rq.count("default") == 2
    assert rq.count("tasks", rq.SUCCESS) == 1
    assert rq.count(status=[rq.QUEUED, rq.FAILED]) == 2
    assert rq.stats() == {
        "default": QueueStats("default", total=2, queued=2),
        "tasks": QueueStats("tasks", total=1, success=1),
    }
    with pytest.raises(ValueError, match="status"):
        rq.count(status="running")


def test_create_all_is_a_no_op_when_up_to_date(rq: Raquel) -> None:
    rq.create_all()
    rq.create_all()


def test_create_all_installs_the_schema_in_an_empty_database(make_database: Any) -> None:
    # raquel's first step: a new client on an empty database. Its pooled
    # connections prepare what they run, and a prepared statement holds one
    # command: every statement of the runner must be one.
    with Raquel(make_database()) as fresh:
        fresh.create_all()
        job = fresh.enqueue("q", {"n": 1})
        stored = fresh.get(job.id)
        assert stored is not None and stored.status == Raquel.QUEUED


def _sleep(seconds: float) -> None:
    from raquel_pg._acompat import sleep

    sleep(seconds)
