"""The psql operations surface of migration 0002: views, raquel_stats, raquel_retry(_jobs), raquel_purge.

Time is fixed through the functions' ``now`` argument: T is an arbitrary
instant in ms, far from the real clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg
import pytest

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]


def enqueue(conn: Conn, queue: str = "q", now: int = T, **options: Any) -> UUID:
    names = "".join(f", {k} => %({k})s" for k in options)
    row = conn.execute(
        f"SELECT raquel_enqueue(queue => %(queue)s, now => %(now)s{names})".encode(),
        {"queue": queue, "now": now, **options},
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def claim(conn: Conn, queue: str = "q", now: int = T, lease: int = 60_000) -> tuple[UUID, UUID]:
    row = conn.execute(
        "SELECT id, claim_id FROM raquel_claim(ARRAY[%s], 'w1', 1, %s, %s)", (queue, lease, now)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def job_in(conn: Conn, status: str, queue: str = "q", now: int = T) -> UUID:
    """A job of ``queue`` in ``status``, its last event at ``now``."""
    if status == "expired":
        job_id = enqueue(conn, queue, now=now - 2000, max_age=1000)
        conn.execute("SELECT raquel_expire(NULL, %s)", (now,))
        return job_id
    job_id = enqueue(conn, queue, now=now, max_retry_count=0 if status == "exhausted" else None)
    if status == "queued":
        return job_id
    if status == "cancelled":
        conn.execute("SELECT raquel_cancel(%s, NULL, %s)", (job_id, now))
        return job_id
    claimed_id, claim_id = claim(conn, queue, now)
    assert claimed_id == job_id
    if status in ("failed", "exhausted"):
        conn.execute("SELECT raquel_fail(%s, %s, 'boom', 'trace', %s)", (job_id, claim_id, now))
    elif status == "success":
        conn.execute("SELECT raquel_complete(%s, %s, %s)", (job_id, claim_id, now))
    return job_id


def status_of(conn: Conn, job_id: UUID) -> str | None:
    row = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else row[0]


def stats(conn: Conn, now: int) -> dict[str, dict[str, Any]]:
    cursor = conn.execute("SELECT * FROM raquel_stats(%s)", (now,))
    names = [c.name for c in cursor.description or []]
    return {row[0]: dict(zip(names[1:], row[1:])) for row in cursor.fetchall()}


# --- raquel_stats and the views ---------------------------------------------


def test_stats_counts_each_status_per_queue(conn: Conn) -> None:
    for status in ("queued", "claimed", "success", "failed", "cancelled", "expired", "exhausted"):
        job_in(conn, status, queue=f"q-{status}")
    job_in(conn, "success", queue="q-success")
    result = stats(conn, T)
    assert result["q-success"]["success"] == 2 and result["q-success"]["total"] == 2
    for status in ("queued", "claimed", "failed", "cancelled", "expired", "exhausted"):
        assert result[f"q-{status}"][status] == 1, status
        assert result[f"q-{status}"]["total"] == 1


def test_stats_ready_scheduled_and_oldest_ready_age(conn: Conn) -> None:
    enqueue(conn, "q", now=T - 5000)
    enqueue(conn, "q", now=T - 1000)
    enqueue(conn, "q", now=T, delay=60_000)
    row = stats(conn, T)["q"]
    assert (row["ready"], row["scheduled"], row["oldest_ready_age_ms"]) == (2, 1, 5000)


def test_stats_oldest_ready_age_is_null_when_nothing_is_ready(conn: Conn) -> None:
    enqueue(conn, "q", now=T, delay=60_000)
    assert stats(conn, T)["q"]["oldest_ready_age_ms"] is None


def test_stats_counts_claimed_jobs_whose_lease_ran_out(conn: Conn) -> None:
    enqueue(conn, "q")
    enqueue(conn, "q")
    claim(conn, "q", now=T, lease=1000)
    claim(conn, "q", now=T, lease=10_000)
    assert stats(conn, T + 5000)["q"]["lease_expired"] == 1


def test_queue_stats_view_shows_the_oldest_ready_age_as_an_interval(conn: Conn) -> None:
    enqueue(conn, "q", now=T)
    row = conn.execute("SELECT queue, ready, oldest_ready_age FROM raquel_queue_stats").fetchone()
    assert row is not None
    queue, ready, age = row
    assert (queue, ready) == ("q", 1)
    assert age > timedelta(days=365)  # T is years before the real clock the view uses


def test_problem_jobs_view_lists_failed_exhausted_expired_with_their_error(conn: Conn) -> None:
    wanted = {job_in(conn, s, queue=s): s for s in ("failed", "exhausted", "expired")}
    for status in ("queued", "claimed", "success", "cancelled"):
        job_in(conn, status, queue=status)
    rows = conn.execute("SELECT id, status, error FROM raquel_problem_jobs").fetchall()
    assert {r[0]: r[1] for r in rows} == wanted
    assert {r[2] for r in rows if r[1] != "expired"} == {"boom"}


def test_expired_leases_view_lists_only_claims_past_their_lease(conn: Conn) -> None:
    enqueue(conn, "q", now=T)
    enqueue(conn, "q", now=T)
    lost, _ = claim(conn, "q", now=T, lease=1000)
    held, claim_id = claim(conn, "q", now=T, lease=1000)
    conn.execute("SELECT raquel_renew_leases(ARRAY[%s], ARRAY[%s], 600000)", (held, claim_id))
    rows = conn.execute("SELECT id, claimed_by FROM raquel_expired_leases").fetchall()
    assert rows == [(lost, "w1")]


# --- raquel_retry --------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "exhausted", "expired", "cancelled"])
def test_retry_requeues_a_job_now_keeping_its_attempts(conn: Conn, status: str) -> None:
    job_id = job_in(conn, status)
    before = conn.execute("SELECT attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    assert before is not None
    retried = conn.execute("SELECT raquel_retry(%s, %s)", (job_id, T + 10)).fetchone()
    assert retried == (True,)
    row = conn.execute(
        "SELECT status, attempts, scheduled_at, finished_at, claim_id FROM raquel_jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row == ("queued", before[0], T + 10, None, None)


def test_retried_job_is_claimable_at_once(conn: Conn) -> None:
    job_id = job_in(conn, "exhausted")
    conn.execute("SELECT raquel_retry(%s, %s)", (job_id, T + 10))
    assert claim(conn, "q", now=T + 10)[0] == job_id


def test_retried_expired_job_does_not_expire_again_at_once(conn: Conn) -> None:
    job_id = job_in(conn, "expired")
    conn.execute("SELECT raquel_retry(%s, %s)", (job_id, T + 10))
    assert claim(conn, "q", now=T + 20)[0] == job_id


@pytest.mark.parametrize("status", ["queued", "claimed", "success"])
def test_retry_refuses_a_job_that_did_not_end_badly(conn: Conn, status: str) -> None:
    job_id = job_in(conn, status)
    assert conn.execute("SELECT raquel_retry(%s, %s)", (job_id, T + 10)).fetchone() == (False,)
    assert status_of(conn, job_id) == status


def test_retry_of_an_unknown_job_returns_false(conn: Conn) -> None:
    row = conn.execute("SELECT raquel_retry('00000000-0000-0000-0000-000000000000')").fetchone()
    assert row == (False,)


def test_retry_jobs_defaults_to_failed_exhausted_expired_of_every_queue(conn: Conn) -> None:
    bad = [job_in(conn, "failed", "a"), job_in(conn, "exhausted", "b"), job_in(conn, "expired", "c")]
    cancelled = job_in(conn, "cancelled", "a")
    assert conn.execute("SELECT raquel_retry_jobs()").fetchone() == (3,)
    assert [status_of(conn, j) for j in bad] == ["queued"] * 3
    assert status_of(conn, cancelled) == "cancelled"


def test_retry_jobs_filters_by_queue_and_status(conn: Conn) -> None:
    a_failed = job_in(conn, "failed", "a")
    a_cancelled = job_in(conn, "cancelled", "a")
    b_failed = job_in(conn, "failed", "b")
    count = conn.execute("SELECT raquel_retry_jobs(queue => 'a', statuses => ARRAY['failed', 'cancelled'])").fetchone()
    assert count == (2,)
    assert [status_of(conn, j) for j in (a_failed, a_cancelled, b_failed)] == ["queued", "queued", "failed"]


def test_retry_jobs_since_takes_only_jobs_finished_since_then(conn: Conn) -> None:
    old = job_in(conn, "failed", "old", now=T - 3_600_000)
    new = job_in(conn, "failed", "new", now=T)
    since = datetime.fromtimestamp((T - 60_000) / 1000, tz=timezone.utc)
    assert conn.execute("SELECT raquel_retry_jobs(since => %s)", (since,)).fetchone() == (1,)
    assert (status_of(conn, old), status_of(conn, new)) == ("failed", "queued")


def test_retry_jobs_refuses_a_status_that_cannot_be_retried(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("SELECT raquel_retry_jobs(statuses => ARRAY['success'])")
    assert caught.value.diag.column_name == "statuses"


# --- raquel_cancel, as operators use it -------------------------------------------


def test_cancel_refuses_a_claimed_job(conn: Conn) -> None:
    job_id = job_in(conn, "claimed")
    assert conn.execute("SELECT raquel_cancel(%s)", (job_id,)).fetchone() == (None,)
    assert status_of(conn, job_id) == "claimed"


# --- raquel_purge ----------------------------------------------------------------


def test_purge_deletes_finished_jobs_older_than_the_age(conn: Conn) -> None:
    day = 86_400_000
    old = [job_in(conn, s, now=T - 8 * day) for s in ("success", "cancelled", "expired", "exhausted")]
    recent = job_in(conn, "success", now=T - 6 * day)
    deleted = conn.execute("SELECT raquel_purge(interval '7 days', now => %s)", (T,)).fetchone()
    assert deleted == (4,)
    assert [status_of(conn, j) for j in old] == [None] * 4
    assert status_of(conn, recent) == "success"


def test_purge_never_deletes_waiting_running_or_failed_jobs(conn: Conn) -> None:
    day = 86_400_000
    kept = [job_in(conn, s, queue=f"q{i}", now=T - 30 * day) for i, s in enumerate(("queued", "claimed", "failed"))]
    assert conn.execute("SELECT raquel_purge(interval '1 day', now => %s)", (T,)).fetchone() == (0,)
    assert [status_of(conn, j) for j in kept] == ["queued", "claimed", "failed"]


def test_purge_deletes_only_the_given_statuses(conn: Conn) -> None:
    success = job_in(conn, "success", now=T - 10_000)
    exhausted = job_in(conn, "exhausted", now=T - 10_000)
    conn.execute("SELECT raquel_purge(interval '1 second', ARRAY['success'], now => %s)", (T,))
    assert (status_of(conn, success), status_of(conn, exhausted)) == (None, "exhausted")


def test_purge_deletes_one_batch_per_call_oldest_first(conn: Conn) -> None:
    jobs = [job_in(conn, "success", now=T - 10_000 + i) for i in range(5)]
    assert conn.execute("SELECT raquel_purge(interval '0', batch_size => 2, now => %s)", (T,)).fetchone() == (2,)
    assert [status_of(conn, j) for j in jobs] == [None, None, "success", "success", "success"]


@pytest.mark.parametrize(
    "call, argument",
    [
        ("raquel_purge(interval '-1 day')", "older_than"),
        ("raquel_purge(NULL)", "older_than"),
        ("raquel_purge(interval '1 day', ARRAY['failed'])", "statuses"),
        ("raquel_purge(interval '1 day', batch_size => 0)", "batch_size"),
    ],
)
def test_purge_refuses_bad_arguments(conn: Conn, call: str, argument: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute(f"SELECT {call}".encode())
    assert caught.value.diag.column_name == argument
