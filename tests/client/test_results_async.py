"""Results, waiting for them, cancelling running jobs, timeouts and tasks, from Python (issue 25).

Written once, for both clients: tests/client/test_results.py (generated from the async file by
tools/async_to_sync.py) runs the same tests against the sync client.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from raquel_pg import AsyncRaquel, ClaimLost, InvalidArgument, JobCancelled, JobFailed
from raquel_pg._acompat import ajoin, asleep, aspawn

Conn = psycopg.Connection[Any]


def row(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    values = cur.fetchone()
    assert values is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], values))


def wait_for(conn: Conn, sql: str, expected: Any, timeout: float = 10.0) -> None:
    """Waits (polling the database, with a deadline) until ``sql`` returns ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        got = conn.execute(sql.encode()).fetchone()
        if got is not None and got[0] == expected:
            return
        assert time.monotonic() < deadline, f"{sql} never returned {expected!r} (last: {got!r})"
        time.sleep(0.01)


async def until(conn: Conn, sql: str, expected: Any, timeout: float = 10.0) -> None:
    """:func:`wait_for` that lets the event loop run meanwhile (a plain wait in the sync twin)."""
    deadline = time.monotonic() + timeout
    while conn.execute(sql.encode()).fetchone() != (expected,):
        assert time.monotonic() < deadline, f"{sql} never returned {expected!r}"
        await asleep(0.01)


WATCHED = "SELECT count(*) FROM raquel_result_waiters"


# --- results ------------------------------------------------------------------


async def test_complete_stores_the_result_shown_by_get(arq: AsyncRaquel) -> None:
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    assert await job.complete({"sum": 5}) is True
    stored = await arq.get(job.id)
    assert stored is not None and (stored.status, stored.result) == ("success", {"sum": 5})


