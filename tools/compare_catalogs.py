"""Proves the migration baseline exact: the folded files build the catalog the old chain built.

Until the fold, migrations were a chain of deltas (0001-0024 and the deltas that landed after
it), each restating the functions it changed. The baseline in ``migrations/`` defines each
object once. This script builds two scratch databases on one server, one migrated by the old
chain (read from git history, applied the way the old runner applied it) and one by the
baseline (``raquel_pg.migrate``), and compares their catalogs in both the engine schema
``raquel`` and the install schema: functions (arguments, result, body, language, volatility,
strictness, security, parallel safety, cost, rows, settings), tables and their columns
(order, types, defaults, identity, not-null), constraints, indexes, triggers, views, domains,
sequences, policies, rules, grants (ACLs, columns' included), comments, and the rows of the
engine's tables (not ``raquel_migrations``, whose rows name the files).

    python tools/compare_catalogs.py                 # on RAQUEL_PG_TEST_DSN's server, else embedded
    python tools/compare_catalogs.py --dsn DSN       # on another server (scratch databases made there)

Migrations after the baseline (``BASELINE_LAST``) are deltas not folded in yet: they are applied
on both sides, after the old chain and after the baseline, so the comparison always proves the
baseline itself. Exit 0 when the catalogs are the same, 1 (printing a unified diff per
differing object) when not. ``tests/migrations/test_compare_catalogs.py`` runs it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the checkout's raquel_pg
    sys.path.insert(0, str(ROOT))

from raquel_pg import embedded  # noqa: E402
from raquel_pg.migrate import migrate  # noqa: E402
from raquel_pg.schema import LOCK_SQL, Migration, load_migrations  # noqa: E402

#: The old chain, in order: (commit, path) pairs read with ``git show``; a path ending in "/"
#: means every ``NNNN_*.sql`` file of that directory at that commit. fd83d60 is main before
#: the fold (migrations 0001-0024); each delta folded in since is listed after it, at a
#: commit of main where it is in its final form.
OLD_CHAIN: list[tuple[str, str]] = [
    ("fd83d60", "migrations/"),
    ("af52d98", "migrations/0025_jit_off.sql"),
    ("30a1b07", "migrations/0012_comment_texts.sql"),
    ("30a1b07", "migrations/0013_results.sql"),
    ("30a1b07", "migrations/0014_enqueue_speed.sql"),
    ("30a1b07", "migrations/0015_queue_controls.sql"),
    ("30a1b07", "migrations/0016_results_trigger.sql"),
    ("55cf72a", "migrations/0012_trace_context.sql"),
    ("6d4aad1", "migrations/0012_enqueue_many_options.sql"),
    ("6d4aad1", "migrations/0013_many_queues.sql"),
    ("6d4aad1", "migrations/0014_job_writes.sql"),
    ("6d4aad1", "migrations/0015_result_unwatch.sql"),
]

#: The baseline's files are migrations 0001 to BASELINE_LAST; a later file in migrations/ is a
#: delta not folded in yet. The comparison applies such deltas on both sides (after the old
#: chain, and after the baseline, by the runner), so it proves the baseline alone equal to the
#: old chain whatever deltas follow it.
BASELINE_LAST = 11

# The old runner's statements (raquel_pg/schema.py before the fold), kept here so that the old
# chain is applied exactly as it was: migrations before 0021 ran with the install schema's
# search_path; 0021 and later with the engine's, the stand-in views dropped before each one
# after 0021 and the stand-ins refreshed after each one from 0021 on.
_OLD_ENGINE_SINCE = 21
_OLD_SEARCH_PATH_SQL = "SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true)"
_OLD_ENGINE_PATH_SQL = (
    "SELECT set_config('raquel.install_schema', current_schema(), true);\n"
    "SELECT set_config('search_path', 'raquel, pg_catalog, pg_temp', true)"
)
_OLD_UNEXPOSE_SQL = "SELECT raquel.raquel_unexpose(current_setting('raquel.install_schema'))"
_OLD_EXPOSE_SQL = "SELECT raquel.raquel_expose(current_setting('raquel.install_schema'))"
_OLD_BOOKKEEPING_SQL = """\
CREATE TABLE IF NOT EXISTS raquel_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
_OLD_RECORD_SQL = "INSERT INTO raquel_migrations (version, name, checksum) VALUES (%s, %s, 'old chain')"


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def git_available() -> bool:
    """Whether this checkout's git history holds every commit of OLD_CHAIN."""
    try:
        for commit, _ in OLD_CHAIN:
            _git("cat-file", "-e", f"{commit}^{{commit}}")
    except (OSError, RuntimeError):
        return False
    return True


