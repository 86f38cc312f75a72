"""The wake-up hand-off from SQL (0019_handoff): an idle worker is handed a lone ready job at its enqueue's commit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from raquel_pg.migrate import migrate
from raquel_pg.roles import grant_roles
from raquel_pg.schema import load_migrations
from tests.sql.test_sql_functions import job, one

Conn = psycopg.Connection[Any]
LEASE = 30_000


@pytest.fixture
def listener(dsn: str) -> Iterator[Conn]:
    """The worker's LISTEN connection: hears hand-offs and queue notifications, holds the listener lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN raquel_handoff")
        conn.execute("LISTEN raquel_jobs")
        conn.execute("SELECT pg_advisory_lock(1903257711, pg_backend_pid())")  # alive while it listens
        yield conn


def heard(listener: Conn) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in listener.notifies(timeout=0.2)]


def register(conn: Conn, listener_pid: int, queues: list[str] | None = None, lease_ms: int = LEASE) -> UUID:
    worker = uuid.uuid4()
    one(conn, "SELECT raquel_wait_begin(%s, %s, 600000, 'w1', %s, %s)", worker, queues, lease_ms, listener_pid)
    return worker


def test_a_lone_ready_job_is_claimed_for_the_idle_worker_at_commit_and_announced(conn: Conn, listener: Conn) -> None:
    worker = register(conn, listener.info.backend_pid, ["q"])
    before = one(conn, "SELECT raquel_now_ms()")
    job_id = one(conn, "SELECT raquel_enqueue('q', 'hi')")
    row = job(conn, job_id)
    assert (row["status"], row["claimed_by"], row["claimed_at"]) == ("claimed", "w1", None)
    assert before + LEASE <= row["lease_expires_at"] <= one(conn, "SELECT raquel_now_ms()") + LEASE
    assert heard(listener) == [("raquel_handoff", f"{worker} {job_id} {row['claim_id']}")]
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 0


def test_take_marks_the_handed_job_taken_renews_its_lease_and_returns_it_once(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid)
    job_id = one(conn, "SELECT raquel_enqueue('q', 'hi')")
    claim_id = job(conn, job_id)["claim_id"]
    before = one(conn, "SELECT raquel_now_ms()")
    taken = conn.execute("SELECT id, claimed_at, lease_expires_at FROM raquel_take(%s, %s, 90000)", (job_id, claim_id))
    (taken_id, claimed_at, lease_expires_at), *more = taken.fetchall()
    assert taken_id == job_id and more == []
    assert claimed_at >= before and lease_expires_at == claimed_at + 90_000
    assert conn.execute("SELECT * FROM raquel_take(%s, %s)", (job_id, claim_id)).fetchall() == []


def test_take_returns_nothing_for_another_claim_or_a_job_claimed_the_usual_way(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid)
    handed = one(conn, "SELECT raquel_enqueue('q')")
    assert conn.execute("SELECT * FROM raquel_take(%s, gen_random_uuid())", (handed,)).fetchall() == []
    claimed = one(conn, "SELECT raquel_enqueue('q')")  # no registration left: claimed by raquel_claim
    claim_id = one(conn, "SELECT claim_id FROM raquel_claim(ARRAY['q'], 'w2')")
    assert conn.execute("SELECT * FROM raquel_take(%s, %s)", (claimed, claim_id)).fetchall() == []
    assert job(conn, handed)["claimed_at"] is None


