"""Plans under skewed statistics: a small queue beside a big backlog; a batch
of jobs claimed after ANALYZE saw them all queued.

The claim and raquel_next_due run cached PL/pgSQL plans. A plan that took the
all-queues index and filtered on the queue would walk the big queue's entries
to serve the small one (measured: 17.5 ms per claim beside 200,000 jobs,
against 0.4 ms). Each call is made more than five times, past the point where
PL/pgSQL's plan cache may switch to a generic plan, and the buffers the last
call touched are counted: under a hundred pages, where the claim's plan forced
generic touched about 1,500 per call (measured while writing these tests).
The batch functions (0011) are checked on the plans of their inner
statements, read from auto_explain: no sequential scan of raquel_jobs.
The databases are fresh ones, so these statistics reach no other test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from raquel_pg.migrate import migrate

BIG = 50_000
#: Steady calls touch 80-100 buffers; walking the big queue's entries, about 1,500.
MAX_BUFFERS = 300


@pytest.fixture(scope="module")
def skewed(make_database: Any) -> Iterator[psycopg.Connection[Any]]:
    """A database with BIG ready jobs in queue 'big', analyzed, and nothing else."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[%s]))", [BIG])
        conn.execute("VACUUM ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        yield conn


def buffers(conn: psycopg.Connection[Any], statement: str, times: int = 8) -> int:
    """Shared buffers (hit + read) the last of ``times`` runs of ``statement`` touched."""
    for _ in range(times - 1):
        conn.execute(statement)
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}").fetchone()
    assert row is not None
    plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def test_claiming_from_a_small_queue_does_not_walk_the_big_one(skewed: psycopg.Connection[Any]) -> None:
    skewed.execute("SELECT count(*) FROM raquel_enqueue_many('small', array_fill('x'::text, ARRAY[100]))")
    touched = buffers(skewed, "SELECT * FROM raquel_claim(ARRAY['small'], 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS


def test_next_due_of_a_small_queue_does_not_walk_the_big_one(skewed: psycopg.Connection[Any]) -> None:
    skewed.execute("SELECT count(*) FROM raquel_enqueue_many('later', ARRAY['x'], delay => 3600000)")
    touched = buffers(skewed, "SELECT raquel_next_due(ARRAY['later'])")
    assert touched <= MAX_BUFFERS


def test_an_empty_queue_is_found_empty_at_once(skewed: psycopg.Connection[Any]) -> None:
    touched = buffers(skewed, "SELECT * FROM raquel_claim(ARRAY['none'], 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS


def test_a_claim_of_several_queues_does_not_walk_the_busy_one_to_find_an_empty_one(make_database: Any) -> None:
    # Each listed queue's probe for its highest level took the all-queues
    # index and read the busy queue's entries to find none of 'empty'
    # (0013_claim_generic_plans: 22.7 ms a claim beside 200,000 jobs).
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('busy', array_fill('x'::text, ARRAY[%s]))", [BIG])
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        touched = buffers(conn, "SELECT * FROM raquel_claim(ARRAY['busy', 'empty'], 'w', 5, 60000)", times=12)
    assert touched <= MAX_BUFFERS


def test_a_claim_of_two_rare_queues_does_not_walk_the_big_one(make_database: Any) -> None:
    # 0006's statements for 2 to 16 queues, custom-planned, took the all-queues
    # index: 38 ms a claim beside 200,000 jobs; raquel_claim_listed walks at
    # most 256 of a level's jobs, then probes each queue (0013_claim_generic_plans).
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[%s]))", [BIG])
        for queue in ("s1", "s2"):
            conn.execute("SELECT count(*) FROM raquel_enqueue_many(%s, array_fill('x'::text, ARRAY[100]))", [queue])
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        touched = buffers(conn, "SELECT * FROM raquel_claim(ARRAY['s1', 's2'], 'w', 10, 60000)", times=12)
    assert touched <= 2 * MAX_BUFFERS


