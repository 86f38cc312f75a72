"""Queue controls from SQL (issue 21): pause/resume, max_running, per_second, retention and prune.

Time is fixed through the functions' ``now`` argument where it matters: T is an arbitrary
instant in ms, far from the real clock.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]


def enqueue(conn: Conn, queue: str, n: int = 1, now: int = T) -> None:
    conn.execute("SELECT raquel_enqueue(%s, 'x', now => %s) FROM generate_series(1, %s)", (queue, now, n))


def claim(conn: Conn, queues: list[str] | None, batch: int = 10, now: int = T) -> list[str]:
    """The queues of the jobs one claim took."""
    rows = conn.execute("SELECT queue FROM raquel_claim(%s, 'w', %s, 60000, %s)", (queues, batch, now)).fetchall()
    return [row[0] for row in rows]


def count(conn: Conn, queue: str, status: str) -> int:
    row = conn.execute("SELECT count(*) FROM raquel_jobs WHERE queue = %s AND status = %s", (queue, status)).fetchone()
    assert row is not None
    return int(row[0])


def one(conn: Conn, query: str, *args: Any) -> Any:
    row = conn.execute(query.encode(), args).fetchone()
    assert row is not None
    return row[0]


# --- pause and resume ---------------------------------------------------------


def test_a_claim_naming_a_paused_queue_takes_nothing_from_it(conn: Conn) -> None:
    enqueue(conn, "a", 3)
    enqueue(conn, "b", 2)
    conn.execute("SELECT raquel_pause_queue('a')")
    assert sorted(claim(conn, ["a", "b"])) == ["b", "b"]
    assert count(conn, "a", "queued") == 3


def test_a_claim_of_every_queue_skips_a_paused_queue(conn: Conn) -> None:
    enqueue(conn, "a", 3)
    enqueue(conn, "b", 2)
    conn.execute("SELECT raquel_pause_queue('a')")
    assert claim(conn, None) == ["b", "b"]


def test_a_paused_queue_accepts_enqueues(conn: Conn) -> None:
    conn.execute("SELECT raquel_pause_queue('a')")
    enqueue(conn, "a", 2)
    assert count(conn, "a", "queued") == 2


def test_a_running_job_of_a_paused_queue_completes(conn: Conn) -> None:
    enqueue(conn, "a")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['a'])").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_pause_queue('a')")
    conn.execute("SELECT raquel_complete(%s, %s)", (job_id, claim_id))
    assert count(conn, "a", "success") == 1


def test_pause_says_whether_this_call_paused_the_queue(conn: Conn) -> None:
    assert one(conn, "SELECT raquel_pause_queue('a')") is True
    assert one(conn, "SELECT raquel_pause_queue('a')") is False


def test_resume_makes_the_queue_claimable_again(conn: Conn) -> None:
    enqueue(conn, "a", 2)
    conn.execute("SELECT raquel_pause_queue('a')")
    assert one(conn, "SELECT raquel_resume_queue('a')") is True
    assert claim(conn, ["a"]) == ["a", "a"]


def test_resume_of_a_queue_not_paused_returns_false(conn: Conn) -> None:
    assert one(conn, "SELECT raquel_resume_queue('a')") is False


def test_resume_notifies_a_worker_waiting_for_the_queue(conn: Conn, dsn: str) -> None:
    enqueue(conn, "a")
    conn.execute("SELECT raquel_pause_queue('a')")
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_jobs")
        listener.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
        conn.execute("SELECT raquel_resume_queue('a')")
        heard = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert heard == ["a"]


@pytest.mark.parametrize("function", ["raquel_pause_queue", "raquel_resume_queue"])
@pytest.mark.parametrize("queue", [None, ""])
def test_pause_and_resume_refuse_a_bad_queue_naming_it(conn: Conn, function: str, queue: str | None) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="queue"):
        conn.execute(f"SELECT {function}(%s)".encode(), (queue,))
    assert one(conn, "SELECT count(*) FROM raquel_queue_settings") == 0


def test_the_stats_view_shows_a_paused_queue(conn: Conn) -> None:
    enqueue(conn, "a")
    conn.execute("SELECT raquel_pause_queue('a')")
    assert one(conn, "SELECT paused FROM raquel_queue_stats WHERE queue = 'a'") is True


# --- max_running ----------------------------------------------------------------


def test_max_running_caps_the_jobs_a_claim_takes(conn: Conn) -> None:
    enqueue(conn, "a", 5)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 2)")
    assert claim(conn, ["a"]) == ["a", "a"]
    assert claim(conn, ["a"]) == []
    assert count(conn, "a", "claimed") == 2


def test_a_finished_job_frees_its_slot_under_max_running(conn: Conn) -> None:
    enqueue(conn, "a", 3)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['a'])").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_complete(%s, %s)", (job_id, claim_id))
    assert len(claim(conn, ["a"], now=T + 1)) == 1


def test_a_limited_queue_does_not_limit_the_other_queues_of_a_claim(conn: Conn) -> None:
    enqueue(conn, "a", 5)
    enqueue(conn, "b", 5)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    assert sorted(claim(conn, ["a", "b"], batch=10)) == ["a"] + ["b"] * 5


@pytest.mark.parametrize("queues", [None, ["a", "b", "c"]], ids=["all queues", "three named"])
def test_a_claim_that_a_limited_queue_fills_returns_at_once(conn: Conn, queues: list[str] | None) -> None:
    # The limited queue's own claim takes the whole batch; the other queues' claim then has
    # nothing to take (0023: it spun for ever, holding the limited queue's settings row).
    enqueue(conn, "a", 2)
    enqueue(conn, "b", 2)
    enqueue(conn, "c", 2)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    conn.execute("SET statement_timeout = '5s'")
    assert claim(conn, queues, batch=1) == ["a"]
    assert claim(conn, queues, batch=1) in (["b"], ["c"])


def test_a_job_ending_in_a_full_queue_wakes_a_worker_waiting_for_it(conn: Conn, dsn: str) -> None:
    enqueue(conn, "a", 2)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['a'])").fetchone()  # type: ignore[misc]
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_jobs")
        listener.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
        conn.execute("SELECT raquel_complete(%s, %s)", (job_id, claim_id))
        heard = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert heard == ["a"]
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 0


def test_a_success_deleted_at_once_frees_the_slot_of_a_waiting_worker(conn: Conn, dsn: str) -> None:
    enqueue(conn, "a", 2)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    conn.execute("SELECT raquel_set_retention('a', '0 seconds')")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['a'])").fetchone()  # type: ignore[misc]
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_jobs")
        listener.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
        conn.execute("SELECT raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[])", (job_id, claim_id))
        heard = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert heard == ["a"]
    assert count(conn, "a", "success") == 0


def test_a_job_ending_in_another_queue_leaves_a_worker_held_by_max_running_waiting(conn: Conn) -> None:
    enqueue(conn, "a", 2)
    enqueue(conn, "b")
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    assert claim(conn, ["a", "b"]) == ["a", "b"]
    b_id, b_claim = conn.execute("SELECT id, claim_id FROM raquel_jobs WHERE queue = 'b'").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
    conn.execute("SELECT raquel_complete(%s, %s)", (b_id, b_claim))
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 1  # not notified: 'a' is still full


def test_a_job_ending_in_a_paused_limited_queue_wakes_nobody(conn: Conn) -> None:
    enqueue(conn, "a", 2)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['a'])").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_pause_queue('a')")
    conn.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
    conn.execute("SELECT raquel_complete(%s, %s)", (job_id, claim_id))
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 1


def test_max_running_holds_under_concurrent_claims(conn: Conn, dsn: str) -> None:
    enqueue(conn, "a", 50)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 3)")
    start = threading.Barrier(8)

    def claimer() -> None:
        with psycopg.connect(dsn, autocommit=True) as own:
            start.wait()
            for _ in range(5):
                own.execute("SELECT count(*) FROM raquel_claim(ARRAY['a'], 'w', 2)")

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(conn, "a", "claimed") == 3


def test_a_claim_of_another_queue_does_not_wait_for_a_limited_queues_lock(conn: Conn, dsn: str) -> None:
    enqueue(conn, "a", 2)
    enqueue(conn, "b", 2)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    with psycopg.connect(dsn) as holder:  # a claim of 'a' in flight: its settings row locked
        holder.execute("SELECT count(*) FROM raquel_claim(ARRAY['a'], 'w', 1)")
        conn.execute("SET lock_timeout = '2s'")
        assert claim(conn, ["b"]) == ["b", "b"]
        holder.rollback()


# --- per_second -------------------------------------------------------------------


def test_per_second_lets_one_bucket_start_at_once(conn: Conn) -> None:
    enqueue(conn, "a", 100)
    conn.execute("SELECT raquel_set_queue_limits('a', per_second => 50, now => %s)", (T,))
    assert len(claim(conn, ["a"], batch=100, now=T)) == 5  # 50 / 10
    assert claim(conn, ["a"], batch=100, now=T) == []


def test_per_second_refills_at_its_rate(conn: Conn) -> None:
    enqueue(conn, "a", 100)
    conn.execute("SELECT raquel_set_queue_limits('a', per_second => 50, now => %s)", (T,))
    claim(conn, ["a"], batch=100, now=T)
    assert len(claim(conn, ["a"], batch=100, now=T + 60)) == 3  # 60 ms at 50/s


def test_per_second_claims_over_a_second_stay_within_one_bucket(conn: Conn) -> None:
    enqueue(conn, "a", 300)
    conn.execute("SELECT raquel_set_queue_limits('a', per_second => 100, now => %s)", (T,))
    taken = sum(len(claim(conn, ["a"], batch=50, now=T + ms)) for ms in range(0, 1001, 7))
    assert 100 <= taken <= 100 + 10


def test_a_slow_rate_waits_for_a_whole_token(conn: Conn) -> None:
    enqueue(conn, "a", 3)
    conn.execute("SELECT raquel_set_queue_limits('a', per_second => 0.5, now => %s)", (T,))
    assert len(claim(conn, ["a"], now=T)) == 1
    assert claim(conn, ["a"], now=T + 1999) == []
    assert len(claim(conn, ["a"], now=T + 2000)) == 1


def test_limits_set_to_null_lift_them(conn: Conn) -> None:
    enqueue(conn, "a", 5)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1, per_second => 1)")
    conn.execute("SELECT raquel_set_queue_limits('a')")
    assert len(claim(conn, ["a"])) == 5


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ("max_running => 0", "max_running"),
        ("per_second => 0", "per_second"),
        ("per_second => 'Infinity'", "per_second"),
        ("per_second => 'NaN'", "per_second"),
    ],
)
def test_set_queue_limits_refuses_a_bad_limit_naming_it(conn: Conn, args: str, name: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=name):
        conn.execute(f"SELECT raquel_set_queue_limits('a', {args})".encode())
    assert one(conn, "SELECT count(*) FROM raquel_queue_settings") == 0


# --- raquel_next_due: when a held-back worker wakes ------------------------------------


def test_next_due_ignores_a_paused_queue(conn: Conn) -> None:
    enqueue(conn, "a")
    conn.execute("SELECT raquel_pause_queue('a')")
    assert one(conn, "SELECT raquel_next_due(ARRAY['a'])") is None
    assert one(conn, "SELECT raquel_next_due()") is None


def test_next_due_of_a_queue_at_max_running_is_its_first_lease_deadline(conn: Conn) -> None:
    enqueue(conn, "a", 3)
    conn.execute("SELECT raquel_set_queue_limits('a', max_running => 1)")
    claim(conn, ["a"])
    deadline = one(conn, "SELECT lease_expires_at FROM raquel_jobs WHERE status = 'claimed'")
    assert one(conn, "SELECT raquel_next_due(ARRAY['a'])") == deadline


def test_next_due_of_a_queue_out_of_tokens_is_its_next_token(conn: Conn) -> None:
    enqueue(conn, "a", 5)
    conn.execute("SELECT raquel_set_queue_limits('a', per_second => 4, now => %s)", (T,))
    claim(conn, ["a"], now=T)
    assert one(conn, "SELECT raquel_next_due(ARRAY['a'])") == T + 250
    assert one(conn, "SELECT raquel_next_due()") == T + 250


# --- retention and prune -------------------------------------------------------------


def finished(conn: Conn, queue: str, n: int, finished_at: int) -> None:
    """n jobs of queue that finished (success) at finished_at."""
    enqueue(conn, queue, n, now=finished_at - 10)
    rows = conn.execute(
        "SELECT id, claim_id FROM raquel_claim(ARRAY[%s], 'w', %s, 60000, %s)", (queue, n, finished_at - 5)
    ).fetchall()
    for row in rows:
        conn.execute("SELECT raquel_complete(%s, %s, %s)", (*row, finished_at))


def test_prune_keeps_everything_by_default(conn: Conn) -> None:
    finished(conn, "a", 3, T - 86_400_000 * 365)
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 0
    assert count(conn, "a", "success") == 3


def test_prune_deletes_jobs_older_than_the_default_retention(conn: Conn) -> None:
    finished(conn, "a", 3, T - 7_200_000)
    finished(conn, "a", 2, T - 60_000)
    conn.execute("SELECT raquel_set_retention(NULL, '1 hour')")
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 3
    assert count(conn, "a", "success") == 2


def test_a_queues_retention_overrides_the_default(conn: Conn) -> None:
    finished(conn, "a", 2, T - 7_200_000)
    finished(conn, "b", 2, T - 7_200_000)
    conn.execute("SELECT raquel_set_retention(NULL, '1 hour')")
    conn.execute("SELECT raquel_set_retention('b', '1 day')")
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 2
    assert (count(conn, "a", "success"), count(conn, "b", "success")) == (0, 2)


def test_a_queue_kept_forever_is_not_pruned_by_the_default_retention(conn: Conn) -> None:
    finished(conn, "audit", 2, T - 86_400_000 * 40)
    finished(conn, "other", 2, T - 86_400_000 * 40)
    conn.execute("SELECT raquel_set_retention(NULL, '30 days')")
    conn.execute("SELECT raquel_set_retention('audit', NULL)")
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 2
    assert (count(conn, "audit", "success"), count(conn, "other", "success")) == (2, 0)


def test_a_queue_kept_forever_keeps_its_successes_under_a_default_of_zero(conn: Conn) -> None:
    conn.execute("SELECT raquel_set_retention(NULL, '0 seconds')")
    conn.execute("SELECT raquel_set_retention('audit', NULL)")
    conn.execute("SELECT raquel_enqueue('audit', 'x')")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['audit'])").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_complete_many(ARRAY[%s]::uuid[], ARRAY[%s]::uuid[])", (job_id, claim_id))
    assert count(conn, "audit", "success") == 1


def test_prune_deletes_at_most_a_batch(conn: Conn) -> None:
    finished(conn, "a", 5, T - 7_200_000)
    conn.execute("SELECT raquel_set_retention('a', '1 hour')")
    assert one(conn, "SELECT raquel_prune(2, %s)", T) == 2
    assert count(conn, "a", "success") == 3


def test_prune_never_deletes_an_unfinished_job(conn: Conn) -> None:
    enqueue(conn, "a", 2, now=T - 7_200_000)
    conn.execute("SELECT raquel_set_retention('a', '0 seconds')")
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 0
    assert count(conn, "a", "queued") == 2


def test_prune_counts_what_it_deleted_per_queue(conn: Conn) -> None:
    finished(conn, "a", 3, T - 7_200_000)
    conn.execute("SELECT raquel_set_retention(NULL, '1 hour')")
    conn.execute("SELECT raquel_prune(now => %s)", (T,))
    assert one(conn, "SELECT pruned FROM raquel_queue_controls() WHERE queue = 'a'") == 3


def test_prune_returns_null_while_another_transaction_prunes(conn: Conn, dsn: str) -> None:
    finished(conn, "a", 3, T - 7_200_000)
    conn.execute("SELECT raquel_set_retention(NULL, '1 hour')")
    with psycopg.connect(dsn) as other:
        assert one(other, "SELECT raquel_prune(1, %s)", T) == 1  # its transaction holds the lock
        assert one(conn, "SELECT raquel_prune(now => %s)", T) is None
        other.commit()
    assert one(conn, "SELECT raquel_prune(now => %s)", T) == 2


def test_set_retention_refuses_a_negative_keep_naming_it(conn: Conn) -> None:
    keep = "-1 second"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="keep"):
        conn.execute("SELECT raquel_set_retention('a', %s::interval)", (keep,))
    assert one(conn, "SELECT count(*) FROM raquel_queue_settings") == 0


def test_prune_refuses_a_batch_below_one(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="batch_size"):
        conn.execute("SELECT raquel_prune(0)")


def test_queue_controls_lists_settings_and_the_default_retention(conn: Conn) -> None:
    conn.execute("SELECT raquel_pause_queue('a')")
    conn.execute("SELECT raquel_set_queue_limits('b', max_running => 4, per_second => 2.5)")
    conn.execute("SELECT raquel_set_retention(NULL, '7 days')")
    rows = conn.execute(
        "SELECT queue, paused, max_running, per_second, retention_ms FROM raquel_queue_controls()"
    ).fetchall()
    assert rows == [("a", True, None, None, None), ("b", False, 4, 2.5, None), (None, False, None, None, 604_800_000)]
