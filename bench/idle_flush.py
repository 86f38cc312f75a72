"""What a worker gone idle gains by recording its batched successes at once.

``python -m bench.idle_flush [--rounds 5] [--calls 150] [--serial-jobs 40] [--baseline DIR]``
measures, with an ``AsyncWorker``'s defaults (successes batched), two things a lone job waits
for: a task's round trip (``await task.enqueue(...)`` then ``await job.wait()``, one call at a
time, 5 ms apart: p50 and p99 in ms) and a queue with ``max_running=1`` drained by one worker
(``concurrency=2``; the median gap between one job's start and the next, ms). Each round runs
this tree and, with ``--baseline`` (a directory holding another version's ``raquel_pg``, e.g.
``git archive <commit> raquel_pg | tar -x -C DIR``), that one, each in a process of its own, the
order alternating; medians of the rounds are printed. Both trees use the database's schema as
this tree's migrations leave it. The server: ``RAQUEL_PG_BENCH_DSN`` (else the tests' choice,
see bench/server.py). Run it under the benchmark lock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def round_trips(dsn: str, calls: int) -> tuple[float, float]:
    """p50 and p99 (ms) of a task's enqueue-then-wait, one call at a time."""
    from raquel_pg import AsyncRaquel

    async with AsyncRaquel(dsn) as rq:

        @rq.task(queue="round_trip", name="add")
        async def add(a: int, b: int) -> int:
            return a + b

        worker = rq.worker("round_trip")
        run = asyncio.create_task(worker.run())
        while not worker.listening:
            await asyncio.sleep(0.01)
        took = []
        for i in range(calls):
            started = time.perf_counter()
            job = await add.enqueue(i, 1)
            assert await job.wait(timeout=30) == i + 1
            took.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
        worker.stop()
        await run
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99)]


async def serial_gap(dsn: str, jobs: int) -> float:
    """The median gap (ms) between consecutive job starts on a queue with max_running = 1."""
    from raquel_pg import AsyncJob, AsyncRaquel, AsyncWorker

    async with AsyncRaquel(dsn) as rq:
        queue = "serial_" + uuid.uuid4().hex[:8]
        await rq.set_queue_limits(queue, max_running=1)
        await rq.enqueue_many(queue, ["x"] * jobs)
        started: list[float] = []

        async def handler(job: AsyncJob) -> None:
            started.append(time.monotonic())

        worker = AsyncWorker(rq, handler, queues=(queue,), concurrency=2)
        run = asyncio.create_task(worker.run())
        while len(started) < jobs:
            await asyncio.sleep(0.005)
        worker.stop()
        await run
    return statistics.median(b - a for a, b in zip(started, started[1:])) * 1000


def one_run(dsn: str, calls: int, serial_jobs: int) -> None:
    """In a child process: prints where raquel_pg came from, then 'p50 p99 gap'."""
    import raquel_pg

    p50, p99 = asyncio.run(round_trips(dsn, calls))
    gap = asyncio.run(serial_gap(dsn, serial_jobs))
    print(f"{raquel_pg.__file__} {p50} {p99} {gap}")


def run_tree(tree: Path, dsn: str, calls: int, serial_jobs: int) -> tuple[float, ...]:
    """One child run importing ``raquel_pg`` from ``tree``: (p50, p99, gap).

    This file runs as a script (its own folder first on ``sys.path``, then ``PYTHONPATH``), so
    that no current directory or ``-m`` puts another ``raquel_pg`` before ``tree``'s.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--child", dsn, "--calls", str(calls), "--serial-jobs", str(serial_jobs)]
    out = subprocess.run(command, env=env, cwd=tree, check=True, capture_output=True, text=True)
    origin, *figures = out.stdout.split()
    if Path(origin).resolve() != (tree / "raquel_pg" / "__init__.py").resolve():
        raise RuntimeError(f"{tree}: raquel_pg was imported from {origin}")
    return tuple(float(x) for x in figures)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_flush", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--serial-jobs", type=int, default=40)
    parser.add_argument("--baseline", help="a directory holding another version's raquel_pg")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_run(args.child, args.calls, args.serial_jobs)
        return
    from .server import server

    trees = {"this tree": ROOT} | ({"baseline": Path(args.baseline)} if args.baseline else {})
    figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in trees}
    with server() as srv, srv.database("idle_flush") as dsn:
        for round_no in range(args.rounds):
            order = list(trees) if round_no % 2 == 0 else list(trees)[::-1]
            for name in order:
                figures[name].append(run_tree(trees[name], dsn, args.calls, args.serial_jobs))
                print(f"[idle_flush] round {round_no + 1}, {name}: {figures[name][-1]}", file=sys.stderr)
    print("| tree | task enqueue -> wait() p50 ms | p99 ms | max_running=1: gap between job starts ms |")
    print("|---|---|---|---|")
    for name, rows in figures.items():
        cells = [statistics.median(row[i] for row in rows) for i in range(3)]
        ranges = [f"{min(row[i] for row in rows):.2f}-{max(row[i] for row in rows):.2f}" for i in range(3)]
        print(f"| {name} | " + " | ".join(f"{c:.2f} ({r})" for c, r in zip(cells, ranges)) + " |")


if __name__ == "__main__":
    main()
