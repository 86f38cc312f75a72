"""A claim of a list of queues (0006_claim: more than 16 queues, since 0013_claim_generic_plans two or
more, are claimed by raquel_claim_listed, a walk of the all-queues index with a hashed membership test (0031:
0029's hash join gave no order), or, for a registered list, an index probe of its members (0030), cut short per
level and then finished one index probe per queue).

Time is fixed through the functions' ``now`` argument: T is an arbitrary instant in ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from raquel_pg.migrate import migrate
from tests.sql.test_skewed_plans import buffers, nested_plans

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]

#: A long list (past the 16 queues that 0006 claimed with statements of its own).
LONG = [f"l{i}" for i in range(40)]


def enqueue(conn: Conn, queue: str, n: int = 1, *, now: int = T, **options: Any) -> None:
    named = "".join(f", {key} => %({key})s" for key in options)
    conn.execute(
        f"SELECT raquel_enqueue(%(queue)s, %(payload)s, now => %(now)s{named}) FROM generate_series(1, %(n)s)".encode(),
        {"queue": queue, "payload": "x", "now": now, "n": n, **options},
    )


#: A claim of a list of queues: (queue, priority, scheduled_at) of the jobs it took, in the order returned.
Claim = Callable[..., list[tuple[str, int, int]]]


def claim_by_names(conn: Conn, queues: list[str], batch: int = 10, now: int = T) -> list[tuple[str, int, int]]:
    """A claim of ``queues``, the names sent with it."""
    rows = conn.execute(
        "SELECT queue, priority, scheduled_at FROM raquel_claim(%s, 'w', %s, 60000, %s)", (queues, batch, now)
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def claim_by_list(conn: Conn, queues: list[str], batch: int = 10, now: int = T) -> list[tuple[str, int, int]]:
    """A claim of ``queues`` registered as a list first (raquel_queue_list, 0030_queue_lists), by its id."""
    row = conn.execute("SELECT raquel_queue_list(%s)", (queues,)).fetchone()
    assert row is not None
    rows = conn.execute(
        "SELECT queue, priority, scheduled_at FROM raquel_claim(claim_as => 'w', batch => %s, lease => 60000,"
        " now => %s, queue_list => %s)",
        (batch, now, row[0]),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture(params=[claim_by_names, claim_by_list], ids=["names", "registered list"])
def claim(request: pytest.FixtureRequest) -> Claim:
    """Each long-list test runs twice: the list sent by its names, and registered first."""
    fn: Claim = request.param
    return fn


def count(conn: Conn, status: str, queue: str | None = None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM raquel_jobs WHERE status = %s AND (%s::text IS NULL OR queue = %s)",
        (status, queue, queue),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_long_list_claims_only_its_queues(conn: Conn, claim: Claim) -> None:
    enqueue(conn, "other", 5)
    enqueue(conn, LONG[7], 3)
    enqueue(conn, LONG[30], 2)
    taken = claim(conn, LONG)
    assert sorted(q for q, _, _ in taken) == [LONG[30], LONG[30], LONG[7], LONG[7], LONG[7]]
    assert count(conn, "queued", "other") == 5


def test_a_long_list_naming_a_queue_twice_claims_each_job_once_and_fills_the_batch(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[3], 6, now=T - 10)
    enqueue(conn, LONG[5], 2)
    taken = claim(conn, [LONG[3], *LONG, LONG[3], LONG[5]], batch=7)
    assert sorted(q for q, _, _ in taken) == [LONG[3]] * 6 + [LONG[5]]
    assert count(conn, "claimed") == 7


def test_a_long_list_claims_the_highest_priority_then_the_oldest_first(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[1], 2, now=T - 3000, priority=0)
    enqueue(conn, LONG[2], 1, now=T - 2000, priority=5)
    enqueue(conn, LONG[3], 1, now=T - 1000, priority=5)
    enqueue(conn, "other", 3, now=T - 5000, priority=9)
    enqueue(conn, LONG[4], 1, now=T - 4000, priority=-1)
    taken = claim(conn, LONG, batch=4)
    assert [(q, p) for q, p, _ in taken] == [(LONG[2], 5), (LONG[3], 5), (LONG[1], 0), (LONG[1], 0)]


def test_a_long_list_takes_the_oldest_first_whatever_plan_its_statistics_give(
    dsn: str, conn: Conn, claim: Claim
) -> None:
    # Statistics taken with 5 jobs in the table made PostgreSQL 18 hash 0029's walk (a Hash Right
    # Join, probed in the list's order): the claim took a newer job first (0031_claim_listed_order).
    enqueue(conn, LONG[1], 5, now=T - 100)
    conn.execute("ANALYZE raquel.raquel_jobs")
    enqueue(conn, LONG[9], 1, now=T - 1000)
    with psycopg.connect(dsn, autocommit=True) as fresh:  # its plans made on those statistics
        assert [q for q, _, _ in claim(fresh, LONG, batch=1)] == [LONG[9]]


def test_a_long_list_is_not_held_up_by_jobs_not_yet_due_at_a_higher_priority(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[0], 3, priority=9, delay=3_600_000)
    enqueue(conn, LONG[1], 2, priority=1)
    assert [q for q, _, _ in claim(conn, LONG)] == [LONG[1], LONG[1]]


def test_a_long_list_skips_jobs_another_claim_holds(dsn: str, conn: Conn, claim: Claim) -> None:
    for i in range(6):
        enqueue(conn, LONG[i], 1, now=T - 1000 + i)
    with psycopg.connect(dsn) as other:  # a transaction left open: its claim's locks held
        held = other.execute("SELECT queue FROM raquel_claim(%s, 'other', 2, 60000, %s)", (LONG, T)).fetchall()
        assert sorted(row[0] for row in held) == [LONG[0], LONG[1]]
        taken = claim(conn, LONG, batch=10)
        assert [q for q, _, _ in taken] == [LONG[2], LONG[3], LONG[4], LONG[5]]
        other.rollback()
    assert count(conn, "queued") == 2


def test_a_long_list_never_claims_a_job_past_its_max_age(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[0], 2, now=T - 10_000, max_age=5_000)
    enqueue(conn, LONG[1], 1)
    assert [q for q, _, _ in claim(conn, LONG)] == [LONG[1]]
    assert count(conn, "expired", LONG[0]) == 2  # a short claim expires what it passed over


def test_a_long_list_takes_nothing_from_a_paused_queue(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[0], 3)
    enqueue(conn, LONG[1], 2)
    conn.execute("SELECT raquel_pause_queue(%s)", (LONG[0],))
    assert [q for q, _, _ in claim(conn, LONG)] == [LONG[1], LONG[1]]
    assert count(conn, "queued", LONG[0]) == 3


def test_a_long_list_keeps_a_queue_within_its_max_running(conn: Conn, claim: Claim) -> None:
    enqueue(conn, LONG[0], 5, now=T - 1000)
    enqueue(conn, LONG[1], 2)
    conn.execute("SELECT raquel_set_queue_limits(%s, max_running => 2)", (LONG[0],))
    taken = sorted(q for q, _, _ in claim(conn, LONG))
    assert taken == [LONG[0], LONG[0], LONG[1], LONG[1]]
    assert claim(conn, LONG) == []  # LONG[0] is at its limit, LONG[1] drained


def test_a_long_list_of_rare_queues_finds_their_jobs_past_the_walk(conn: Conn, claim: Claim) -> None:
    # The walk reads at most 256 jobs of a level; the rest is found one probe per queue.
    enqueue(conn, "other", 600, now=T - 10_000)
    enqueue(conn, LONG[5], 2, now=T - 1000, priority=0)
    enqueue(conn, LONG[6], 1, now=T - 2000, priority=0)
    enqueue(conn, "other", 600, now=T - 10_000, priority=3)
    enqueue(conn, LONG[9], 1, now=T - 500, priority=3)
    taken = claim(conn, LONG)
    assert [q for q, _, _ in taken] == [LONG[9], LONG[6], LONG[5], LONG[5]]
    assert count(conn, "queued", "other") == 1200


def test_a_long_list_claims_a_job_moved_into_it_and_not_one_moved_out(conn: Conn, claim: Claim) -> None:
    # A re-enqueue under the same unique key can move a waiting job to another queue.
    enqueue(conn, "other", 1, unique_key="k1")
    enqueue(conn, LONG[0], 1, unique_key="k2")
    enqueue(conn, LONG[3], 1, unique_key="k1", unique_mode="replace")
    enqueue(conn, "other", 1, unique_key="k2", unique_mode="replace")
    assert [q for q, _, _ in claim(conn, LONG)] == [LONG[3]]


@pytest.fixture(scope="module")
def skewed(make_database: Any) -> Iterator[Conn]:
    """A database with 50,000 ready jobs of one unlisted queue, analyzed, and nothing else."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[50000]))")
        conn.execute("VACUUM ANALYZE raquel.raquel_jobs")
        yield conn


