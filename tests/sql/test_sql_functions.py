"""The raquel_* functions called from SQL, as a psql user would, with time fixed by ``now``."""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

import psycopg
import pytest

Conn = psycopg.Connection[Any]
T0 = 1_700_000_000_000  # a fixed "now", in ms


def one(conn: Conn, sql: str, *args: Any) -> Any:
    row = conn.execute(sql.encode(), args or None).fetchone()
    assert row is not None
    return row[0]


def job(conn: Conn, job_id: UUID) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM raquel_jobs WHERE id = %s", (job_id,))
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return dict(zip([c.name for c in cur.description], row))


def enqueue(conn: Conn, queue: str = "q", now: int = T0, **options: Any) -> UUID:
    names = ", ".join(f"{k} => %({k})s" for k in options)
    sql = f"SELECT raquel_enqueue(queue => %(queue)s, now => %(now)s{', ' if names else ''}{names})"
    row = conn.execute(sql.encode(), {"queue": queue, "now": now, **options}).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def claim(
    conn: Conn,
    queues: list[str] | None = None,
    now: int | None = T0,
    batch: int = 1,
    lease: int = 60_000,
    claim_as: str | None = "w1",
) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT * FROM raquel_claim(%s::text[], %s, %s, %s, %s)", (queues, claim_as, batch, lease, now))
    assert cur.description is not None
    return [dict(zip([c.name for c in cur.description], row)) for row in cur.fetchall()]


# --- raquel_enqueue ---------------------------------------------------------


def test_enqueue_with_positional_arguments_as_from_psql(conn: Conn) -> None:
    job_id = one(conn, """SELECT raquel_enqueue('emails', '{"to": "a@b.c"}')""")
    row = job(conn, job_id)
    assert (row["queue"], row["payload"], row["status"], row["attempts"]) == ("emails", '{"to": "a@b.c"}', "queued", 0)
    assert row["scheduled_at"] == row["enqueued_at"]
    assert (row["min_retry_delay"], row["max_retry_delay"], row["backoff_base"]) == (1000, 43_200_000, 1000)


def test_enqueue_with_named_arguments_and_delay(conn: Conn) -> None:
    job_id = one(conn, "SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000)")
    row = job(conn, job_id)
    assert row["payload"] == "x"
    assert row["scheduled_at"] == row["enqueued_at"] + 5000


def test_enqueue_defaults_to_the_default_queue(conn: Conn) -> None:
    assert job(conn, one(conn, "SELECT raquel_enqueue()"))["queue"] == "default"


def test_enqueue_adds_delay_to_at(conn: Conn) -> None:
    row = job(conn, enqueue(conn, at=T0 + 10_000, delay=500))
    assert (row["enqueued_at"], row["scheduled_at"]) == (T0, T0 + 10_500)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"queue": ""}, "queue"),
        ({"queue": "x" * 1001}, "queue"),
        ({"delay": -1}, "delay"),
        ({"max_age": 0}, "max_age"),
        ({"max_retry_count": -1}, "max_retry_count"),
        ({"min_retry_delay": -1}, "min_retry_delay"),
        ({"min_retry_delay": 500, "max_retry_delay": 100}, "max_retry_delay"),
        ({"backoff_base": -1}, "backoff_base"),
    ],
)
def test_enqueue_refuses_bad_arguments_naming_them_and_writes_nothing(
    conn: Conn, options: dict[str, Any], argument: str
) -> None:
    queue = options.pop("queue", "q")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as raised:
        enqueue(conn, queue, **options)
    assert raised.value.diag.column_name == argument
    assert f'invalid argument "{argument}"' in str(raised.value)
    assert one(conn, "SELECT count(*) FROM raquel_jobs") == 0


# --- raquel_claim -----------------------------------------------------------


def test_claim_takes_a_ready_job_with_a_lease_and_claim_id(conn: Conn) -> None:
    job_id = enqueue(conn)
    [claimed] = claim(conn, lease=30_000, claim_as="worker-7")
    assert claimed["id"] == job_id
    row = job(conn, job_id)
    assert (row["status"], row["claimed_by"], row["claimed_at"], row["lease_expires_at"]) == (
        "claimed",
        "worker-7",
        T0,
        T0 + 30_000,
    )
    assert row["claim_id"] == claimed["claim_id"] is not None
    assert row["attempts"] == 0


