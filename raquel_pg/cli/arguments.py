"""The ``raquel-pg`` argument parser: every command, its options and its ``--help``.

docs/reference/cli.md is generated from :func:`parser` (tools/docs_hooks.py).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import __version__, embedded, params
from .operator import PURGEABLE, RETRYABLE


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
    root.add_argument(
        "--dsn", help="PostgreSQL connection string (default: $RAQUEL_PG_DSN, $DATABASE_URL, else an embedded server)"
    )
    root.add_argument(
        "--listen-dsn",
        help="connection string of the workers' LISTEN connection, "
        "direct to the server when --dsn goes through a transaction "
        "pooler (default: $RAQUEL_PG_LISTEN_DSN, else --dsn)",
    )
    root.add_argument(
        "--no-prepared-statements",
        action="store_true",
        help="prepare no statement (needed behind a transaction pooler such as PgBouncer in pool_mode = transaction)",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--listen-dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument(
            "--no-prepared-statements", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (stable keys; see the observability docs)")

    m = command("migrate", "apply pending migrations")
    mode = m.add_mutually_exclusive_group()
    mode.add_argument("--sql", action="store_true", help="print the pending migrations as a psql script")
    mode.add_argument("--status", action="store_true", help="list applied and pending migrations")
    m.add_argument(
        "--lock-timeout",
        default="1s",
        metavar="D",
        help="how long a migration waits for a table lock before it is rolled back and tried again, "
        "5 times in all (the queue's traffic waits behind such a wait; default 1s; 0: as long as it takes); "
        "with --sql, the script's limit (past it psql stops, that migration rolled back)",
    )

    d = command("demo", "run the demo on the embedded server: migrate, enqueue from SQL and Python, work, print stats")
    d.add_argument(
        "--on-this-database",
        action="store_true",
        help="run it on the configured database (--dsn, $RAQUEL_PG_DSN, $DATABASE_URL) "
        "instead of refusing: it migrates it, works its own queues (raquel-demo-*) "
        "and deletes only the jobs it created",
    )

    ir = command(
        "import-raquel",
        "copy the jobs of a raquel jobs table into raquel_jobs, in one "
        "transaction (claimed jobs come over queued; rerunning copies nothing twice)",
    )
    ir.add_argument("--table", default="jobs", help="raquel's table, optionally schema.table (default jobs)")
    ir.add_argument("--dry-run", action="store_true", help="report what would be copied, write nothing")
    ir.add_argument(
        "--skip-invalid",
        action="store_true",
        help="copy the valid rows and list the others (default: any invalid row refuses all)",
    )
    json_flag(ir)

    w = command(
        "worker", "run a handler on jobs until SIGTERM/SIGINT (then finish running jobs; a second signal stops at once)"
    )
    w.add_argument("handler", nargs="?", help="package.module:function taking a job (or --tasks)")
    w.add_argument(
        "--tasks",
        action="append",
        metavar="MODULE",
        help="run the tasks (@rq.task) of this module instead of a handler (repeatable); "
        "the queues default to the tasks' queues",
    )
    w.add_argument("--timeout", help="time limit of a job that sets none (30s, 500ms, 1h); default none")
    w.add_argument("--queue", "-q", action="append", help="queue to work (repeatable; this or --all-queues)")
    w.add_argument("--all-queues", action="store_true", help="work every queue")
    w.add_argument("--concurrency", "-c", type=int, default=1, help="jobs run at once (default 1)")
    w.add_argument(
        "--prefetch",
        type=int,
        default=0,
        metavar="P",
        help="claim up to P jobs ahead of the free slots, for many short jobs (default 0; see the fast-paths guide)",
    )
    w.add_argument(
        "--no-durable-claims",
        dest="durable_claims",
        action="store_false",
        help="claims commit without waiting for the WAL flush (a server crash may run a job twice; fast-paths guide)",
    )
    w.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="ignored: a coroutine function runs on the async worker (AsyncRaquel), a plain function on the sync one",
    )
    w.add_argument(
        "--grace-period", type=float, default=30.0, help="seconds running jobs get to finish after SIGTERM (default 30)"
    )
    w.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    w.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve this worker's Prometheus metrics on PORT (the metrics extra)",
    )
    w.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)")
    w.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also fire the periodic jobs' due ticks (as raquel-pg scheduler; safe on every host)",
    )

    sc = command(
        "scheduler",
        "fire the periodic jobs' due ticks until SIGTERM/SIGINT (safe to run on "
        "several hosts at once: each tick fires once)",
    )
    sc.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="look for schedules declared elsewhere at least this often (default 10)",
    )
    sc.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    e = command("enqueue", "add a job; prints its id")
    e.add_argument("queue")
    e.add_argument(
        "payload",
        nargs="?",
        help="stored as given (a worker's job.payload is JSON text decoded; --json prints it as stored)",
    )
    e.add_argument("--delay", help="run after this long (7d, 1h30m, 500ms)")
    e.add_argument("--at", help="run at this time (ISO 8601; naive = UTC)")
    e.add_argument("--max-age", help="expire if not started within this long of enqueue")
    e.add_argument("--max-retry-count", type=int, help="retries after the first attempt")
    json_flag(e)

    s = command("stats", "job counts per queue by status, ready jobs, oldest ready age")
    s.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_positive_seconds,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C; with --json, one JSON document per line",
    )
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
    r.add_argument(
        "--status", "-s", action="append", choices=RETRYABLE, help="repeatable (default: failed, exhausted, expired)"
    )
    r.add_argument("--since", help="only jobs finished since (ISO 8601 time, or a duration: 1h = 1h ago)")
    r.add_argument("--all", action="store_true", help="every matching job of every queue")
    json_flag(r)

    c = command("cancel", "cancel waiting (queued/failed) jobs; with --running, ask running ones to stop too")
    c.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    c.add_argument(
        "--running",
        action="store_true",
        help="also a claimed job: its worker is told to stop it (NOTIFY), and it ends cancelled",
    )
    json_flag(c)

    p = command("purge", "delete finished jobs older than an age, in short batches")
    p.add_argument("--older-than", required=True, help="age since the job finished (7d, 12h)")
    p.add_argument("--status", "-s", action="append", choices=PURGEABLE, help="repeatable (default: all of them)")
    p.add_argument("--batch-size", type=int, default=1000, help="rows per transaction (default 1000)")
    json_flag(p)

    pa = command("pause", "pause a queue on every worker: claims skip it, enqueues and running jobs go on")
    pa.add_argument("queue")
    json_flag(pa)

    re_ = command("resume", "resume a paused queue; its waiting workers are woken at once")
    re_.add_argument("queue")
    json_flag(re_)

    li = command(
        "limits",
        "set a queue's limits for every worker and host (an option left out: no such limit; neither: no limits)",
    )
    li.add_argument("queue")
    li.add_argument("--max-running", type=int, metavar="N", help="at most N of its jobs running at once")
    li.add_argument(
        "--per-second",
        type=float,
        metavar="RATE",
        help="its jobs start at most RATE a second (a token bucket of max(1, RATE/10))",
    )
    json_flag(li)

    rt = command(
        "retention",
        "keep finished jobs this long after they finished; the workers' maintenance (or prune) deletes older ones",
    )
    rt.add_argument("keep", metavar="KEEP", help="a duration (7d, 12h) or 'forever' (the default)")
    rt.add_argument("--queue", "-q", help="only this queue (default: every queue without its own)")
    json_flag(rt)

    pr = command(
        "prune",
        "delete finished jobs past their retention now, in short batches (one sweep at a time across all hosts)",
    )
    pr.add_argument("--batch-size", type=int, default=1000, help="rows per transaction (default 1000)")
    json_flag(pr)

    ct = command("controls", "what is set per queue: paused, limits, retention, pruned count")
    json_flag(ct)

    g = command(
        "grant",
        "grant existing roles least privileges: enqueue only, work, or operate "
        "(run as the owner of the raquel objects)",
    )
    g.add_argument("--enqueuer", metavar="ROLE", help="may only call raquel_enqueue")
    g.add_argument("--worker", metavar="ROLE", help="may enqueue, claim, record outcomes, fire schedules")
    g.add_argument(
        "--operator", metavar="ROLE", help="may call every raquel_* function, read the views, repair jobs and schedules"
    )
    g.add_argument("--schema", help="schema of the raquel objects (default: the connection's current schema)")
    g.add_argument("--sql", action="store_true", help="print the psql script instead of running it (needs no database)")
    json_flag(g)

    sv = command("server", "the embedded development PostgreSQL")
    sv.add_argument("action", choices=["start", "stop", "status"])
    sv.add_argument("--data-dir", help=f"its data directory (default {embedded.DEFAULT_DATA_DIR})")
    json_flag(sv)

    d = command(
        "dashboard", "serve the web dashboard: queues, throughput, jobs, retry/cancel/purge (the dashboard extra)"
    )
    d.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other needs --token)"
    )
    d.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    d.add_argument(
        "--read-only",
        action="store_true",
        help="no actions: retry, cancel, purge, pause and resume are hidden and refused",
    )
    d.add_argument("--token", help="every request must carry it (default $RAQUEL_PG_DASHBOARD_TOKEN)")
    d.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    mt = command("metrics", "serve the queues' Prometheus metrics (the metrics extra)")
    mt.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    mt.add_argument("--port", type=int, default=9187, help="port (default 9187)")
    mt.add_argument(
        "--finished-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="count the finished jobs (a pass over the whole table) at most this often; the scrapes "
        "in between report them as last counted (default 60)",
    )

    q = command("psql", "open psql on the configured database (everything after psql goes to psql)")
    q.add_argument("psql_args", nargs=argparse.REMAINDER)
    return root
