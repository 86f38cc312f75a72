"""Every raquel_* function, view, table and domain states its contract in the catalog: the
engine's in schema raquel and the install schema's (its stand-ins carry the engine's comments).

psql users read these with ``\\df+``, ``\\dv+``, ``\\dt+`` and ``\\dD+``; the documentation's SQL
reference is generated from them (tools/docs_hooks.py reads tests/schema.sql).
"""

from __future__ import annotations

from typing import Any

import psycopg


def test_every_function_view_table_and_domain_has_a_comment(conn: psycopg.Connection[Any]) -> None:
    missing = conn.execute("""
        SELECT 'function ' || p.pronamespace::regnamespace || '.' || p.oid::regprocedure::text
        FROM pg_proc p
        WHERE p.pronamespace IN (current_schema()::regnamespace, to_regnamespace('raquel')) AND p.proname LIKE 'raquel\\_%'
          AND obj_description(p.oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT 'relation ' || c.relnamespace::regnamespace || '.' || c.relname
        FROM pg_class c
        WHERE c.relnamespace IN (current_schema()::regnamespace, to_regnamespace('raquel')) AND c.relname LIKE 'raquel\\_%'
          AND c.relname NOT LIKE 'raquel\\_test\\_%'  -- the tests' own (raquel_test_runs, tests/conftest.py)
          AND c.relkind IN ('r', 'v', 'm', 'u', 'p') AND obj_description(c.oid, 'pg_class') IS NULL
        UNION ALL
        SELECT 'domain ' || t.typnamespace::regnamespace || '.' || t.typname
        FROM pg_type t
        WHERE t.typnamespace IN (current_schema()::regnamespace, to_regnamespace('raquel')) AND t.typtype = 'd'
          AND obj_description(t.oid, 'pg_type') IS NULL
        ORDER BY 1
    """).fetchall()
    assert [m[0] for m in missing] == [], "COMMENT ON these in a new migration"