def old_chain() -> list[tuple[str, str]]:
    """The old chain's files as (file name, SQL text), in the order they were applied."""
    files: list[tuple[str, str]] = []
    for commit, path in OLD_CHAIN:
        if path.endswith("/"):
            names = sorted(n for n in _git("ls-tree", "--name-only", f"{commit}:{path}").split() if n.endswith(".sql"))
            files += [(n, _git("show", f"{commit}:{path}{n}")) for n in names]
        else:
            files.append((path.rsplit("/", 1)[-1], _git("show", f"{commit}:{path}")))
    return files


def migrate_old(conn: psycopg.Connection[Any], files: list[tuple[str, str]]) -> None:
    """Applies ``files`` the way the old runner did, each in its own transaction."""
    with conn.transaction():
        conn.execute(LOCK_SQL)
        conn.execute(_OLD_SEARCH_PATH_SQL)
        conn.execute(_OLD_BOOKKEEPING_SQL)
    for version, (name, sql) in enumerate(files, start=1):
        with conn.transaction():
            conn.execute(LOCK_SQL)
            conn.execute(_OLD_RECORD_SQL, (version, name))
            if version < _OLD_ENGINE_SINCE:
                conn.execute(_OLD_SEARCH_PATH_SQL)
            else:
                conn.execute(_OLD_ENGINE_PATH_SQL)
                if version > _OLD_ENGINE_SINCE:
                    conn.execute(_OLD_UNEXPOSE_SQL)
            conn.execute(sql.encode(), prepare=False)
            if version >= _OLD_ENGINE_SINCE:
                conn.execute(_OLD_EXPOSE_SQL)


# Each query returns (object, attribute, value) rows for the engine schema and the install
# schema (current_schema(), where raquel_migrations lives); the catalog is their sorted union.
_SCHEMAS = "(array['raquel'::name, current_schema()])"
_ACL = (
    "(SELECT string_agg(g.e, ', ' ORDER BY g.e) FROM (SELECT format('%s:%s%s by %s', "
    "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
    "CASE WHEN a.is_grantable THEN '*' ELSE '' END, pg_get_userbyid(a.grantor)) AS e "
    "FROM aclexplode({acl}) a) g)"
)

