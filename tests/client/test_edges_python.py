"""Safe at the edges (issue 18), from Python: a bad row, a wrong handler or a bad argument.

Each rule is tested on the sync and the async client where both exist; the
rules are listed in docs/guarantees-workers.md. Rows the client cannot decode
are made the only way they can be: by the owner, around the raquel functions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import (
    AsyncJob,
    AsyncRaquel,
    InvalidArgument,
    Job,
    NotMigrated,
    Raquel,
    RaquelError,
    UnreadableJSON,
    params,
)
from raquel_pg._acompat import ajoin, aspawn, spawn

Conn = psycopg.Connection[Any]

#: One ms before 0001-01-01T00:00:00Z: a bigint the SQL accepts, a time datetime cannot hold.
BEFORE_YEAR_1 = -62135596800001
#: Far after 9999-12-31.
AFTER_YEAR_9999 = 253402300800000 * 10


def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def await_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def enqueue(conn: Conn, queue: str = "q", payload: str | None = None, **opts: Any) -> UUID:
    names = "".join(f", {k} => %({k})s" for k in opts)
    row = conn.execute(
        f"SELECT raquel_enqueue(%(queue)s, %(payload)s{names})".encode(), {"queue": queue, "payload": payload, **opts}
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def bad_row(conn: Conn, queue: str = "q", column: str = "enqueued_at", ms: int = BEFORE_YEAR_1) -> UUID:
    """A ready job whose ``column`` holds a time outside datetime's range (written as the owner)."""
    job_id = enqueue(conn, queue, "bad", max_retry_count=0)
    conn.execute(f"UPDATE raquel_jobs SET {column} = %s WHERE id = %s".encode(), (ms, job_id))
    return job_id


def row_of(conn: Conn, job_id: UUID) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status, attempts, error, error_trace FROM raquel_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def status_of(conn: Conn, job_id: UUID) -> str:
    return str(row_of(conn, job_id)[0])


# --- a bad row never takes down a worker or a reader ------------------------------------------------


def test_a_sync_worker_sets_aside_an_undecodable_row_and_runs_the_rest_of_its_batch(rq: Raquel, conn: Conn) -> None:
    bad = bad_row(conn)
    good = [enqueue(conn, "q", str(i)) for i in range(3)]
    ran: list[UUID] = []

    @rq.subscribe("q", concurrency=4)  # one claim takes all four
    def handler(job: Job) -> None:
        ran.append(job.id)

    thread = spawn(handler.run, name="worker")
    wait_for(lambda: all(status_of(conn, j) == "success" for j in good) and status_of(conn, bad) == "exhausted")
    alive = thread.is_alive()
    handler.stop()
    thread.join(10)
    assert alive and sorted(ran) == sorted(good)
    status, attempts, error, _ = row_of(conn, bad)
    assert (status, attempts) == ("exhausted", 1)
    assert "cannot be decoded" in error and f"enqueued_at = {BEFORE_YEAR_1} ms" in error


async def test_an_async_worker_sets_aside_an_undecodable_row_and_runs_the_rest_of_its_batch(
    arq: AsyncRaquel, conn: Conn
) -> None:
    bad = bad_row(conn, column="scheduled_at")
    good = [enqueue(conn, "q", str(i)) for i in range(3)]
    ran: list[UUID] = []

    @arq.subscribe("q", concurrency=4)
    async def handler(job: AsyncJob) -> None:
        ran.append(job.id)

    run = aspawn(handler.run, name="worker")
    await await_for(lambda: all(status_of(conn, j) == "success" for j in good) and status_of(conn, bad) == "exhausted")
    alive = not run.done()
    handler.stop()
    await ajoin([run], 10)
    assert alive and sorted(ran) == sorted(good)
    assert f"scheduled_at = {BEFORE_YEAR_1} ms" in row_of(conn, bad)[2]


def test_dequeue_records_an_undecodable_row_as_failed_and_yields_none(rq: Raquel, conn: Conn) -> None:
    bad = bad_row(conn, column="enqueued_at", ms=AFTER_YEAR_9999)
    with rq.dequeue("q") as job:
        assert job is None
    assert status_of(conn, bad) == "exhausted"
    good = enqueue(conn)
    with rq.dequeue("q") as job:
        assert job is not None and job.id == good


