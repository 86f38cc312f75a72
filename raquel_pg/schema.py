"""The migration files and the SQL that applies them (no I/O on the database).

Migrations are ``NNNN_snake_name.sql`` files, numbered from 0001 without gaps,
shipped inside the package (``raquel_pg/migrations`` in the wheel; the
repository's top-level ``migrations/`` in a source checkout). The runner
(``migrate``) and the ``--sql`` script both use the statements defined here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import LiteralString

from .errors import InvalidArgument, MigrationError

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

#: Advisory lock held by every migration transaction ("raquel" in ASCII).
LOCK_KEY = 125762840913260
LOCK_SQL = f"SELECT pg_advisory_xact_lock({LOCK_KEY})"

#: How long a migration's statement waits for a lock on a table or view by default (ms): while
#: it waits, every claim, outcome and enqueue that needs that table queues behind it, so a
#: migration blocked by a long transaction would stop the queue. Past it, the migration's
#: transaction is rolled back and tried again, LOCK_ATTEMPTS times in all (LOCK_PAUSES between).
LOCK_TIMEOUT_MS = 1000
LOCK_ATTEMPTS = 5
LOCK_PAUSES = (1.0, 2.0, 4.0, 8.0)
#: Set in each migration's transaction once the advisory lock is held (that wait is not limited:
#: it is another deploy's migration, which is not a stall of the queue).
LOCK_TIMEOUT_SQL = "SELECT set_config('lock_timeout', %s, true)"
#: The sessions of this database that hold a lock on a raquel_* table or view (pg_locks, which
#: every role may read), or whose transaction began before the migration's lock wait, oldest
#: first: named in the error when every attempt timed out. pg_stat_activity hides another
#: role's state, start and query from a role that is not a superuser or in pg_read_all_stats
#: (then NULL: the pid and user still name the session).
LOCK_HOLDERS_SQL = r"""
SELECT a.pid, coalesce(a.usename, ''), a.state,
       extract(epoch FROM now() - a.xact_start)::bigint, left(a.query, 80)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND (a.xact_start < now() - make_interval(secs => %s)
       OR a.pid IN (SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                    WHERE l.granted AND l.database = (SELECT d.oid FROM pg_database d
                                                      WHERE d.datname = current_database())
                      AND c.relname LIKE 'raquel\_%%'))
ORDER BY a.xact_start NULLS LAST, a.pid
LIMIT 3"""
#: The longest lock_timeout PostgreSQL takes, in ms.
LOCK_TIMEOUT_MAX_MS = 2147483647

#: The install schema's search_path (its first existing schema, then pg_temp):
#: raquel_migrations is created and written there, before each migration's SQL.
SEARCH_PATH_SQL = "SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true)"

#: The engine's schema (migration 0001): only its owner may create objects in
#: it; the install schema keeps stand-ins (docs/security.md).
ENGINE_SCHEMA = "raquel"

#: Every migration runs with these two (after RECORD_SQL, which needs the
#: caller's search_path): the install schema is remembered for raquel_expose,
#: then unqualified CREATEs land in schema raquel, and ``SET search_path FROM
#: CURRENT`` pins raquel, pg_catalog, pg_temp. One statement each: a pooled
#: client's connection prepares what it runs, and a prepared statement holds
#: one command.
INSTALL_SCHEMA_SQL = "SELECT set_config('raquel.install_schema', current_schema(), true)"
ENGINE_PATH_SQL = "SELECT set_config('search_path', 'raquel, pg_catalog, pg_temp', true)"
#: Before each migration but the first (which creates it): the stand-in views
#: step aside, so that a migration may change the columns they read.
UNEXPOSE_SQL = "SELECT raquel.raquel_unexpose(current_setting('raquel.install_schema'))"
#: After each migration: stand-ins for every engine function and relation.
EXPOSE_SQL = "SELECT raquel.raquel_expose(current_setting('raquel.install_schema'))"

BOOKKEEPING_SQL = """\
CREATE TABLE IF NOT EXISTS raquel_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

RECORD_SQL = "INSERT INTO raquel_migrations (version, name, checksum) VALUES (%s, %s, %s)"

#: The schema of raquel_migrations and whether the search_path finds it: the search_path's, else
#: the database's only one (NULL when none, or several, off the search_path).
RECORDED_IN_SQL = r"""
SELECT coalesce(
           (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = to_regclass('raquel_migrations')),
           (SELECT min(n.nspname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = 'raquel_migrations' AND c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_temp\_%'
            HAVING count(*) = 1)),
       to_regclass('raquel_migrations') IS NOT NULL"""


def before(migration: "Migration") -> list[LiteralString]:
    """The statements that run after RECORD_SQL and before ``migration``'s SQL, in its transaction."""
    engine_path = [INSTALL_SCHEMA_SQL, ENGINE_PATH_SQL]
    return engine_path if migration.version == 1 else [*engine_path, UNEXPOSE_SQL]