def test_claim_returns_nothing_when_no_job_is_ready(conn: Conn) -> None:
    enqueue(conn, delay=1000)
    assert claim(conn) == []
    assert len(claim(conn, now=T0 + 1000)) == 1


def test_claim_takes_the_oldest_scheduled_first(conn: Conn) -> None:
    late = enqueue(conn, at=T0 - 10)
    early = enqueue(conn, at=T0 - 20)
    assert [j["id"] for j in claim(conn, batch=2)] in ([early, late], [late, early])
    conn.execute("TRUNCATE raquel.raquel_jobs")
    late, early = enqueue(conn, at=T0 - 10), enqueue(conn, at=T0 - 20)
    assert claim(conn)[0]["id"] == early


def test_claim_filters_by_queues(conn: Conn) -> None:
    a, b, c = enqueue(conn, "a"), enqueue(conn, "b"), enqueue(conn, "c")
    assert [j["id"] for j in claim(conn, ["b"])] == [b]
    assert {j["id"] for j in claim(conn, ["a", "c"], batch=5)} == {a, c}
    assert claim(conn, ["a", "b", "c"]) == []


def test_claim_takes_up_to_batch_jobs_in_one_call(conn: Conn) -> None:
    for _ in range(5):
        enqueue(conn)
    assert len(claim(conn, batch=3)) == 3
    assert len(claim(conn, batch=3)) == 2


def test_claim_skips_rows_locked_by_another_claimer(conn: Conn, dsn: str) -> None:
    first, second = enqueue(conn, at=T0 - 2), enqueue(conn, at=T0 - 1)
    with psycopg.connect(dsn) as other:  # holds a claim transaction open
        held = claim(other)
        assert held[0]["id"] == first
        assert [j["id"] for j in claim(conn)] == [second]  # no wait, no double claim
        other.rollback()


def test_claim_expires_jobs_past_max_age_instead_of_claiming_them(conn: Conn) -> None:
    job_id = enqueue(conn, max_age=1000)
    assert claim(conn, now=T0 + 1000) == []
    row = job(conn, job_id)
    assert (row["status"], row["finished_at"]) == ("expired", T0 + 1000)


def test_claim_rescues_a_job_whose_lease_ran_out(conn: Conn) -> None:
    job_id = enqueue(conn)
    [first] = claim(conn, lease=1000, claim_as="dead-worker")
    assert claim(conn, now=T0 + 999) == []
    [second] = claim(conn, now=T0 + 1000, claim_as="w2")
    assert second["id"] == job_id and second["claim_id"] != first["claim_id"]
    row = job(conn, job_id)
    assert (row["attempts"], row["claimed_by"]) == (1, "w2")
    assert "lease expired" in row["error"] and "dead-worker" in row["error"]


def test_rescue_exhausts_a_job_whose_lost_attempt_was_its_last(conn: Conn) -> None:
    job_id = enqueue(conn, max_retry_count=0)
    claim(conn, lease=1000)
    assert one(conn, "SELECT raquel_rescue(now => %s)", T0 + 1000) == 1
    assert job(conn, job_id)["status"] == "exhausted"


