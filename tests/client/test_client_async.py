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

from raquel_pg import AsyncRaquel, InvalidArgument, QueueStats

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


async def test_enqueue_returns_the_job_as_stored(arq: AsyncRaquel, conn: Conn) -> None:
    job = await arq.enqueue("emails", {"to": "a@b.c"}, delay=60_000, priority=3)
    assert isinstance(job.id, UUID)
    assert job == await arq.get(job.id)
    assert (job.queue, job.payload, job.status, job.priority) == ("emails", {"to": "a@b.c"}, "queued", 3)
    assert row(conn, job.id)["scheduled_at"] == row(conn, job.id)["enqueued_at"] + 60_000


async def test_enqueue_without_options_returns_the_job_with_the_defaults(arq: AsyncRaquel) -> None:
    # Migration enqueue_speed: a call without optional arguments passes raquel_enqueue_row's guard.
    job = await arq.enqueue("plain", "x")
    assert job == await arq.get(job.id)
    assert (
        job.status,
        job.attempts,
        job.min_retry_delay,
        job.max_retry_delay,
        job.backoff_base,
        job.priority,
        job.scheduled_at,
    ) == ("queued", 0, 1000, 43_200_000, 1000, 0, job.enqueued_at)


async def test_calls_after_an_error_and_after_a_closed_connection_run_as_before(arq: AsyncRaquel) -> None:
    # _fetch keeps a cursor per pooled connection: an error leaves it usable,
    # and a connection closed under the client is replaced with its cursor.
    with pytest.raises(InvalidArgument):
        await arq.enqueue("", "x")
    first = await arq.enqueue("q", "x")
    async with arq.connection() as conn:
        await conn.close()
    second = await arq.enqueue("q", "y")
    assert [(await arq.get(j.id)) == j for j in (first, second)] == [True, True]


async def test_enqueue_of_a_job_enqueues_a_copy_with_the_arguments_given(arq: AsyncRaquel) -> None:
    original = await arq.enqueue("ingest", "data", max_retry_count=3, min_retry_delay=2000, priority=5)
    copy = await arq.enqueue(payload=original, max_retry_count=7)
    assert copy.id != original.id
    assert (copy.queue, copy.raw_payload, copy.min_retry_delay, copy.priority) == ("ingest", "data", 2000, 5)
    assert (copy.max_retry_count, original.max_retry_count) == (7, 3)
    assert (await arq.enqueue("other", original)).queue == "other"


async def test_enqueue_with_a_kept_unique_key_returns_the_job_holding_it(arq: AsyncRaquel) -> None:
    first = await arq.enqueue("q", "first", unique_key="k")
    again = await arq.enqueue("q", "second", unique_key="k")
    assert (again.id, again.raw_payload) == (first.id, "first")


async def test_enqueue_stores_a_str_payload_as_is_and_others_as_json(arq: AsyncRaquel, conn: Conn) -> None:
    assert row(conn, (await arq.enqueue("q", "Hello, World!")).id)["payload"] == "Hello, World!"
    assert row(conn, (await arq.enqueue("q", {"data": [1, 2]})).id)["payload"] == '{"data": [1, 2]}'
    assert row(conn, (await arq.enqueue("q", 10_000)).id)["payload"] == "10000"
    assert row(conn, (await arq.enqueue("q")).id)["payload"] is None


async def test_enqueue_puts_jobs_in_the_default_queue(arq: AsyncRaquel, conn: Conn) -> None:
    assert row(conn, (await arq.enqueue(payload="x")).id)["queue"] == "default"


async def test_enqueue_at_a_datetime_plus_a_timedelta(arq: AsyncRaquel, conn: Conn) -> None:
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    job = row(conn, (await arq.enqueue("q", at=at, delay=timedelta(seconds=2))).id)
    assert job["scheduled_at"] == int(at.timestamp() * 1000) + 2000


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process's local time zone is America/New_York (UTC-5 in January) for the test."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_enqueue_takes_a_naive_datetime_as_local_time_as_raquel_does(
    arq: AsyncRaquel, conn: Conn, new_york: Any
) -> None:
    # raquel converts with datetime.timestamp(): datetime.now() + timedelta(...) means from now, on any host.
    naive = row(conn, (await arq.enqueue("q", at=datetime(2030, 1, 1))).id)
    assert naive["scheduled_at"] == int(datetime(2030, 1, 1, 5, tzinfo=timezone.utc).timestamp() * 1000)