@pytest.fixture
def held_first(make_database: Any) -> Iterator[psycopg.Connection[Any]]:
    """A fresh database: BIG ready jobs of queue 'held', then 100 of 'other', analyzed."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('held', array_fill('x'::text, ARRAY[%s]))", [BIG])
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('other', array_fill('x'::text, ARRAY[100]))")
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        yield conn


def claimed_queues(conn: psycopg.Connection[Any]) -> set[str]:
    """The queues of the claimed jobs."""
    return {queue for (queue,) in conn.execute("SELECT DISTINCT queue FROM raquel_jobs WHERE status = 'claimed'")}


def test_a_claim_of_all_queues_does_not_walk_a_paused_queues_backlog(held_first: psycopg.Connection[Any]) -> None:
    # 0013's claim of all queues read the paused queue's ready jobs one by one
    # to reach the others' (58-59 ms a claim beside 200,000 paused jobs,
    # 1.3-1.4 ms since 0016_claim_walks).
    held_first.execute("SELECT raquel_pause_queue('held')")
    touched = buffers(held_first, "SELECT * FROM raquel_claim(NULL, 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS
    assert claimed_queues(held_first) == {"other"}


def test_a_claim_of_all_queues_does_not_walk_a_limited_queues_backlog(held_first: psycopg.Connection[Any]) -> None:
    # A queue with max_running is held too: claimed on its own first, then
    # left out of the claim of the others.
    held_first.execute("SELECT raquel_set_queue_limits('held', max_running => 2)")
    touched = buffers(held_first, "SELECT * FROM raquel_claim(NULL, 'w', 5, 60000)")
    assert touched <= MAX_BUFFERS
    count = held_first.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'claimed' AND queue = 'held'")
    assert count.fetchone() == (2,)


def test_a_claim_of_all_queues_does_not_walk_a_paused_backlog_past_jobs_other_claims_hold(
    make_database: Any,
) -> None:
    # The jobs it found first are locked by another claim: a scan of the
    # all-queues index filtered on their ctids read on through the paused
    # backlog behind them (1,552 buffers); by their ctids, 84.
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as other:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('other', array_fill('x'::text, ARRAY[100]))")
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('held', array_fill('x'::text, ARRAY[%s]))", [BIG])
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        conn.execute("SELECT raquel_pause_queue('held')")
        buffers(conn, "SELECT * FROM raquel_claim(NULL, 'w', 5, 60000)", times=2)
        other.execute("SELECT id FROM raquel_jobs WHERE status = 'queued' ORDER BY scheduled_at LIMIT 3 FOR UPDATE")
        touched = buffers(conn, "SELECT * FROM raquel_claim(NULL, 'w', 5, 60000)", times=1)
        other.rollback()
    assert touched <= MAX_BUFFERS


def test_a_claim_of_all_queues_beside_a_paused_backlog_takes_the_highest_priority_first(
    held_first: psycopg.Connection[Any],
) -> None:
    held_first.execute("SELECT raquel_pause_queue('held')")
    held_first.execute("SELECT count(*) FROM raquel_enqueue_many('urgent', ARRAY['x', 'y'], priority => 5)")
    rows = held_first.execute("SELECT queue FROM raquel_claim(NULL, 'w', 3, 60000)").fetchall()
    assert sorted(queue for (queue,) in rows) == ["other", "urgent", "urgent"]


def test_next_due_of_all_queues_does_not_walk_a_paused_queues_backlog(held_first: psycopg.Connection[Any]) -> None:
    held_first.execute("SELECT raquel_pause_queue('held')")
    touched = buffers(held_first, "SELECT raquel_next_due(NULL)")
    assert touched <= MAX_BUFFERS
    due = held_first.execute(
        "SELECT raquel_next_due(NULL) = (SELECT min(scheduled_at) FROM raquel_jobs WHERE queue = 'other')"
    ).fetchone()
    assert due == (True,)


def test_a_claim_of_a_queue_with_max_running_counts_its_running_jobs_over_the_lease_index(
    skewed: psycopg.Connection[Any],
) -> None:
    # 0006's count of the queue's running jobs had no index to use: a
    # sequential scan of the table at each claim (42 ms a claim beside 200,000
    # finished jobs, 0.70 ms over the lease index; 0013_claim_generic_plans).
    skewed.execute("SELECT count(*) FROM raquel_enqueue_many('limited', array_fill('x'::text, ARRAY[10]))")
    skewed.execute("SELECT raquel_set_queue_limits('limited', max_running => 100)")
    try:
        plans = nested_plans(skewed, "SELECT count(*) FROM raquel_claim(ARRAY['limited'], 'w', 2, 60000)")
    finally:
        skewed.execute("SELECT raquel_set_queue_limits('limited')")
    assert "count(*)" in plans
    assert "raquel_jobs_lease_idx" in plans
    assert "Seq Scan on raquel_jobs" not in plans


def test_next_due_of_a_queue_with_max_running_counts_its_running_jobs_over_the_lease_index(
    skewed: psycopg.Connection[Any],
) -> None:
    # 0006's count read the whole table at each call (0015_next_due_running_count).
    skewed.execute("SELECT raquel_set_queue_limits('limited', max_running => 100)")
    try:
        plans = nested_plans(skewed, "SELECT raquel_next_due(ARRAY['limited'])")
    finally:
        skewed.execute("SELECT raquel_set_queue_limits('limited')")
    assert "count(*)" in plans
    assert "raquel_jobs_lease_idx" in plans
    assert "Seq Scan on raquel_jobs" not in plans


def test_a_claim_planned_on_an_empty_table_does_not_walk_the_queues_that_came_later(make_database: Any) -> None:
    # A worker that starts before its first job plans its claim on an empty
    # table, and keeps the plan for the session (0013_claim_generic_plans).
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as other:
        migrate(conn)
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        conn.execute("SELECT raquel_enqueue('small', 'x')")
        for _ in range(8):
            conn.execute("SELECT * FROM raquel_claim(ARRAY['small'], 'w', 1, 60000)")
        other.execute("SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[%s]))", [BIG])
        other.execute("SELECT count(*) FROM raquel_enqueue_many('small', array_fill('x'::text, ARRAY[100]))")
        touched = buffers(conn, "SELECT * FROM raquel_claim(ARRAY['small'], 'w', 5, 60000)", times=1)
    assert touched <= MAX_BUFFERS


def test_a_claim_planned_on_an_empty_table_does_not_walk_a_higher_level_of_another_queue(make_database: Any) -> None:
    # The probe for a level above 0 (0027_claim_probes) keeps to the queue's index range, whatever
    # the statistics of the table it was planned on.
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as other:
        migrate(conn)
        for _ in range(8):
            conn.execute("SELECT * FROM raquel_claim(ARRAY['small'], 'w', 1, 60000)")
        other.execute(
            "SELECT count(*) FROM raquel_enqueue_many('big', array_fill('x'::text, ARRAY[%s]), priority => 5)", [BIG]
        )
        other.execute("SELECT count(*) FROM raquel_enqueue_many('small', array_fill('x'::text, ARRAY[100]))")
        touched = buffers(conn, "SELECT * FROM raquel_claim(ARRAY['small'], 'w', 5, 60000)", times=1)
    assert touched <= MAX_BUFFERS


def test_a_claim_of_several_queues_leaves_the_session_planner_settings_as_they_were(
    skewed: psycopg.Connection[Any],
) -> None:
    # It plans its claim statement with custom plans and sorts allowed
    # (set_config inside the call); the function's SET clauses restore both.
    skewed.execute("SELECT * FROM raquel_claim(ARRAY['big', 'empty'], 'w', 1, 60000)")
    row = skewed.execute("SELECT current_setting('plan_cache_mode'), current_setting('enable_sort')").fetchone()
    assert row == ("auto", "on")


def nested_plans(conn: psycopg.Connection[Any], statement: str) -> str:
    """The plans (text) of the statements ``statement`` runs inside its functions, from auto_explain.

    Skips the test where the server has no auto_explain.
    """
    return "\n".join(plan_notices(conn, statement))


def plan_notices(conn: psycopg.Connection[Any], statement: str) -> list[str]:
    """Each plan auto_explain reports while ``statement`` runs (its own last), one string each.

    Skips the test where the server has no auto_explain.
    """
    try:
        conn.execute("LOAD 'auto_explain'")
    except psycopg.Error as error:
        pytest.skip(f"auto_explain not available: {error}")
    notices: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(keep)
    conn.execute(
        "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; "
        "SET auto_explain.log_level = notice"
    )
    try:
        conn.execute(statement)
    finally:
        conn.execute("SET auto_explain.log_min_duration = -1")
        conn.remove_notice_handler(keep)
    return notices


@pytest.fixture
def many_levels(make_database: Any) -> Iterator[psycopg.Connection[Any]]:
    """A fresh database: 40 levels of queue 'q' (priorities 41-80) holding only jobs due in an
    hour, above 20 due jobs each of its own priority (1-20), analyzed."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "SELECT count(raquel_enqueue('q', 'x', delay => 3600000, priority => g)) FROM generate_series(41, 80) g"
        )
        conn.execute("SELECT count(raquel_enqueue('q', 'x', priority => g)) FROM generate_series(1, 20) g")
        conn.execute("ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        yield conn


@pytest.mark.parametrize("queues", ["ARRAY['q']", "NULL"])
def test_a_claim_does_not_take_two_statements_per_priority_level(
    many_levels: psycopg.Connection[Any], queues: str
) -> None:
    # Before 0016_claim_walks each level took two statements
    # of its own (its probe, its claim): auto_explain reported 104 statements
    # for this claim of 10 jobs below 40 levels of delayed jobs, 8 since.
    statement = f"SELECT priority FROM raquel_claim({queues}, 'w', 10, 60000)"
    claimed = many_levels.execute(statement).fetchall()
    assert sorted(p for (p,) in claimed) == list(range(11, 21))  # the highest due levels
    notices = plan_notices(many_levels, statement)
    assert len(notices) < 12


@pytest.fixture(scope="module")
def all_queued(make_database: Any) -> Iterator[psycopg.Connection[Any]]:
    """A database with 20,000 ready jobs, analyzed while all of them were queued."""
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("SELECT count(*) FROM raquel_enqueue_many('batch', array_fill('x'::text, ARRAY[20000]))")
        conn.execute("VACUUM ANALYZE raquel.raquel_jobs")  # the table: raquel_jobs here is its stand-in view
        yield conn


@pytest.mark.parametrize(
    "outcome",
    [
        "SELECT count(*) FROM raquel_complete_many(%s, %s)",
        "SELECT count(*) FROM raquel_renew_leases(%s, %s)",
    ],
)
def test_a_batch_of_outcomes_reaches_its_jobs_by_primary_key(all_queued: psycopg.Connection[Any], outcome: str) -> None:
    # The statistics say no job is 'claimed': free to choose, the planner
    # joined the pairs to a sequential scan of the table in a nested loop
    # (372 ms for 1,000 jobs; 0011). Nor may it read the whole primary key
    # once and compare every row with every pair (a variant measured in
    # issue 23 did so above ~550 pairs: 0.2-6.5 s a call): one probe per pair.
    rows = all_queued.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['batch'], 'w', 1000)").fetchall()
    ids, claims = [r[0] for r in rows], [r[1] for r in rows]
    plans = nested_plans(all_queued, psycopg.ClientCursor(all_queued).mogrify(outcome, [ids, claims]))
    assert "Update on raquel_jobs" in plans
    assert "Index Scan using raquel_jobs_pkey" in plans
    assert "Index Cond: (id = " in plans
    assert "Seq Scan on raquel_jobs" not in plans


