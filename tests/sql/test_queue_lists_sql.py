"""Registered lists of queues (raquel_queue_list, 0030_queue_lists): a list stored once, and claims that
name it by its id instead of sending the names (tests/sql/test_many_queues.py runs every long-list claim
both ways).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from raquel_pg.migrate import migrate
from raquel_pg.roles import grant_roles
from raquel_pg.schema import load_migrations

Conn = psycopg.Connection[tuple[Any, ...]]


def register(conn: Conn, queues: list[str] | None) -> int:
    row = conn.execute("SELECT raquel_queue_list(%s::text[])", (queues,)).fetchone()
    assert row is not None
    list_id: int = row[0]
    return list_id


def lists(conn: Conn) -> list[tuple[int, int, int]]:
    """(lists, their sizes summed, members) registered so far."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM raquel_queue_lists), (SELECT coalesce(sum(size), 0) FROM raquel_queue_lists),"
        " (SELECT count(*) FROM raquel_queue_list_members)"
    ).fetchone()
    assert row is not None
    return [(int(row[0]), int(row[1]), int(row[2]))]


def test_the_same_names_in_any_order_and_repeated_are_one_list(conn: Conn) -> None:
    first = register(conn, ["b", "a", "c"])
    assert register(conn, ["c", "a", "b", "a"]) == first
    assert lists(conn) == [(1, 3, 3)]


def test_other_names_are_another_list(conn: Conn) -> None:
    assert register(conn, ["a", "b"]) != register(conn, ["a", "b", "c"])
    assert register(conn, ["a:b"]) != register(conn, ["a", "b"])  # names are not joined ambiguously
    assert lists(conn) == [(3, 6, 6)]


@pytest.mark.parametrize(
    "queues",
    [None, [], ["a", None], ["a", ""], ["x" * 1001]],
    ids=["NULL", "empty", "a NULL name", "an empty name", "a name of 1001 bytes"],
)
def test_a_list_that_names_no_queue_is_refused_and_nothing_written(conn: Conn, queues: list[str] | None) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as raised:
        register(conn, queues)
    assert raised.value.diag.column_name == "queues"
    assert lists(conn) == [(0, 0, 0)]


def test_a_claim_by_an_id_no_list_has_is_refused_and_claims_nothing(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('a', 'x')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no queue list 42") as raised:
        conn.execute("SELECT * FROM raquel_claim(claim_as => 'w', queue_list => 42)")
    assert raised.value.diag.column_name == "queue_list"
    assert conn.execute("SELECT status FROM raquel_jobs").fetchall() == [("queued",)]


def test_a_claim_given_both_queues_and_a_list_is_refused(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('a', 'x')")
    list_id = register(conn, ["a"])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not both") as raised:
        conn.execute("SELECT * FROM raquel_claim(ARRAY['a'], 'w', queue_list => %s)", (list_id,))
    assert raised.value.diag.column_name == "queue_list"
    assert conn.execute("SELECT status FROM raquel_jobs").fetchall() == [("queued",)]


def test_a_claim_of_a_list_expires_its_jobs_past_their_max_age(conn: Conn) -> None:
    # A short claim expires what it passed over in the queues asked for, here the list's.
    t = 1_700_000_000_000
    conn.execute("SELECT raquel_enqueue('a', 'x', now => %s, max_age => 1000)", (t - 5000,))
    conn.execute("SELECT raquel_enqueue('other', 'x', now => %s, max_age => 1000)", (t - 5000,))
    list_id = register(conn, ["a", "b"])
    assert (
        conn.execute(
            "SELECT * FROM raquel_claim(claim_as => 'w', now => %s, queue_list => %s)", (t, list_id)
        ).fetchall()
        == []
    )
    assert conn.execute("SELECT queue, status FROM raquel_jobs ORDER BY queue").fetchall() == [
        ("a", "expired"),
        ("other", "queued"),
    ]


def test_a_role_granted_raquel_claim_before_0030_may_still_claim(make_database: Any) -> None:
    # 0030 replaces raquel_claim (a new argument): its grants are carried over.
    dsn: str = make_database()
    role = f"raquel_test_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = [m for m in load_migrations() if m.version < 30]
        migrate(conn, before)
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
        try:
            grant_roles(conn, worker=role)
            migrate(conn)
            conn.execute("SELECT raquel_enqueue('a', 'x')")
            conn.execute(f'SET ROLE "{role}"'.encode())
            taken = conn.execute("SELECT queue FROM raquel.raquel_claim(ARRAY['a'], 'w')").fetchall()
            conn.execute("RESET ROLE")
            assert taken == [("a",)]
        finally:
            conn.execute("RESET ROLE")
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
            conn.execute(f'DROP ROLE "{role}"'.encode())


DAY_MS = 86_400_000


def test_prune_deletes_the_lists_unused_for_7_days_with_their_members_and_keeps_the_others(conn: Conn) -> None:
    old = register(conn, ["a", "b"])
    recent = register(conn, ["c"])
    conn.execute("UPDATE raquel_queue_lists SET used_at = raquel_now_ms() - 8 * %s WHERE id = %s", (DAY_MS, old))
    conn.execute("UPDATE raquel_queue_lists SET used_at = raquel_now_ms() - 6 * %s WHERE id = %s", (DAY_MS, recent))
    assert conn.execute("SELECT raquel_prune()").fetchone() == (0,)  # no retention set: no job counted
    assert [row[0] for row in conn.execute("SELECT id FROM raquel_queue_lists")] == [recent]
    assert lists(conn) == [(1, 1, 1)]


def test_registering_a_list_again_marks_it_in_use_once_an_hour_at_most(conn: Conn) -> None:
    list_id = register(conn, ["a", "b"])
    used = "SELECT raquel_now_ms() - used_at FROM raquel_queue_lists WHERE id = %s"
    conn.execute("UPDATE raquel_queue_lists SET used_at = used_at - 30 * 60000 WHERE id = %s", (list_id,))
    assert register(conn, ["b", "a"]) == list_id
    assert conn.execute(used, (list_id,)).fetchone()[0] >= 30 * 60000  # type: ignore[index]  # within the hour: unchanged
    conn.execute("UPDATE raquel_queue_lists SET used_at = used_at - 31 * 60000 WHERE id = %s", (list_id,))
    assert register(conn, ["a", "b"]) == list_id
    assert conn.execute(used, (list_id,)).fetchone()[0] < 60000  # type: ignore[index]
