"""Ad-hoc measure of the wake-up latency of an idle worker (0008's waiter registration).

Usage: python bench/fastpaths_wakeup.py DSN [samples]   (a migrated database; its jobs are truncated)
One sync worker (poll_interval 60 s: only a NOTIFY wakes it in time) and a
producer connection; per sample: enqueue, commit, time to handler start.
Prints p50/p95/p99 in ms.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

import psycopg

from raquel_pg import Job, Raquel


def main(dsn: str, samples: int) -> None:
    started = threading.Event()
    start_times: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn, Raquel(dsn) as rq:
        print(conn.execute("SHOW server_version").fetchone()[0])
        conn.execute("TRUNCATE raquel_jobs, raquel_waiters")

        @rq.subscribe("wake", poll_interval=60)
        def handler(job: Job) -> None:
            start_times.append(time.perf_counter())
            started.set()

        runner = threading.Thread(target=handler.run)
        runner.start()
        while not handler.listening:
            time.sleep(0.01)
        delays = []
        for _ in range(samples):
            time.sleep(0.02)  # let the worker go idle (registered, waiting on LISTEN)
            started.clear()
            conn.execute("SELECT raquel_enqueue('wake')")
            committed = time.perf_counter()
            if not started.wait(5):
                raise SystemExit("a job was not started within 5 s")
            delays.append((start_times[-1] - committed) * 1000)
        handler.stop()
        runner.join()
    q = statistics.quantiles(delays, n=100)
    print(f"{samples} samples: p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, p99 {q[98]:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500)
