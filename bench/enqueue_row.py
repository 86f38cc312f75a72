"""``python -m bench.enqueue_row``: what a single enqueue costs, before and after migration enqueue_speed.

Not part of ``bench.run`` (it prints a Markdown section for RESULTS.md, as
bench.dashboard does). Two fresh databases on the server (same rule as
bench.run): one migrated up to the migration before ``enqueue_speed``, one
fully. One autocommit connection per way, ``synchronous_commit = off`` for
the session (so a call is CPU-bound, not waiting for the WAL flush),
prepared statements, arguments as ``Raquel.enqueue`` sends them. The
"before" ways run a new cursor per call (``conn.execute``), as the client
did; "enqueue() now" runs its query on a kept cursor, as the client's
``_fetch`` now does; the last way is ``Raquel.enqueue()`` itself (its pool
of one connection included). Each way makes ``--calls`` calls per round,
the ways in rotating order, ``--rounds`` rounds; the median per way. The
server's CPU per call is read from the backend's ``/proc/<pid>/schedstat``
(only when the server runs on this machine and the process may read it;
else "n/a"), the client's with ``time.process_time``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from raquel_pg import Raquel, params
from raquel_pg.migrate import migrate
from raquel_pg.model import JOB_COLUMNS, JobRecord
from raquel_pg.queries import QUERIES
from raquel_pg.schema import load_migrations

from .server import server

#: The migration this compares against the schema before it.
MIGRATION = "enqueue_speed"

ARGUMENTS = (
    "queue => %(queue)s::text, payload => %(payload)s::text, at => %(at)s::bigint, "
    "delay => %(delay)s::bigint, max_age => %(max_age)s::bigint, "
    "max_retry_count => %(max_retry_count)s::integer, min_retry_delay => %(min_retry_delay)s::bigint, "
    "max_retry_delay => %(max_retry_delay)s::bigint, backoff_base => %(backoff_base)s::bigint, "
    "priority => %(priority)s::integer, unique_key => %(unique_key)s::text, "
    "unique_mode => %(unique_mode)s::text, timeout => %(timeout)s::bigint"
)
#: The id alone, as enqueue() asked before it returned the job (issue 24).
ID_ONLY = f"SELECT raquel.raquel_enqueue({ARGUMENTS})"
#: enqueue()'s query before migration enqueue_speed: raquel_enqueue plus a primary-key read.
ENQUEUE_JOB = f"SELECT {', '.join(JOB_COLUMNS)} FROM raquel.raquel_enqueue_job({ARGUMENTS})"


def backend_cpu_ns(pid: int) -> int | None:
    """The CPU time a backend has used, in ns, or None when it cannot be read."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Way:
    """One way to enqueue: a call, and the backend that serves it."""

    def __init__(self, label: str, pid: int, call: Callable[[], object]) -> None:
        self.label, self.pid, self.call = label, pid, call
        self.wall: list[float] = []
        self.client: list[float] = []
        self.server: list[float] = []

    def round(self, calls: int) -> None:
        cpu = backend_cpu_ns(self.pid)
        client = time.process_time()
        started = time.perf_counter()
        for _ in range(calls):
            self.call()
        self.wall.append((time.perf_counter() - started) / calls * 1e6)
        self.client.append((time.process_time() - client) / calls * 1e6)
        after = backend_cpu_ns(self.pid)
        if cpu is not None and after is not None:
            self.server.append((after - cpu) / calls / 1e3)


def query_way(label: str, conn: psycopg.Connection[Any], query: str, record: bool, kept: bool) -> Way:
    """A way that runs ``query`` (a new cursor per call, or one kept cursor) and reads its row."""
    text = query.encode()
    cursor = conn.cursor()

    def call() -> object:
        args = params.enqueue_args("bench_row", "x", None, None, None, None, None, None, None)
        cur = (
            cursor.execute(text, args, prepare=True, binary=record)
            if kept
            else conn.execute(text, args, prepare=True, binary=record)
        )
        rows = cur.fetchall()
        return JobRecord.from_row(rows[0]) if record else rows[0][0]

    return Way(label, conn.info.backend_pid, call)


def connect(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
    conn.execute("SET synchronous_commit = off")
    return conn


def measure(before: str, after: str, rounds: int, calls: int) -> list[Way]:
    """The ways, measured in rotating order."""
    conns = [connect(dsn) for dsn in (before, before, after, after)]
    rq = Raquel(after, pool_size=1)
    with rq.connection() as conn:
        conn.execute("SET synchronous_commit = off")
        rq_pid = conn.info.backend_pid
    ways = [
        query_way("before: `raquel_enqueue` (the id only, enqueue() before issue 24)", conns[0], ID_ONLY, False, False),
        query_way(
            "before: `raquel_enqueue_job` + `from_row` (enqueue() before enqueue_speed)",
            conns[1],
            ENQUEUE_JOB,
            True,
            False,
        ),
        query_way("after: `raquel_enqueue` (the id only)", conns[2], ID_ONLY, False, False),
        query_way(
            "after: `raquel_enqueue_row` + `from_row` on a kept cursor (enqueue() now)",
            conns[3],
            QUERIES["enqueue"],
            True,
            True,
        ),
        Way("after: `Raquel.enqueue()` itself (pool of one)", rq_pid, lambda: rq.enqueue("bench_row", "x")),
    ]
    try:
        for way in ways:  # each connection prepares its statement and compiles the functions
            for _ in range(200):
                way.call()
        for round_ in range(rounds):
            for way in ways[round_ % len(ways) :] + ways[: round_ % len(ways)]:
                way.round(calls)
    finally:
        rq.close()
        for conn in conns:
            conn.close()
    return ways


def section(ways: list[Way], rounds: int, calls: int, version: str) -> str:
    """The Markdown table."""

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}" if values else "n/a"

    lines = [
        f"{version}; {rounds} rounds of {calls:,} calls per way, in rotating order; medians, "
        "µs per call: wall clock (round trip included), the client's CPU, the backend's CPU.",
        "",
        "| call | µs per call | client CPU | server CPU |",
        "|---|---|---|---|",
    ]
    lines += [f"| {way.label} | {cell(way.wall)} | {cell(way.client)} | {cell(way.server)} |" for way in ways]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue_row", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    migrations = load_migrations()
    upto = [m.name for m in migrations].index(MIGRATION)
    with server() as srv, srv.database("row_before", migrated=False) as before, srv.database("row_after") as after:
        with psycopg.connect(before, autocommit=True) as conn:
            migrate(conn, migrations[:upto])
            version = str(conn.execute("SELECT version()").fetchone()[0]).split(" on ")[0]  # type: ignore[index]
        ways: list[Way] = measure(before, after, args.rounds, args.calls)
    print(section(ways, args.rounds, args.calls, version))


if __name__ == "__main__":
    main()