def test_a_batch_of_successes_deleted_whole_runs_no_update(all_queued: psycopg.Connection[Any]) -> None:
    # Retention 0: the DELETE took every pair, so the function answers from it
    # (0017_complete_many_deleted_whole). Before, the UPDATE of the pairs left
    # over still ran, comparing every pair with every deleted one.
    all_queued.execute("SELECT raquel_set_retention('gone', '0')")
    all_queued.execute("SELECT count(*) FROM raquel_enqueue_many('gone', array_fill('x'::text, ARRAY[300]))")
    rows = all_queued.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['gone'], 'w', 300)").fetchall()
    ids, claims = [r[0] for r in rows], [r[1] for r in rows]
    statement = psycopg.ClientCursor(all_queued).mogrify(
        "SELECT bool_and(recorded), count(*) FROM raquel_complete_many(%s, %s)", [ids, claims]
    )
    plans = nested_plans(all_queued, statement)
    assert "Delete on raquel_jobs" in plans
    assert "Update on raquel_jobs" not in plans
    assert all_queued.execute("SELECT count(*) FROM raquel_jobs WHERE queue = 'gone'").fetchone() == (0,)


def test_a_large_claim_updates_the_rows_it_locked_by_their_ctid(all_queued: psycopg.Connection[Any]) -> None:
    # 0011: not a hash join over a sequential scan; 0017: not one primary-key
    # descent per job either, but a TID scan of the rows the CTE locked.
    plans = nested_plans(all_queued, "SELECT count(*) FROM raquel_claim(ARRAY['batch'], 'w', 1000)")
    assert "Update on raquel_jobs" in plans
    assert "Tid Scan on raquel_jobs" in plans
    assert "Seq Scan on raquel_jobs" not in plans
    assert "raquel_jobs_pkey" not in plans
    # 0024: one TID scan of the list of ctids, not a CTE joined by ctid (a TID scan per row).
    assert "CTE Scan" not in plans and "Nested Loop" not in plans


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT raquel_expire(ARRAY['big'])",
        "SELECT count(*) FROM raquel_claim(ARRAY['none'], 'w', 5, 60000)",  # short: expires too
        "SELECT raquel_rescue(ARRAY['big'])",
        "SELECT raquel_next_due(ARRAY['big'])",
    ],
)
def test_the_claim_and_its_sweeps_start_no_parallel_workers(skewed: psycopg.Connection[Any], statement: str) -> None:
    # The expiry probe's empty partial index gets a guess of a third of the
    # table; beside a backlog that priced it into a Gather whose two workers
    # took 7-30 ms to start, for a probe of 0.007 ms (0014). Parallel plans
    # are made as cheap as they can be here, so only the functions' own
    # setting keeps them out.
    skewed.execute(
        "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
        "SET min_parallel_table_scan_size = 0; SET min_parallel_index_scan_size = 0"
    )
    try:
        plans = nested_plans(skewed, statement)
    finally:
        skewed.execute(
            "RESET parallel_setup_cost; RESET parallel_tuple_cost; "
            "RESET min_parallel_table_scan_size; RESET min_parallel_index_scan_size"
        )
    assert "raquel_jobs" in plans
    assert "Gather" not in plans and "Parallel" not in plans