async def test_async_dequeue_records_an_undecodable_row_as_failed_and_yields_none(arq: AsyncRaquel, conn: Conn) -> None:
    bad = bad_row(conn)
    async with arq.dequeue("q") as job:
        assert job is None
    assert status_of(conn, bad) == "exhausted"


#: Valid JSON that Python's json module cannot read: nested far deeper than the recursion limit.
TOO_DEEP = "[" * 100_000 + "]" * 100_000
#: Valid JSON that Python's json module cannot read: an integer past its 4,300 digits.
TOO_LONG = "[" + "7" * 5_000 + "]"
#: Each such payload, and what the failed attempt it is set aside with says.
UNREADABLE = pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (TOO_DEEP, "the payload cannot be decoded: it is JSON nested deeper than Python's json module reads"),
        (TOO_LONG, "the payload cannot be decoded: it is JSON Python cannot read (Exceeds the limit (4300 digits)"),
    ],
    ids=["nested too deeply", "an integer of 5,000 digits"],
)


@UNREADABLE
def test_a_sync_worker_sets_aside_a_payload_python_cannot_read_and_runs_the_rest_of_its_batch(
    rq: Raquel, conn: Conn, payload: str, reason: str
) -> None:
    bad = enqueue(conn, "q", payload, max_retry_count=0)  # raquel_enqueue stores any text
    good = [enqueue(conn, "q", str(i)) for i in range(3)]
    ran: list[UUID] = []

    @rq.subscribe("q", concurrency=4)
    def handler(job: Job) -> None:
        ran.append(job.id)

    thread = spawn(handler.run, name="worker")
    wait_for(lambda: all(status_of(conn, j) == "success" for j in good) and status_of(conn, bad) == "exhausted")
    alive = thread.is_alive()
    handler.stop()
    thread.join(10)
    assert alive and sorted(ran) == sorted(good)
    status, attempts, error, _ = row_of(conn, bad)
    assert (status, attempts) == ("exhausted", 1)
    assert reason in error


@UNREADABLE
async def test_an_async_worker_sets_aside_a_payload_python_cannot_read_and_runs_the_rest_of_its_batch(
    arq: AsyncRaquel, conn: Conn, payload: str, reason: str
) -> None:
    bad = enqueue(conn, "q", payload, max_retry_count=0)
    good = [enqueue(conn, "q", str(i)) for i in range(3)]
    ran: list[UUID] = []

    @arq.subscribe("q", concurrency=4)
    async def handler(job: AsyncJob) -> None:
        ran.append(job.id)

    run = aspawn(handler.run, name="worker")
    await await_for(lambda: all(status_of(conn, j) == "success" for j in good) and status_of(conn, bad) == "exhausted")
    alive = not run.done()
    handler.stop()
    await ajoin([run], 10)
    assert alive and sorted(ran) == sorted(good)
    assert reason in row_of(conn, bad)[2]


async def test_a_claimed_job_has_no_result_whatever_its_row_holds(arq: AsyncRaquel, conn: Conn) -> None:
    # A result jsonb nested too deeply for Python's json, written by hand on a waiting job:
    # reading it would have failed the fetch of the whole claim.
    job_id = enqueue(conn, "q", "x")
    deep_result = "[" * 5_000 + "]" * 5_000  # deeper than Python reads, within PostgreSQL's stack depth
    conn.execute("UPDATE raquel_jobs SET result = %s::jsonb WHERE id = %s", (deep_result, job_id))
    results: list[Any] = []

    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        results.append(job.result)

    run = aspawn(handler.run, name="worker")
    await await_for(lambda: status_of(conn, job_id) == "success")
    handler.stop()
    await ajoin([run], 10)
    assert results == [None]


