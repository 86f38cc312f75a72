"""``python -m bench.contention``: does the fast mode's 4 x 24 shape lose its server time to four
claims reading the head of one queue together? (An experiment, issue 23.)

Four ``bench.worker_proc e2e`` processes (24 slots, prefetch 500, batched successes, non-durable
claims, the queues' retention 0) drain ``--jobs`` no-op jobs either all from one queue, or each from
a queue of its own (the jobs split evenly), in a fresh database each time, the two ways taking
turns for ``--rounds`` rounds. Needs ``pg_stat_statements`` loaded with ``track = all`` (the
server's ``shared_preload_libraries``); prints, per drain, the claim's and ``raquel_complete_many``'s
executor time per job (pg_stat_statements' ``total_exec_time``, reset when the queues resume).

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.contention``.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from .server import server
from .workers import spawn, stop

#: The statements reported: (label, a pattern of pg_stat_statements' query text, whitespace squeezed).
STATEMENTS = [
    ("claim (the worker's call)", "%A claimed job has not succeeded%"),
    ("its UPDATE of the level's jobs", "UPDATE raquel_jobs j SET status = % WHERE j.ctid = ANY (ARRAY( SELECT p.ctid%"),
    ("raquel_complete_many (the worker's call)", "%The id arrays travel binary%"),
]

READ = """
SELECT coalesce(sum(s.total_exec_time), 0), coalesce(sum(s.calls), 0)
FROM pg_stat_statements s
WHERE s.dbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  AND regexp_replace(s.query, '\\s+', ' ', 'g') LIKE %s"""


def drain(dsn: str, jobs: int, queues: list[str]) -> list[str]:
    """One drain of ``jobs`` over ``queues`` by four processes (one queue each, or all on the one)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for queue in queues:
            conn.execute("SELECT raquel_set_retention(%s, '0')", [queue])
            conn.execute(
                "SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs // len(queues)]
            )
            conn.execute("SELECT raquel_pause_queue(%s)", [queue])
        conn.execute("ANALYZE raquel_jobs")
    flags = ["batch", "prefetch=500", "nondurable"]
    each = [queues[0]] * 4 if len(queues) == 1 else queues
    started = [p for queue in each for p in spawn("e2e", dsn, queue, "24", *flags)]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
            began = time.monotonic()
            for queue in queues:
                conn.execute("SELECT raquel_resume_queue(%s)", [queue])
            while conn.execute("SELECT EXISTS (SELECT FROM raquel_jobs)").fetchone() != (False,):
                time.sleep(0.01)
            seconds = time.monotonic() - began
            lines = [f"{'one queue' if len(queues) == 1 else 'a queue each'}: {jobs / seconds:,.0f} jobs/s"]
            for label, pattern in STATEMENTS:
                row = conn.execute(READ, [pattern]).fetchone()
                assert row is not None
                total_ms, calls = float(row[0]), int(row[1])
                lines.append(f"  {label}: {total_ms * 1000 / jobs:.2f} µs a job, {calls} calls")
            return lines
    finally:
        for process in started:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs per drain (default 100,000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the two ways (default 2)")
    args = parser.parse_args()
    with server() as srv:
        for r in range(args.rounds):
            ways = [["bench"], [f"b{i}" for i in range(4)]]
            for queues in ways if r % 2 == 0 else reversed(ways):
                with srv.database("contention") as dsn:
                    print("\n".join(drain(dsn, args.jobs, queues)), flush=True)


if __name__ == "__main__":
    main()
