"""Applies raquel_pg's pending migrations inside a transaction someone else owns.

``raquel-pg migrate`` commits each migration in its own transaction. An
Alembic revision or a Django migration instead runs in the tool's
transaction, on the tool's connection, which this module reaches only
through two callables: ``query(sql)`` returning rows and ``execute(sql)``
(a script of several statements, no parameters). Everything happens in that
one transaction: the advisory lock every raquel_pg migration takes (held
until the tool commits, so a concurrent ``raquel-pg migrate`` waits), each
migration's SQL with the search_path the runner gives it (the engine
schema, then the stand-ins exposed), and
its row in ``raquel_migrations`` (same version, name and checksum), so ``raquel-pg migrate --status`` and the runner agree. If the
tool's transaction rolls back, so do raquel_pg's migrations. The caller's
search_path is restored afterwards for the rest of its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import MigrationError
from ..schema import (
    BOOKKEEPING_SQL,
    LOCK_SQL,
    SEARCH_PATH_SQL,
    Migration,
    after,
    before,
    check_applied,
    load_migrations,
    pending,
    record_sql,
)

#: Runs one statement and returns its rows.
Query = Callable[[str], Sequence[Sequence[Any]]]
#: Runs a script of statements (no parameters, so a ``%`` is just a ``%``).
Execute = Callable[[str], None]

#: Keep the caller's search_path in a transaction-local setting, and put it back.
SAVE_SEARCH_PATH_SQL = "SELECT set_config('raquel.saved_search_path', current_setting('search_path'), true)"
RESTORE_SEARCH_PATH_SQL = "SELECT set_config('search_path', current_setting('raquel.saved_search_path'), true)"


def pending_migrations(query: Query) -> list[Migration]:
    """The package's migrations the database still needs, after checking the applied ones.

    Raises :class:`~raquel_pg.MigrationError` when an applied migration's file
    changed or the database is newer than this raquel_pg.
    """
    migrations = load_migrations()
    if not query("SELECT to_regclass('raquel_migrations') IS NOT NULL")[0][0]:
        return migrations
    done = {int(v): (str(n), str(c)) for v, n, c in query("SELECT version, name, checksum FROM raquel_migrations")}
    check_applied(migrations, done)
    return pending(migrations, done)


def statements(migrations: list[Migration]) -> list[str]:
    """The statements applying ``migrations`` in an open transaction that holds the lock (none when empty)."""
    if not migrations:
        return []
    out = [SAVE_SEARCH_PATH_SQL, SEARCH_PATH_SQL, BOOKKEEPING_SQL]
    for m in migrations:
        # As the runner does in each migration's own transaction: the record
        # under the caller's search_path, then the migration's own path
        # (schema.before/after: the engine schema and its stand-ins).
        out += [RESTORE_SEARCH_PATH_SQL, SEARCH_PATH_SQL, record_sql(m), *before(m), m.sql, *after(m)]
    return [*out, RESTORE_SEARCH_PATH_SQL]


def apply_pending(query: Query, execute: Execute) -> list[Migration]:
    """Applies the pending migrations in the caller's open transaction; returns them.

    Blocks while another session holds the migration lock (a concurrent
    deploy); the lock is then held until the caller's transaction ends.
    Raises :class:`~raquel_pg.MigrationError` when no schema of the
    search_path exists or an applied migration changed; a failing migration
    raises the database's error, and the caller's transaction is to be
    rolled back.
    """
    if query("SELECT current_schema()")[0][0] is None:
        raise MigrationError("no schema to install into: no schema of the search_path exists")
    execute(LOCK_SQL)
    todo = pending_migrations(query)
    for statement in statements(todo):
        execute(statement)
    return todo