def after(migration: "Migration") -> list[LiteralString]:
    """The statements that run after ``migration``'s SQL, in its transaction."""
    return [EXPOSE_SQL]


@dataclass(frozen=True)
class Migration:
    """One migration file: its number, name, SQL text and SHA-256 checksum."""

    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def _directory() -> Traversable:
    packaged = resources.files(__package__).joinpath("migrations")
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise MigrationError("raquel_pg's migration files are missing from this installation")


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """All migrations in order. Raises :class:`MigrationError` on a gap, a duplicate or a bad name."""
    directory = directory or _directory()
    found: dict[int, Migration] = {}
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_snake_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations are numbered {version:04d}: {found[version].filename}, {entry.name}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    ordered = [found[v] for v in sorted(found)]
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (next is {migration.filename})")
    return ordered


def check_applied(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    """Refuses a database whose applied migrations differ from the files.

    ``applied`` maps version to (name, checksum) as recorded in
    ``raquel_migrations``. Raises :class:`MigrationError` naming a migration
    whose file changed after it was applied, or one the database has and this
    installation does not know.
    """
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{name} which this raquel_pg does not know: upgrade raquel_pg"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.filename} was changed after it was applied "
                f"(checksum {checksum[:12]}… in the database, {migration.checksum[:12]}… on disk); "
                "released migrations are immutable: restore the file and add a new migration"
            )


def pending(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> list[Migration]:
    """The migrations not yet applied, in order."""
    return [m for m in migrations if m.version not in applied]


def pending_migrations_of(
    done: dict[int, tuple[str, str]], migrations: list[Migration] | None = None
) -> list[Migration]:
    """The migrations (default: the package's) not in ``done`` (version -> (name, checksum)), after
    checking those applied (MigrationError)."""
    migrations = load_migrations() if migrations is None else migrations
    check_applied(migrations, done)
    return pending(migrations, done)


def lock_timeout_ms(lock_timeout: timedelta | None) -> int:
    """``lock_timeout`` in ms (0: no limit, for None and zero); InvalidArgument past PostgreSQL's limit."""
    ms = 0 if lock_timeout is None else max(0, int(lock_timeout.total_seconds() * 1000))
    if ms > LOCK_TIMEOUT_MAX_MS:
        raise InvalidArgument(
            "lock_timeout", f"lock_timeout: at most {LOCK_TIMEOUT_MAX_MS} ms (PostgreSQL's limit), got {ms} ms"
        )
    return ms


def script(migrations: list[Migration], lock_timeout_ms: int | None = LOCK_TIMEOUT_MS) -> str:
    """A psql script applying ``migrations``, each in its own transaction under the lock.

    The same statements the runner executes; a migration recorded meanwhile by
    a concurrent deploy makes its transaction fail on the primary key instead
    of applying twice. ``lock_timeout_ms`` (None: no limit): how long each
    migration waits for a table lock (the queue's traffic waits behind that
    wait); past it the script stops with that migration rolled back, and the
    operator prints the script again, which holds only what is still pending
    (the runner tries again by itself).
    """
    header = ["-- raquel_pg migrations, generated by `raquel-pg migrate --sql`"]
    # No limit is a limit of 0, set all the same: a role's or database's own lock_timeout would apply.
    limit = [LOCK_TIMEOUT_SQL.replace("%s", _literal("0"))]
    if lock_timeout_ms:
        header.append(
            f"-- Each migration waits at most {lock_timeout_ms} ms for a table lock, as the queue's claims,\n"
            "-- outcomes and enqueues wait behind such a wait; past it, psql stops with that migration\n"
            '-- rolled back ("canceling statement due to lock timeout"): once the transaction in its way\n'
            "-- ended, print the script again (it holds only what is still pending) and run that one\n"
            "-- (`raquel-pg migrate --sql --lock-timeout 0` prints one that waits)."
        )
        limit = [LOCK_TIMEOUT_SQL.replace("%s", _literal(f"{lock_timeout_ms}ms"))]
    parts = [
        "\n".join(header),
        "\\set ON_ERROR_STOP on",
        f"BEGIN;\n{LOCK_SQL};\n{SEARCH_PATH_SQL};\n{BOOKKEEPING_SQL};\nCOMMIT;",
    ]
    for m in migrations:
        lines = [
            f"-- {m.filename}",
            "BEGIN;",
            *(f"{s};" for s in [LOCK_SQL, *limit, record_sql(m), *before(m)]),
            m.sql.rstrip(),
            *(f"{s};" for s in after(m)),
            "COMMIT;",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def record_sql(migration: Migration) -> str:
    """RECORD_SQL for ``migration`` with its values inlined (the package's own names and checksums)."""
    return RECORD_SQL.replace("%s", "{}").format(
        migration.version, _literal(migration.name), _literal(migration.checksum)
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
