# WARNING: this file is generated from test_results_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_results_async.py and run `python tools/async_to_sync.py`.

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

from raquel_pg import ClaimLost, InvalidArgument, JobCancelled, JobFailed, Raquel
from raquel_pg._acompat import join, sleep, spawn

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


def until(conn: Conn, sql: str, expected: Any, timeout: float = 10.0) -> None:
    """:func:`wait_for` that lets the event loop run meanwhile (a plain wait in the sync twin)."""
    deadline = time.monotonic() + timeout
    while conn.execute(sql.encode()).fetchone() != (expected,):
        assert time.monotonic() < deadline, f"{sql} never returned {expected!r}"
        sleep(0.01)


WATCHED = "SELECT count(*) FROM raquel_result_waiters"


# --- results ------------------------------------------------------------------


def test_complete_stores_the_result_shown_by_get(rq: Raquel) -> None:
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    assert job.complete({"sum": 5}) is True
    stored = rq.get(job.id)
    assert stored is not None and (stored.status, stored.result) == ("success", {"sum": 5})


def test_result_returns_the_value_of_a_finished_job_at_once(rq: Raquel) -> None:
    enqueued = rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    job.complete([1, "two"])
    assert rq.result(enqueued.id, timeout=0) == [1, "two"]
    assert enqueued.wait() == [1, "two"]


def test_result_waits_for_the_job_to_finish(rq: Raquel, conn: Conn) -> None:
    enqueued = rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None

    def finish_once_watched() -> None:
        until(conn, WATCHED, 1)
        job.complete(42)

    finisher = spawn(finish_once_watched, name="finisher")
    assert enqueued.wait(timeout=30) == 42
    join([finisher], 10)
    assert conn.execute(WATCHED).fetchone() == (0,)


