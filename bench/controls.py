"""``python -m bench.controls``: what the queue controls (issue 21) cost, and how exactly they hold.

1. The cost of the checks on an unlimited queue: raquel_claim as the baseline's 0006_claim.sql
   defines it (recreated from that file as ``raquel_claim_before``) against today's, in the same database,
   rounds interleaved (the order alternating), medians reported. Each round enqueues the jobs
   anew into an emptied table and claims them one call at a time, either 50 calls inside each
   statement (the function's own cost, few round trips; not more per statement, since the index
   entries of the jobs a transaction claimed stay in the way of its next claims until it commits)
   or one autocommit call each from the client.
2. The limits' accuracy under load: worker processes (``raquel-pg worker``) on a queue with
   max_running, the claimed jobs sampled as they run; then on a queue with per_second, the
   claims counted over every one-second window of their claimed_at.

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.controls``. It prints
Markdown to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from .server import server

ROOT = Path(__file__).resolve().parent.parent


def old_claim_sql() -> str:
    """raquel_claim as 0006_claim.sql creates it (before the queue controls), renamed raquel_claim_before."""
    text = (ROOT / "migrations" / "0006_claim.sql").read_text(encoding="utf-8")
    start = text.index("CREATE FUNCTION raquel_claim(")
    end = text.index("\n$$;\n", start) + len("\n$$;\n")
    return re.sub(r"\braquel_claim\b", "raquel_claim_before", text[start:end])


def fill(conn: psycopg.Connection[Any], jobs: int) -> None:
    """An emptied jobs table holding ``jobs`` ready jobs of queue q."""
    conn.execute("TRUNCATE raquel.raquel_jobs")
    conn.execute("INSERT INTO raquel.raquel_jobs (queue, payload) SELECT 'q', 'x' FROM generate_series(1, %s)", (jobs,))
    conn.execute("VACUUM ANALYZE raquel.raquel_jobs")


#: Claims per statement in the "in one statement" modes.
CHUNK = 50

#: The claim statements measured, by function name: CHUNK calls inside one statement, or one call each.
IN_ONE = {
    "list": "SELECT count(*) FROM generate_series(1, %s) AS g CROSS JOIN LATERAL "
    "raquel.{fn}(ARRAY['q'], 'w' || g, 1) AS c",
    "all": "SELECT count(*) FROM generate_series(1, %s) AS g CROSS JOIN LATERAL raquel.{fn}(NULL, 'w' || g, 1) AS c",
}
ONE_CALL = "SELECT id FROM raquel.{fn}(ARRAY['q'], 'w', 1, durable => false)"


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the server process ``pid`` has used; None when not readable
    (the server on another machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_claims(conn: psycopg.Connection[Any], fn: str, mode: str, jobs: int) -> tuple[float, float | None]:
    """Claims per second of ``fn`` over ``jobs`` ready jobs, in ``mode``, and the server backend's
    CPU µs per claim (None when it cannot be read)."""
    fill(conn, jobs)
    pid = conn.info.backend_pid
    cpu_before = backend_cpu(pid)
    started = time.perf_counter()
    if mode == "one call each":
        query = ONE_CALL.format(fn=fn).encode()
        for _ in range(jobs):
            conn.execute(query).fetchall()
    else:
        query = IN_ONE[mode].format(fn=fn).encode()
        for start in range(0, jobs, CHUNK):
            size = min(CHUNK, jobs - start)
            claimed = conn.execute(query, (size,)).fetchone()
            assert claimed is not None and claimed[0] == size, claimed
    rate = jobs / (time.perf_counter() - started)
    cpu_after = backend_cpu(pid)
    cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / jobs * 1e6
    return rate, cpu


def claim_cost(dsn: str, rounds: int, jobs: int) -> list[str]:
    """The Markdown table of part 1."""
    out = [
        "| claim | settings table | before: claims/s | with controls: claims/s | rate ratio "
        "| before: server CPU µs/claim | with controls | CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = raquel, pg_catalog, pg_temp")
        conn.execute(old_claim_sql().encode())
        conn.execute("RESET search_path")
        for settings in ("empty", "2 other queues controlled"):
            conn.execute("TRUNCATE raquel.raquel_queue_settings")
            if settings != "empty":
                conn.execute("SELECT raquel.raquel_pause_queue('paused-one')")
                conn.execute(
                    "SELECT raquel.raquel_set_queue_limits('limited-one', max_running => 5, per_second => 100)"
                )
            for mode, label in (
                ("list", f"ARRAY['q'], batch 1, {CHUNK} calls per statement"),
                ("all", f"NULL (all queues), batch 1, {CHUNK} calls per statement"),
                ("one call each", "ARRAY['q'], batch 1, one autocommit call each"),
            ):
                if mode == "all" and settings != "empty":
                    continue  # the other queues' controls would apply: not an unlimited claim
                rates: dict[str, list[float]] = {"raquel_claim_before": [], "raquel_claim": []}
                cpus: dict[str, list[float]] = {"raquel_claim_before": [], "raquel_claim": []}
                for r in range(rounds + 1):
                    order = list(rates) if r % 2 == 0 else list(reversed(rates))
                    for fn in order:
                        rate, cpu = time_claims(conn, fn, mode, jobs)
                        if r == 0:
                            continue  # a warm-up round: each function planned once in this session
                        rates[fn].append(rate)
                        if cpu is not None:
                            cpus[fn].append(cpu)
                old, new = (statistics.median(rates[fn]) for fn in ("raquel_claim_before", "raquel_claim"))
                if cpus["raquel_claim"]:
                    old_cpu, new_cpu = (statistics.median(cpus[fn]) for fn in ("raquel_claim_before", "raquel_claim"))
                    cpu_cells = f"{old_cpu:.1f} | {new_cpu:.1f} | {new_cpu / old_cpu:.3f}"
                else:
                    cpu_cells = "- | - | -"
                out.append(f"| {label} | {settings} | {old:,.0f} | {new:,.0f} | {new / old:.3f} | {cpu_cells} |")
                print(out[-1], file=sys.stderr, flush=True)
    return out


def hold(job: Any) -> None:
    """The accuracy run's handler: holds its slot a while (the job's payload: seconds)."""
    time.sleep(float(job.payload))


def start_workers(dsn: str, queue: str, processes: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raquel_pg",
                "--dsn",
                dsn,
                "worker",
                "bench.controls:hold",
                "-q",
                queue,
                "-c",
                str(concurrency),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        for _ in range(processes)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def wait_done(conn: psycopg.Connection[Any], queue: str, jobs: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        done = conn.execute(
            "SELECT count(*) FROM raquel.raquel_jobs WHERE queue = %s AND status = 'success'", (queue,)
        ).fetchone()
        if done is not None and done[0] == jobs:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{queue}: not every job done in time")


def accuracy(dsn: str, processes: int, concurrency: int) -> list[str]:
    """The Markdown lines of part 2."""
    out: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_queue_settings")
        limit, jobs = 5, 300
        conn.execute("SELECT raquel.raquel_set_queue_limits('bounded', max_running => %s)", (limit,))
        conn.execute("SELECT raquel.raquel_enqueue('bounded', '0.02') FROM generate_series(1, %s)", (jobs,))
        seen: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(dsn, autocommit=True) as own:
                while not stop.is_set():
                    row = own.execute(
                        "SELECT count(*) FROM raquel.raquel_jobs WHERE queue = 'bounded' AND status = 'claimed'"
                    ).fetchone()
                    seen.append(row[0] if row else 0)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        workers = start_workers(dsn, "bounded", processes, concurrency)
        try:
            wait_done(conn, "bounded", jobs, time.monotonic() + 300)
        finally:
            stop.set()
            sampler.join()
            stop_workers(workers)
        took = time.monotonic() - started
        out.append(
            f"- max_running = {limit}, {processes} worker processes x concurrency {concurrency} "
            f"({processes * concurrency} slots), {jobs} jobs of 20 ms: most claimed at once in "
            f"{len(seen):,} samples: **{max(seen)}** (samples at the limit: "
            f"{sum(1 for s in seen if s == limit) / len(seen):.0%}); all done in {took:.1f} s "
            f"(the limit's floor: {jobs * 0.02 / limit:.1f} s)."
        )

        rate, jobs = 50.0, 200
        conn.execute("SELECT raquel.raquel_set_queue_limits('paced', per_second => %s)", (rate,))
        conn.execute("SELECT raquel.raquel_enqueue('paced', '0') FROM generate_series(1, %s)", (jobs,))
        started = time.monotonic()
        workers = start_workers(dsn, "paced", processes, concurrency)
        try:
            wait_done(conn, "paced", jobs, time.monotonic() + 300)
        finally:
            stop_workers(workers)
        took = time.monotonic() - started
        times = sorted(
            row[0] for row in conn.execute("SELECT claimed_at FROM raquel.raquel_jobs WHERE queue = 'paced'").fetchall()
        )
        most = max(sum(1 for t in times[i:] if t < start + 1000) for i, start in enumerate(times))
        span = (times[-1] - times[0]) / 1000
        out.append(
            f"- per_second = {rate:g} (bucket {max(1, rate / 10):g}), the same workers, {jobs} jobs: "
            f"most claims in any one-second window: **{most}** (the bound: {rate:g} + one bucket = "
            f"{rate + max(1, rate / 10):g}); {jobs} claims over {span:.2f} s = "
            f"{(jobs - 1) / span:.1f} claims/s; done in {took:.1f} s."
        )
        for line in out:
            print(line, file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.controls", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per figure (default 7)")
    parser.add_argument("--jobs", type=int, default=2000, help="claims per round (default 2000)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes for part 2 (default 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrency of each (default 4)")
    parser.add_argument("--skip-cost", action="store_true", help="part 2 only")
    parser.add_argument("--skip-accuracy", action="store_true", help="part 1 only")
    args = parser.parse_args()
    with server() as srv:
        with srv.database("controls") as dsn:
            lines = [] if args.skip_cost else claim_cost(dsn, args.rounds, args.jobs)
            if not args.skip_accuracy:
                lines += ["", *accuracy(dsn, args.processes, args.concurrency)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
