"""raquel_complete_many's report for successes without a result (0007_outcomes).

Every pair recorded gives (job_id, true) per row; a repeated or refused pair is
reported at the first position of each recorded pair only; with retention 0 the
pairs a DELETE took are reported recorded and the rest updated. Each test
asserts on the rows as well as on the report. (Written for a leaner variant of
the function, 0012_complete_many_lean, which was measured and reverted before
release: its joins planned badly for large batches; these answers are the
function's either way.)
"""

from __future__ import annotations

import uuid
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


def complete_many(conn: Conn, pairs: list[tuple[Any, Any]]) -> list[bool]:
    got = conn.execute(
        "SELECT job_id, recorded FROM raquel_complete_many(%s::uuid[], %s::uuid[])",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    ).fetchall()
    assert [row[0] for row in got] == [p[0] for p in pairs]  # input order, every row
    return [row[1] for row in got]


def statuses(conn: Conn) -> dict[Any, tuple[str, int]]:
    return {row[0]: (row[1], row[2]) for row in conn.execute("SELECT id, status, attempts FROM raquel_jobs")}


def test_a_batch_of_current_claims_is_recorded_whole(conn: Conn) -> None:
    pairs = claimed(conn, "q", 300)
    assert complete_many(conn, pairs) == [True] * 300
    assert set(statuses(conn).values()) == {("success", 1)}


def test_a_batch_of_a_retention_0_queue_is_deleted_whole(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('gone', '0')")
    pairs = claimed(conn, "gone", 300)
    assert complete_many(conn, pairs) == [True] * 300
    assert statuses(conn) == {}


def test_a_mixed_batch_deletes_updates_and_refuses_each_pair_as_its_row_says(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('gone', '0')")
    (d1, c1), (d2, c2) = claimed(conn, "gone", 2)
    (k1, kc1), (k2, kc2) = claimed(conn, "kept", 2)
    [(watched, wc)] = claimed(conn, "gone")
    conn.execute("SELECT raquel_result_watch(%s)", [watched])
    [(running, _)] = claimed(conn, "kept")
    batch = [
        (k1, kc1),
        (d1, c1),
        (running, uuid.uuid4()),  # not its claim: refused, left running
        (d1, c1),  # repeated: recorded at its first position only
        (watched, wc),  # watched: kept as a success
        (k2, kc2),
        (d2, c2),
        (k1, kc1),
    ]
    assert complete_many(conn, batch) == [True, True, False, False, True, True, True, False]
    assert statuses(conn) == {
        k1: ("success", 1),
        k2: ("success", 1),
        watched: ("success", 1),
        running: ("claimed", 0),
    }
    # Once recorded, each pair is refused, deleted or not.
    assert complete_many(conn, [(d1, c1), (k1, kc1), (d2, c2)]) == [False, False, False]
    assert statuses(conn)[k1] == ("success", 1)


def test_a_batch_whose_pairs_are_all_refused_changes_nothing(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention('gone', '0')")
    pairs = claimed(conn, "gone", 3) + claimed(conn, "kept", 2)
    stale = [(job_id, uuid.uuid4()) for job_id, _ in pairs]
    assert complete_many(conn, stale) == [False] * 5
    assert set(statuses(conn).values()) == {("claimed", 0)}
    assert complete_many(conn, []) == []