def test_a_sync_worker_runs_a_job_whose_timeout_is_the_largest_sql_takes(
    rq: Raquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2^62 - 1 ms: beyond what a threading.Timer waits, whose thread raised OverflowError.
    raised: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook_args: raised.append(hook_args.exc_value))
    job_id = enqueue(conn, "q", "x", timeout=4611686018427387903)

    @rq.subscribe("q")
    def handler(job: Job) -> None:
        pass

    thread = spawn(handler.run, name="worker")
    wait_for(lambda: status_of(conn, job_id) == "success")
    handler.stop()
    thread.join(10)
    assert raised == []


#: Results jsonb stores and Python's json cannot decode, stored through raquel_complete (no row
#: written around the functions): nested deeper than the recursion limit, an int of 5,000 digits.
UNREADABLE_RESULTS = ["[" * 5_000 + "]" * 5_000, "9" * 5_000]


def succeeded_with(conn: Conn, result: str) -> UUID:
    job_id = enqueue(conn, "q", "x")
    claim_id = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['q'])").fetchone()[0]  # type: ignore[index]
    conn.execute("SELECT raquel_complete(%s, %s, result => %s::jsonb)", (job_id, claim_id, result))
    return job_id


@pytest.mark.parametrize("result", UNREADABLE_RESULTS, ids=["deep", "digits"])
def test_get_shows_a_result_python_cannot_decode_as_its_text(rq: Raquel, conn: Conn, result: str) -> None:
    job = rq.get(succeeded_with(conn, result))
    assert job is not None and job.status == "success"
    assert isinstance(job.result, UnreadableJSON) and job.result == result  # its stored text
    assert job.result.reason


@pytest.mark.parametrize("result", UNREADABLE_RESULTS, ids=["deep", "digits"])
async def test_result_of_a_job_whose_result_python_cannot_decode_raises_saying_so(
    arq: AsyncRaquel, conn: Conn, result: str
) -> None:
    job_id = succeeded_with(conn, result)
    with pytest.raises(RaquelError, match="its result cannot be decoded"):
        await arq.result(job_id, timeout=5)
    assert (await arq.get(job_id)) is not None  # the reader beside it still reads the job


def test_get_shows_a_payload_nested_too_deeply_as_its_text(rq: Raquel, conn: Conn) -> None:
    deep = enqueue(conn, "q", TOO_DEEP)
    job = rq.get(deep)
    assert job is not None and job.payload_too_deep and job.payload == TOO_DEEP == job.raw_payload
    assert "nested deeper" in (job.undecodable() or "") and not job.decodable()


def test_get_shows_a_payload_holding_an_integer_python_cannot_convert_as_its_text(rq: Raquel, conn: Conn) -> None:
    job = rq.get(enqueue(conn, "q", TOO_LONG))
    assert job is not None and job.payload == TOO_LONG == job.raw_payload and not job.payload_too_deep
    assert job.payload_unreadable is not None and "4300 digits" in job.payload_unreadable
    assert "JSON Python cannot read" in (job.undecodable() or "") and not job.decodable()


def test_a_payload_of_digits_followed_by_text_is_text() -> None:
    # Not JSON (text after the number): a text payload, however long its number.
    assert Job(raw_payload="7" * 5_000 + " apples").payload == "7" * 5_000 + " apples"


def test_get_shows_an_undecodable_row_with_its_out_of_range_times(rq: Raquel, conn: Conn) -> None:
    bad = bad_row(conn, column="finished_at", ms=AFTER_YEAR_9999)
    job = rq.get(bad)
    assert job is not None and job.payload == "bad" and job.status == "queued"
    assert job.out_of_range == {"finished_at": AFTER_YEAR_9999}
    assert job.finished_at == params.DATETIME_MAX
    assert "finished_at" in (job.undecodable() or "")
    assert rq.stats()["q"].queued == 1


async def test_async_get_shows_an_undecodable_row_with_its_out_of_range_times(arq: AsyncRaquel, conn: Conn) -> None:
    bad = bad_row(conn)
    job = await arq.get(bad)
    assert job is not None and job.out_of_range == {"enqueued_at": BEFORE_YEAR_1}
    assert job.enqueued_at == params.DATETIME_MIN
    assert (await arq.stats())["q"].queued == 1


