"""The ``raquel-pg`` command (also ``python -m raquel_pg``).

The database comes from ``--dsn``, else ``RAQUEL_PG_DSN``, else
``DATABASE_URL``; with none, an embedded PostgreSQL is started with its data in
``./.raquel_pg/pgdata`` (the ``raquel-pg[embedded]`` extra). A user mistake
prints one line on stderr and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import psycopg

from . import embedded, migrate as migrations
from .errors import RaquelError
from .schema import script


def resolve_dsn(dsn: str | None, *, announce: bool = True) -> str:
    """The DSN to use: the argument, RAQUEL_PG_DSN, DATABASE_URL, else the embedded server's."""
    for candidate in (dsn, os.environ.get("RAQUEL_PG_DSN"), os.environ.get("DATABASE_URL")):
        if candidate:
            return candidate
    url = embedded.start()
    if announce:
        print(f"using the embedded PostgreSQL with data in {embedded.DEFAULT_DATA_DIR.resolve()}",
              file=sys.stderr)
    return url


def _connect(args: argparse.Namespace) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(resolve_dsn(args.dsn), autocommit=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        if args.status:
            for state in migrations.status(conn):
                when = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "pending"
                print(f"{state.migration.filename:40} {when}")
            return 0
        if args.sql:
            sys.stdout.write(script(migrations.pending_migrations(conn)))
            return 0
        applied = migrations.migrate(conn)
    if applied:
        for m in applied:
            print(f"applied {m.filename}")
    else:
        print("database is up to date")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(resolve_dsn(args.dsn))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": cmd_migrate,
    "demo": cmd_demo,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="raquel-pg", description="raquel_pg: a PostgreSQL-native job queue")
    root.add_argument("--dsn", help="PostgreSQL connection string (default: $RAQUEL_PG_DSN, "
                                    "$DATABASE_URL, else an embedded server)")
    sub = root.add_subparsers(dest="command", required=True)

    m = sub.add_parser("migrate", help="apply pending migrations")
    m.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    mode = m.add_mutually_exclusive_group()
    mode.add_argument("--sql", action="store_true", help="print the pending migrations as a psql script")
    mode.add_argument("--status", action="store_true", help="list applied and pending migrations")

    d = sub.add_parser("demo", help="run the demo: migrate, enqueue from SQL and Python, work, print stats")
    d.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (RaquelError, psycopg.Error, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"raquel-pg {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