def test_claim_refuses_a_bad_batch_or_lease(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"batch"'):
        claim(conn, batch=0)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"lease"'):
        claim(conn, lease=0)


def test_a_claim_with_durable_false_commits_its_transaction_asynchronously(conn: Conn) -> None:
    before = one(conn, "SHOW synchronous_commit")
    job_id = enqueue(conn)
    with conn.transaction():
        conn.execute("SELECT * FROM raquel_claim(now => %s, durable => false)", (T0,))
        assert one(conn, "SHOW synchronous_commit") == "off"
    assert one(conn, "SHOW synchronous_commit") == before  # for that transaction only
    assert job(conn, job_id)["status"] == "claimed"


def test_a_durable_claim_leaves_synchronous_commit_as_it_was(conn: Conn) -> None:
    before = one(conn, "SHOW synchronous_commit")
    enqueue(conn)
    with conn.transaction():
        conn.execute("SELECT * FROM raquel_claim(now => %s)", (T0,))
        assert one(conn, "SHOW synchronous_commit") == before


def test_claim_refuses_durable_false_in_a_transaction_that_has_written(conn: Conn) -> None:
    # The enqueue before it would lose its durability with the claim's.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"durable".*transaction of its own'):
        with conn.transaction():
            enqueue(conn)
            conn.execute("SELECT * FROM raquel_claim(now => %s, durable => false)", (T0,))
    assert one(conn, "SELECT count(*) FROM raquel_jobs") == 0


def test_claim_refuses_a_null_durable(conn: Conn) -> None:
    enqueue(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"durable"'):
        conn.execute("SELECT * FROM raquel_claim(now => %s, durable => NULL)", (T0,))
    assert one(conn, "SELECT status FROM raquel_jobs") == "queued"


# --- outcomes -----------------------------------------------------------------


def test_complete_records_success(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn)
    assert one(conn, "SELECT raquel_complete(%s, %s, %s)", job_id, c["claim_id"], T0 + 7) == "success"
    row = job(conn, job_id)
    assert (row["status"], row["attempts"], row["finished_at"], row["lease_expires_at"]) == ("success", 1, T0 + 7, None)


def test_fail_stores_the_error_and_schedules_a_retry(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn)
    status = one(conn, "SELECT raquel_fail(%s, %s, 'boom', 'trace', %s)", job_id, c["claim_id"], T0 + 50)
    row = job(conn, job_id)
    assert (status, row["status"], row["attempts"], row["error"], row["error_trace"]) == (
        "failed",
        "failed",
        1,
        "boom",
        "trace",
    )
    assert row["scheduled_at"] == T0 + 50 + 1000


def test_retry_delays_follow_the_raquel_table(conn: Conn) -> None:
    """1 s after the 1st attempt, 2 s after the 2nd, 4 s, ... capped at max_retry_delay."""
    job_id = enqueue(conn, max_retry_delay=60_000)
    now, delays = T0, []
    for _ in range(8):
        [c] = claim(conn, now=now)
        one(conn, "SELECT raquel_fail(%s, %s, 'x', NULL, %s)", job_id, c["claim_id"], now)
        scheduled = job(conn, job_id)["scheduled_at"]
        delays.append(scheduled - now)
        now = scheduled
    assert delays == [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]


def test_retry_delay_is_clamped_and_never_overflows(conn: Conn) -> None:
    assert one(conn, "SELECT raquel_retry_delay(1, 10, 500, 1000)") == 500
    assert one(conn, "SELECT raquel_retry_delay(2147483647, 1000, 1000, 43200000)") == 43_200_000
    assert one(conn, "SELECT raquel_retry_delay(6, 1000, 1000, 43200000)") == 32_000


def test_fail_exhausts_after_max_retry_count_retries(conn: Conn) -> None:
    job_id = enqueue(conn, max_retry_count=2, min_retry_delay=0, backoff_base=0)
    statuses = []
    for _ in range(3):
        [c] = claim(conn)
        statuses.append(one(conn, "SELECT raquel_fail(%s, %s, 'x', NULL, %s)", job_id, c["claim_id"], T0))
    assert statuses == ["failed", "failed", "exhausted"]
    row = job(conn, job_id)
    assert (row["status"], row["attempts"]) == ("exhausted", 3)
    assert claim(conn, now=T0 + 10**9) == []


def test_reschedule_with_delay_keeps_the_claim_trail(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn, claim_as="w1")
    assert (
        one(conn, "SELECT raquel_reschedule(%s, %s, delay => 500, now => %s)", job_id, c["claim_id"], T0 + 10)
        == "queued"
    )
    row = job(conn, job_id)
    assert (row["status"], row["scheduled_at"], row["attempts"], row["claimed_by"], row["claimed_at"]) == (
        "queued",
        T0 + 510,
        1,
        "w1",
        T0,
    )


def test_reschedule_at_plus_delay_and_default(conn: Conn) -> None:
    job_id = enqueue(conn, min_retry_delay=3000)
    [c] = claim(conn)
    one(conn, "SELECT raquel_reschedule(%s, %s, at => %s, delay => 5, now => %s)", job_id, c["claim_id"], T0 + 100, T0)
    assert job(conn, job_id)["scheduled_at"] == T0 + 105
    [c] = claim(conn, now=T0 + 105)
    one(conn, "SELECT raquel_reschedule(%s, %s, now => %s)", job_id, c["claim_id"], T0 + 200)
    assert job(conn, job_id)["scheduled_at"] == T0 + 3200


def test_reschedule_refuses_a_negative_delay(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"delay"'):
        one(conn, "SELECT raquel_reschedule(%s, %s, delay => -1)", job_id, c["claim_id"])
    assert job(conn, job_id)["status"] == "claimed"


def test_reject_hands_the_job_back_at_once(conn: Conn) -> None:
    job_id = enqueue(conn, at=T0 - 5)
    [c] = claim(conn)
    assert one(conn, "SELECT raquel_reject(%s, %s)", job_id, c["claim_id"]) == "queued"
    row = job(conn, job_id)
    assert (row["status"], row["scheduled_at"], row["attempts"], row["claimed_by"], row["claimed_at"]) == (
        "queued",
        T0 - 5,
        1,
        None,
        None,
    )
    assert claim(conn)[0]["id"] == job_id


def test_release_hands_the_job_back_without_counting_an_attempt(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn)
    assert one(conn, "SELECT raquel_release(%s, %s)", job_id, c["claim_id"]) == "queued"
    assert (job(conn, job_id)["status"], job(conn, job_id)["attempts"]) == ("queued", 0)


def test_cancel_from_the_handler_cancels_the_claimed_job(conn: Conn) -> None:
    job_id = enqueue(conn)
    [c] = claim(conn)
    assert one(conn, "SELECT raquel_cancel(%s, %s, %s)", job_id, c["claim_id"], T0 + 1) == "cancelled"
    row = job(conn, job_id)
    assert (row["status"], row["attempts"], row["finished_at"]) == ("cancelled", 1, T0 + 1)


def test_cancel_without_a_claim_cancels_only_waiting_jobs(conn: Conn) -> None:
    waiting, running = enqueue(conn, at=T0 - 1), enqueue(conn)
    claim(conn)  # takes "waiting" (older)
    conn.execute(
        "UPDATE raquel_jobs SET status = 'failed', claim_id = NULL, lease_expires_at = NULL WHERE id = %s", (waiting,)
    )
    assert one(conn, "SELECT raquel_cancel(%s)", waiting) == "cancelled"
    [c] = claim(conn)
    assert c["id"] == running
    assert one(conn, "SELECT raquel_cancel(%s)", running) is None
    assert job(conn, running)["status"] == "claimed"


@pytest.mark.parametrize(
    "call",
    [
        "raquel_complete(%s, %s)",
        "raquel_fail(%s, %s, 'late')",
        "raquel_reschedule(%s, %s, delay => 1)",
        "raquel_reject(%s, %s)",
        "raquel_release(%s, %s)",
        "raquel_cancel(%s, %s)",
    ],
)
def test_a_stale_claim_cannot_record_an_outcome(conn: Conn, call: str) -> None:
    job_id = enqueue(conn)
    [stale] = claim(conn, lease=1000, claim_as="slow")
    [current] = claim(conn, now=T0 + 1000, claim_as="new-owner")  # rescued and re-claimed
    assert one(conn, f"SELECT {call}", job_id, stale["claim_id"]) is None
    row = job(conn, job_id)
    assert (row["status"], row["claim_id"], row["claimed_by"]) == ("claimed", current["claim_id"], "new-owner")


def test_renew_leases_extends_only_claims_still_held(conn: Conn) -> None:
    held, lost = enqueue(conn, at=T0 - 1), enqueue(conn)
    a, b = claim(conn, batch=2, lease=1000)
    one(conn, "SELECT raquel_complete(%s, %s)", lost, b["claim_id"] if b["id"] == lost else a["claim_id"])
    renewed = conn.execute(
        "SELECT raquel_renew_leases(%s, %s, 5000, %s)", ([a["id"], b["id"]], [a["claim_id"], b["claim_id"]], T0 + 500)
    ).fetchall()
    assert [r[0] for r in renewed] == [held]
    assert job(conn, held)["lease_expires_at"] == T0 + 5500


def test_next_due_is_the_next_scheduled_time_or_lease_deadline(conn: Conn) -> None:
    assert one(conn, "SELECT raquel_next_due()") is None
    enqueue(conn, "a", at=T0 + 5000)
    enqueue(conn, "b", at=T0 + 3000)
    assert one(conn, "SELECT raquel_next_due()") == T0 + 3000
    assert one(conn, "SELECT raquel_next_due(ARRAY['a'])") == T0 + 5000
    enqueue(conn, "c")
    claim(conn, ["c"], lease=1000)
    assert one(conn, "SELECT raquel_next_due(ARRAY['a', 'c'])") == T0 + 1000


# --- NOTIFY -----------------------------------------------------------------


def notifications(listener: Conn) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.2)]


@pytest.fixture
def listener(dsn: str) -> Any:
    """A connection LISTENing, registered as a waiter for every queue (0008: else nothing is sent).

    The registration is consumed by the first NOTIFY it causes (0009).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN raquel_jobs")
        conn.execute("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
        yield conn


@pytest.fixture
def bare_listener(dsn: str) -> Any:
    """A connection LISTENing, with no waiter registered."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN raquel_jobs")
        yield conn