def test_a_long_list_of_rare_queues_does_not_walk_the_big_one(skewed: Conn) -> None:
    # Walked to the end, the big queue's entries cost about 50,000 heap fetches (1,500+ buffers).
    for queue in LONG:
        skewed.execute("SELECT raquel_enqueue(%s, 'x')", (queue,))
    touched = buffers(skewed, f"SELECT * FROM raquel_claim(ARRAY{LONG!r}, 'w', 2, 60000)")
    assert touched <= 600


def test_a_registered_list_of_rare_queues_does_not_walk_the_big_one(skewed: Conn) -> None:
    for queue in LONG:
        skewed.execute("SELECT raquel_enqueue(%s, 'x')", (queue,))
    row = skewed.execute("SELECT raquel_queue_list(%s)", (LONG,)).fetchone()
    assert row is not None
    touched = buffers(skewed, f"SELECT * FROM raquel_claim(claim_as => 'w', batch => 2, queue_list => {row[0]})")
    assert touched <= 600


def test_a_registered_list_looks_each_walked_job_up_by_an_index_probe(skewed: Conn) -> None:
    for queue in LONG:
        skewed.execute("SELECT raquel_enqueue(%s, 'x', priority => 8)", (queue,))
    row = skewed.execute("SELECT raquel_queue_list(%s)", (LONG,)).fetchone()
    assert row is not None
    statement = f"SELECT count(*) FROM raquel_claim(claim_as => 'w', batch => 1, queue_list => {row[0]})"
    for _ in range(6):  # past the point where a cached plan may turn generic
        skewed.execute(statement)
    try:
        skewed.execute("LOAD 'auto_explain'")
    except psycopg.Error as error:
        pytest.skip(f"auto_explain not available: {error}")
    plans = nested_plans(skewed, statement)
    assert "Index Scan using raquel_jobs_ready_priority_idx" in plans
    assert "Index Only Scan using raquel_queue_list_members_pkey" in plans
    assert "Seq Scan" not in plans


