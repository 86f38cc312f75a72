# WARNING: this file is generated from migrate_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change migrate_async.py and run `python tools/async_to_sync.py`.

"""Applies raquel_pg's migrations to a database.

Each pending migration runs in its own transaction holding an advisory lock,
so concurrent deploys serialize and never apply one twice; a migration whose
file changed after it was applied is refused by name (see ``schema.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from .errors import MigrationError
from .schema import (
    BOOKKEEPING_SQL,
    LOCK_SQL,
    RECORD_SQL,
    SEARCH_PATH_SQL,
    Migration,
    after,
    before,
    check_applied,
    load_migrations,
    pending,
)


@dataclass(frozen=True)
class MigrationState:
    """A migration and when it was applied (None: pending)."""

    migration: Migration
    applied_at: datetime | None


def applied(conn: Connection[Any]) -> dict[int, tuple[str, str, datetime]]:
    """The migrations recorded in the database: version -> (name, checksum, applied_at)."""
    cursor = conn.execute("SELECT to_regclass('raquel_migrations') IS NOT NULL")
    row = cursor.fetchone()
    if row is None or not row[0]:
        return {}
    cursor = conn.execute("SELECT version, name, checksum, applied_at FROM raquel_migrations")
    return {r[0]: (r[1], r[2], r[3]) for r in cursor.fetchall()}


def pending_migrations(conn: Connection[Any], migrations: list[Migration] | None = None) -> list[Migration]:
    """The migrations this database still needs (of ``migrations``, default: the package's),
    after checking the applied ones."""
    migrations = load_migrations() if migrations is None else migrations
    done = {v: (name, checksum) for v, (name, checksum, _) in (applied(conn)).items()}
    check_applied(migrations, done)
    return pending(migrations, done)


def status(conn: Connection[Any]) -> list[MigrationState]:
    """Every known migration with its applied time (None when pending)."""
    done = applied(conn)
    check_applied(load_migrations(), {v: (n, c) for v, (n, c, _) in done.items()})
    return [MigrationState(m, done[m.version][2] if m.version in done else None) for m in load_migrations()]


def migrate(conn: Connection[Any], migrations: list[Migration] | None = None) -> list[Migration]:
    """Applies the pending migrations in order and returns those this call applied.

    ``migrations`` defaults to the package's own (:func:`~raquel_pg.schema.load_migrations`).
    Running it on an up-to-date database is a no-op. Raises
    :class:`~raquel_pg.MigrationError` when an applied migration's file changed
    or the database is newer than this raquel_pg; a failing migration is
    rolled back whole and its error propagates.
    """
    cursor = conn.execute("SELECT current_schema()")
    row = cursor.fetchone()
    if row is None or row[0] is None:
        raise MigrationError("no schema to install into: no schema of the search_path exists")
    with conn.transaction():
        conn.execute(LOCK_SQL)
        conn.execute(SEARCH_PATH_SQL)
        conn.execute(BOOKKEEPING_SQL)
    applied_now: list[Migration] = []
    for migration in pending_migrations(conn, migrations):
        with conn.transaction():
            conn.execute(LOCK_SQL)
            cursor = conn.execute("SELECT checksum FROM raquel_migrations WHERE version = %s", (migration.version,))
            if cursor.fetchone() is not None:
                continue  # a concurrent deploy applied it while we waited for the lock
            # Recorded first, under the caller's search_path (raquel_migrations
            # stays in the install schema); the whole transaction commits or not.
            conn.execute(RECORD_SQL, (migration.version, migration.name, migration.checksum))
            for statement in before(migration):
                conn.execute(statement)
            conn.execute(migration.sql.encode(), prepare=False)
            for statement in after(migration):
                conn.execute(statement)
        applied_now.append(migration)
    return applied_now
