"""Nothing in the engine depends on session state a transaction pooler loses (issue 19).

A transaction pooler (PgBouncer ``pool_mode = transaction``) gives each
transaction whichever server connection is free: session settings, session
advisory locks, temporary tables and prepared statements do not follow the
client from one transaction to the next. The raquel_* functions use only
transaction-scoped state (``pg_advisory_xact_lock*``, ``set_config(...,
true)``, function ``SET`` clauses); the one session-level value they keep,
``raquel.expired_at``, is a throttle hint whose loss or sharing only changes
how often expiry runs (see tests/reliability/test_pooler_async.py for expiry through the
pooler).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from raquel_pg import Raquel
from raquel_pg.schema import load_migrations

Conn = psycopg.Connection[tuple[Any, ...]]

#: Calls that create state outliving the transaction.
SESSION_SCOPED = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\s*\(|\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\b|\bPREPARE\s+\w+\s+(AS|\()"
    r"|\bLISTEN\b|\bSET\s+SESSION\b|\bDISCARD\b",
    re.IGNORECASE,
)


def definitions(conn: Conn) -> dict[str, str]:
    """Every raquel_* function of the test database (the engine's schema and the install schema's)."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',"
        "       pg_get_functiondef(p.oid)"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE p.proname LIKE 'raquel%%' AND p.prokind = 'f'"
        "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    return dict(rows)


def test_no_engine_function_takes_a_session_lock_temp_table_or_prepared_statement(conn: Conn) -> None:
    found = definitions(conn)
    assert len(found) > 30
    offending = {name: SESSION_SCOPED.findall(body) for name, body in found.items() if SESSION_SCOPED.search(body)}
    assert offending == {}


def test_every_setting_an_engine_function_makes_is_transaction_local_but_the_expiry_hint(conn: Conn) -> None:
    session_settings = set()
    for name, body in definitions(conn).items():
        for call in re.findall(r"set_config\((.*?)\);", body, re.DOTALL):
            if not re.search(r",\s*true\s*\)?$", call.strip()):
                session_settings.add((name.split("(")[0].split(".")[-1], call.split(",")[0].strip()))
    assert session_settings == {("raquel_claim", "'raquel.expired_at'")}


def test_every_migration_applies_through_the_pooler(make_database: Any, pgbouncer_port: int) -> None:
    from bench import pgbouncer

    fresh = pgbouncer.through(make_database(), pgbouncer_port)
    with Raquel(fresh, prepared_statements=False) as rq:
        rq.create_all()
        rq.enqueue("q", "after migrating through the pooler")
        assert rq.count("q") == 1
    with psycopg.connect(fresh, prepare_threshold=None) as conn:
        applied = conn.execute("SELECT count(*) FROM raquel_migrations").fetchone()
    assert applied == (len(load_migrations()),)
