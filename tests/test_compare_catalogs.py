"""The migration baseline builds exactly the catalog the old chain of deltas built.

``tools/compare_catalogs.py`` migrates one scratch database by the old chain (0001-0024 and the
deltas folded in since, read from git history and applied the way the old runner applied them)
and one by ``migrations/``, and compares their catalogs in schema raquel and the install schema:
functions (bodies, settings, arguments, results, security, volatility), tables, columns,
defaults, constraints, indexes, triggers, views, domains, sequences, grants, comments and the
engine tables' rows. Skipped, saying so, when this checkout has no git history.
"""

from __future__ import annotations

import pytest

from tools import compare_catalogs


def test_the_baseline_builds_the_old_chains_catalog(server_dsn: str) -> None:
    if not compare_catalogs.git_available():
        pytest.skip("no git history holding the old migrations (tools/compare_catalogs.py OLD_CHAIN)")
    difference = compare_catalogs.compare(server_dsn)
    assert difference == "", f"the baseline's catalog differs from the old chain's:\n{difference}"


def test_the_comparison_sees_a_changed_function_body(make_database: object) -> None:
    import psycopg

    from raquel_pg.migrate import migrate

    dsn: str = make_database()  # type: ignore[operator]
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        before = compare_catalogs.catalog(conn)
        conn.execute("ALTER FUNCTION raquel.raquel_complete(uuid, uuid, bigint) SET work_mem = '8MB'")
        conn.execute("COMMENT ON COLUMN raquel.raquel_jobs.payload IS 'changed'")
        after = compare_catalogs.catalog(conn)
    difference = compare_catalogs.diff(before, after)
    assert "+config: search_path=raquel, pg_catalog, pg_temp\n+work_mem=8MB" in difference or \
        "+work_mem=8MB" in difference, difference
    assert "+comment: changed" in difference, difference
