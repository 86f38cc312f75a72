"""Applies raquel_pg's migrations to a database.

Each pending migration runs in its own transaction holding an advisory lock,
so concurrent deploys serialize and never apply one twice; a migration whose
file changed after it was applied is refused by name (see ``schema.py``).
A migration waits for a table lock at most ``lock_timeout`` (1 s by default)
before it is rolled back and tried again, so that a long transaction of the
application never stops the queue's traffic behind a waiting migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

from ._acompat import asleep
from .errors import MigrationError
from .schema import (
    BOOKKEEPING_SQL,
    LOCK_ATTEMPTS,
    LOCK_HOLDERS_SQL,
    LOCK_PAUSES,
    LOCK_SQL,
    LOCK_TIMEOUT_MS,
    LOCK_TIMEOUT_SQL,
    RECORD_SQL,
    RECORDED_IN_SQL,
    SEARCH_PATH_SQL,
    Migration,
    after,
    before,
    check_applied,
    load_migrations,
    lock_timeout_ms,
    pending_migrations_of,
)


@dataclass(frozen=True)
class MigrationState:
    """A migration and when it was applied (None: pending)."""

    migration: Migration
    applied_at: datetime | None


async def _recorded_in(conn: AsyncConnection[Any]) -> tuple[str, bool] | None:
    """Where the migrations are recorded: the schema of ``raquel_migrations`` and whether it is
    the one this session's search_path finds; None when the database has none.

    Off the search_path, the only ``raquel_migrations`` table of the database is taken (a role
    granted the queue, with the install schema not on its search_path: it calls the engine
    schema-qualified); with several, none is.
    """
    cursor = await conn.execute(RECORDED_IN_SQL)
    row = await cursor.fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


async def applied(conn: AsyncConnection[Any]) -> dict[int, tuple[str, str, datetime]]:
    """The migrations recorded in the database: version -> (name, checksum, applied_at)."""
    where = await _recorded_in(conn)
    if where is None:
        return {}
    query = sql.SQL("SELECT version, name, checksum, applied_at FROM {}.raquel_migrations").format(
        sql.Identifier(where[0])
    )
    cursor = await conn.execute(query)
    return {r[0]: (r[1], r[2], r[3]) for r in await cursor.fetchall()}


async def pending_migrations(conn: AsyncConnection[Any], migrations: list[Migration] | None = None) -> list[Migration]:
    """The migrations this database still needs (of ``migrations``, default: the package's),
    after checking the applied ones."""
    done = {v: (name, checksum) for v, (name, checksum, _) in (await applied(conn)).items()}
    return pending_migrations_of(done, migrations)


async def up_to_date(conn: AsyncConnection[Any]) -> bool:
    """Whether every migration of this raquel_pg is applied; raises MigrationError when an applied
    one's file changed.

    Reads ``raquel_migrations`` where the search_path finds it, else where
    the database has its only one: every granted role may read it, with or
    without the install schema on its search_path.
    """
    return not await pending_migrations(conn)


async def schema_warning(conn: AsyncConnection[Any]) -> str | None:
    """One line when the database's migrations are not this raquel_pg's, else None; never raises.

    Behind (migrations pending): a function this version calls may be
    missing (``NotMigrated``) or, worse, an older one may mean something else
    (0022_retention_forever's "forever"): run ``raquel-pg migrate``. Ahead (a
    migration this version does not know), or an applied file changed: as
    ``migrate`` says (old code beside a newer schema is the usual state while
    a deploy rolls out). Not installed, or not readable: None (the calls say so).
    """
    try:
        done = {v: (name, checksum) for v, (name, checksum, _) in (await applied(conn)).items()}
        if not done:
            return None
        missing = pending_migrations_of(done)
    except MigrationError as error:
        return str(error)
    except psycopg.Error:
        return None
    if not missing:
        return None
    return (
        f"the database is behind this raquel_pg: {len(missing)} migration(s) pending, from "
        f"{missing[0].filename}; run raquel-pg migrate (docs/deploying.md: migrate first, then roll the code)"
    )


async def status(conn: AsyncConnection[Any]) -> list[MigrationState]:
    """Every known migration with its applied time (None when pending)."""
    done = await applied(conn)
    check_applied(load_migrations(), {v: (n, c) for v, (n, c, _) in done.items()})
    return [MigrationState(m, done[m.version][2] if m.version in done else None) for m in load_migrations()]


async def check_install_schema(conn: AsyncConnection[Any]) -> bool:
    """Whether raquel_pg is installed (``raquel_migrations`` found), checked to be where this session
    would install and record migrations: its current schema (the first existing schema of its
    search_path). Raises MigrationError when there is no such schema, or raquel_pg is installed in
    another one (a database holds one install). Reads only.
    """
    cursor = await conn.execute("SELECT current_schema()")
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        raise MigrationError("no schema to install into: no schema of the search_path exists")
    where = await _recorded_in(conn)
    if where is not None and not where[1]:
        raise MigrationError(
            f"raquel_pg is installed in schema {where[0]!r}, which this role's search_path does not find "
            f"(its current schema is {row[0]!r}; a database holds one install): run migrate as the owner with "
            f"{where[0]!r} first on the search_path (docs/deploying.md)"
        )
    if where is not None and where[0] != row[0]:
        raise MigrationError(
            f"raquel_pg is installed in schema {where[0]!r}, not in this session's current schema {row[0]!r} "
            f"(the first existing schema of its search_path, where migrate records and installs; a database "
            f"holds one install): run migrate as the owner with {where[0]!r} first on the search_path "
            "(docs/deploying.md)"
        )
    return where is not None


async def migrate(
    conn: AsyncConnection[Any],
    migrations: list[Migration] | None = None,
    *,
    lock_timeout: timedelta | None = timedelta(milliseconds=LOCK_TIMEOUT_MS),
) -> list[Migration]:
    """Applies the pending migrations in order and returns those this call applied.

    ``migrations`` defaults to the package's own (:func:`~raquel_pg.schema.load_migrations`).
    Running it on an up-to-date database is a no-op that needs no privilege
    beyond reading ``raquel_migrations`` (only the owner can apply a pending
    migration); it installs into the first schema of the search_path, and
    refuses (MigrationError), writing nothing, when raquel_pg is installed in
    another schema (:func:`check_install_schema`; see :func:`up_to_date` for a
    role without the install schema on its search_path). A migration that changes
    a table or view waits for its lock; while it waits, every claim, outcome
    and enqueue that needs the table waits behind it. So a statement that
    waited ``lock_timeout`` (default 1 s; None or zero: as long as it takes, whatever
    lock_timeout the role or database sets; at most 2147483647 ms, else InvalidArgument)
    rolls its migration back, and the migration is tried again after a pause
    (1, 2, 4, 8 s; 5 attempts in all). Blocks meanwhile. Raises
    :class:`~raquel_pg.MigrationError` when an applied migration's file changed,
    the database is newer than this raquel_pg, or every attempt timed out
    (naming the oldest open transactions; the migrations before it stay
    applied); a failing migration is rolled back whole and its error propagates.
    """
    timeout_ms = lock_timeout_ms(lock_timeout)
    if await check_install_schema(conn) and not await pending_migrations(conn, migrations):
        return []  # up to date: nothing is created, so a role that may not create is fine
    async with conn.transaction():
        await conn.execute(LOCK_SQL)
        await conn.execute(SEARCH_PATH_SQL)
        await conn.execute(BOOKKEEPING_SQL)
    applied_now: list[Migration] = []
    for migration in await pending_migrations(conn, migrations):
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                if await _apply(conn, migration, timeout_ms):
                    applied_now.append(migration)
                break
            except psycopg.errors.LockNotAvailable:
                if attempt == LOCK_ATTEMPTS:
                    raise MigrationError(await _lock_refusal(conn, migration, timeout_ms)) from None
                await asleep(LOCK_PAUSES[attempt - 1])
    return applied_now


async def _apply(conn: AsyncConnection[Any], migration: Migration, timeout_ms: int) -> bool:
    """Applies one migration in a transaction of its own; False when a concurrent deploy applied it
    first. Raises LockNotAvailable (rolled back) when a statement waited ``timeout_ms`` for a lock."""
    async with conn.transaction():
        await conn.execute(LOCK_SQL)
        cursor = await conn.execute("SELECT checksum FROM raquel_migrations WHERE version = %s", (migration.version,))
        if await cursor.fetchone() is not None:
            return False  # a concurrent deploy applied it while we waited for the lock
        # Set even when 0 (no limit): a role's or database's own lock_timeout would apply.
        await conn.execute(LOCK_TIMEOUT_SQL, (f"{timeout_ms}ms",))
        # Recorded first, under the caller's search_path (raquel_migrations
        # stays in the install schema); the whole transaction commits or not.
        await conn.execute(RECORD_SQL, (migration.version, migration.name, migration.checksum))
        for statement in before(migration):
            await conn.execute(statement)
        await conn.execute(migration.sql.encode(), prepare=False)
        for statement in after(migration):
            await conn.execute(statement)
    return True


async def _lock_refusal(conn: AsyncConnection[Any], migration: Migration, timeout_ms: int) -> str:
    """The error of a migration whose every attempt waited its lock timeout: the sessions in its way named
    (LOCK_HOLDERS_SQL)."""
    cursor = await conn.execute(LOCK_HOLDERS_SQL, (timeout_ms / 1000,))
    rows = await cursor.fetchall()
    holders = "; ".join(
        f"pid {pid} ({user}, {state}, open {seconds} s: {query!r})"
        if state is not None
        else f"pid {pid} ({user}; its state is hidden from this role)"
        for pid, user, state, seconds, query in rows
    )
    hidden = any(state is None for _, _, state, _, _ in rows)
    return (
        f"{migration.filename}: not applied: its statements waited {timeout_ms} ms for a table lock "
        f"{LOCK_ATTEMPTS} times (the queue's traffic waits behind such a wait, so migrate gives up instead); "
        f"the sessions holding the queue's tables or the oldest open transactions: {holders or 'none now'}"
        f"{' (a superuser or a member of pg_read_all_stats sees what they run)' if hidden else ''}. "
        "End the long transaction and run migrate again, or give it more time (--lock-timeout; 0 waits "
        "as long as it takes)"
    )
