"""Ad-hoc measure of single-row enqueue with and without the NOTIFY path.

Usage: python bench/fastpaths_notify.py DSN [seconds]   (a migrated database; its jobs are truncated)
For 1 and 4 producer threads (one autocommit connection each, prepared
statements), counts ``SELECT raquel_enqueue('bench', 'x')`` calls per second with:
  off     the insert trigger disabled (no NOTIFY at all),
  nowait  the trigger on and no waiter registered (0007: no NOTIFY sent),
  waiter  the trigger on and one idle worker registered for the queue.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import psycopg


def rate(dsn: str, producers: int, seconds: float) -> float:
    counts = [0] * producers
    start = threading.Barrier(producers + 1)
    deadline = [0.0]

    def produce(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
            start.wait()
            n = 0
            while time.monotonic() < deadline[0]:
                conn.execute("SELECT raquel_enqueue('bench', 'x')")
                n += 1
            counts[i] = n

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main(dsn: str, seconds: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        print(conn.execute("SHOW server_version").fetchone()[0])
        has_waiters = conn.execute("SELECT to_regclass('raquel_waiters') IS NOT NULL").fetchone()[0]
        modes = ["off", "on"] if not has_waiters else ["off", "nowait", "waiter"]
        for producers in (1, 4):
            for mode in modes:
                conn.execute("TRUNCATE raquel_jobs")
                if has_waiters:
                    conn.execute("DELETE FROM raquel_waiters")
                conn.execute("ALTER TABLE raquel_jobs DISABLE TRIGGER raquel_jobs_10_notify_insert" if mode == "off"
                             else "ALTER TABLE raquel_jobs ENABLE TRIGGER raquel_jobs_10_notify_insert")
                if mode == "waiter":
                    conn.execute("SELECT raquel_wait_begin(%s, ARRAY['bench'], 600000)", (uuid.uuid4(),))
                conn.execute("CHECKPOINT")
                print(f"{producers} producers, {mode:7s}: {rate(dsn, producers, seconds):8,.0f} enqueues/s",
                      flush=True)
        conn.execute("ALTER TABLE raquel_jobs ENABLE TRIGGER raquel_jobs_10_notify_insert")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0)