def test_a_long_list_walks_the_all_queues_index_with_generic_plans_hashing_the_names(skewed: Conn) -> None:
    for queue in LONG:
        skewed.execute("SELECT raquel_enqueue(%s, 'x', priority => 7)", (queue,))
    for _ in range(6):  # past the point where a cached plan may turn generic
        skewed.execute(f"SELECT count(*) FROM raquel_claim(ARRAY{LONG!r}, 'w', 1, 60000)")
    try:
        skewed.execute("LOAD 'auto_explain'")
    except psycopg.Error as error:
        pytest.skip(f"auto_explain not available: {error}")
    skewed.execute("SET auto_explain.log_verbose = on")
    try:
        plans = nested_plans(skewed, f"SELECT count(*) FROM raquel_claim(ARRAY{LONG!r}, 'w', 1, 60000)")
    finally:
        skewed.execute("RESET auto_explain.log_verbose")
    assert "Index Scan using raquel_jobs_ready_priority_idx" in plans
    assert "hashed SubPlan" in plans  # a hash table of the names, probed in the walk's order (0031)
    assert "Seq Scan on raquel_jobs" not in plans
    assert "ANY ('{l0," not in plans  # the list is a parameter: no plan made with the names as a constant


def test_the_long_list_claim_keeps_generic_plans_and_the_claims_settings(skewed: Conn) -> None:
    row = skewed.execute(
        "SELECT proconfig, prosecdef FROM pg_proc"
        " WHERE oid = 'raquel.raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid, bigint)'::regprocedure",
    ).fetchone()
    assert row is not None
    config, definer = row
    assert "plan_cache_mode=force_generic_plan" in config
    assert {"enable_seqscan=off", "jit=off"} <= set(config)
    assert not definer  # called by raquel_claim only, as its owner
    grants = skewed.execute(
        "SELECT has_function_privilege('public', 'raquel.raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid, bigint)',"
        " 'EXECUTE')"
    ).fetchone()
    assert grants == (False,)
    json.dumps(config)  # a plain list of settings


# --- raquel_next_due -----------------------------------------------------------


def next_due(conn: Conn, queues: list[str]) -> int | None:
    row = conn.execute("SELECT raquel_next_due(%s)", (queues,)).fetchone()
    assert row is not None
    return None if row[0] is None else int(row[0])


def test_next_due_of_a_long_list_is_its_earliest_job_whatever_the_others_hold(conn: Conn) -> None:
    enqueue(conn, "other", 3, at=T + 1000)
    enqueue(conn, LONG[20], 1, at=T + 9000)
    enqueue(conn, LONG[3], 1, at=T + 5000, priority=-2)
    enqueue(conn, "other", 1, at=T + 2000, priority=4)
    assert next_due(conn, LONG) == T + 5000


def test_next_due_of_a_long_list_counts_its_claimed_jobs_lease_deadlines(conn: Conn) -> None:
    enqueue(conn, LONG[1], 1, now=T)
    enqueue(conn, LONG[2], 1, at=T + 90_000)
    claim_by_names(conn, LONG, batch=1)  # a lease of 60,000 ms from T
    assert next_due(conn, LONG) == T + 60_000


def test_next_due_of_a_long_list_leaves_out_a_paused_queue(conn: Conn) -> None:
    enqueue(conn, LONG[0], 1, at=T + 1000)
    enqueue(conn, LONG[1], 1, at=T + 7000)
    conn.execute("SELECT raquel_pause_queue(%s)", (LONG[0],))
    assert next_due(conn, LONG) == T + 7000


def test_next_due_of_a_long_list_finds_a_rare_job_past_the_walk(conn: Conn) -> None:
    enqueue(conn, "other", 300, at=T)
    enqueue(conn, LONG[33], 1, at=T + 4000)
    enqueue(conn, LONG[34], 1, at=T + 3000)
    assert next_due(conn, LONG) == T + 3000


def test_next_due_of_a_long_list_of_rare_queues_does_not_walk_the_big_one(skewed: Conn) -> None:
    skewed.execute("SELECT raquel_enqueue(%s, 'x', delay => 3600000)", (LONG[11],))
    touched = buffers(skewed, f"SELECT raquel_next_due(ARRAY{LONG!r})")
    assert touched <= 300