async def test_result_returns_the_value_of_a_finished_job_at_once(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    await job.complete([1, "two"])
    assert await arq.result(enqueued.id, timeout=0) == [1, "two"]
    assert await enqueued.wait() == [1, "two"]


async def test_result_waits_for_the_job_to_finish(arq: AsyncRaquel, conn: Conn) -> None:
    enqueued = await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None

    async def finish_once_watched() -> None:
        await until(conn, WATCHED, 1)
        await job.complete(42)

    finisher = aspawn(finish_once_watched, name="finisher")
    assert await enqueued.wait(timeout=30) == 42
    await ajoin([finisher], 10)
    assert conn.execute(WATCHED).fetchone() == (0,)


async def test_result_of_a_job_ending_before_its_registration_leaves_no_registration(
    arq: AsyncRaquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job ends after result() first read it unfinished and before its registration is
    # inserted: no statement serves that registration (0034_results_served). result() reads the
    # job finished without having heard of it, and deletes the registration itself.
    enqueued = await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    fetch = arq._fetch

    async def fetch_ending_the_job_first(query: str, *args: Any, **kwargs: Any) -> Any:
        if query == "result_watch":
            await job.complete(7)
        return await fetch(query, *args, **kwargs)

    monkeypatch.setattr(arq, "_fetch", fetch_ending_the_job_first)
    assert await arq.result(enqueued.id, timeout=30) == 7
    assert conn.execute(WATCHED).fetchone() == (0,)


async def test_result_raises_timeout_error_and_unregisters(arq: AsyncRaquel, conn: Conn) -> None:
    enqueued = await arq.enqueue("q", 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await arq.result(enqueued.id, timeout=timedelta(milliseconds=300))
    assert time.monotonic() - started >= 0.3
    assert conn.execute(WATCHED).fetchone() == (0,)


async def test_result_of_an_exhausted_job_raises_job_failed(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("q", 1, max_retry_count=0)
    job = await arq.claim("q")
    assert job is not None
    await job.fail("boom")
    with pytest.raises(JobFailed) as failed:
        await arq.result(enqueued.id, timeout=5)
    assert (failed.value.status, failed.value.error, failed.value.job_id) == ("exhausted", "boom", enqueued.id)


async def test_result_of_a_cancelled_job_raises_job_failed(arq: AsyncRaquel) -> None:
    enqueued = await arq.enqueue("q", 1)
    assert await arq.cancel(enqueued.id) is True
    with pytest.raises(JobFailed) as failed:
        await enqueued.wait(timeout=5)
    assert failed.value.status == "cancelled"


async def test_result_of_an_unknown_job_or_bad_timeout_is_refused(arq: AsyncRaquel) -> None:
    with pytest.raises(InvalidArgument) as unknown:
        await arq.result(UUID(int=3), timeout=1)
    assert unknown.value.argument == "job_id"
    with pytest.raises(InvalidArgument) as negative:
        await arq.result(UUID(int=3), timeout=-1)
    assert negative.value.argument == "timeout"


@pytest.mark.parametrize("result", [{1, 2}, "report-\udcff.pdf"], ids=["not json", "lone surrogate"])
async def test_a_result_that_is_not_json_is_refused_and_nothing_recorded(
    arq: AsyncRaquel, conn: Conn, result: Any
) -> None:
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    with pytest.raises(InvalidArgument) as refused:
        await job.complete(result)
    assert refused.value.argument == "result"
    assert row(conn, job.id)["status"] == "claimed"


def test_a_result_is_awaited_by_a_second_process(dsn: str, conn: Conn) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('q', '1')").fetchone()[0]  # type: ignore[index]
    waiter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from raquel_pg import Raquel\n"
            "with Raquel(sys.argv[1]) as rq: print(rq.result(sys.argv[2], timeout=60))",
            dsn,
            str(job_id),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(conn, WATCHED, 1, timeout=30)
        claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()
        assert claimed is not None
        conn.execute("SELECT raquel_complete(%s, %s, result => '{\"answer\": 42}')", claimed)
        out, _ = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert out.strip() == "{'answer': 42}"


# --- exactly once: complete(conn=) --------------------------------------------


async def test_complete_in_the_callers_transaction_commits_with_its_writes(
    arq: AsyncRaquel, conn: Conn, dsn: str
) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS results_effects (job_id uuid PRIMARY KEY)")
    conn.execute("TRUNCATE results_effects")
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    async with await psycopg.AsyncConnection.connect(dsn) as own:
        await own.execute("INSERT INTO results_effects VALUES (%s)", (job.id,))
        assert await job.complete("done", conn=own) is True
        assert row(conn, job.id)["status"] == "claimed"  # not committed yet
        await own.commit()
    assert (row(conn, job.id)["status"], row(conn, job.id)["result"]) == ("success", "done")
    assert conn.execute("SELECT count(*) FROM results_effects").fetchone() == (1,)


async def test_complete_in_a_transaction_rolled_back_leaves_the_job_claimed(
    arq: AsyncRaquel, conn: Conn, dsn: str
) -> None:
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    async with await psycopg.AsyncConnection.connect(dsn) as own:
        await job.complete(conn=own)
        await own.rollback()
    assert row(conn, job.id)["status"] == "claimed"


async def test_complete_with_a_stale_claim_raises_claim_lost_and_writes_nothing(
    arq: AsyncRaquel, conn: Conn, dsn: str
) -> None:
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    conn.execute("SELECT raquel_unclaim(%s)", (job.id,))
    async with await psycopg.AsyncConnection.connect(dsn) as own:
        with pytest.raises(ClaimLost):
            await job.complete(conn=own)
        await own.rollback()
    assert row(conn, job.id)["status"] == "queued"


# --- cancel(running=True), timeout ---------------------------------------------


async def test_cancel_running_asks_a_claimed_jobs_worker_to_stop(arq: AsyncRaquel, conn: Conn) -> None:
    enqueued = await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    assert await arq.cancel(enqueued.id) is False  # raquel's meaning: never a running job
    assert await arq.cancel(enqueued.id, running=True) is True
    assert row(conn, job.id)["cancel_claim_id"] == job.claim_id
    await job.fail("stopped")
    assert row(conn, job.id)["status"] == "cancelled"


async def test_cancel_running_refuses_a_non_bool(arq: AsyncRaquel) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await arq.cancel(UUID(int=1), running=1)  # type: ignore[arg-type]
    assert refused.value.argument == "running"


async def test_a_job_asked_to_stop_says_so(arq: AsyncRaquel) -> None:
    await arq.enqueue("q", 1)
    job = await arq.claim("q")
    assert job is not None
    assert job.cancel_requested is False
    job.raise_if_cancel_requested()
    job._request_stop("cancelled by request")
    assert job.cancel_requested is True
    with pytest.raises(JobCancelled):
        job.raise_if_cancel_requested()
    await job.cancel()


async def test_enqueue_sets_the_timeout(arq: AsyncRaquel) -> None:
    job = await arq.enqueue("q", 1, timeout=timedelta(seconds=2))
    assert job.timeout == 2000
    stored = await arq.get(job.id)
    assert stored is not None and stored.timeout == 2000 and stored == job
    with pytest.raises(InvalidArgument) as refused:
        await arq.enqueue("q", 1, timeout=0)
    assert refused.value.argument == "timeout"


# --- tasks ----------------------------------------------------------------------


async def test_a_task_called_directly_runs_at_once(arq: AsyncRaquel) -> None:
    @arq.task
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.name == "test_a_task_called_directly_runs_at_once.<locals>.add"
    assert arq.tasks[add.name] is add


async def test_a_task_enqueues_a_job_naming_it(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.task(queue="math", name="add", priority=4)
    def add(a: int, b: int = 0) -> int:
        return a + b

    job = await add.enqueue(2, b=3)
    assert (job.queue, job.payload, job.priority) == ("math", {"task": "add", "args": [2], "kwargs": {"b": 3}}, 4)


async def test_task_options_do_not_clash_with_the_functions_arguments(arq: AsyncRaquel, conn: Conn) -> None:
    @arq.task(name="later")
    def later(delay: str) -> str:
        return delay

    job = await later.options(delay=60_000, queue="slow", timeout=500).enqueue(delay="its own")
    stored = row(conn, job.id)
    assert (job.queue, job.payload["kwargs"], job.timeout) == ("slow", {"delay": "its own"}, 500)
    assert stored["scheduled_at"] == stored["enqueued_at"] + 60_000


async def test_a_task_enqueued_in_the_callers_transaction_exists_only_if_it_commits(
    arq: AsyncRaquel, conn: Conn, dsn: str
) -> None:
    @arq.task(name="tx")
    def tx() -> None:
        return None

    async with await psycopg.AsyncConnection.connect(dsn) as own:
        job = await tx.options(conn=own).enqueue()
        await own.rollback()
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE id = %s", (job.id,)).fetchone() == (0,)


async def test_a_second_function_with_a_taken_name_or_a_bad_option_is_refused(arq: AsyncRaquel) -> None:
    @arq.task(name="dup")
    def first() -> None:
        return None

    with pytest.raises(InvalidArgument) as taken:
        arq.task(name="dup")(lambda: None)
    assert taken.value.argument == "name"
    with pytest.raises(InvalidArgument) as unknown:
        first.options(dealy=5)
    assert unknown.value.argument == "dealy"
