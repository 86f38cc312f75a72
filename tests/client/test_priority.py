"""Priorities (migration 0003): higher first, FIFO by scheduled_at within a priority."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from raquel_pg import InvalidArgument, Raquel

T = 1_700_000_000_000  # a fixed "now" (ms) for the SQL functions


def claim_payloads(
    conn: psycopg.Connection[Any], queues: list[str] | None, batch: int, now: int | None = T
) -> list[str]:
    rows = conn.execute("SELECT payload FROM raquel_claim(%s, 'w', %s, 60000, %s)", (queues, batch, now)).fetchall()
    return [r[0] for r in rows]


def test_existing_enqueue_calls_still_work(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""SELECT raquel_enqueue('emails', '{"to": "a@b.c"}')""")
    conn.execute("SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000)")
    rows = conn.execute("SELECT queue, priority FROM raquel_jobs ORDER BY queue").fetchall()
    assert rows == [("emails", 0), ("q", 0)]


@pytest.mark.parametrize("queues", [None, ["q"], ["q", "other"]], ids=["all", "one", "several"])
def test_claim_takes_highest_priority_then_oldest(conn: psycopg.Connection[Any], queues: list[str] | None) -> None:
    for payload, priority, at in [
        ("low-old", -1, T - 5000),
        ("mid-new", 0, T - 1000),
        ("mid-old", 0, T - 3000),
        ("high-new", 10, T - 10),
        ("high-old", 10, T - 20),
        ("high-future", 10, T + 1),
    ]:
        conn.execute(
            "SELECT raquel_enqueue('q', %s, at => %s, priority => %s, now => %s)", (payload, at, priority, T - 6000)
        )
    # Which jobs: the first ready ones by priority, then scheduled_at; the rows of one level come
    # back in no particular order (0024_edge_values: the clients sort them).
    assert sorted(claim_payloads(conn, queues, 3)) == ["high-new", "high-old", "mid-old"]
    assert sorted(claim_payloads(conn, queues, 10)) == ["low-old", "mid-new"]


@pytest.mark.parametrize("queues", [None, ["q"], ["q", "other"]], ids=["all", "one", "several"])
def test_claim_takes_the_highest_level_below_0_when_no_job_is_at_0(
    conn: psycopg.Connection[Any], queues: list[str] | None
) -> None:
    # A claim starts at level 0 unless a job is above it (0027_claim_probes): level 0 empty, the
    # levels below are found as after any level.
    for payload, priority in [("lowest", -5), ("low", -1)]:
        conn.execute("SELECT raquel_enqueue('q', %s, priority => %s, now => %s)", (payload, priority, T - 1000))
    assert claim_payloads(conn, queues, 1) == ["low"]
    assert claim_payloads(conn, queues, 1) == ["lowest"]
    assert claim_payloads(conn, queues, 1) == []


@pytest.mark.parametrize("queues", [None, ["q"], ["q", "other"]], ids=["all", "one", "several"])
def test_a_job_above_0_enqueued_between_claims_is_claimed_first(
    conn: psycopg.Connection[Any], queues: list[str] | None
) -> None:
    for payload in ["a", "b"]:
        conn.execute("SELECT raquel_enqueue('q', %s, now => %s)", (payload, T - 1000))
    assert claim_payloads(conn, queues, 1) == ["a"]
    conn.execute("SELECT raquel_enqueue('q', 'urgent', priority => 3, now => %s)", (T - 10,))
    assert claim_payloads(conn, queues, 1) == ["urgent"]
    assert claim_payloads(conn, queues, 1) == ["b"]


