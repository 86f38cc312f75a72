"""``python -m bench.scheduled``: jobs due later, told to a waiting worker (0021_notify_scheduled).

1. Lateness: one idle ``AsyncWorker`` with its defaults (``poll_interval`` 2 s) and a job enqueued
   with ``delay=300`` ms every 0.4-1.2 s; how late each starts after it is due (ms), with the insert
   trigger's function as 0021 restates it and as 0019_handoff left it (put back in the same
   database from that file), rounds interleaved.
2. Cost: ``raquel_enqueue`` called 2,000 times inside a DO block (the server's own time per call,
   no round trip) and one ``raquel_enqueue_many`` of 10,000 jobs, with either function, with no
   worker waiting or with one waiting for another queue; rounds interleaved, medians.

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.scheduled``. It prints
Markdown for bench/RESULTS.md. The server: ``RAQUEL_PG_BENCH_DSN`` (else as bench/server.py says).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Any

import psycopg

from .controls import function_sql
from .server import server

#: The insert trigger's function by version: 0021's (jobs due later told) and 0019's (before).
VERSIONS = {True: "0021_notify_scheduled.sql", False: "0019_handoff.sql"}


def set_trigger(conn: psycopg.Connection[Any], enabled: bool) -> None:
    """Installs the insert trigger's function as 0021 (``enabled``) or 0019 defines it."""
    name = "raquel_tg_jobs__notify_insert"
    conn.execute("SET search_path = raquel, pg_catalog, pg_temp")
    conn.execute(function_sql(VERSIONS[enabled], name, name).encode())
    conn.execute("RESET search_path")


async def lateness(dsn: str, jobs: int) -> list[float]:
    """ms between each delayed job's due time and its handler's start, one idle worker."""
    from raquel_pg import AsyncJob, AsyncRaquel, AsyncWorker

    started: dict[Any, float] = {}
    async with AsyncRaquel(dsn) as rq:

        async def handler(job: AsyncJob) -> None:
            started[job.id] = time.time()

        worker = AsyncWorker(rq, handler, queues=("delayed",))
        run = asyncio.create_task(worker.run())
        while not worker.listening:
            await asyncio.sleep(0.01)
        late = []
        for _ in range(jobs):
            await asyncio.sleep(random.uniform(0.4, 1.2))
            due = time.time() + 0.3
            job = await rq.enqueue("delayed", "x", delay=300)
            while job.id not in started:
                await asyncio.sleep(0.002)
            late.append((started[job.id] - due) * 1000)
        worker.stop()
        await run
    return late


def enqueue_cost(conn: psycopg.Connection[Any], calls: int) -> tuple[float, float]:
    """µs per raquel_enqueue in a DO loop of ``calls``, and ms for one enqueue_many of 10,000."""
    notes: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notes.append(diagnostic.message_primary or ""))
    conn.execute(
        f"""DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
              FOR i IN 1..{calls} LOOP PERFORM raquel.raquel_enqueue('cost', 'x'); END LOOP;
              RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0) * 1e6 / {calls};
            END $$""".encode()
    )
    started = time.perf_counter()
    conn.execute(
        "SELECT count(*) FROM raquel.raquel_enqueue_many('cost', ARRAY(SELECT 'x' FROM generate_series(1, 10000)))"
    )
    return float(notes[-1]), (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduled", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=8, help="delayed jobs per lateness round (default 8)")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    late: dict[bool, list[float]] = {True: [], False: []}
    costs: dict[tuple[bool, bool], list[tuple[float, float]]] = {}
    with server() as srv, srv.database("scheduled") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        for round_no in range(args.rounds):
            for enabled in (True, False) if round_no % 2 == 0 else (False, True):
                set_trigger(conn, enabled)
                late[enabled] += asyncio.run(lateness(dsn, args.jobs))
                print(
                    f"[scheduled] round {round_no + 1}, trigger {enabled}: {late[enabled][-args.jobs :]}",
                    file=sys.stderr,
                )
            keys = [(True, False), (False, False), (True, True), (False, True)]
            for enabled, waiting in keys if round_no % 2 == 0 else keys[::-1]:
                conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_waiters")
                if waiting:
                    conn.execute("SELECT raquel.raquel_wait_begin(gen_random_uuid(), ARRAY['elsewhere'], 600000)")
                set_trigger(conn, enabled)
                costs.setdefault((enabled, waiting), []).append(enqueue_cost(conn, args.calls))
        set_trigger(conn, True)
    print("| delay=300 ms, one idle AsyncWorker (defaults) | late after due, ms: p50 | p90 | max | jobs |")
    print("|---|---|---|---|---|")
    for enabled, label in ((True, "0021's insert trigger"), (False, "0019's (before 0021)")):
        lates = sorted(late[enabled])
        p90 = lates[int(len(lates) * 0.9)]
        print(f"| {label} | {statistics.median(lates):.1f} | {p90:.1f} | {lates[-1]:.1f} | {len(lates)} |")
    print()
    print("| enqueue cost | raquel_enqueue in a DO loop, µs (median) | enqueue_many of 10,000, ms (median) |")
    print("|---|---|---|")
    for (enabled, waiting), runs in costs.items():
        label = ("0021's insert trigger" if enabled else "0019's") + (
            ", a worker waiting for another queue" if waiting else ", nobody waiting"
        )
        single = statistics.median(run[0] for run in runs)
        bulk = statistics.median(run[1] for run in runs)
        print(f"| {label} | {single:.1f} | {bulk:.1f} |")


if __name__ == "__main__":
    main()
