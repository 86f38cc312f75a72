"""The worker's own Python per job, with no database (issue 23).

``python -m bench.worker_path [--jobs 100000] [--concurrency 10] [--runs 5] [--baseline DIR ...]
[--profile]`` drains ``--jobs`` no-op jobs with an ``AsyncWorker`` (``prefetch=500,
durable_claims=False``, successes batched) whose database calls are answered in-process
(``AsyncJobCalls`` over a fake ``fetch``: claims hand out prebuilt rows, every success is
recorded, one ``asyncio.sleep(0)`` per call), and prints the process's CPU per job: what the
producer, the executor, the completer and the lease keeper cost, without psycopg and the server.
Each run is a process of its own; with ``--baseline`` (directories holding another version's
``raquel_pg``, e.g. ``git archive <commit> raquel_pg | tar -x -C DIR``) the trees take turns, run by
run, and the medians are printed side by side. ``--profile`` prints cProfile's top functions of one
run of this tree instead. No server is needed: run it anywhere, under the benchmark lock when
the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def drain(jobs: int, concurrency: int, profile: bool) -> float:
    """Drains ``jobs`` no-op jobs through a worker with fake database calls; CPU seconds per job."""
    from raquel_pg.job_async import AsyncJobCalls
    from raquel_pg.leases_async import AsyncLeaseKeeper
    from raquel_pg.worker_async import AsyncWorker

    now = int(time.time() * 1000)
    rows = [
        (uuid.uuid4(), "bench", "x", "claimed", None, None, 1000, 43200000, 1000, now, now, 0, None, None)
        + ("host:1", now + 5, None, now + 60000, uuid.uuid4(), 0, None, None, None, None)
        for _ in range(jobs)
    ]

    taken = 0

    async def fetch(query: str, args: Any = None, conn: Any = None, *, binary: bool = False) -> list[Any]:
        nonlocal taken
        await asyncio.sleep(0)
        if query == "claim":
            batch = rows[taken : taken + args["batch"]]
            taken += len(batch)
            return batch
        if query.startswith("complete_many"):
            # Both the row's first and second column say recorded: read back as (recorded,) since
            # the client's change of issue 23, (job_id, recorded) before it.
            return [(True, True)] * len(args["job_ids"])
        if query == "renew_leases":
            return [(job_id,) for job_id in args["job_ids"]]
        if query == "claimers":  # 0028_claimers: no other worker claims its queue
            return [(0,)]
        return [(True,)] if query == "wait_begin" else [(None,)]

    class Notifier:
        listening = True
        backend_pid = None  # no hand-offs (0019_handoff)

        def subscribe(self, *args: Any) -> None:
            pass

        def subscribe_payloads(self, *args: Any) -> None:
            pass

        async def unsubscribe(self, key: object) -> None:
            pass

    class Client:
        lease_ms = 60000
        _fetch = staticmethod(fetch)

        async def prune(self) -> int:
            return 0

        async def schema_warning(self, timeout: float = 5.0) -> None:
            return None

    client: Any = Client()
    leases = AsyncLeaseKeeper(client)
    client.job_calls = AsyncJobCalls(fetch, leases, Notifier(), 60000)  # type: ignore[arg-type]
    done = asyncio.Event()
    count = 0

    async def noop(job: Any) -> None:
        nonlocal count
        count += 1
        if count == jobs:
            done.set()

    worker = AsyncWorker(
        client, noop, ("bench",), concurrency=concurrency, prefetch=500, durable_claims=False, maintenance_interval=None
    )
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    task = asyncio.create_task(worker.run())
    await done.wait()
    worker.stop()
    await task
    if profiler is not None:
        profiler.disable()
    spent = time.process_time() - started
    await leases.close()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return spent / jobs


def run_once(tree: Path, jobs: int, concurrency: int) -> float:
    """One drain in a process importing ``raquel_pg`` from ``tree``; µs of CPU per job.

    This file runs as a script (its own folder first on ``sys.path``, then ``PYTHONPATH``), so
    that no current directory or ``-m`` puts another ``raquel_pg`` before ``tree``'s.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--one", "--jobs", str(jobs), "--concurrency", str(concurrency)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=tree)
    origin, _, spent = out.stdout.strip().rpartition(" ")
    if Path(origin).resolve() != (tree / "raquel_pg" / "__init__.py").resolve():
        raise RuntimeError(f"{tree}: raquel_pg was imported from {origin}")
    return float(spent) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", action="append", default=[], help="another tree's directory (repeatable)")
    parser.add_argument("--profile", action="store_true", help="one run of this tree under cProfile")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run_once's child
    args = parser.parse_args()
    if args.one:
        import raquel_pg

        print(raquel_pg.__file__, asyncio.run(drain(args.jobs, args.concurrency, False)))
        return
    if args.profile:
        print(f"{asyncio.run(drain(args.jobs, args.concurrency, True)) * 1e6:.2f} µs of CPU per job (profiled)")
        return
    trees = [ROOT, *(Path(b) for b in args.baseline)]
    got: dict[Path, list[float]] = {tree: [] for tree in trees}
    for run in range(args.runs):
        for tree in trees if run % 2 == 0 else reversed(trees):
            got[tree].append(run_once(tree, args.jobs, args.concurrency))
    for tree, values in got.items():
        name = "this tree" if tree == ROOT else str(tree)
        runs = " / ".join(f"{v:.2f}" for v in values)
        print(f"{name}: median {statistics.median(values):.2f} µs of CPU per job ({runs})")


if __name__ == "__main__":
    main()
