"""The claim's probes in one statement (migration claim_probes, issue 23): the rescue's probe of
the oldest lease, the read of the paused or limited queues and the first priority level are read
together before anything is claimed; these are the paths where that first level must be read
again, and the expiry of a list the queue controls trimmed.

Time is fixed through the functions' ``now`` argument: T is an arbitrary instant in ms.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.sql.test_skewed_plans import plan_notices

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]


def enqueue(conn: Conn, queue: str, payload: str, priority: int = 0, max_age: int | None = None) -> None:
    conn.execute(
        "SELECT raquel_enqueue(%s, %s, priority => %s, max_age => %s, now => %s)",
        (queue, payload, priority, max_age, T),
    )


def status_by_payload(conn: Conn) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute("SELECT payload, status, claimed_by FROM raquel_jobs").fetchall()
    return {payload: (status, claimed_by) for payload, status, claimed_by in rows}


@pytest.mark.parametrize("queues", [None, ["q"]], ids=["all", "one"])
def test_a_rescued_job_of_a_higher_priority_is_claimed_before_the_waiting_ones(
    conn: Conn, queues: list[str] | None
) -> None:
    enqueue(conn, "q", "high", priority=10)
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['q'], 'dead', 1, 1000, %s)", (T,))
    enqueue(conn, "q", "low")
    # The probe, before the rescue, sees only "low" waiting (level 0); the
    # rescue puts "high" back at level 10, and the claim takes it first.
    conn.execute("SELECT count(*) FROM raquel_claim(%s, 'w', 1, 60000, %s)", (queues, T + 5000))
    assert status_by_payload(conn) == {"high": ("claimed", "w"), "low": ("queued", None)}


def test_several_queues_left_with_one_by_a_pause_claim_its_highest_priority_first(conn: Conn) -> None:
    enqueue(conn, "a", "a-paused", priority=20)
    enqueue(conn, "b", "b-low")
    enqueue(conn, "b", "b-high", priority=5)
    conn.execute("SELECT raquel_pause_queue('a')")
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['a', 'b'], 'w', 1, 60000, %s)", (T,))
    assert status_by_payload(conn) == {
        "a-paused": ("queued", None),
        "b-low": ("queued", None),
        "b-high": ("claimed", "w"),
    }


def test_a_short_claim_expires_the_jobs_of_a_paused_queue_it_named(conn: Conn) -> None:
    enqueue(conn, "a", "a-old", max_age=1000)
    enqueue(conn, "b", "b-old", max_age=1000)
    conn.execute("SELECT raquel_pause_queue('a')")
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['a', 'b'], 'w', 1, 60000, %s)", (T + 5000,))
    assert status_by_payload(conn) == {"a-old": ("expired", None), "b-old": ("expired", None)}


def test_a_short_claim_of_one_queue_expires_only_that_queue(conn: Conn) -> None:
    enqueue(conn, "a", "a-old", max_age=1000)
    enqueue(conn, "b", "b-old", max_age=1000)
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['a'], 'w', 1, 60000, %s)", (T + 5000,))
    assert status_by_payload(conn) == {"a-old": ("expired", None), "b-old": ("queued", None)}


@pytest.mark.parametrize(
    ("queues", "level_index"),
    [(None, "raquel_jobs_ready_priority_idx"), (["q"], "raquel_jobs_ready_queue_priority_idx")],
    ids=["all", "one"],
)
def test_a_claim_with_nothing_to_rescue_or_hold_back_runs_the_probe_and_the_update(
    conn: Conn, queues: list[str] | None, level_index: str
) -> None:
    enqueue(conn, "q", "first")
    enqueue(conn, "q", "second")
    claim = "SELECT count(*) FROM raquel_claim(%s, 'w', 1, 60000, %s)"
    conn.execute(claim, (queues, T))  # its expiry check (once a second) done at T
    statement = psycopg.ClientCursor(conn).mogrify(claim, (queues, T))
    # The claim's own statements (the calls of raquel_claim, the test's and
    # the stand-in's of the test schema, are left out).
    nested = [plan for plan in plan_notices(conn, statement) if "Function Scan on raquel_claim" not in plan]
    assert len(nested) == 2, nested
    probe, update = nested
    for index in ("raquel_jobs_lease_idx", "raquel_queue_settings_controlled_idx", level_index):
        assert index in probe
    assert "Update on raquel_jobs" in update
    assert status_by_payload(conn) == {"first": ("claimed", "w"), "second": ("claimed", "w")}