def test_a_year_1_time_that_fits_is_not_out_of_range(rq: Raquel, conn: Conn) -> None:
    job_id = bad_row(conn, column="finished_at", ms=AFTER_YEAR_9999)
    conn.execute("UPDATE raquel_jobs SET claimed_at = %s WHERE id = %s", (BEFORE_YEAR_1 + 1, job_id))
    job = rq.get(job_id)
    assert job is not None and job.out_of_range == {"finished_at": AFTER_YEAR_9999}
    assert job.claimed_at == params.DATETIME_MIN


def test_schedules_show_an_out_of_range_next_run(rq: Raquel, conn: Conn, no_schedules: str) -> None:
    rq.schedule("nightly", "q", every=60_000)
    conn.execute("UPDATE raquel_schedules SET next_run_at = %s, last_run_at = %s", (AFTER_YEAR_9999, BEFORE_YEAR_1))
    [schedule] = rq.schedules()
    assert (schedule.next_run_at, schedule.last_run_at) == (params.DATETIME_MAX, params.DATETIME_MIN)


async def test_async_schedules_show_an_out_of_range_next_run(arq: AsyncRaquel, conn: Conn, no_schedules: str) -> None:
    await arq.schedule("nightly", "q", every=60_000)
    conn.execute("UPDATE raquel_schedules SET next_run_at = %s", (AFTER_YEAR_9999,))
    [schedule] = await arq.schedules()
    assert schedule.next_run_at == params.DATETIME_MAX


# --- a wrong handler is refused, never silently "done" -----------------------------------------------


def test_a_sync_worker_refuses_a_coroutine_function(rq: Raquel) -> None:
    async def handler(job: Job) -> None:
        pass

    with pytest.raises(TypeError, match="coroutine function"):
        rq.subscribe("q")(handler)  # type: ignore[arg-type]


def test_a_sync_clients_worker_refuses_a_coroutine_task(rq: Raquel) -> None:
    @rq.task(queue="q")
    async def notify(user: int) -> None:
        pass

    notify.enqueue(7)  # enqueuing it is fine: an async worker elsewhere may run it
    with pytest.raises(TypeError, match="notify' is a coroutine function"):
        rq.worker("q")


def test_a_sync_handler_returning_an_awaitable_fails_the_job(rq: Raquel, conn: Conn) -> None:
    async def later() -> None:
        pass

    job_id = enqueue(conn, max_retry_count=0)
    handler = rq.subscribe("q")(lambda job: later())
    thread = spawn(handler.run, name="worker")
    # Not "queued" is not enough: a claimed job counts as running only once the
    # executor has it, and a stop in between hands it back unstarted.
    wait_for(lambda: status_of(conn, job_id) not in ("queued", "claimed") and handler.running == 0)
    handler.stop()
    thread.join(10)
    status, _, error, _ = row_of(conn, job_id)
    assert status == "exhausted" and "returned an awaitable" in error


async def test_an_async_worker_runs_a_plain_function_in_a_thread(arq: AsyncRaquel, conn: Conn) -> None:
    ok, bad = enqueue(conn, "q", "ok"), enqueue(conn, "q", "bad", max_retry_count=0)
    ran: list[str] = []

    def handler(job: AsyncJob) -> None:
        ran.append(job.payload)
        with pytest.raises(RuntimeError):  # a thread: no event loop runs here
            asyncio.get_running_loop()
        if job.payload == "bad":
            raise ValueError("Won't do")

    worker = arq.subscribe("q")(handler)  # type: ignore[arg-type]
    run = aspawn(worker.run, name="worker")
    await await_for(lambda: (status_of(conn, ok), status_of(conn, bad)) == ("success", "exhausted"))
    worker.stop()
    await ajoin([run], 10)
    assert sorted(ran) == ["bad", "ok"]
    assert row_of(conn, bad)[2] == "Won't do"