def test_a_worker_runs_a_claims_jobs_highest_priority_then_oldest_first(rq: Raquel) -> None:
    # Enqueued so that their order on disk is not the claim's: the client sorts a claim's rows.
    for payload, priority, delay in [
        ("low-old", -1, 0),
        ("mid-new", 0, 0),
        ("mid-old", 0, -3000),
        ("high-new", 10, 0),
        ("high-old", 10, -20),
    ]:
        rq.enqueue("q", payload, priority=priority, at=T + delay)
    ran: list[str] = []
    worker = rq.subscribe("q", concurrency=1, prefetch=10)(lambda job: ran.append(job.payload))
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while len(ran) < 5:
            assert time.monotonic() < deadline, ran
            time.sleep(0.01)
    finally:
        worker.stop()
        runner.join(15)
    assert ran == ["high-old", "high-new", "mid-old", "mid-new", "low-old"]


def test_client_enqueue_sets_priority(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    low = rq.enqueue("q", "low", priority=-5).id
    high = rq.enqueue("q", "high", priority=5).id
    rows = dict(conn.execute("SELECT id, priority FROM raquel_jobs").fetchall())
    assert rows == {low: -5, high: 5}
    with rq.dequeue("q") as job:
        assert job is not None and job.id == high


def test_priority_must_be_an_int(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as error:
        rq.enqueue("q", "x", priority="high")  # type: ignore[arg-type]
    assert error.value.argument == "priority"


def test_set_priority_reorders_waiting_jobs(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    first = rq.enqueue("q", "first").id
    second = rq.enqueue("q", "second").id
    assert conn.execute("SELECT raquel_set_priority(%s, 3)", (second,)).fetchone() == (True,)
    assert rq.set_priority(first, 1) is True
    assert claim_payloads(conn, ["q"], 2, now=None) == ["second", "first"]


def test_set_priority_leaves_finished_jobs_alone(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    job_id = rq.enqueue("q", "x").id
    with rq.dequeue("q"):
        pass
    assert rq.set_priority(job_id, 9) is False
    assert conn.execute("SELECT status, priority FROM raquel_jobs").fetchone() == ("success", 0)


def test_readme_examples(rq: Raquel, conn: psycopg.Connection[Any]) -> None:
    job_id = rq.enqueue("reports", "monthly", priority=10).id
    rq.enqueue("reports", "reindex", priority=-5)
    assert rq.set_priority(job_id, 20) is True
    conn.execute("SELECT raquel_enqueue('reports', 'monthly', priority => 10);")
    conn.execute("SELECT raquel_set_priority(id, 20) FROM raquel_jobs WHERE payload = 'monthly' AND status = 'queued';")
    assert conn.execute("SELECT payload, priority FROM raquel_jobs ORDER BY priority").fetchall() == [
        ("reindex", -5),
        ("monthly", 20),
        ("monthly", 20),
    ]


def test_next_due_finds_the_earliest_job_across_priorities(conn: psycopg.Connection[Any]) -> None:
    for priority, at in [(5, T + 3000), (0, T + 1000), (-2, T + 2000), (7, T + 500)]:
        conn.execute("SELECT raquel_enqueue('q', 'x', at => %s, priority => %s)", (at, priority))
    conn.execute("SELECT raquel_enqueue('other', 'x', at => %s, priority => 9)", (T + 100,))
    due = conn.execute(
        "SELECT raquel_next_due(NULL), raquel_next_due(ARRAY['q']), raquel_next_due(ARRAY['none'])"
    ).fetchone()
    assert due == (T + 100, T + 500, None)


# The claim's statement for each queue filter, exactly as raquel_claim runs it
# (0003_priority.sql) on one priority level, prepared with its variables as
# parameters ($1 queues, $2 level, $3 now, $4 batch left, $5 claim_as, $6
# lease), and the indexes its plan may use. For several queues the planner
# picks by the data: the per-queue index when the queues are rare, else the
# all-queues index read in claim order with a filter on the queue.
CLAIM_STATEMENT = """WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE {queue_filter}j.priority = $2
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= $3
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > $3)
                ORDER BY j.scheduled_at
                LIMIT $4
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = $5, claimed_at = $3,
                lease_expires_at = $3 + $6, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
            RETURNING j.*"""
CLAIM_PLANS = {
    "all-queues": ("", None, ("raquel_jobs_ready_priority_idx",)),
    "one-queue": ("j.queue = $1[1] AND ", ["q3"], ("raquel_jobs_ready_queue_priority_idx",)),
    "several-queues": (
        "j.queue = ANY ($1) AND ",
        ["q3", "q7"],
        ("raquel_jobs_ready_queue_priority_idx", "raquel_jobs_ready_priority_idx"),
    ),
}


@pytest.mark.parametrize("shape", list(CLAIM_PLANS))
def test_claim_uses_a_priority_index(conn: psycopg.Connection[Any], shape: str) -> None:
    # 20,000 finished jobs and 4,000 waiting ones over 5 priorities, most in
    # queue 'bulk' and 2% each in queues q3 and q7.
    conn.execute(
        """
        INSERT INTO raquel_jobs (queue, payload, status, priority, enqueued_at, scheduled_at, finished_at)
        SELECT CASE WHEN i %% 100 < 2 THEN 'q3' WHEN i %% 100 < 4 THEN 'q7' ELSE 'bulk' END, 'x',
               CASE WHEN i %% 6 = 0 THEN 'queued' ELSE 'success' END,
               i %% 5 - 2, %(t)s - i, %(t)s - i, CASE WHEN i %% 6 = 0 THEN NULL ELSE %(t)s END
        FROM generate_series(1, 24000) AS i""",
        {"t": T},
    )
    conn.execute("ANALYZE raquel_jobs")
    queue_filter, queues, indexes = CLAIM_PLANS[shape]
    statement: LiteralString = CLAIM_STATEMENT.replace("{queue_filter}", queue_filter)
    conn.execute(
        sql.SQL("PREPARE claim (text[], integer, bigint, integer, text, bigint) AS {}").format(sql.SQL(statement))
    )
    explain = sql.SQL("EXPLAIN EXECUTE claim ({}::text[], 0, {}, 1, 'w', 60000)").format(
        sql.Literal(queues), sql.Literal(T)
    )
    plan = "\n".join(row[0] for row in conn.execute(explain).fetchall())
    used = set(re.findall(r"Index Scan using (\w+)", plan)) - {"raquel_jobs_pkey"}  # pkey: the UPDATE's join
    assert used and used <= set(indexes), plan
    assert "Seq Scan" not in plan, plan
    if len(indexes) == 1:  # read in claim order: no sort
        assert "Sort" not in plan, plan


def test_concurrent_claims_take_each_job_once(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """8 threads, each on its own connection, claim batches of 3 across 4 priority levels until none is left."""
    conn.execute(
        """INSERT INTO raquel_jobs (queue, payload, priority, scheduled_at)
                    SELECT 'q', i::text, i %% 4, %s + i FROM generate_series(1, 400) AS i""",
        (T,),
    )
    claimed: list[list[tuple[str, int]]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def claim_all(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as own:
            barrier.wait()
            while rows := own.execute(
                "SELECT payload, priority FROM raquel_claim(ARRAY['q'], 'w', 3, 60000, %s)", (T + 1000,)
            ).fetchall():
                claimed[i].extend(rows)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payloads = [p for per_thread in claimed for p, _ in per_thread]
    assert sorted(payloads, key=int) == [str(i) for i in range(1, 401)]
    for per_thread in claimed:  # each claimer saw priorities only go down
        priorities = [priority for _, priority in per_thread]
        assert priorities == sorted(priorities, reverse=True)


def test_set_priority_needs_an_int(rq: Raquel) -> None:
    job_id = rq.enqueue("q", "x").id
    for bad in (None, "high"):
        with pytest.raises(InvalidArgument) as error:
            rq.set_priority(job_id, bad)  # type: ignore[arg-type]
        assert error.value.argument == "priority"