@pytest.mark.parametrize(
    ("claim_as", "queues", "taken"),
    [
        ("w1", ["q"], True),
        ("w1", ["other", "q"], True),
        ("w1", None, True),
        (None, ["q"], True),
        ("w2", ["q"], False),  # handed to another worker
        ("w1", ["other"], False),  # of a queue this worker does not run
        ("w2", None, False),
    ],
)
def test_take_given_claim_as_or_queues_takes_only_a_job_handed_to_that_worker_of_those_queues(
    conn: Conn, listener: Conn, claim_as: str | None, queues: list[str] | None, taken: bool
) -> None:
    # 0033_take_checks: a notification sent by hand naming another worker's hand-off takes nothing.
    register(conn, listener.info.backend_pid)  # as claim_as 'w1'
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    claim_id = job(conn, job_id)["claim_id"]
    rows = conn.execute(
        "SELECT id FROM raquel_take(%s, %s, claim_as => %s, queues => %s)", (job_id, claim_id, claim_as, queues)
    ).fetchall()
    assert rows == ([(job_id,)] if taken else [])
    assert (job(conn, job_id)["claimed_at"] is not None) == taken


def test_a_role_granted_raquel_take_before_0033_may_still_take(make_database: Any) -> None:
    # 0033 replaces raquel_take (two new arguments): its grants are carried over.
    dsn: str = make_database()
    role = f"raquel_test_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, [m for m in load_migrations() if m.version < 33])
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
        try:
            grant_roles(conn, worker=role)
            migrate(conn)
            conn.execute(f'SET ROLE "{role}"'.encode())
            taken = conn.execute("SELECT * FROM raquel.raquel_take(gen_random_uuid(), gen_random_uuid())").fetchall()
            assert taken == []
        finally:
            conn.execute("RESET ROLE")
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
            conn.execute(f'DROP ROLE "{role}"'.encode())


def test_a_job_cancelled_in_its_enqueues_transaction_is_not_handed_and_the_registration_stands(
    conn: Conn, listener: Conn
) -> None:
    register(conn, listener.info.backend_pid)
    with conn.transaction():
        job_id = one(conn, "SELECT raquel_enqueue('q')")
        assert one(conn, "SELECT raquel_cancel(%s)", job_id) == "cancelled"
    assert job(conn, job_id)["status"] == "cancelled"
    assert heard(listener) == []
    assert (
        one(conn, "SELECT count(*) FROM raquel_waiters WHERE expires_at > raquel_now_ms() AND handed_job IS NULL") == 1
    )


def test_a_rolled_back_enqueue_leaves_the_registration(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid)
    with pytest.raises(psycopg.errors.RaiseException), conn.transaction():
        one(conn, "SELECT raquel_enqueue('q')")
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'no'; END $$")
    assert (
        one(conn, "SELECT count(*) FROM raquel_waiters WHERE expires_at > raquel_now_ms() AND handed_job IS NULL") == 1
    )
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    assert job(conn, job_id)["status"] == "claimed"