async def test_an_async_worker_awaits_what_a_plain_function_returns(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    ran: list[UUID] = []

    async def later(job: AsyncJob) -> None:
        ran.append(job.id)

    worker = arq.subscribe("q")(lambda job: later(job))
    run = aspawn(worker.run, name="worker")
    await await_for(lambda: status_of(conn, job_id) == "success")
    worker.stop()
    await ajoin([run], 10)
    assert ran == [job_id]


# --- outcome calls: fail(exception), and a refused call never strands a job ---------------------------


def test_fail_with_an_exception_stores_its_message_and_traceback(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    with rq.dequeue("q") as job:
        assert job is not None and job.fail(ValueError("Won't do"))
    status, attempts, error, trace = row_of(conn, job_id)
    assert (status, attempts, error) == ("failed", 1, "Won't do")
    assert "ValueError: Won't do" in trace


async def test_async_fail_with_an_exception_stores_its_message_and_traceback(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    async with arq.dequeue("q") as job:
        try:
            raise KeyError("to")
        except KeyError as error:
            assert job is not None and await job.fail(error)
    status, _, error, trace = row_of(conn, job_id)
    assert (status, error) == ("failed", "'to'")
    assert trace.startswith("Traceback (most recent call last):") and "KeyError: 'to'" in trace


def test_a_raised_exception_stores_its_message_only(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    with rq.dequeue("q"):
        raise ValueError("Won't do")
    _, _, error, trace = row_of(conn, job_id)
    assert error == "Won't do" and "ValueError: Won't do" in trace


async def test_async_a_raised_exception_without_a_message_stores_its_type(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    async with arq.dequeue("q"):
        raise TimeoutError()
    assert row_of(conn, job_id)[2] == "TimeoutError"


def test_an_error_text_holding_nul_or_a_lone_surrogate_is_still_recorded(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    with rq.dequeue("q"):
        raise ValueError("nul \x00 and \ud800")
    status, _, error, _ = row_of(conn, job_id)
    assert status == "failed" and error == "nul \\x00 and \\ud800"


def test_fail_with_a_bad_argument_records_a_failure_saying_so(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    with rq.dequeue("q") as job:
        assert job is not None
        job.fail(42)  # type: ignore[arg-type]
    status, _, error, _ = row_of(conn, job_id)
    assert status == "failed" and "expected a str or an exception" in error


async def test_async_an_outcome_the_database_refuses_records_a_failure_saying_so(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    async with arq.dequeue("q") as job:
        assert job is not None
        await job.reschedule(delay=-1)  # refused by raquel_reschedule, after the job was settled
    status, _, error, _ = row_of(conn, job_id)
    assert status == "failed" and "delay" in error


def test_an_outcome_the_database_refuses_records_a_failure_saying_so(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)
    with rq.dequeue("q") as job:
        assert job is not None
        job.reschedule(delay=-1)
    status, _, error, _ = row_of(conn, job_id)
    assert status == "failed" and "delay" in error


def test_a_sync_worker_handler_failing_with_an_exception_object(rq: Raquel, conn: Conn) -> None:
    job_id = enqueue(conn)

    @rq.subscribe("q")
    def handler(job: Job) -> None:
        job.fail(ValueError("Won't do"))

    thread = spawn(handler.run, name="worker")
    wait_for(lambda: status_of(conn, job_id) == "failed")
    handler.stop()
    thread.join(10)
    assert row_of(conn, job_id)[2] == "Won't do"


async def test_an_async_worker_handler_failing_with_an_exception_object(arq: AsyncRaquel, conn: Conn) -> None:
    job_id = enqueue(conn)

    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        await job.fail(ValueError("Won't do"))

    run = aspawn(handler.run, name="worker")
    await await_for(lambda: status_of(conn, job_id) == "failed")
    handler.stop()
    await ajoin([run], 10)
    assert row_of(conn, job_id)[2] == "Won't do"


# --- a lease warning means what it says -----------------------------------------------------------------


LEASE_LOST = "lease lost, the job was rescued"


def test_batched_successes_log_no_false_lease_warning(dsn: str, conn: Conn, caplog: Any) -> None:
    jobs = 3000
    conn.execute("SELECT raquel_enqueue_many('q', array_fill(NULL::text, ARRAY[%s]))", (jobs,))
    caplog.set_level(logging.WARNING, logger="raquel_pg")
    with Raquel(dsn, lease=90) as rq:  # a renewal every 30 ms: many race a flush
        handler = rq.subscribe("q", concurrency=4, batch_outcomes=True)(lambda job: None)
        thread = spawn(handler.run, name="worker")
        wait_for(
            lambda: conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'success'").fetchone()[0] == jobs,
            timeout=120,
        )
        handler.stop()
        thread.join(10)
    # On a loaded machine a 90 ms lease can truly run out (the job is then
    # rescued and runs again: attempts > 1); a warning for any other job is false.
    rescued = {str(row[0]) for row in conn.execute("SELECT id FROM raquel_jobs WHERE attempts > 1")}
    warned = {r.getMessage().split()[1] for r in caplog.records if LEASE_LOST in r.getMessage()}
    assert warned - rescued == set()


def test_a_truly_rescued_job_still_logs_the_lease_warning(rq: Raquel, conn: Conn, caplog: Any) -> None:
    job_id = enqueue(conn)
    caplog.set_level(logging.WARNING, logger="raquel_pg")
    release = threading.Event()

    @rq.subscribe("q")
    def handler(job: Job) -> None:
        release.wait(20)

    thread = spawn(handler.run, name="worker")
    wait_for(lambda: status_of(conn, job_id) == "claimed")
    # As if its lease had run out and another worker had claimed it.
    conn.execute("UPDATE raquel_jobs SET claim_id = gen_random_uuid(), claimed_by = 'other' WHERE id = %s", (job_id,))
    wait_for(lambda: any(LEASE_LOST in r.getMessage() for r in caplog.records))
    release.set()
    handler.stop()
    thread.join(10)
    assert status_of(conn, job_id) == "claimed"  # the stale success was refused


async def test_async_a_truly_rescued_job_still_logs_the_lease_warning(
    arq: AsyncRaquel, conn: Conn, caplog: Any
) -> None:
    job_id = enqueue(conn)
    caplog.set_level(logging.WARNING, logger="raquel_pg")
    release = asyncio.Event()

    @arq.subscribe("q")
    async def handler(job: AsyncJob) -> None:
        await release.wait()

    run = aspawn(handler.run, name="worker")
    await await_for(lambda: status_of(conn, job_id) == "claimed")
    conn.execute("UPDATE raquel_jobs SET claim_id = gen_random_uuid(), claimed_by = 'other' WHERE id = %s", (job_id,))
    await await_for(lambda: any(LEASE_LOST in r.getMessage() for r in caplog.records))
    release.set()
    handler.stop()
    await ajoin([run], 10)


# --- bad input from Python ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "kwargs"),
    [
        ("queue", {"queue": "q\ud800"}),
        ("payload", {"payload": "p\udfff"}),
        ("unique_key", {"unique_key": "k\ud800"}),
    ],
)
def test_a_lone_surrogate_is_an_invalid_argument(rq: Raquel, conn: Conn, argument: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.enqueue(**{"queue": "q", **kwargs})
    assert refused.value.argument == argument and argument in str(refused.value)
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 0


async def test_async_a_lone_surrogate_is_an_invalid_argument(arq: AsyncRaquel, conn: Conn) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await arq.enqueue_many("q", ["fine", "bad \ud800"])
    assert refused.value.argument == "payloads"
    with pytest.raises(InvalidArgument) as refused:
        await arq.enqueue_many("q", ["a"], unique_keys=["\udc00"])
    assert refused.value.argument == "unique_keys"
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 0


def latin1(dsn: str) -> str:
    """``dsn`` with the client encoding LATIN1 (PGCLIENTENCODING, or a database created in it)."""
    return make_conninfo(dsn, client_encoding="LATIN1")


def test_enqueue_many_in_a_latin1_client_stores_the_text_it_was_given(dsn: str, conn: Conn) -> None:
    with Raquel(latin1(dsn)) as rq:
        rq.enqueue_many("q", ["café", "naïve"])
    assert sorted(r[0] for r in conn.execute("SELECT payload FROM raquel_jobs")) == ["café", "naïve"]


def test_a_worker_in_a_latin1_client_takes_the_jobs_of_an_accented_queue(dsn: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('fïlé', 'x')")
    with Raquel(latin1(dsn)) as rq:

        @rq.subscribe("fïlé", poll_interval=0.05)
        def handler(job: Job) -> None:
            pass

        run = spawn(handler.run, name="worker")
        wait_for(lambda: conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("success",))
        handler.stop()
        run.join(10)


def test_a_failure_a_latin1_client_cannot_send_as_is_is_recorded_escaped(dsn: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'x', max_retry_count => 0)")
    with Raquel(latin1(dsn)) as rq:

        @rq.subscribe("q", poll_interval=0.05)
        def handler(job: Job) -> None:
            raise ValueError("boom 🎉")

        run = spawn(handler.run, name="worker")
        wait_for(lambda: conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("exhausted",))
        handler.stop()
        run.join(10)
    error, trace = conn.execute("SELECT error, error_trace FROM raquel_jobs").fetchone()
    assert error == "boom \\U0001f389" and "ValueError: boom \\U0001f389" in trace


@pytest.mark.parametrize(
    ("argument", "call"), [("payload", "enqueue"), ("payloads", "enqueue_many"), ("queue", "queue")]
)
def test_text_a_latin1_client_cannot_send_is_an_invalid_argument(
    dsn: str, conn: Conn, argument: str, call: str
) -> None:
    with Raquel(latin1(dsn)) as rq, pytest.raises(InvalidArgument) as refused:
        if call == "enqueue":
            rq.enqueue("q", "hi 🎉")
        elif call == "enqueue_many":
            rq.enqueue_many("q", ["fine", "hi 🎉"])
        else:
            rq.enqueue("q🎉", "x")
    assert refused.value.argument == argument and "(iso8859-1) cannot store" in str(refused.value)
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 0


def deep(levels: int) -> Any:
    payload: Any = []
    for _ in range(levels):
        payload = [payload]
    return payload


def test_a_payload_nested_too_deep_is_an_invalid_argument(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.enqueue("q", deep(100_000))
    assert refused.value.argument == "payload"


async def test_async_a_payload_nested_too_deep_is_an_invalid_argument(arq: AsyncRaquel) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await arq.enqueue_many("q", [deep(100_000)])
    assert refused.value.argument == "payload"


BAD_TIMINGS = [
    ("poll_interval", float("inf")),
    ("poll_interval", float("nan")),
    ("poll_interval", -1.0),
    ("poll_interval", "2"),
    ("grace_period", float("inf")),
    ("grace_period", float("-inf")),
    ("poll_interval", 10**400),
    ("concurrency", 0),
    ("claim_as", "w\ud800"),
]


@pytest.mark.parametrize(("argument", "value"), BAD_TIMINGS)
def test_subscribe_refuses_a_timing_a_worker_cannot_wait(rq: Raquel, argument: str, value: Any) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.subscribe("q", **{argument: value})(lambda job: None)
    assert refused.value.argument == argument


@pytest.mark.parametrize(("argument", "value"), BAD_TIMINGS)
async def test_async_subscribe_refuses_a_timing_a_worker_cannot_wait(
    arq: AsyncRaquel, argument: str, value: Any
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        arq.subscribe("q", **{argument: value})(lambda job: None)
    assert refused.value.argument == argument


def test_a_database_never_migrated_says_to_migrate(make_database: Any) -> None:
    with Raquel(make_database(), pool_size=1) as rq:
        with pytest.raises(NotMigrated, match="run: raquel-pg migrate") as refused:
            rq.enqueue("q", "x")
        with pytest.raises(NotMigrated):
            rq.get("00000000-0000-0000-0000-000000000000")
    assert isinstance(refused.value, RaquelError)


async def test_async_a_database_never_migrated_says_to_migrate(make_database: Any) -> None:
    async with AsyncRaquel(make_database(), pool_size=1) as arq:
        with pytest.raises(NotMigrated, match="run: raquel-pg migrate"):
            async with arq.dequeue("q"):
                pass