def test_result_of_a_job_ending_before_its_registration_leaves_no_registration(
    rq: Raquel, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job ends after result() first read it unfinished and before its registration is
    # inserted: no statement serves that registration (0034_results_served). result() reads the
    # job finished without having heard of it, and deletes the registration itself.
    enqueued = rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    fetch = rq._fetch

    def fetch_ending_the_job_first(query: str, *args: Any, **kwargs: Any) -> Any:
        if query == "result_watch":
            job.complete(7)
        return fetch(query, *args, **kwargs)

    monkeypatch.setattr(rq, "_fetch", fetch_ending_the_job_first)
    assert rq.result(enqueued.id, timeout=30) == 7
    assert conn.execute(WATCHED).fetchone() == (0,)


def test_result_raises_timeout_error_and_unregisters(rq: Raquel, conn: Conn) -> None:
    enqueued = rq.enqueue("q", 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        rq.result(enqueued.id, timeout=timedelta(milliseconds=300))
    assert time.monotonic() - started >= 0.3
    assert conn.execute(WATCHED).fetchone() == (0,)


def test_result_of_an_exhausted_job_raises_job_failed(rq: Raquel) -> None:
    enqueued = rq.enqueue("q", 1, max_retry_count=0)
    job = rq.claim("q")
    assert job is not None
    job.fail("boom")
    with pytest.raises(JobFailed) as failed:
        rq.result(enqueued.id, timeout=5)
    assert (failed.value.status, failed.value.error, failed.value.job_id) == ("exhausted", "boom", enqueued.id)


def test_result_of_a_cancelled_job_raises_job_failed(rq: Raquel) -> None:
    enqueued = rq.enqueue("q", 1)
    assert rq.cancel(enqueued.id) is True
    with pytest.raises(JobFailed) as failed:
        enqueued.wait(timeout=5)
    assert failed.value.status == "cancelled"


def test_result_of_an_unknown_job_or_bad_timeout_is_refused(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as unknown:
        rq.result(UUID(int=3), timeout=1)
    assert unknown.value.argument == "job_id"
    with pytest.raises(InvalidArgument) as negative:
        rq.result(UUID(int=3), timeout=-1)
    assert negative.value.argument == "timeout"


@pytest.mark.parametrize("result", [{1, 2}, "report-\udcff.pdf"], ids=["not json", "lone surrogate"])
def test_a_result_that_is_not_json_is_refused_and_nothing_recorded(rq: Raquel, conn: Conn, result: Any) -> None:
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    with pytest.raises(InvalidArgument) as refused:
        job.complete(result)
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


def test_complete_in_the_callers_transaction_commits_with_its_writes(rq: Raquel, conn: Conn, dsn: str) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS results_effects (job_id uuid PRIMARY KEY)")
    conn.execute("TRUNCATE results_effects")
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    with psycopg.Connection.connect(dsn) as own:
        own.execute("INSERT INTO results_effects VALUES (%s)", (job.id,))
        assert job.complete("done", conn=own) is True
        assert row(conn, job.id)["status"] == "claimed"  # not committed yet
        own.commit()
    assert (row(conn, job.id)["status"], row(conn, job.id)["result"]) == ("success", "done")
    assert conn.execute("SELECT count(*) FROM results_effects").fetchone() == (1,)


def test_complete_in_a_transaction_rolled_back_leaves_the_job_claimed(rq: Raquel, conn: Conn, dsn: str) -> None:
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    with psycopg.Connection.connect(dsn) as own:
        job.complete(conn=own)
        own.rollback()
    assert row(conn, job.id)["status"] == "claimed"


def test_complete_with_a_stale_claim_raises_claim_lost_and_writes_nothing(rq: Raquel, conn: Conn, dsn: str) -> None:
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    conn.execute("SELECT raquel_unclaim(%s)", (job.id,))
    with psycopg.Connection.connect(dsn) as own:
        with pytest.raises(ClaimLost):
            job.complete(conn=own)
        own.rollback()
    assert row(conn, job.id)["status"] == "queued"


# --- cancel(running=True), timeout ---------------------------------------------


def test_cancel_running_asks_a_claimed_jobs_worker_to_stop(rq: Raquel, conn: Conn) -> None:
    enqueued = rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    assert rq.cancel(enqueued.id) is False  # raquel's meaning: never a running job
    assert rq.cancel(enqueued.id, running=True) is True
    assert row(conn, job.id)["cancel_claim_id"] == job.claim_id
    job.fail("stopped")
    assert row(conn, job.id)["status"] == "cancelled"


def test_cancel_running_refuses_a_non_bool(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rq.cancel(UUID(int=1), running=1)  # type: ignore[arg-type]
    assert refused.value.argument == "running"


def test_a_job_asked_to_stop_says_so(rq: Raquel) -> None:
    rq.enqueue("q", 1)
    job = rq.claim("q")
    assert job is not None
    assert job.cancel_requested is False
    job.raise_if_cancel_requested()
    job._request_stop("cancelled by request")
    assert job.cancel_requested is True
    with pytest.raises(JobCancelled):
        job.raise_if_cancel_requested()
    job.cancel()


def test_enqueue_sets_the_timeout(rq: Raquel) -> None:
    job = rq.enqueue("q", 1, timeout=timedelta(seconds=2))
    assert job.timeout == 2000
    stored = rq.get(job.id)
    assert stored is not None and stored.timeout == 2000 and stored == job
    with pytest.raises(InvalidArgument) as refused:
        rq.enqueue("q", 1, timeout=0)
    assert refused.value.argument == "timeout"


# --- tasks ----------------------------------------------------------------------


def test_a_task_called_directly_runs_at_once(rq: Raquel) -> None:
    @rq.task
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.name == "test_a_task_called_directly_runs_at_once.<locals>.add"
    assert rq.tasks[add.name] is add


def test_a_task_enqueues_a_job_naming_it(rq: Raquel, conn: Conn) -> None:
    @rq.task(queue="math", name="add", priority=4)
    def add(a: int, b: int = 0) -> int:
        return a + b

    job = add.enqueue(2, b=3)
    assert (job.queue, job.payload, job.priority) == ("math", {"task": "add", "args": [2], "kwargs": {"b": 3}}, 4)


def test_task_options_do_not_clash_with_the_functions_arguments(rq: Raquel, conn: Conn) -> None:
    @rq.task(name="later")
    def later(delay: str) -> str:
        return delay

    job = later.options(delay=60_000, queue="slow", timeout=500).enqueue(delay="its own")
    stored = row(conn, job.id)
    assert (job.queue, job.payload["kwargs"], job.timeout) == ("slow", {"delay": "its own"}, 500)
    assert stored["scheduled_at"] == stored["enqueued_at"] + 60_000


def test_a_task_enqueued_in_the_callers_transaction_exists_only_if_it_commits(rq: Raquel, conn: Conn, dsn: str) -> None:
    @rq.task(name="tx")
    def tx() -> None:
        return None

    with psycopg.Connection.connect(dsn) as own:
        job = tx.options(conn=own).enqueue()
        own.rollback()
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE id = %s", (job.id,)).fetchone() == (0,)


def test_a_second_function_with_a_taken_name_or_a_bad_option_is_refused(rq: Raquel) -> None:
    @rq.task(name="dup")
    def first() -> None:
        return None

    with pytest.raises(InvalidArgument) as taken:
        rq.task(name="dup")(lambda: None)
    assert taken.value.argument == "name"
    with pytest.raises(InvalidArgument) as unknown:
        first.options(dealy=5)
    assert unknown.value.argument == "dealy"
