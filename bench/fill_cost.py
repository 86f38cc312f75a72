"""What raquel_jobs' fillfactor (0003_tables) costs where it could hurt, interleaved.

``python -m bench.fill_cost [--backlog 1000000] [--rounds 7]`` (same server rule as bench.run)
migrates one database per layout (0003_tables', and the layouts named in LAYOUTS, each set by SQL
after the migration) and, the layouts taking turns in every round (order reversed every other
round), measures in each:

- ``enqueue_many()`` of 10,000 jobs (jobs/s; the table truncated first);
- single ``enqueue()`` calls (wall µs per call and the server process's CPU µs per call, from
  ``/proc/PID/schedstat``; 500 calls per round, the table truncated first);
- then, with ``--backlog`` waiting jobs in the table, its size (heap, primary key, ready
  indexes) and single-job claims from that backlog (``raquel_claim(batch => 10)``, committed,
  µs per call, 200 per round).

Prints medians as Markdown for RESULTS.md. Needs the server on this machine for CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import psycopg

from raquel_pg import Raquel

from .server import server

#: Layouts compared: label -> SQL run after the migration (0003_tables' layout needs none).
LAYOUTS = {
    "the migrations: fillfactor 50, pkey 50": "",
    "fillfactor 70, pkey 90": "ALTER TABLE raquel.raquel_jobs SET (fillfactor = 70);"
    " ALTER INDEX raquel.raquel_jobs_pkey RESET (fillfactor)",
    "defaults: fillfactor 100, pkey 90": "ALTER TABLE raquel.raquel_jobs RESET (fillfactor);"
    " ALTER INDEX raquel.raquel_jobs_pkey RESET (fillfactor)",
}


def cpu_ns(pid: int) -> int:
    """Time (ns) a process has run on a CPU so far."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def enqueue_many_rate(rq: Raquel, admin: psycopg.Connection[Any]) -> float:
    """jobs/s of one enqueue_many() of 10,000 jobs into an empty table."""
    admin.execute("TRUNCATE raquel.raquel_jobs")
    payloads = [f"payload {i}" for i in range(10_000)]
    started = time.perf_counter()
    rq.enqueue_many("bench", payloads)
    return 10_000 / (time.perf_counter() - started)


def single_enqueues(rq: Raquel, admin: psycopg.Connection[Any], calls: int = 500) -> tuple[float, float]:
    """Wall µs and server CPU µs (the client's server processes) per enqueue() call, into an empty table."""
    admin.execute("TRUNCATE raquel.raquel_jobs")
    rq.enqueue("bench", "warm-up")  # the pool's connection open before the CPU is read
    pids = [
        pid
        for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ]
    cpu0 = sum(cpu_ns(pid) for pid in pids)
    started = time.perf_counter()
    for i in range(calls):
        rq.enqueue("bench", f"payload {i}")
    wall = (time.perf_counter() - started) * 1e6 / calls
    return wall, (sum(cpu_ns(pid) for pid in pids) - cpu0) / 1e3 / calls


def fill_backlog(admin: psycopg.Connection[Any], jobs: int) -> dict[str, int]:
    """TRUNCATE, then ``jobs`` waiting jobs (enqueue_many in SQL, 100,000 a call), ANALYZE; sizes in pages."""
    admin.execute("TRUNCATE raquel.raquel_jobs")
    for done in range(0, jobs, 100_000):
        admin.execute(
            "SELECT count(*) FROM raquel.raquel_enqueue_many("
            "'bench', ARRAY(SELECT 'payload ' || i FROM generate_series(1, %s) i))",
            [min(100_000, jobs - done)],
        )
    admin.execute("ANALYZE raquel.raquel_jobs")
    sizes = {}
    for relation in (
        "raquel_jobs",
        "raquel_jobs_pkey",
        "raquel_jobs_ready_queue_priority_idx",
        "raquel_jobs_ready_priority_idx",
    ):
        row = admin.execute("SELECT pg_relation_size(%s)", [f"raquel.{relation}"]).fetchone()
        sizes[relation] = int(row[0]) if row else 0
    return sizes


def claims(dsn: str, calls: int = 200) -> float:
    """µs per raquel_claim(batch => 10) call (committed) from the backlog."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        conn.execute("SELECT count(*) FROM raquel.raquel_claim(queues => '{bench}', batch => 10)")
        started = time.perf_counter()
        for _ in range(calls):
            conn.execute("SELECT count(*) FROM raquel.raquel_claim(queues => '{bench}', batch => 10)")
        return (time.perf_counter() - started) * 1e6 / calls


def main(argv: list[str] | None = None) -> None:
    """Runs the comparison and prints the Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {label: {} for label in LAYOUTS}
    sizes: dict[str, dict[str, int]] = {}
    with server() as srv, srv.database("fillfactor_a") as dsn_a, srv.database("fillfactor_b") as dsn_b:
        with srv.database("fillfactor_c") as dsn_c:
            dsns = dict(zip(LAYOUTS, (dsn_a, dsn_b, dsn_c)))
            admins = {label: psycopg.connect(dsn, autocommit=True) for label, dsn in dsns.items()}
            clients = {label: Raquel(dsn) for label, dsn in dsns.items()}
            try:
                for label, sql in LAYOUTS.items():
                    if sql:
                        admins[label].execute(sql.encode())
                order = list(LAYOUTS)
                for round_number in range(args.rounds):
                    print(f"[bench] fill_cost: round {round_number + 1}", file=sys.stderr, flush=True)
                    for label in order if round_number % 2 == 0 else order[::-1]:
                        got = results[label]
                        got.setdefault("enqueue_many jobs/s", []).append(
                            enqueue_many_rate(clients[label], admins[label])
                        )
                        wall, cpu = single_enqueues(clients[label], admins[label])
                        got.setdefault("enqueue() µs", []).append(wall)
                        got.setdefault("enqueue() server CPU µs", []).append(cpu)
                for round_number in range(3):
                    for label in order if round_number % 2 == 0 else order[::-1]:
                        print(f"[bench] fill_cost: backlog {round_number + 1}, {label}", file=sys.stderr, flush=True)
                        sizes[label] = fill_backlog(admins[label], args.backlog)
                        results[label].setdefault("claim of 10 µs", []).append(claims(dsns[label]))
            finally:
                for client in clients.values():
                    client.close()
                for admin in admins.values():
                    admin.close()
    print(
        "| layout | enqueue_many of 10,000, jobs/s | enqueue() µs | enqueue() server CPU µs | "
        f"claim of 10 from {args.backlog:,} waiting, µs | heap MB | pkey MB | ready indexes MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, got in results.items():
        med = {key: statistics.median(values) for key, values in got.items()}
        size = sizes[label]
        print(
            f"| {label} | {med['enqueue_many jobs/s']:,.0f} | {med['enqueue() µs']:,.0f} | "
            f"{med['enqueue() server CPU µs']:,.0f} | {med['claim of 10 µs']:,.0f} | "
            f"{size['raquel_jobs'] / 2**20:,.0f} | {size['raquel_jobs_pkey'] / 2**20:,.0f} | "
            f"{(size['raquel_jobs_ready_queue_priority_idx'] + size['raquel_jobs_ready_priority_idx']) / 2**20:,.0f} |"
        )


if __name__ == "__main__":
    main()
