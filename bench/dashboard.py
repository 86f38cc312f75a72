"""How fast each dashboard page answers beside a big history (issue 22: < 200 ms with 1M finished jobs).

``python -m bench.dashboard [--jobs 1000000] [--requests 20]`` makes a fresh
database on the benchmark's server (bench/server.py: ``RAQUEL_PG_BENCH_DSN``,
else ``RAQUEL_PG_TEST_DSN``, else an embedded PostgreSQL), fills it with
``bench/sql/dashboard_fill.sql`` (that many finished jobs over the last
day), starts ``raquel-pg dashboard`` on it in a process of its own, and
times each page over HTTP from this process: the first answer of the day
chart (which counts and keeps every closed minute of the last two days),
then, per page, ``--requests`` answers after two warm-up ones (median, 95th
percentile, slowest). Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.server import server

FILL = Path(__file__).with_name("sql") / "dashboard_fill.sql"
GOAL_MS = 200.0


def fill(dsn: str, jobs: int) -> None:
    """Runs dashboard_fill.sql's statements (comments dropped) with ``jobs`` bound."""
    text = "\n".join(line for line in FILL.read_text().splitlines() if not line.lstrip().startswith("--"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in (s.strip() for s in text.split(";\n")):
            if statement:
                conn.execute(statement.rstrip(";").encode(), {"jobs": jobs} if "%(jobs)s" in statement else None)


def get(port: int, path: str) -> tuple[int, float, str]:
    """(status, ms, body) of one GET on a new connection."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, (time.perf_counter() - started) * 1000, body
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="finished jobs (default 1,000,000)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (default 20)")
    args = parser.parse_args(argv)
    with server() as pg, pg.database("dashboard") as dsn:
        started = time.perf_counter()
        fill(dsn, args.jobs)
        print(f"filled {args.jobs:,} finished jobs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            failed_id = conn.execute(
                "SELECT id FROM raquel_jobs WHERE status = 'exhausted' ORDER BY id DESC OFFSET %s LIMIT 1",
                (args.jobs // 200,),
            ).fetchone()[0]  # type: ignore[index]
            middle_id = conn.execute(
                "SELECT id FROM raquel_jobs ORDER BY id DESC OFFSET %s LIMIT 1", (args.jobs // 2,)
            ).fetchone()[0]  # type: ignore[index]
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("RAQUEL_PG_DSN", "DATABASE_URL")}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raquel_pg",
                "--dsn",
                dsn,
                "dashboard",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    get(port, "/static/dashboard.css")
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the dashboard did not start"
                    time.sleep(0.1)
            status, first_ms, _ = get(port, "/api/throughput?window=day")
            assert status == 200
            pages = [
                ("queues page `/`", "/"),
                ("live table `/fragments/queues`", "/fragments/queues"),
                ("chart, last hour", "/api/throughput?window=hour"),
                ("chart, last day", "/api/throughput?window=day"),
                ("jobs, newest", "/jobs"),
                ("jobs, exhausted", "/jobs?status=exhausted"),
                ("jobs, one queue's expired", "/jobs?queue=billing&status=expired"),
                ("jobs, waiting to retry", "/jobs?status=failed"),
                ("jobs, error text (a few match)", "/jobs?error=address+4250"),
                ("jobs, error text (none matches)", "/jobs?error=no+such+text"),
                ("jobs, half the table deep (keyset)", f"/jobs?before={middle_id}"),
                ("job page", f"/jobs/{failed_id}"),
                ("`/metrics` (raquel_stats: every status counted)", "/metrics"),
            ]
            print(
                f"PostgreSQL {version}, {args.jobs:,} finished jobs, {args.requests} requests per page "
                f"after 2 warm-up ones, each on a new HTTP connection; goal < {GOAL_MS:.0f} ms.\n"
            )
            print(
                f"First answer of the day chart (counts and keeps the closed minutes of the last two "
                f"days once): {first_ms:.0f} ms.\n"
            )
            print("| page | median ms | p95 ms | slowest ms | rows |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for label, path in pages:
                for _ in range(2):
                    get(port, path)
                times = []
                body = ""
                for _ in range(args.requests):
                    status, ms, body = get(port, path)
                    assert status == 200, (path, status)
                    times.append(ms)
                times.sort()
                p95 = times[max(0, round(0.95 * len(times)) - 1)]
                rows = (
                    len(re.findall(r'<a href="/jobs/[0-9a-f-]{36}">', body))
                    if path.startswith("/jobs?") or path == "/jobs"
                    else ""
                )
                print(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} | {rows} |")
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