async def test_enqueue_takes_ints_as_ms(arq: AsyncRaquel, conn: Conn) -> None:
    job = row(
        conn,
        (
            await arq.enqueue(
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
async def test_enqueue_refuses_bad_input_naming_the_argument_and_writes_nothing(
    arq: AsyncRaquel, conn: Conn, kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValueError) as raised:
        await arq.enqueue(**kwargs)
    assert isinstance(raised.value, InvalidArgument)
    assert raised.value.argument == argument
    assert argument in str(raised.value)
    assert count(conn) == 0


# --- dequeue ------------------------------------------------------------------


async def test_dequeue_yields_none_when_no_job_is_ready(arq: AsyncRaquel) -> None:
    async with arq.dequeue() as job:
        assert job is None


async def test_dequeue_yields_the_job_and_records_success(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("tasks", {"foo": "bar"})).id
    async with arq.dequeue("tasks") as job:
        assert job is not None
        assert (job.id, job.payload, job.status, job.attempts) == (job_id, {"foo": "bar"}, arq.CLAIMED, 0)
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("success", 1)
    assert stored["finished_at"] is not None


async def test_dequeue_takes_only_the_named_queues(arq: AsyncRaquel) -> None:
    await arq.enqueue("other", "x")
    async with arq.dequeue("tasks") as job:
        assert job is None
    async with arq.dequeue("tasks", "other") as job:
        assert job is not None and job.queue == "other"


async def test_dequeue_records_claim_as(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue(claim_as="worker-1"):
        assert row(conn, job_id)["claimed_by"] == "worker-1"


async def test_an_exception_fails_the_job_with_message_and_traceback(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q", min_retry_delay=100)).id
    async with arq.dequeue("q") as job:
        assert job is not None
        raise RuntimeError("Something went wrong")
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("failed", 1)
    assert stored["error"] == "Something went wrong"  # the message only, as raquel stores it
    assert "Traceback" in stored["error_trace"] and "RuntimeError: Something went wrong" in stored["error_trace"]
    assert stored["scheduled_at"] == stored["finished_at"] + 1000  # backoff_base * 2^0


async def test_a_failed_job_is_retried_after_its_backoff(arq: AsyncRaquel) -> None:
    await arq.enqueue("q", min_retry_delay=0, backoff_base=100)
    async with arq.dequeue("q") as job:
        raise RuntimeError("first attempt")
    async with arq.dequeue("q") as job:
        assert job is None
    await _sleep(0.15)
    async with arq.dequeue("q") as job:
        assert job is not None and job.attempts == 1 and job.status == arq.CLAIMED


async def test_job_fail_by_hand_replaces_success(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue("q") as job:
        assert job is not None
        assert await job.fail("upstream said no") is True
    stored = row(conn, job_id)
    assert (stored["status"], stored["error"], stored["error_trace"]) == ("failed", "upstream said no", None)


async def test_max_retry_count_exhausts_the_job(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q", max_retry_count=1, min_retry_delay=0, backoff_base=0)).id
    for _ in range(2):
        async with arq.dequeue("q") as job:
            assert job is not None
            raise ValueError("bad")
    assert row(conn, job_id)["status"] == "exhausted"
    async with arq.dequeue("q") as job:
        assert job is None


async def test_max_age_expires_a_job_not_started_in_time(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q", max_age=50)).id
    await _sleep(0.1)
    async with arq.dequeue("q") as job:
        assert job is None
    assert row(conn, job_id)["status"] == "expired"


async def test_reschedule_puts_the_job_back_for_later(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue("q") as job:
        assert job is not None
        await job.reschedule(delay=timedelta(minutes=10))
    stored = row(conn, job_id)
    assert (stored["status"], stored["attempts"]) == ("queued", 1)
    assert stored["scheduled_at"] - stored["claimed_at"] >= 600_000


async def test_reject_lets_another_worker_take_the_job_at_once(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue("q", claim_as="picky") as job:
        assert job is not None
        await job.reject()
    stored = row(conn, job_id)
    assert (stored["status"], stored["claimed_by"], stored["attempts"]) == ("queued", None, 1)
    async with arq.dequeue("q") as job:
        assert job is not None and job.id == job_id


async def test_cancel_inside_dequeue_cancels_the_job(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue("q") as job:
        assert job is not None
        await job.cancel()
    assert row(conn, job_id)["status"] == "cancelled"


async def test_a_job_takes_one_outcome_only(arq: AsyncRaquel) -> None:
    await arq.enqueue("q")
    async with arq.dequeue("q") as job:
        assert job is not None
        await job.reject()
        with pytest.raises(Exception, match="already has an outcome"):
            await job.fail("again")


async def test_an_outcome_from_a_stale_claim_is_refused_and_logged(
    arq: AsyncRaquel, conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = (await arq.enqueue("q")).id
    async with arq.dequeue("q", claim_as="slow") as job:
        assert job is not None
        # Its lease runs out and another worker rescues and claims it.
        conn.execute("UPDATE raquel_jobs SET lease_expires_at = 0 WHERE id = %s", (job_id,))
        conn.execute("SELECT raquel_claim(claim_as => 'new-owner')")
        with caplog.at_level(logging.WARNING, logger="raquel_pg"):
            assert await job.fail("too late") is False
    stored = row(conn, job_id)
    assert (stored["status"], stored["claimed_by"]) == ("claimed", "new-owner")
    assert "no longer current" in caplog.text


async def test_the_lease_is_renewed_while_a_long_job_runs(dsn: str, conn: Conn) -> None:
    async with AsyncRaquel(dsn, lease=300) as client:
        job_id = (await client.enqueue("q")).id
        async with client.dequeue("q") as job:
            assert job is not None
            # Three leases have passed since the claim, and renewals keep the job ours.
            deadline = time.monotonic() + 10
            while conn.execute(
                "SELECT raquel_now_ms() < claimed_at + 900 FROM raquel_jobs WHERE id = %s", (job_id,)
            ).fetchone() != (False,):
                assert time.monotonic() < deadline, "timed out"
                await _sleep(0.01)
            assert row(conn, job_id)["lease_expires_at"] > row(conn, job_id)["claimed_at"] + 900
        stored = row(conn, job_id)
        assert (stored["status"], stored["attempts"]) == ("success", 1)


# --- reading ------------------------------------------------------------------


async def test_get_returns_the_job_or_none(arq: AsyncRaquel) -> None:
    job_id = (await arq.enqueue("q", {"a": 1})).id
    job = await arq.get(job_id)
    assert job is not None and (job.id, job.payload, job.raw_payload, job.status) == (
        job_id,
        {"a": 1},
        '{"a": 1}',
        "queued",
    )
    assert await arq.get(UUID(int=0)) is None


async def test_get_shows_priority_and_unique_key(arq: AsyncRaquel) -> None:
    plain = await arq.get((await arq.enqueue("q", 1)).id)
    keyed = await arq.get((await arq.enqueue("q", 2, priority=5, unique_key="report:7")).id)
    assert plain is not None and (plain.priority, plain.unique_key) == (0, None)
    assert keyed is not None and (keyed.priority, keyed.unique_key) == (5, "report:7")


#: Every call that takes a job id, with the id in place of ``job_id``.
BY_JOB_ID = {
    "get": lambda arq, job_id: arq.get(job_id),
    "cancel": lambda arq, job_id: arq.cancel(job_id),
    "cancel running": lambda arq, job_id: arq.cancel(job_id, running=True),
    "set_priority": lambda arq, job_id: arq.set_priority(job_id, 1),
    "unclaim": lambda arq, job_id: arq.unclaim(job_id),
    "resolve": lambda arq, job_id: arq.resolve(job_id, 1),
    "reject": lambda arq, job_id: arq.reject(job_id, 1),
    "fail": lambda arq, job_id: arq.fail(job_id, 1, "boom"),
    "result": lambda arq, job_id: arq.result(job_id, timeout=0.1),
}


@pytest.mark.parametrize("call", sorted(BY_JOB_ID))
@pytest.mark.parametrize("bad_id", ["not-a-uuid", 12345, None, b"0" * 16])
async def test_a_call_given_something_else_than_a_job_id_names_job_id_and_writes_nothing(
    arq: AsyncRaquel, conn: Conn, call: str, bad_id: Any
) -> None:
    job_id = (await arq.enqueue("q", 1)).id
    before = row(conn, job_id)
    with pytest.raises(InvalidArgument) as raised:
        await BY_JOB_ID[call](arq, bad_id)
    assert raised.value.argument == "job_id"
    assert "job_id" in str(raised.value)
    assert row(conn, job_id) == before and count(conn) == 1


async def test_a_job_id_may_be_given_as_text_in_any_form_uuid_reads(arq: AsyncRaquel) -> None:
    job_id = (await arq.enqueue("q", 1)).id
    for text in (str(job_id), job_id.hex, str(job_id).upper(), "{" + str(job_id) + "}"):
        job = await arq.get(text)
        assert job is not None and job.id == job_id


async def test_a_claimed_job_shows_its_priority(arq: AsyncRaquel) -> None:
    await arq.enqueue("q", 1, priority=3)
    async with arq.dequeue("q") as job:
        assert job is not None and job.priority == 3


async def test_queues_count_and_stats(arq: AsyncRaquel) -> None:
    for queue in ("default", "default", "tasks"):
        await arq.enqueue(queue)
    async with arq.dequeue("tasks"):
        pass
    assert await arq.queues() == ["default", "tasks"]
    assert await arq.count() == 3
    assert await arq.count("default") == 2
    assert await arq.count("tasks", arq.SUCCESS) == 1
    assert await arq.count(status=[arq.QUEUED, arq.FAILED]) == 2
    assert await arq.stats() == {
        "default": QueueStats("default", total=2, queued=2),
        "tasks": QueueStats("tasks", total=1, success=1),
    }
    with pytest.raises(ValueError, match="status"):
        await arq.count(status="running")


async def test_create_all_is_a_no_op_when_up_to_date(arq: AsyncRaquel) -> None:
    await arq.create_all()
    await arq.create_all()


async def test_create_all_installs_the_schema_in_an_empty_database(make_database: Any) -> None:
    # raquel's first step: a new client on an empty database. Its pooled
    # connections prepare what they run, and a prepared statement holds one
    # command: every statement of the runner must be one.
    async with AsyncRaquel(make_database()) as fresh:
        await fresh.create_all()
        job = await fresh.enqueue("q", {"n": 1})
        stored = await fresh.get(job.id)
        assert stored is not None and stored.status == AsyncRaquel.QUEUED


async def _sleep(seconds: float) -> None:
    from raquel_pg._acompat import asleep

    await asleep(seconds)