def test_without_a_waiter_an_enqueue_notifies_nobody(conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_enqueue('emails')")
    assert notifications(bare_listener) == []


def test_an_expired_waiter_is_not_notified(conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 1)")
    time.sleep(0.01)
    one(conn, "SELECT raquel_enqueue('emails')")
    assert notifications(bare_listener) == []


def test_a_waiter_is_notified_only_for_its_queues(conn: Conn, bare_listener: Conn) -> None:
    worker, heard = uuid.uuid4(), []
    for queue in ("a", "c", "b", "a"):
        one(conn, "SELECT raquel_wait_begin(%s, ARRAY['a', 'b'], 600000)", worker)
        one(conn, "SELECT raquel_enqueue(%s)", queue)
        heard += notifications(bare_listener)
    assert heard == ["a", "b", "a"]


def test_a_registration_wakes_its_waiter_once(conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    one(conn, "SELECT raquel_enqueue('q')")
    one(conn, "SELECT raquel_enqueue('q')")  # the waiter is awake: nobody to notify
    assert notifications(bare_listener) == ["q"]
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,)


def test_a_job_for_another_queue_leaves_the_registration(conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")
    one(conn, "SELECT raquel_enqueue('b')")
    one(conn, "SELECT raquel_enqueue('a')")
    assert notifications(bare_listener) == ["a"]


def test_a_producer_finding_the_registration_being_consumed_notifies_without_waiting(
    dsn: str, conn: Conn, bare_listener: Conn
) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    conn.execute("SET lock_timeout = '2s'")  # a wait would fail the test instead of hanging it
    with psycopg.connect(dsn) as first:  # consumes the registration, then stays open
        first.execute("SELECT raquel_enqueue('q')")
        one(conn, "SELECT raquel_enqueue('q')")
        assert notifications(bare_listener) == ["q"]  # the second producer's own NOTIFY
        first.commit()
    assert notifications(bare_listener) == ["q"]
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,)


def test_a_rolled_back_producer_leaves_the_registration(dsn: str, conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    with psycopg.connect(dsn) as producer:
        producer.execute("SELECT raquel_enqueue('q')")
        producer.rollback()
    one(conn, "SELECT raquel_enqueue('q')")
    assert notifications(bare_listener) == ["q"]


def test_wait_begin_and_wait_end_never_wait_for_a_producer(dsn: str, conn: Conn) -> None:
    worker = uuid.uuid4()
    one(conn, "SELECT raquel_wait_begin(%s, NULL, 600000)", worker)
    conn.execute("SET lock_timeout = '2s'")
    with psycopg.connect(dsn) as producer:
        producer.execute("SELECT raquel_enqueue('q')")  # holds the registration's row
        assert one(conn, "SELECT raquel_wait_begin(%s, NULL, 600000)", worker) is False  # producer open
        assert one(conn, "SELECT raquel_wait_end(%s)", worker) is True  # the new row; the locked one left
        assert one(conn, "SELECT raquel_wait_begin(%s, NULL, 600000)", worker) is False
        producer.commit()
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (1,)


def test_wait_begin_clears_expired_registrations(conn: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['old'], 1)")
    time.sleep(0.01)
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['new'], 600000)")
    assert conn.execute("SELECT queues FROM raquel_waiters").fetchall() == [(["new"],)]


def test_a_statement_notifies_once_per_wanted_queue(conn: Conn, bare_listener: Conn) -> None:
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['a'], 600000)")  # two waiters, one NOTIFY
    conn.execute("INSERT INTO raquel_jobs (queue) SELECT q FROM unnest(ARRAY['a', 'b', 'a', 'b']) AS q")
    assert sorted(notifications(bare_listener)) == ["a", "b"]