def test_no_hand_off_when_the_workers_listen_backend_is_gone(dsn: str, conn: Conn, listener: Conn) -> None:
    with psycopg.connect(dsn, autocommit=True) as gone:
        gone_pid = gone.info.backend_pid
    deadline = time.monotonic() + 10
    while one(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", gone_pid):
        assert time.monotonic() < deadline, "the closed connection's backend stays"
        time.sleep(0.01)
    register(conn, gone_pid, ["q"])
    one(conn, "SELECT raquel_wait_begin(gen_random_uuid(), ARRAY['q'], 600000)")  # another worker, waiting
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    assert job(conn, job_id)["status"] == "queued"
    assert heard(listener) == [("raquel_jobs", "q")]  # the usual notification, for the other worker
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 0  # the gone worker's, and the one notified


def test_no_hand_off_to_a_session_that_does_not_hold_the_listener_lock(dsn: str, conn: Conn, listener: Conn) -> None:
    with psycopg.connect(dsn, autocommit=True) as unlocked:  # alive, LISTENing, without the lock
        unlocked.execute("LISTEN raquel_handoff")
        register(conn, unlocked.info.backend_pid, ["q"])
        job_id = one(conn, "SELECT raquel_enqueue('q')")
        assert job(conn, job_id)["status"] == "queued"
        assert [n.channel for n in unlocked.notifies(timeout=0.2)] == []


@pytest.mark.parametrize(
    "control",
    [
        "SELECT raquel_pause_queue('q')",
        "SELECT raquel_set_queue_limits('q', max_running => 5)",
        "SELECT raquel_set_queue_limits('q', per_second => 100)",
    ],
)
def test_no_hand_off_for_a_paused_or_limited_queue(conn: Conn, listener: Conn, control: str) -> None:
    conn.execute(control)
    register(conn, listener.info.backend_pid)
    job_id = one(conn, "SELECT raquel_enqueue('q')")
    assert job(conn, job_id)["status"] == "queued"
    assert [channel for channel, _ in heard(listener)] != ["raquel_handoff"]


@pytest.mark.parametrize(
    "enqueue",
    [
        "SELECT raquel_enqueue('q', delay => 60000)",  # not due yet
        "SELECT raquel_enqueue_many('q', ARRAY['a', 'b']) LIMIT 1",  # two jobs in one statement
    ],
)
def test_no_hand_off_but_for_one_ready_job_inserted_alone(conn: Conn, listener: Conn, enqueue: str) -> None:
    register(conn, listener.info.backend_pid)
    job_id = one(conn, enqueue)
    assert job(conn, job_id)["status"] == "queued"
    assert all(channel == "raquel_jobs" for channel, _ in heard(listener))


def test_no_hand_off_outside_read_committed(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        job_id = one(conn, "SELECT raquel_enqueue('q')")
    assert job(conn, job_id)["status"] == "queued"
    assert heard(listener) == [("raquel_jobs", "q")]


def test_rescue_puts_a_handed_job_never_taken_back_without_counting_an_attempt(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid, lease_ms=1)
    job_id = one(conn, "SELECT raquel_enqueue('q', max_retry_count => 0)")
    assert job(conn, job_id)["status"] == "claimed"
    time.sleep(0.005)
    assert one(conn, "SELECT raquel_rescue()") == 1
    row = job(conn, job_id)
    assert (row["status"], row["attempts"], row["error"], row["claimed_by"], row["lease_expires_at"]) == (
        "queued",
        0,
        None,
        None,
        None,
    )


def test_rescue_counts_the_attempt_of_a_handed_job_that_was_taken(conn: Conn, listener: Conn) -> None:
    register(conn, listener.info.backend_pid)
    job_id = one(conn, "SELECT raquel_enqueue('q', max_retry_count => 0)")
    conn.execute("SELECT raquel_take(%s, %s, 1)", (job_id, job(conn, job_id)["claim_id"]))
    time.sleep(0.005)
    assert one(conn, "SELECT raquel_rescue()") == 1
    assert (job(conn, job_id)["status"], job(conn, job_id)["attempts"]) == ("exhausted", 1)


@pytest.mark.parametrize(
    ("sql", "argument"),
    [
        ("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000, 'w1', NULL, 1)", "lease_ms"),
        ("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000, 'w1', 0, 1)", "lease_ms"),
        ("SELECT raquel_wait_begin(NULL, NULL, 600000, 'w1', 1000, 1)", "worker"),
        ("SELECT raquel_take(NULL, gen_random_uuid())", "job_id"),
        ("SELECT raquel_take(gen_random_uuid(), NULL)", "claim_id"),
        ("SELECT raquel_take(gen_random_uuid(), gen_random_uuid(), 0)", "lease"),
        ("SELECT raquel_take(gen_random_uuid(), gen_random_uuid(), claim_as => '')", "claim_as"),
        ("SELECT raquel_take(gen_random_uuid(), gen_random_uuid(), queues => '{}')", "queues"),
    ],
)
def test_bad_hand_off_arguments_are_refused_naming_them_and_write_nothing(conn: Conn, sql: str, argument: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as raised:
        conn.execute(sql.encode())
    assert raised.value.diag.column_name == argument
    assert one(conn, "SELECT count(*) FROM raquel_waiters") == 0
