"""Ad-hoc measure of single-row enqueue with and without the NOTIFY path.

Usage: python bench/fastpaths_notify.py DSN [seconds]   (a migrated database; its jobs are truncated)
For 1 and 4 producer threads (one autocommit connection each, prepared
statements), counts ``SELECT raquel_enqueue('bench', 'x')`` calls per second with:
  off     the insert trigger disabled (no NOTIFY at all),
  always  0001's trigger body put back for the run (NOTIFY at every insert),
  nowait  0008's trigger and no waiter registered (no NOTIFY sent),
  waiter  0008's trigger and one idle worker registered for the queue.
Modes are interleaved over several rounds (the machine is shared and noisy);
the median of each mode is printed, and its ratio to "off".
"""

from __future__ import annotations

import statistics
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


ALWAYS = """CREATE OR REPLACE FUNCTION raquel_tg_jobs__notify_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    PERFORM pg_notify('raquel_jobs', ready.queue)
    FROM (SELECT DISTINCT n.queue FROM raquel_new_jobs n
          WHERE n.status IN ('queued', 'failed') AND n.scheduled_at <= v_now) AS ready;
    RETURN NULL;
END;
$$"""


def main(dsn: str, seconds: float, rounds: int = 3) -> None:
    modes = ["off", "always", "nowait", "waiter"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        print(conn.execute("SHOW server_version").fetchone()[0])
        current = conn.execute("SELECT pg_get_functiondef('raquel_tg_jobs__notify_insert'::regproc)").fetchone()[0]
        try:
            for producers in (1, 4):
                results: dict[str, list[float]] = {m: [] for m in modes}
                for _ in range(rounds):
                    for mode in modes:
                        conn.execute("TRUNCATE raquel_jobs, raquel_waiters")
                        conn.execute(ALWAYS if mode == "always" else current)
                        conn.execute("ALTER TABLE raquel_jobs DISABLE TRIGGER raquel_jobs_10_notify_insert"
                                     if mode == "off" else
                                     "ALTER TABLE raquel_jobs ENABLE TRIGGER raquel_jobs_10_notify_insert")
                        if mode == "waiter":
                            conn.execute("SELECT raquel_wait_begin(%s, ARRAY['bench'], 600000)", (uuid.uuid4(),))
                        conn.execute("CHECKPOINT")
                        results[mode].append(rate(dsn, producers, seconds))
                off = statistics.median(results["off"])
                for mode in modes:
                    median = statistics.median(results[mode])
                    print(f"{producers} producers, {mode:7s}: median {median:8,.0f} enqueues/s "
                          f"({median / off:4.0%} of off)  rounds: "
                          + ", ".join(f"{r:,.0f}" for r in results[mode]), flush=True)
        finally:
            conn.execute(current)
            conn.execute("TRUNCATE raquel_jobs, raquel_waiters")
            conn.execute("ALTER TABLE raquel_jobs ENABLE TRIGGER raquel_jobs_10_notify_insert")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0)