def test_wait_end_stops_the_notifications(conn: Conn, bare_listener: Conn) -> None:
    worker = uuid.uuid4()
    one(conn, "SELECT raquel_wait_begin(%s, NULL, 600000)", worker)
    assert one(conn, "SELECT raquel_wait_end(%s)", worker) is True
    one(conn, "SELECT raquel_enqueue('q')")
    assert notifications(bare_listener) == []
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,)


def test_wait_begin_refreshes_one_row_per_worker(conn: Conn) -> None:
    worker = uuid.uuid4()
    one(conn, "SELECT raquel_wait_begin(%s, ARRAY['a'], 1000)", worker)
    one(conn, "SELECT raquel_wait_begin(%s, ARRAY['b'], 600000)", worker)
    assert conn.execute("SELECT queues, expires_at - raquel_now_ms() > 500000 FROM raquel_waiters").fetchall() == [
        (["b"], True)
    ]


def test_wait_begin_refuses_a_ttl_not_above_zero(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 0)")
    assert caught.value.diag.column_name == "ttl_ms"
    assert conn.execute("SELECT count(*) FROM raquel_waiters").fetchone() == (0,)


def test_wait_begin_is_false_while_a_producer_that_skipped_notify_is_open(dsn: str, conn: Conn) -> None:
    # The producer inserts a ready job before the waiter registers, so it
    # sends no NOTIFY; while its transaction is open, the waiter's claim
    # could not see the job: wait_begin must say so.
    with psycopg.connect(dsn) as producer:
        producer.execute("SELECT raquel_enqueue('q')")
        assert one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)") is False
        producer.commit()
    assert one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)") is True


