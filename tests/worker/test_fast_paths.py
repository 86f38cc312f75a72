"""Issue 5's fast paths (migration 0008): raquel_enqueue_many, raquel_complete_many,
Raquel.enqueue_many, and the roles that may call them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import InvalidArgument, Raquel
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[tuple[Any, ...]]
T = 1_700_000_000_000


def enqueue_many(conn: Conn, payloads: list[str | None], **options: Any) -> list[uuid.UUID]:
    named = "".join(f", {name} => %({name})s" for name in options)
    rows = conn.execute(
        f"SELECT raquel_enqueue_many('q', %(payloads)s::text[]{named})".encode(), {"payloads": payloads, **options}
    ).fetchall()
    return [row[0] for row in rows]


def jobs(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, queue, payload, status, scheduled_at, priority, max_age, max_retry_count,"
        " min_retry_delay, max_retry_delay, backoff_base, unique_key FROM raquel_jobs"
    ).fetchall()


# --- raquel_enqueue_many ----------------------------------------------------------


def test_enqueue_many_returns_the_ids_in_payload_order(conn: Conn) -> None:
    payloads = [f"p{i}" for i in range(1000)] + [None]
    ids = enqueue_many(conn, payloads)
    stored = dict(conn.execute("SELECT id, payload FROM raquel_jobs").fetchall())
    assert [stored[i] for i in ids] == payloads


def test_enqueue_many_applies_every_option_to_every_job(conn: Conn) -> None:
    enqueue_many(
        conn,
        ["a", "b"],
        at=T,
        delay=500,
        max_age=9000,
        max_retry_count=3,
        min_retry_delay=10,
        max_retry_delay=20,
        backoff_base=15,
        now=T - 1000,
        priority=7,
    )
    assert sorted(row[1:] for row in jobs(conn)) == [
        ("q", p, "queued", T + 500, 7, 9000, 3, 10, 20, 15, None) for p in ("a", "b")
    ]


def test_enqueue_many_stores_the_timeout_and_trace_context_with_every_job(conn: Conn) -> None:
    carrier = '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    enqueue_many(conn, ["a", "b"], timeout=30_000, trace_context=carrier)
    assert conn.execute("SELECT payload, timeout, trace_context FROM raquel_jobs ORDER BY payload").fetchall() == [
        ("a", 30_000, carrier),
        ("b", 30_000, carrier),
    ]


def test_enqueue_many_replace_rewrites_the_timeout_and_trace_context(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'old', unique_key => 'k', timeout => 1000, trace_context => '{}')")
    enqueue_many(conn, ["new"], unique_keys=["k"], unique_mode="replace", timeout=2000)
    assert conn.execute("SELECT payload, timeout, trace_context FROM raquel_jobs").fetchall() == [("new", 2000, None)]


def test_enqueue_many_defaults_are_enqueues(conn: Conn) -> None:
    enqueue_many(conn, ["a"], now=T)
    conn.execute("SELECT raquel_enqueue('q', 'a', now => %s)", (T,))
    first, second = (row[1:] for row in jobs(conn))
    assert first == second


def test_enqueue_many_of_an_empty_array_inserts_nothing(conn: Conn) -> None:
    assert enqueue_many(conn, []) == []
    assert jobs(conn) == []


@pytest.mark.parametrize(
    ("options", "argument", "message"),
    [
        ({"delay": -1}, "delay", "must be >= 0 ms, got -1"),
        ({"max_age": 0}, "max_age", "must be > 0 ms, got 0"),
        ({"min_retry_delay": 5, "max_retry_delay": 4}, "max_retry_delay", "must be >= min_retry_delay (5 ms), got 4"),
        (
            {"at": 2**62},
            "at",
            "must be a time within [-62135510400000, 253402214399999] ms since the epoch"
            " (0001-01-02 .. 9999-12-30 UTC), got 4611686018427387904",
        ),
        ({"unique_mode": "keep"}, "unique_mode", "needs unique_keys"),
        (
            {"unique_keys": ["k", "j"], "unique_mode": "other"},
            "unique_mode",
            "must be 'keep' or 'replace', got 'other'",
        ),
        ({"unique_keys": ["k", ""]}, "unique_keys", "must be a non-empty string of at most 1000 bytes, got 0 bytes"),
        ({"unique_keys": ["k"]}, "unique_keys", "must have as many elements as payloads (2), got 1"),
        ({"timeout": 0}, "timeout", "must be > 0 and at most 4611686018427387903 ms, got 0"),
        (
            {"trace_context": '{"traceparent": 1}'},
            "trace_context",
            'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})',
        ),
        (
            {"trace_context": "{"},
            "trace_context",
            'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})',
        ),
        (
            {"trace_context": '{"traceparent": "01-x"}'},
            "trace_context",
            "traceparent must be W3C trace context (00-<32 hex>-<16 hex>-<2 hex>; version ff and ids of zeros"
            " only are invalid), got '01-x'",
        ),
    ],
)
def test_enqueue_many_refuses_bad_arguments_and_writes_nothing(
    conn: Conn, options: dict[str, Any], argument: str, message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        enqueue_many(conn, ["a", "b"], **options)
    assert caught.value.diag.column_name == argument
    assert caught.value.diag.message_primary == f'raquel_enqueue_many: invalid argument "{argument}": {message}'
    assert jobs(conn) == []


def test_enqueue_many_refuses_null_payloads(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("SELECT raquel_enqueue_many('q', NULL)")
    assert caught.value.diag.column_name == "payloads"


def test_enqueue_many_keep_returns_the_job_already_holding_a_key(conn: Conn) -> None:
    held = conn.execute("SELECT raquel_enqueue('q', 'old', unique_key => 'k')").fetchone()[0]
    ids = enqueue_many(conn, ["new", "free"], unique_keys=["k", None])
    assert ids[0] == held
    assert sorted((row[2], row[11]) for row in jobs(conn)) == [("free", None), ("old", "k")]


def test_enqueue_many_keep_makes_one_job_from_the_first_element_of_a_repeated_key(conn: Conn) -> None:
    ids = enqueue_many(conn, ["first", "second", "other"], unique_keys=["k", "k", "j"])
    assert ids[0] == ids[1] != ids[2]
    assert sorted((row[2], row[11]) for row in jobs(conn)) == [("first", "k"), ("other", "j")]


def test_enqueue_many_replace_rewrites_the_waiting_job_holding_a_key(conn: Conn) -> None:
    held = conn.execute("SELECT raquel_enqueue('q', 'old', unique_key => 'k', priority => 1)").fetchone()[0]
    ids = enqueue_many(conn, ["new"], unique_keys=["k"], unique_mode="replace", priority=5)
    assert ids == [held]
    assert [(row[2], row[5]) for row in jobs(conn)] == [("new", 5)]


def test_enqueue_many_replace_keeps_a_running_job(conn: Conn) -> None:
    held = conn.execute("SELECT raquel_enqueue('q', 'old', unique_key => 'k')").fetchone()[0]
    conn.execute("SELECT * FROM raquel_claim()")
    assert enqueue_many(conn, ["new"], unique_keys=["k"], unique_mode="replace") == [held]
    assert [(row[2], row[3]) for row in jobs(conn)] == [("old", "claimed")]


def test_enqueue_many_replace_ends_with_the_last_element_of_a_repeated_key(conn: Conn) -> None:
    ids = enqueue_many(conn, ["first", "second", "third"], unique_keys=["k", "k", "k"], unique_mode="replace")
    assert len(set(ids)) == 1
    assert [(row[0], row[2]) for row in jobs(conn)] == [(ids[0], "third")]


def test_enqueue_many_frees_a_key_once_its_job_finished(conn: Conn) -> None:
    done = conn.execute("SELECT raquel_enqueue('q', 'old', unique_key => 'k')").fetchone()[0]
    job = conn.execute("SELECT id, claim_id FROM raquel_claim()").fetchone()
    conn.execute("SELECT raquel_complete(%s, %s)", job)
    [new] = enqueue_many(conn, ["new"], unique_keys=["k"])
    assert new != done
    assert conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (new,)).fetchone()[0] == "queued"


def test_enqueue_many_notifies_once_per_statement(conn: Conn, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN raquel_jobs")
        listener.execute("SELECT raquel_wait_begin(gen_random_uuid(), NULL, 600000)")
        enqueue_many(conn, ["a", "b", "c"])
        heard = [n.payload for n in listener.notifies(timeout=0.5)]
    assert heard == ["q"]


# --- raquel_claim: expiry and rescue off the hot path -------------------------------


def claim(conn: Conn, batch: int, now: int) -> list[str]:
    rows = conn.execute("SELECT payload FROM raquel_claim(ARRAY['q'], 'w', %s, 60000, %s)", [batch, now]).fetchall()
    return [row[0] for row in rows]


def status_of(conn: Conn, payload: str) -> str:
    row = conn.execute("SELECT status FROM raquel_jobs WHERE payload = %s", [payload]).fetchone()
    assert row is not None
    return str(row[0])


def test_a_short_claim_expires_the_jobs_past_max_age(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'old', max_age => 10, now => %s)", [T])
    assert claim(conn, 5, T + 1000) == []
    assert status_of(conn, "old") == "expired"


def test_a_full_claim_expires_at_most_once_a_second_and_never_hands_out_an_expired_job(conn: Conn) -> None:
    assert claim(conn, 1, T) == []  # this connection expired at T
    conn.execute("SELECT raquel_enqueue('q', 'old', max_age => 10, now => %s)", [T])
    conn.execute("SELECT raquel_enqueue_many('q', ARRAY['a', 'b'], now => %s)", [T + 1])
    assert claim(conn, 1, T + 500) == ["a"]
    assert status_of(conn, "old") == "queued"  # past max_age, not marked yet, not claimed
    assert claim(conn, 1, T + 1000) == ["b"]
    assert status_of(conn, "old") == "expired"


def test_a_claim_rescues_a_job_whose_lease_ran_out(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'lost', now => %s)", [T])
    conn.execute("SELECT raquel_claim(ARRAY['q'], 'w', 1, 100, %s)", [T])
    assert claim(conn, 1, T + 200) == ["lost"]
    assert conn.execute("SELECT attempts FROM raquel_jobs").fetchone() == (1,)


# --- raquel_complete_many ---------------------------------------------------------


def claimed(conn: Conn, count: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    enqueue_many(conn, [str(i) for i in range(count)])
    return [
        (row[0], row[1])
        for row in conn.execute("SELECT id, claim_id FROM raquel_claim(batch => %s)", (count,)).fetchall()
    ]


def complete_many(conn: Conn, pairs: list[tuple[uuid.UUID, uuid.UUID]], now: int | None = None) -> list[bool]:
    rows = conn.execute(
        "SELECT job_id, recorded FROM raquel_complete_many(%s::uuid[], %s::uuid[], %s)",
        ([p[0] for p in pairs], [p[1] for p in pairs], now),
    ).fetchall()
    assert [row[0] for row in rows] == [p[0] for p in pairs]
    return [row[1] for row in rows]


def test_complete_many_records_each_current_claim_as_complete_does(conn: Conn) -> None:
    pairs = claimed(conn, 3)
    assert complete_many(conn, pairs, now=T) == [True, True, True]
    assert set(conn.execute("SELECT status, attempts, finished_at, lease_expires_at FROM raquel_jobs").fetchall()) == {
        ("success", 1, T, None)
    }


def test_complete_many_is_fenced_by_claim_id(conn: Conn) -> None:
    (job, claim), (other, other_claim) = claimed(conn, 2)
    assert complete_many(conn, [(job, uuid.uuid4()), (other, other_claim)]) == [False, True]
    assert dict(conn.execute("SELECT id, status FROM raquel_jobs").fetchall()) == {job: "claimed", other: "success"}


def test_complete_many_records_a_finished_job_once(conn: Conn) -> None:
    [pair] = claimed(conn, 1)
    assert complete_many(conn, [pair, pair]) == [True, False]
    assert complete_many(conn, [pair]) == [False]
    assert conn.execute("SELECT attempts FROM raquel_jobs").fetchone()[0] == 1


def test_complete_many_says_true_on_the_first_row_of_each_repeated_pair(conn: Conn) -> None:
    (a, claim_a), (b, claim_b) = claimed(conn, 2)
    stale = (b, uuid.uuid4())
    rows = [stale, (a, claim_a), (b, claim_b), (a, claim_a), stale, (b, claim_b)]
    assert complete_many(conn, rows) == [False, True, True, False, False, False]
    assert conn.execute("SELECT array_agg(DISTINCT attempts) FROM raquel_jobs").fetchone()[0] == [1]


def test_complete_many_refuses_arrays_of_different_lengths(conn: Conn) -> None:
    [pair] = claimed(conn, 1)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("SELECT * FROM raquel_complete_many(%s::uuid[], %s::uuid[])", ([pair[0]], []))
    assert caught.value.diag.column_name == "claim_ids"
    assert conn.execute("SELECT status FROM raquel_jobs").fetchone()[0] == "claimed"


# --- Raquel.enqueue_many ----------------------------------------------------------


def test_client_enqueue_many_stores_payloads_as_enqueue_does(rq: Raquel, conn: Conn) -> None:
    ids = rq.enqueue_many("q", ["text", {"n": 1}, None], priority=2)
    assert [(r.payload, r.raw_payload) for r in map(rq.get, ids) if r] == [
        ("text", "text"),
        ({"n": 1}, '{"n": 1}'),
        (None, None),
    ]
    assert conn.execute("SELECT DISTINCT priority FROM raquel_jobs").fetchall() == [(2,)]


@pytest.mark.parametrize(
    "payloads",
    [
        ["", "é€😀", 'a "quoted" {brace}, comma', "back\\slash\ttab\nnewline", "NULL", "x" * 100_000],
        [None, "", None],
        [],
    ],
)
def test_client_enqueue_many_stores_every_text_exactly(rq: Raquel, conn: Conn, payloads: list[str | None]) -> None:
    # The payloads travel as a binary text[] built by raquel_pg.textarray.
    ids = rq.enqueue_many("q", payloads)
    stored = dict(conn.execute("SELECT id, payload FROM raquel_jobs").fetchall())
    assert [stored[i] for i in ids] == payloads


def test_client_enqueue_many_with_keys_returns_one_id_per_key(rq: Raquel) -> None:
    ids = rq.enqueue_many("q", ["a", "b", "c"], unique_keys=["k", None, "k"])
    assert ids[0] == ids[2] != ids[1]
    assert rq.count() == 2


def test_client_enqueue_many_refuses_a_str_as_payloads(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rq.enqueue_many("q", "abc")
    assert caught.value.argument == "payloads"
    assert rq.count() == 0


def test_client_enqueue_many_names_the_bad_argument(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rq.enqueue_many("q", ["a"], max_age=0)
    assert caught.value.argument == "max_age"
    assert rq.count() == 0


def test_client_enqueue_many_stores_the_timeout_with_every_job(rq: Raquel, conn: Conn) -> None:
    rq.enqueue_many("q", ["a", "b"], timeout=timedelta(seconds=30))
    assert conn.execute("SELECT timeout FROM raquel_jobs").fetchall() == [(30_000,), (30_000,)]


def test_client_enqueue_many_refuses_a_timeout_that_is_not_positive(rq: Raquel) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rq.enqueue_many("q", ["a"], timeout=0)
    assert caught.value.argument == "timeout"
    assert rq.count() == 0


def test_client_enqueue_many_runs_in_the_callers_transaction(rq: Raquel, dsn: str) -> None:
    with psycopg.connect(dsn) as tx:
        rq.enqueue_many("q", ["a", "b"], conn=tx)
        tx.rollback()
    assert rq.count() == 0


# --- roles --------------------------------------------------------------------------


@pytest.fixture
def granted(conn: Conn) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"raquel_test_{kind}_{suffix}" for kind in ("enqueuer", "worker", "nobody")}
    for name in names.values():
        conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    grant_roles(conn, enqueuer=names["enqueuer"], worker=names["worker"])
    yield names
    for name in names.values():
        conn.execute(f'DROP OWNED BY "{name}"'.encode())
        conn.execute(f'DROP ROLE "{name}"'.encode())


def test_enqueuer_and_worker_may_enqueue_many(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    for kind in ("enqueuer", "worker"):
        with Raquel(make_conninfo(dsn, options=f"-c role={granted[kind]}")) as rq:
            rq.enqueue_many("q", [kind])
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 2


def test_only_the_worker_may_complete_many(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    [pair] = claimed(conn, 1)
    statement = "SELECT * FROM raquel_complete_many(%s::uuid[], %s::uuid[])"
    for kind in ("enqueuer", "nobody"):
        with psycopg.connect(make_conninfo(dsn, options=f"-c role={granted[kind]}"), autocommit=True) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(statement, ([pair[0]], [pair[1]]))
    with psycopg.connect(make_conninfo(dsn, options=f"-c role={granted['worker']}"), autocommit=True) as c:
        assert c.execute(statement, ([pair[0]], [pair[1]])).fetchone() == (pair[0], True)


def test_nobody_may_enqueue_many(dsn: str, granted: dict[str, str]) -> None:
    with psycopg.connect(make_conninfo(dsn, options=f"-c role={granted['nobody']}"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT raquel_enqueue_many('q', ARRAY['x'])")
