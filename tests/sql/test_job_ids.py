"""Time-ordered job ids (in bulk, and one at a time; 0002_clock_and_ids), one claim_id per claim."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from raquel_pg import Raquel

Conn = psycopg.Connection[Any]


def unix_ms(job_id: uuid.UUID) -> int:
    """The creation time a version 7 UUID carries in its first 48 bits."""
    return job_id.int >> 80


def server_ms(conn: Conn) -> int:
    return int(conn.execute("SELECT raquel_now_ms()").fetchone()[0])


def test_new_ids_are_distinct_version_7_uuids_carrying_the_current_time(conn: Conn) -> None:
    before = server_ms(conn)
    ids = conn.execute("SELECT raquel_new_ids(10000)").fetchone()[0]
    after = server_ms(conn)
    assert len(ids) == len(set(ids)) == 10000
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= unix_ms(i) <= after for i in ids)


@pytest.mark.parametrize("n", [0, -1, None])
def test_new_ids_of_no_count_is_an_empty_array(conn: Conn, n: int | None) -> None:
    assert conn.execute("SELECT raquel_new_ids(%s)", [n]).fetchone() == ([],)


def test_calls_draw_different_random_bits(conn: Conn) -> None:
    first = [conn.execute("SELECT raquel_new_ids(1)").fetchone()[0][0] for _ in range(200)]
    assert len({i.int & ((1 << 80) - 1) for i in first}) == 200  # everything but the time differs


def test_new_id_is_a_version_7_uuid_carrying_the_current_time(conn: Conn) -> None:
    before = server_ms(conn)
    ids = [row[0] for row in conn.execute("SELECT raquel_new_id() FROM generate_series(1, 1000)")]
    after = server_ms(conn)
    assert len(set(ids)) == 1000
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= unix_ms(i) <= after for i in ids)


def test_new_id_is_inlined_into_the_statement_that_calls_it(conn: Conn) -> None:
    # No function call left in the plan: neither raquel_new_id nor the
    # raquel_now_ms it reads the clock with.
    plan = conn.execute("EXPLAIN VERBOSE SELECT raquel_new_id()").fetchall()
    output = " ".join(line for (line,) in plan)
    assert "gen_random_uuid()" in output and "clock_timestamp()" in output
    assert "raquel_" not in output


def test_every_way_of_adding_jobs_gives_time_ordered_ids(rq: Raquel, conn: Conn, no_schedules: str) -> None:
    before = server_ms(conn)
    made = [
        rq.enqueue("q").id,
        *rq.enqueue_many("q", ["a", "b"]),
        *rq.enqueue_many("q", ["c", "d"], unique_keys=["k", None]),
    ]
    made.append(conn.execute("INSERT INTO raquel_jobs (queue) VALUES ('q') RETURNING id").fetchone()[0])
    rq.schedule("tick", "q", every=1000, first_run_at=before)
    made += rq.run_schedules()
    after = server_ms(conn)
    assert len(made) == 7
    assert all(i.version == 7 and before <= unix_ms(i) <= after for i in made)


def test_later_batches_sort_after_earlier_ones(rq: Raquel) -> None:
    first = rq.enqueue_many("q", ["x"] * 100)
    time.sleep(0.005)
    second = rq.enqueue_many("q", ["x"] * 100)
    assert max(first) < min(second)


def test_jobs_claimed_together_share_one_claim_id_and_each_claim_draws_a_new_one(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue_many('q', ARRAY['a', 'b', 'c'])")
    claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], batch => 3)").fetchall()
    assert len(claimed) == 3 and len({claim for _, claim in claimed}) == 1
    job, old_claim = claimed[0]
    conn.execute("SELECT raquel_release(%s, %s)", [job, old_claim])
    again = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()
    assert again[0] == job and again[1] != old_claim


def test_a_shared_claim_id_fences_each_job_on_its_own(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue_many('q', ARRAY['a', 'b'])")
    (a, claim), (b, _) = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], batch => 2)").fetchall()
    assert conn.execute("SELECT raquel_complete(%s, %s)", [a, claim]).fetchone() == ("success",)
    assert conn.execute("SELECT raquel_complete(%s, %s)", [a, claim]).fetchone() == (None,)
    statuses = dict(conn.execute("SELECT id, status FROM raquel_jobs").fetchall())
    assert statuses == {a: "success", b: "claimed"}


def test_jobs_with_version_4_ids_run_beside_time_ordered_ones(conn: Conn) -> None:
    # Rows copied from raquel (or inserted with gen_random_uuid()) keep their random ids.
    old = conn.execute(
        "INSERT INTO raquel_jobs (id, queue) SELECT gen_random_uuid(), 'q' FROM generate_series(1, 2) RETURNING id"
    ).fetchall()
    new = conn.execute("SELECT raquel_enqueue('q')").fetchone()
    claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], batch => 3)").fetchall()
    assert {job for job, _ in claimed} == {old[0][0], old[1][0], new[0]}
    assert [job.version for job, _ in sorted(claimed, key=lambda c: c[0] == new[0])] == [4, 4, 7]
    done = conn.execute(
        "SELECT count(*) FILTER (WHERE recorded) FROM raquel_complete_many(%s, %s)",
        [[job for job, _ in claimed], [claim for _, claim in claimed]],
    ).fetchone()
    assert done == (3,)