def test_a_producer_after_a_registration_notifies(dsn: str, conn: Conn, bare_listener: Conn) -> None:
    with psycopg.connect(dsn) as producer:
        producer.execute("SELECT 1")  # the producer's transaction (and snapshot) starts first
        assert one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)") is True
        producer.execute("SELECT raquel_enqueue('q')")
        producer.commit()
    assert notifications(bare_listener) == ["q"]


def test_a_repeatable_read_producer_always_notifies(dsn: str, conn: Conn, bare_listener: Conn) -> None:
    with psycopg.connect(dsn) as producer:
        producer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        producer.execute("SELECT raquel_enqueue('q')")
        producer.commit()
    assert notifications(bare_listener) == ["q"]


def test_enqueue_notifies_the_queue_name(conn: Conn, listener: Conn) -> None:
    one(conn, "SELECT raquel_enqueue('emails')")
    assert notifications(listener) == ["emails"]


def test_a_job_due_after_every_registration_ends_sends_no_notification(conn: Conn, listener: Conn) -> None:
    # The waiter reads raquel_next_due again before its registration (600 s) ends (0021_notify_scheduled).
    one(conn, "SELECT raquel_enqueue('later', delay => 900000)")
    assert notifications(listener) == []


def test_a_10000_row_insert_sends_one_notification_per_queue(conn: Conn, listener: Conn) -> None:
    conn.execute(
        "INSERT INTO raquel_jobs (queue, payload) "
        "SELECT CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, i::text "
        "FROM generate_series(1, 10000) AS i"
    )
    assert sorted(notifications(listener)) == ["even", "odd"]


