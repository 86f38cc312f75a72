"""The migration baseline builds exactly the catalog the old chain of deltas built.

``tools/compare_catalogs.py`` migrates one scratch database by the old chain (0001-0024 and the
deltas folded in since, read from git history and applied the way the old runner applied them)
and one by ``migrations/`` (the deltas after the baseline, not folded in yet, applied on both
sides), and compares their catalogs in schema raquel and the install schema:
functions (bodies, settings, arguments, results, security, volatility), tables, columns,
defaults, constraints, indexes, triggers, views, domains, sequences, grants, comments and the
engine tables' rows. Skipped, saying so, when this checkout has no git history.
"""

from __future__ import annotations

import pytest

from raquel_pg.schema import Migration, load_migrations
from tools import compare_catalogs


def test_the_baseline_builds_the_old_chains_catalog(server_dsn: str) -> None:
    if not compare_catalogs.git_available():
        pytest.skip("no git history holding the old migrations (tools/compare_catalogs.py OLD_CHAIN)")
    difference = compare_catalogs.compare(server_dsn)
    assert difference == "", f"the baseline's catalog differs from the old chain's:\n{difference}"


#: A delta after the baseline, as the next migration's author writes it.
DELTA = """
CREATE OR REPLACE FUNCTION raquel_set_priority(job_id uuid, priority integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    UPDATE raquel_jobs j SET priority = raquel_set_priority.priority
    WHERE j.id = raquel_set_priority.job_id AND j.status IN ('queued', 'failed');
    RETURN FOUND;
END;
$$;
ALTER TABLE raquel_jobs ADD COLUMN note text;
"""


def test_deltas_after_the_baseline_are_applied_on_both_sides(server_dsn: str) -> None:
    if not compare_catalogs.git_available():
        pytest.skip("no git history holding the old migrations (tools/compare_catalogs.py OLD_CHAIN)")
    baseline = [m for m in load_migrations() if m.version <= compare_catalogs.BASELINE_LAST]
    later = [*baseline, Migration(len(baseline) + 1, "delta", DELTA)]
    assert compare_catalogs.deltas(later) == later[-1:]
    assert compare_catalogs.compare(server_dsn, later) == ""


def test_the_comparison_sees_a_changed_function_body(make_database: object) -> None:
    import psycopg

    from raquel_pg.migrate import migrate

    dsn: str = make_database()  # type: ignore[operator]
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        before = compare_catalogs.catalog(conn)
        conn.execute("ALTER FUNCTION raquel.raquel_reject(uuid, uuid) SET work_mem = '8MB'")
        conn.execute("COMMENT ON COLUMN raquel.raquel_jobs.payload IS 'changed'")
        after = compare_catalogs.catalog(conn)
    difference = compare_catalogs.diff(before, after)
    assert (
        "+config: search_path=raquel, pg_catalog, pg_temp\n+work_mem=8MB" in difference or "+work_mem=8MB" in difference
    ), difference
    assert "+comment: changed" in difference, difference
