"""A queue whose retention is 0 keeps no success without a result (0007_outcomes).

raquel_complete and raquel_complete_many delete such a job in the statement
that records its success, unless a result waiter watches it; fenced as any
outcome. Every other queue, outcome and success with a result is kept.
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def claimed(conn: Conn, queue: str, jobs: int = 1) -> list[tuple[Any, Any]]:
    """Enqueues ``jobs`` jobs of ``queue`` and claims them: (id, claim_id) each."""
    conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])
    return [
        (row[0], row[1])
        for row in conn.execute("SELECT id, claim_id FROM raquel_claim(%s, batch => %s)", [[queue], jobs])
    ]


def rows(conn: Conn, job_id: Any) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT status, result FROM raquel_jobs WHERE id = %s", [job_id]).fetchall()


def complete_many(conn: Conn, pairs: list[tuple[Any, Any]], results: list[str | None] | None = None) -> list[bool]:
    got = conn.execute(
        "SELECT recorded FROM raquel_complete_many(%s, %s, results => %s::jsonb[])",
        [[p[0] for p in pairs], [p[1] for p in pairs], results],
    ).fetchall()
    return [row[0] for row in got]


def test_a_success_of_a_queue_with_retention_0_deletes_the_job(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    pairs = claimed(conn, "q", 3)
    assert complete_many(conn, pairs) == [True, True, True]
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


def test_raquel_complete_of_a_queue_with_retention_0_deletes_the_job(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [(job_id, claim_id)] = claimed(conn, "q")
    assert conn.execute("SELECT raquel_complete(%s, %s)", [job_id, claim_id]).fetchone() == ("success",)
    assert rows(conn, job_id) == []


def test_a_default_retention_of_0_deletes_successes_of_queues_without_their_own(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention(NULL, '0')")
    conn.execute("SELECT raquel_set_retention('kept', '1 hour')")
    try:
        [plain] = claimed(conn, "plain")
        [kept] = claimed(conn, "kept")
        assert complete_many(conn, [plain, kept]) == [True, True]
        assert rows(conn, plain[0]) == []
        assert rows(conn, kept[0]) == [("success", None)]
    finally:
        conn.execute("SELECT raquel_set_retention(NULL, NULL)")


def test_successes_are_kept_without_retention_0(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '1 second')")
    pairs = claimed(conn, "q", 2) + claimed(conn, "other")
    assert complete_many(conn, pairs) == [True, True, True]
    assert conn.execute("SELECT array_agg(status::text) FROM raquel_jobs").fetchone() == (["success"] * 3,)


def test_a_success_with_a_result_is_kept_with_retention_0(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [with_result, without] = claimed(conn, "q", 2)
    assert complete_many(conn, [with_result, without], ['{"n": 1}', None]) == [True, True]
    assert rows(conn, with_result[0]) == [("success", {"n": 1})]
    assert rows(conn, without[0]) == []


def test_a_watched_success_is_kept_with_retention_0_and_its_waiter_served(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [watched, unwatched] = claimed(conn, "q", 2)
    conn.execute("SELECT raquel_result_watch(%s)", [watched[0]])
    assert complete_many(conn, [watched, unwatched]) == [True, True]
    assert rows(conn, watched[0]) == [("success", None)]
    assert rows(conn, unwatched[0]) == []
    assert conn.execute("SELECT count(*) FROM raquel_result_waiters").fetchone() == (0,)


def test_a_stale_or_repeated_success_of_a_deleted_job_is_refused(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [pair] = claimed(conn, "q")
    assert complete_many(conn, [pair, pair]) == [True, False]
    assert complete_many(conn, [pair]) == [False]
    assert conn.execute("SELECT raquel_complete(%s, %s)", list(pair)).fetchone() == (None,)


def test_a_success_under_another_claim_id_is_refused_and_keeps_the_job(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [(job_id, _)] = claimed(conn, "q")
    assert complete_many(conn, [(job_id, job_id)]) == [False]
    assert rows(conn, job_id) == [("claimed", None)]


def test_a_failure_with_retention_0_is_recorded_as_before(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('q', '0')")
    [(job_id, claim_id)] = claimed(conn, "q")
    conn.execute("SELECT raquel_fail(%s, %s, 'boom')", [job_id, claim_id])
    assert conn.execute("SELECT status, error FROM raquel_jobs WHERE id = %s", [job_id]).fetchone() == (
        "failed",
        "boom",
    )