def test_reject_and_immediate_reschedule_notify(conn: Conn, bare_listener: Conn) -> None:
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    [c] = claim(conn, ["q"], now=None)
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    one(conn, "SELECT raquel_reject(%s, %s)", job_id, c["claim_id"])
    assert notifications(bare_listener) == ["q"]
    [c] = claim(conn, ["q"], now=None)
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
    one(conn, "SELECT raquel_reschedule(%s, %s, delay => 0)", job_id, c["claim_id"])
    assert notifications(bare_listener) == ["q"]


def test_claims_and_completions_send_no_notification(conn: Conn, listener: Conn) -> None:
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    notifications(listener)
    [c] = claim(conn, now=None)
    one(conn, "SELECT raquel_complete(%s, %s)", job_id, c["claim_id"])
    assert notifications(listener) == []


def test_a_rolled_back_enqueue_notifies_nobody(dsn: str, listener: Conn) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT raquel_enqueue('q')")
        conn.rollback()
    assert notifications(listener) == []


# --- hygiene ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "values", "rule"),
    [
        ("queue, status", "'q', 'running'", "raquel_status_check"),
        ("queue", "''", "raquel_name_check"),
        ("queue", "repeat('q', 1001)", "raquel_name_check"),
        ("queue, unique_key", "'q', ''", "raquel_name_check"),
        ("queue, min_retry_delay", "'q', -1", "raquel_delay_check"),
        ("queue, backoff_base", "'q', -1", "raquel_delay_check"),
        ("queue, max_age", "'q', 0", "raquel_max_age_check"),
        ("queue, max_retry_count", "'q', -1", "raquel_retry_count_check"),
        ("queue, max_retry_delay", "'q', 999", "raquel_jobs_delays_check"),  # below the default min_retry_delay
        ("queue, status", "'q', 'claimed'", "raquel_jobs_claim_check"),  # claimed without a lease
    ],
)
def test_a_hand_written_insert_that_breaks_a_rule_is_refused_naming_it(
    conn: Conn, columns: str, values: str, rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        conn.execute(f"INSERT INTO raquel_jobs ({columns}) VALUES ({values})".encode())
    assert refused.value.diag.constraint_name == rule


def test_a_hand_written_update_that_breaks_a_rule_is_refused(conn: Conn) -> None:
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    with pytest.raises(psycopg.errors.CheckViolation, match="raquel_status_check"):
        conn.execute("UPDATE raquel_jobs SET status = 'running' WHERE id = %s", [job_id])


def test_only_the_rules_that_span_columns_are_table_constraints(conn: Conn) -> None:
    # PostgreSQL plans a table's CHECK constraints again at the start of every
    # statement that writes to it; a domain's are kept for the session (0003_tables).
    checks = conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'raquel.raquel_jobs'::regclass AND contype = 'c' ORDER BY 1"
    ).fetchall()
    assert checks == [("raquel_jobs_claim_check",), ("raquel_jobs_delays_check",)]


def test_stand_ins_of_volatile_set_returning_functions_are_plpgsql_and_the_others_sql(conn: Conn) -> None:
    # 0018_standins_plpgsql: an SQL function returning a set is not inlined when
    # volatile, and PostgreSQL before 18 planned its body at every call (a
    # one-job claim through it 468 us against 402 as PL/pgSQL); the others are
    # inlined as SQL.
    rows = conn.execute(
        "SELECT p.proname, p.proretset AND p.provolatile = 'v', l.lanname"
        " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'raquel\\_%'"
        " AND p.prosrc LIKE '-- raquel_pg stand-in%'"
    ).fetchall()
    assert {"raquel_claim", "raquel_enqueue", "raquel_stats"} <= {name for name, _, _ in rows}
    assert [(name, lang) for name, planned, lang in rows if lang != ("plpgsql" if planned else "sql")] == []
    assert {name for name, planned, _ in rows if planned} >= {"raquel_claim", "raquel_complete_many"}