CATALOG_QUERIES: dict[str, str] = {
    "schema": f"""
        SELECT 'schema ' || n.nspname, k, v FROM pg_namespace n, LATERAL (VALUES
            ('acl', {_ACL.format(acl="n.nspacl")}),
            ('comment', obj_description(n.oid, 'pg_namespace'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "function": f"""
        SELECT format('function %s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), k, v
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, LATERAL (VALUES
            ('definition', pg_get_functiondef(p.oid)),
            ('kind', p.prokind::text),
            ('arguments', pg_get_function_arguments(p.oid)),
            ('result', pg_get_function_result(p.oid)),
            ('security definer', p.prosecdef::text),
            ('volatility', p.provolatile::text),
            ('strict', p.proisstrict::text),
            ('parallel', p.proparallel::text),
            ('leakproof', p.proleakproof::text),
            ('cost', p.procost::text),
            ('rows', p.prorows::text),
            ('config', array_to_string(p.proconfig, E'\\n')),
            ('body', p.prosrc),
            ('sql body', CASE WHEN p.prosqlbody IS NOT NULL THEN 'yes' END),
            ('acl', {_ACL.format(acl="p.proacl")}),
            ('comment', obj_description(p.oid, 'pg_proc'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "relation": f"""
        SELECT format('relation %s.%s', n.nspname, c.relname), k, v
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (VALUES
            ('kind', c.relkind::text),
            ('persistence', c.relpersistence::text),
            ('options', array_to_string(c.reloptions, ', ')),
            ('row security', c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text),
            ('replica identity', c.relreplident::text),
            ('view', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END),
            ('acl', {_ACL.format(acl="c.relacl")}),
            ('comment', obj_description(c.oid, 'pg_class'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "column": f"""
        SELECT format('relation %s.%s column %s', n.nspname, c.relname, a.attname), k, v
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum, LATERAL (VALUES
            ('position', (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = a.attrelid
                          AND b.attnum > 0 AND NOT b.attisdropped AND b.attnum <= a.attnum)::text),
            ('type', format_type(a.atttypid, a.atttypmod)),
            ('not null', a.attnotnull::text),
            ('default', pg_get_expr(d.adbin, d.adrelid)),
            ('identity', a.attidentity::text),
            ('generated', a.attgenerated::text),
            ('collation', (SELECT l.collname FROM pg_collation l WHERE l.oid = a.attcollation)),
            ('statistics', a.attstattarget::text),
            ('storage', a.attstorage::text),
            ('acl', {_ACL.format(acl="a.attacl")}),
            ('comment', col_description(c.oid, a.attnum))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS} AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')""",
    "constraint": f"""
        SELECT format('constraint %s.%s on %s', n.nspname, o.conname,
                      coalesce(o.conrelid::regclass::text, format_type(o.contypid, NULL))), k, v
        FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace, LATERAL (VALUES
            ('definition', pg_get_constraintdef(o.oid)),
            ('deferrable', o.condeferrable::text || ' ' || o.condeferred::text),
            ('validated', o.convalidated::text),
            ('comment', obj_description(o.oid, 'pg_constraint'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "index": f"""
        SELECT format('index %s.%s', n.nspname, c.relname), k, v
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (VALUES
            ('definition', pg_get_indexdef(i.indexrelid)),
            ('options', array_to_string(c.reloptions, ', ')),
            ('clustered', i.indisclustered::text),
            ('comment', obj_description(c.oid, 'pg_class'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "trigger": f"""
        SELECT format('trigger %s on %s', t.tgname, t.tgrelid::regclass), k, v
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (VALUES
            ('definition', pg_get_triggerdef(t.oid)),
            ('enabled', t.tgenabled::text),
            ('comment', obj_description(t.oid, 'pg_trigger'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS} AND NOT t.tgisinternal""",
    "type": f"""
        SELECT format('type %s.%s', n.nspname, t.typname), k, v
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, LATERAL (VALUES
            ('kind', t.typtype::text),
            ('base', format_type(t.typbasetype, t.typtypmod)),
            ('not null', t.typnotnull::text),
            ('default', t.typdefault),
            ('acl', {_ACL.format(acl="t.typacl")}),
            ('comment', obj_description(t.oid, 'pg_type'))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}
          AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
          AND t.typcategory <> 'A'""",
    "sequence": f"""
        SELECT format('sequence %s', s.seqrelid::regclass), k, v
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (VALUES
            ('parameters', format('%s start %s increment %s min %s max %s cache %s cycle %s',
                                  format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                                  s.seqmin, s.seqmax, s.seqcache, s.seqcycle)),
            ('owned by', (SELECT format('%s.%s', d.refobjid::regclass, a.attname) FROM pg_depend d
                          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "policy": f"""
        SELECT format('policy %s on %s', p.polname, p.polrelid::regclass), k, v
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (VALUES
            ('definition', format('%s %s %s using %s check %s', p.polcmd, p.polpermissive, p.polroles,
                                  pg_get_expr(p.polqual, p.polrelid),
                                  pg_get_expr(p.polwithcheck, p.polrelid)))) AS x(k, v)
        WHERE n.nspname = ANY {_SCHEMAS}""",
    "rule": f"""
        SELECT format('rule %s on %s', r.rulename, r.ev_class::regclass), 'definition', pg_get_ruledef(r.oid)
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY {_SCHEMAS} AND r.rulename <> '_RETURN'""",
    "other": f"""
        SELECT format('%s %s', x.kind, x.name), 'exists', 'yes' FROM (
            SELECT 'operator' AS kind, o.oid::regoperator::text AS name, o.oprnamespace AS ns FROM pg_operator o
            UNION ALL SELECT 'collation', c.collname, c.collnamespace FROM pg_collation c
            UNION ALL SELECT 'conversion', c.conname, c.connamespace FROM pg_conversion c
            UNION ALL SELECT 'statistics', s.stxname, s.stxnamespace FROM pg_statistic_ext s
            UNION ALL SELECT 'text search configuration', t.cfgname, t.cfgnamespace FROM pg_ts_config t
            UNION ALL SELECT 'operator class', o.opcname, o.opcnamespace FROM pg_opclass o
        ) x JOIN pg_namespace n ON n.oid = x.ns
        WHERE n.nspname = ANY {_SCHEMAS}""",
}

#: The engine's tables whose rows are compared (every table of both schemas but these).
_NO_ROWS = ("raquel_migrations",)


def catalog(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """The catalog of the engine and install schemas: object -> its "attribute: value" lines."""
    objects: dict[str, list[str]] = {}
    for query in CATALOG_QUERIES.values():
        for obj, key, value in conn.execute(query.encode()).fetchall():
            if value is not None:
                objects.setdefault(obj, []).append(f"{key}: {value}")
    tables = conn.execute(
        f"""SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY {_SCHEMAS} AND c.relkind IN ('r', 'p')
              AND c.relname <> ALL (%s) ORDER BY 1""".encode(),
        (list(_NO_ROWS),),
    ).fetchall()
    for (table,) in tables:
        rows = conn.execute(f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1".encode()).fetchall()
        objects.setdefault(f"relation {table}", []).append("rows: " + "\n".join(r[0] for r in rows))
    return {obj: sorted(lines) for obj, lines in objects.items()}


def diff(old: dict[str, list[str]], new: dict[str, list[str]]) -> str:
    """A unified diff per object that differs (or exists on one side only); "" when none."""
    parts: list[str] = []
    for obj in sorted(old.keys() | new.keys()):
        a, b = old.get(obj), new.get(obj)
        if a == b:
            continue
        parts.append(
            "".join(
                difflib.unified_diff(
                    "\n".join(a or []).splitlines(keepends=True) if a is not None else [],
                    "\n".join(b or []).splitlines(keepends=True) if b is not None else [],
                    fromfile=f"old chain: {obj}" + ("" if a is not None else " (absent)"),
                    tofile=f"baseline: {obj}" + ("" if b is not None else " (absent)"),
                    lineterm="\n",
                )
            )
        )
    return "\n".join(p if p.endswith("\n") else p + "\n" for p in parts)


@contextmanager
def _scratch(server_dsn: str) -> Iterator[str]:
    name = f"raquel_compare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def deltas(migrations: list[Migration] | None = None) -> list[Migration]:
    """The migrations after the baseline (not folded in yet), of ``migrations`` (default: the
    checkout's)."""
    return [m for m in (load_migrations() if migrations is None else migrations) if m.version > BASELINE_LAST]


def compare(server_dsn: str, migrations: list[Migration] | None = None) -> str:
    """Migrates one scratch database by the old chain and one by ``migrations`` (default: the
    checkout's), the deltas after the baseline applied on both sides; returns their catalogs'
    diff ("" when the same)."""
    migrations = load_migrations() if migrations is None else migrations
    files = old_chain() + [(m.filename, m.sql) for m in deltas(migrations)]
    with _scratch(server_dsn) as old_dsn, _scratch(server_dsn) as new_dsn:
        with psycopg.connect(old_dsn, autocommit=True) as conn:
            migrate_old(conn, files)
            old = catalog(conn)
        with psycopg.connect(new_dsn, autocommit=True) as conn:
            migrate(conn, migrations)
            new = catalog(conn)
    return diff(old, new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("RAQUEL_PG_TEST_DSN"),
        help="a server to make the scratch databases on (default: RAQUEL_PG_TEST_DSN, "
        "else a temporary embedded PostgreSQL)",
    )
    args = parser.parse_args(argv)
    if args.dsn:
        text = compare(args.dsn)
    else:
        with embedded.temporary("raquel_pg_compare_") as server_dsn:
            text = compare(server_dsn)
    if text:
        sys.stdout.write(text)
        print("the baseline's catalog differs from the old chain's", file=sys.stderr)
        return 1
    extra = len(deltas())
    print(
        f"same catalog: old chain ({len(old_chain())} files) and baseline (0001-{BASELINE_LAST:04d})"
        + (f", each followed by the {extra} later migration(s)" if extra else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