def engine_settings(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Each engine function's settings (``proconfig``), by its signature."""
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p "
        "WHERE p.pronamespace = 'raquel'::regnamespace AND p.proconfig IS NOT NULL"
    ).fetchall()
    return {name: list(config) for name, config in rows}


def test_every_function_that_disfavours_sequential_scans_turns_jit_off(skewed: psycopg.Connection[Any]) -> None:
    # enable_seqscan = off prices a sequential scan at 10^10 before
    # PostgreSQL 18: far past jit_above_cost, so a statement with no other
    # path was JIT-compiled at each call (0006_claim: jit = off).
    settings = engine_settings(skewed)
    disfavouring = {name: config for name, config in settings.items() if "enable_seqscan=off" in config}
    assert disfavouring
    assert {name: "jit=off" in config for name, config in disfavouring.items()} == dict.fromkeys(disfavouring, True)


def test_a_claim_that_rescues_jobs_compiles_nothing(skewed: psycopg.Connection[Any]) -> None:
    # Each job the rescue puts back fires the wake-up trigger, whose check of
    # raquel_waiters has only a sequential scan: 460-600 ms of JIT per job on
    # PostgreSQL 15, a claim rescuing 100 jobs took 17.5 s (0006_claim: jit = off).
    start = skewed.execute("SELECT raquel_now_ms()").fetchone()
    assert start is not None
    # Enqueued and claimed a second ago with a lease of 1 ms; rescued at the
    # clock's now (so the jobs put back are ready, and the wake-up check runs).
    skewed.execute(
        "SELECT count(*) FROM raquel_enqueue_many('rescued', array_fill('x'::text, ARRAY[3]), now => %s)",
        [start[0] - 1000],
    )
    skewed.execute("SELECT count(*) FROM raquel_claim(ARRAY['rescued'], 'w', 3, 1, now => %s)", [start[0] - 1000])
    skewed.execute("SET jit = on; SET jit_above_cost = 0; SET jit_inline_above_cost = 0")
    try:
        if not any("JIT:" in plan for plan in plan_notices(skewed, "SELECT count(*) FROM raquel_waiters")):
            pytest.skip("this server does not JIT-compile (no LLVM support)")
        plans = plan_notices(
            skewed, f"SELECT count(*) FROM raquel.raquel_claim(ARRAY['rescued'], 'w', 3, 60000, now => {start[0]})"
        )
    finally:
        skewed.execute("RESET jit; RESET jit_above_cost; RESET jit_inline_above_cost")
    nested = plans[:-1]  # the last is the caller's own statement, JIT-compiled at this session's settings
    assert any("raquel_waiters" in plan for plan in nested)
    assert [plan for plan in nested if "JIT:" in plan] == []
