"""Results, result waiters, cancelling running jobs and timeouts, from SQL (issue 25).

The functions are called as a psql user would; time is fixed by ``now``
where it matters.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]
T0 = 1_700_000_000_000


def one(conn: Conn, sql: str, *args: Any) -> Any:
    row = conn.execute(sql.encode(), args or None).fetchone()
    assert row is not None
    return row[0]


def row_of(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], row))


def enqueue(conn: Conn, queue: str = "q", **options: Any) -> UUID:
    names = "".join(f", {k} => %({k})s" for k in options)
    row = conn.execute(
        f"SELECT raquel_enqueue(queue => %(queue)s{names})".encode(), {"queue": queue, **options}
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def claim(conn: Conn, queue: str = "q", batch: int = 1, now: int | None = None) -> list[tuple[UUID, UUID]]:
    rows = conn.execute(
        "SELECT id, claim_id FROM raquel_claim(ARRAY[%s], batch => %s, now => %s)", (queue, batch, now)
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def result(conn: Conn, job_id: UUID) -> tuple[Any, ...] | None:
    return conn.execute("SELECT status, finished, result, error FROM raquel_result(%s)", (job_id,)).fetchone()


def heard(listener: Conn, timeout: float = 0.3) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in listener.notifies(timeout=timeout, stop_after=None)]


def refused(conn: Conn, sql: str, argument: str, *args: Any) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as error:
        conn.execute(sql.encode(), args or None)
    assert error.value.diag.column_name == argument


# --- results ----------------------------------------------------------------


def test_complete_stores_the_result_with_the_success(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    assert one(conn, "SELECT raquel_complete(%s, %s, result => %s)", jid, cid, Jsonb({"sum": 5})) == "success"
    assert result(conn, job_id) == ("success", True, {"sum": 5}, None)


def test_a_stale_claim_stores_no_result(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, _)] = claim(conn)
    assert one(conn, "SELECT raquel_complete(%s, gen_random_uuid(), result => '1')", jid) is None
    assert row_of(conn, job_id)["result"] is None
    assert result(conn, job_id) == ("claimed", False, None, None)


def test_complete_many_stores_each_result_in_its_row(conn: Conn) -> None:
    ids = [enqueue(conn) for _ in range(3)]
    pairs = claim(conn, batch=3)
    by_id = {jid: [1, None, "x"][ids.index(jid)] for jid, _ in pairs}
    rows = conn.execute(
        "SELECT job_id, recorded FROM raquel_complete_many(%s::uuid[], %s::uuid[], results => %s::jsonb[])",
        (
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            [None if by_id[p[0]] is None else Jsonb(by_id[p[0]]) for p in pairs],
        ),
    ).fetchall()
    assert all(recorded for _, recorded in rows)
    assert [row_of(conn, i)["result"] for i in ids] == [1, None, "x"]


def test_complete_many_without_results_stores_none(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    conn.execute("SELECT * FROM raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[])", (jid, cid))
    assert result(conn, job_id) == ("success", True, None, None)


def test_complete_many_refuses_results_of_another_length_and_writes_nothing(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    refused(
        conn,
        "SELECT * FROM raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[], results => ARRAY['1', '2']::jsonb[])",
        "results",
        jid,
        cid,
    )
    assert row_of(conn, job_id)["status"] == "claimed"


def test_result_of_an_unknown_job_is_no_row_and_of_null_is_refused(conn: Conn) -> None:
    assert result(conn, UUID(int=1)) is None
    refused(conn, "SELECT * FROM raquel_result(NULL)", "job_id")


def test_result_of_a_failed_job_is_finished_only_when_exhausted(conn: Conn) -> None:
    job_id = enqueue(conn, max_retry_count=0)
    [(jid, cid)] = claim(conn)
    assert one(conn, "SELECT raquel_fail(%s, %s, 'boom')", jid, cid) == "exhausted"
    assert result(conn, job_id) == ("exhausted", True, None, "boom")


# --- waiting for a result ---------------------------------------------------


def test_a_watched_job_notifies_its_id_when_it_finishes(conn: Conn, dsn: str) -> None:
    job_id = enqueue(conn)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        one(conn, "SELECT raquel_result_watch(%s)", job_id)
        [(jid, cid)] = claim(conn)
        assert heard(listener) == []  # claimed is not finished
        one(conn, "SELECT raquel_complete(%s, %s)", jid, cid)
        assert heard(listener) == [("raquel_results", str(job_id))]
    assert one(conn, "SELECT count(*) FROM raquel_result_waiters") == 0


def test_a_claim_does_not_fire_the_result_trigger(conn: Conn, dsn: str) -> None:
    done = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_complete(%s, %s)", jid, cid)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        one(conn, "SELECT raquel_result_watch(%s)", done)
        enqueue(conn)
        claim(conn)
        assert heard(listener) == []  # served by the next statement that ends a job


def test_a_job_nobody_watches_finishes_without_a_notification(conn: Conn, dsn: str) -> None:
    enqueue(conn)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        [(jid, cid)] = claim(conn)
        one(conn, "SELECT raquel_complete(%s, %s)", jid, cid)
        assert heard(listener) == []


def test_complete_many_notifies_each_watched_job_once(conn: Conn, dsn: str) -> None:
    ids = [enqueue(conn) for _ in range(3)]
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        for job_id in ids[:2]:
            one(conn, "SELECT raquel_result_watch(%s)", job_id)
            one(conn, "SELECT raquel_result_watch(%s)", job_id)
        pairs = claim(conn, batch=3)
        conn.execute(
            "SELECT * FROM raquel_complete_many(%s::uuid[], %s::uuid[])", ([p[0] for p in pairs], [p[1] for p in pairs])
        )
        assert sorted(heard(listener)) == sorted(("raquel_results", str(i)) for i in ids[:2])


def test_a_registration_for_a_finished_or_gone_job_is_served_by_the_next_job_to_finish(conn: Conn, dsn: str) -> None:
    done = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_complete(%s, %s)", jid, cid)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        one(conn, "SELECT raquel_result_watch(%s)", done)
        one(conn, "SELECT raquel_result_watch(%s)", UUID(int=7))
        one(conn, "SELECT raquel_cancel(%s)", enqueue(conn))
        assert sorted(heard(listener)) == sorted([("raquel_results", str(done)), ("raquel_results", str(UUID(int=7)))])
    assert one(conn, "SELECT count(*) FROM raquel_result_waiters") == 0


OUTCOME_CALLS = {
    "raquel_complete": "SELECT raquel_complete(%s, %s)",
    "raquel_complete_many": "SELECT count(*) FROM raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[])",
    "raquel_fail": "SELECT raquel_fail(%s, %s, 'boom')",
}


@pytest.mark.parametrize("call", sorted(OUTCOME_CALLS))
def test_an_outcome_call_serves_its_own_jobs_waiters_and_leaves_the_others_to_the_trigger(
    conn: Conn, dsn: str, call: str
) -> None:
    # 0034_results_served: the outcome calls look up only their jobs' registrations (an index),
    # not every registered job; a registration made after its job ended waits for the trigger.
    done = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_complete(%s, %s)", jid, cid)
    job_id = enqueue(conn, max_retry_count=0)  # a failure exhausts it: finished
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        one(conn, "SELECT raquel_result_watch(%s)", done)
        one(conn, "SELECT raquel_result_watch(%s)", job_id)
        [(jid, cid)] = claim(conn)
        one(conn, OUTCOME_CALLS[call], jid, cid)
        assert heard(listener) == [("raquel_results", str(job_id))]
        assert conn.execute("SELECT job_id FROM raquel_result_waiters").fetchall() == [(done,)]
        one(conn, "SELECT raquel_cancel(%s)", enqueue(conn))  # a statement the trigger serves
        assert heard(listener) == [("raquel_results", str(done))]
    assert one(conn, "SELECT count(*) FROM raquel_result_waiters") == 0


def test_a_job_ended_by_hand_after_an_outcome_call_in_the_same_transaction_is_served(conn: Conn, dsn: str) -> None:
    first, second = enqueue(conn), enqueue(conn)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_results")
        for job_id in (first, second):
            one(conn, "SELECT raquel_result_watch(%s)", job_id)
        [(jid, cid)] = claim(conn)
        with conn.transaction():
            conn.execute("SELECT count(*) FROM raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[])", (jid, cid))
            conn.execute(
                "UPDATE raquel.raquel_jobs SET status = 'cancelled', finished_at = raquel_now_ms() WHERE id = %s",
                (second,),
            )
        assert sorted(heard(listener)) == sorted([("raquel_results", str(first)), ("raquel_results", str(second))])
    assert one(conn, "SELECT count(*) FROM raquel_result_waiters") == 0


def test_unwatch_deletes_one_registration(conn: Conn) -> None:
    job_id = enqueue(conn)
    watch = one(conn, "SELECT raquel_result_watch(%s)", job_id)
    assert one(conn, "SELECT raquel_result_unwatch(%s, %s)", watch, job_id) is True
    assert one(conn, "SELECT raquel_result_unwatch(%s, %s)", watch, job_id) is False
    refused(conn, "SELECT raquel_result_watch(NULL)", "job_id")


def test_unwatch_leaves_a_registration_of_another_job_alone(conn: Conn) -> None:
    # raquel_result_unwatch (0008_notifications): registration ids are a sequence; only a caller naming the job too
    # (an id it was given) may delete its registration.
    job_id = enqueue(conn)
    watch = one(conn, "SELECT raquel_result_watch(%s)", job_id)
    assert one(conn, "SELECT raquel_result_unwatch(%s, %s)", watch, enqueue(conn)) is False
    assert one(conn, "SELECT count(*) FROM raquel_result_waiters WHERE id = %s AND job_id = %s", watch, job_id) == 1


def test_result_waits_for_a_transaction_finishing_the_job_so_no_end_is_missed(conn: Conn, dsn: str) -> None:
    # The finisher's trigger runs before the registration exists; the
    # waiter's read then comes while the finisher is still open: it must wait
    # for the commit and see the success.
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    with psycopg.connect(dsn) as finisher, psycopg.connect(dsn, autocommit=True) as waiter:
        finisher.execute("SELECT raquel_complete(%s, %s, result => '42')", (jid, cid))
        waiter.execute("SELECT raquel_result_watch(%s)", (job_id,))
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.append(result(waiter, job_id)))
        reader.start()
        deadline = time.monotonic() + 10
        while (
            one(
                conn,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            == 0
        ):
            assert time.monotonic() < deadline, "raquel_result did not wait for the open finisher"
            time.sleep(0.01)
        assert got == []
        finisher.commit()
        reader.join(10)
    assert got == [("success", True, 42, None)]


def test_result_of_a_queued_job_takes_no_lock_a_claim_would_skip(conn: Conn, dsn: str) -> None:
    job_id = enqueue(conn)
    with psycopg.connect(dsn) as reader:
        assert result(reader, job_id) == ("queued", False, None, None)  # transaction left open
        assert [j for j, _ in claim(conn)] == [job_id]
        reader.rollback()


# --- cancelling a running job -----------------------------------------------


def test_cancel_running_marks_the_claim_and_notifies_its_worker(conn: Conn, dsn: str) -> None:
    job_id = enqueue(conn)
    [(_, cid)] = claim(conn)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_cancel")
        assert one(conn, "SELECT raquel_cancel(%s, running => true)", job_id) == "cancel_requested"
        assert heard(listener) == [("raquel_cancel", str(job_id))]
    row = row_of(conn, job_id)
    assert (row["status"], row["cancel_claim_id"]) == ("claimed", cid)


def test_plain_cancel_leaves_a_running_job_alone(conn: Conn) -> None:
    job_id = enqueue(conn)
    claim(conn)
    assert one(conn, "SELECT raquel_cancel(%s)", job_id) is None
    assert row_of(conn, job_id)["cancel_claim_id"] is None


def test_cancel_running_cancels_a_waiting_job_at_once(conn: Conn) -> None:
    job_id = enqueue(conn)
    assert one(conn, "SELECT raquel_cancel(%s, running => true)", job_id) == "cancelled"
    assert row_of(conn, job_id)["status"] == "cancelled"


def test_cancel_running_refuses_null(conn: Conn) -> None:
    job_id = enqueue(conn)
    refused(conn, "SELECT raquel_cancel(%s, running => NULL)", "running", job_id)
    assert row_of(conn, job_id)["status"] == "queued"


def test_a_failure_after_a_cancel_request_ends_the_job_cancelled_not_retried(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_cancel(%s, running => true)", job_id)
    assert one(conn, "SELECT raquel_fail(%s, %s, 'cancelled by request')", jid, cid) == "cancelled"
    row = row_of(conn, job_id)
    assert (row["status"], row["attempts"], row["error"]) == ("cancelled", 1, "cancelled by request")


def test_a_success_after_a_cancel_request_stays_a_success(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_cancel(%s, running => true)", job_id)
    assert one(conn, "SELECT raquel_complete(%s, %s)", jid, cid) == "success"


def test_a_rescued_claim_whose_cancel_was_requested_ends_cancelled(conn: Conn) -> None:
    job_id = enqueue(conn, now=T0)
    claim(conn, now=T0)
    one(conn, "SELECT raquel_cancel(%s, running => true)", job_id)
    assert one(conn, "SELECT raquel_rescue(now => %s)", T0 + 120_000) == 1
    assert row_of(conn, job_id)["status"] == "cancelled"


def test_a_cancel_request_does_not_outlive_its_claim(conn: Conn) -> None:
    job_id = enqueue(conn)
    [(jid, cid)] = claim(conn)
    one(conn, "SELECT raquel_cancel(%s, running => true)", job_id)
    one(conn, "SELECT raquel_release(%s, %s)", jid, cid)
    [(_, cid2)] = claim(conn)
    assert one(conn, "SELECT raquel_fail(%s, %s, 'x')", jid, cid2) == "failed"


# --- timeouts ---------------------------------------------------------------


def test_enqueue_stores_the_timeout(conn: Conn) -> None:
    assert row_of(conn, enqueue(conn, timeout=1500))["timeout"] == 1500
    assert row_of(conn, enqueue(conn))["timeout"] is None
    job_row = conn.execute("SELECT timeout FROM raquel_enqueue_job('q', timeout => 250)").fetchone()
    assert job_row == (250,)


@pytest.mark.parametrize("timeout", [0, -5])
def test_enqueue_refuses_a_timeout_not_above_zero(conn: Conn, timeout: int) -> None:
    refused(conn, "SELECT raquel_enqueue('q', timeout => %s)", "timeout", timeout)
    assert one(conn, "SELECT count(*) FROM raquel_jobs") == 0


def test_a_task_payload_enqueued_from_sql_is_stored_as_given(conn: Conn) -> None:
    job_id = one(conn, """SELECT raquel_enqueue('math', '{"task": "add", "args": [2, 3]}')""")
    assert row_of(conn, job_id)["payload"] == '{"task": "add", "args": [2, 3]}'
