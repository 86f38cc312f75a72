"""Ad-hoc measure: claim latency and claim+complete jobs/s, empty table vs 1M finished jobs.

Usage: python bench/fastpaths_history.py DSN [finished]   (a migrated database; its jobs are truncated)
Per table state: 3,000 ready jobs, then one connection claims one job and
completes it until none is left; prints the median claim latency and jobs/s.
"""

from __future__ import annotations

import statistics
import sys
import time

import psycopg


def drain(conn: psycopg.Connection[tuple[object, ...]], jobs: int = 3000) -> tuple[float, float]:
    conn.execute("SELECT raquel_enqueue_many('hist', array_fill(NULL::text, ARRAY[%s]))", (jobs,))
    latencies = []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        row = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['hist'])").fetchone()
        latencies.append(time.perf_counter() - t)
        if row is None:
            break
        conn.execute("SELECT raquel_complete(%s, %s)", row)
    elapsed = time.perf_counter() - start
    return statistics.median(latencies) * 1000, jobs / elapsed


def main(dsn: str, finished: int) -> None:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        print(conn.execute("SHOW server_version").fetchone()[0])
        conn.execute("TRUNCATE raquel_jobs")
        conn.execute("VACUUM ANALYZE raquel_jobs")
        latency, rate = drain(conn)
        print(f"empty table: claim p50 {latency:.3f} ms, claim+complete {rate:,.0f} jobs/s")
        conn.execute("TRUNCATE raquel_jobs")
        conn.execute("""INSERT INTO raquel_jobs (queue, payload, status, attempts, enqueued_at, scheduled_at,
                                                 finished_at)
                        SELECT 'hist', 'x', 'success', 1, i, i, i FROM generate_series(1, %s) AS i""",
                     (finished,))
        conn.execute("VACUUM ANALYZE raquel_jobs")
        latency, rate = drain(conn)
        print(f"{finished:,} finished jobs: claim p50 {latency:.3f} ms, claim+complete {rate:,.0f} jobs/s")
        conn.execute("TRUNCATE raquel_jobs")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
