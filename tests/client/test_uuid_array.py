"""UUIDArray: the worker's binary ``uuid[]`` parameter (raquel_complete_many, lease renewals)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from raquel_pg.uuidarray import UUIDArray

Conn = psycopg.Connection[Any]


def test_a_uuid_array_reaches_the_server_as_the_list_would(conn: Conn) -> None:
    ids = [uuid.uuid4() for _ in range(300)]
    for value in (ids, ids[:2] + [None] + ids[2:3], [None], []):
        got = conn.execute("SELECT %b::uuid[], %s::uuid[]", [UUIDArray(value), list(value)]).fetchone()
        assert got is not None and got[0] == got[1] == value


def test_a_uuid_array_fences_raquel_complete_many(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('q', 'x') FROM generate_series(1, 3)")
    pairs = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'], batch => 3)").fetchall()
    stale = pairs[2][0], uuid.uuid4()
    recorded = conn.execute(
        "SELECT recorded FROM raquel_complete_many(%b::uuid[], %b::uuid[])",
        [UUIDArray([p[0] for p in pairs[:2]] + [stale[0]]), UUIDArray([p[1] for p in pairs[:2]] + [stale[1]])],
    ).fetchall()
    assert [row[0] for row in recorded] == [True, True, False]
    statuses = dict(conn.execute("SELECT id, status FROM raquel_jobs").fetchall())
    assert statuses == {pairs[0][0]: "success", pairs[1][0]: "success", pairs[2][0]: "claimed"}
