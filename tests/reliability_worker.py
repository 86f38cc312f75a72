"""A worker process for the reliability tests (run as a script, not collected by pytest).

    python tests/reliability_worker.py DSN QUEUE [--async] [--lease MS] [--concurrency N]
                                               [--grace S] [--sleep S]

Runs a worker with ``handle_signals=True`` until it is stopped. The handler
records each execution in ``raquel_test_runs`` (one row per run, committed
before the handler sleeps ``--sleep`` seconds or the payload's "sleep"), so
the tests can count how many times each job ran, whatever killed the worker.
Prints "ready" once the worker is listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel

RECORD = "INSERT INTO raquel_test_runs (job_id, pid) VALUES (%s, %s)"


def _sleep_for(job: Any, default: float) -> float:
    payload = job.payload
    return float(payload.get("sleep", default)) if isinstance(payload, dict) else default


def _announce_when_listening(worker: Any) -> None:
    def wait() -> None:
        while not worker.listening:
            time.sleep(0.01)
        print("ready", flush=True)

    threading.Thread(target=wait, daemon=True).start()


def run_sync(args: argparse.Namespace) -> None:
    with Raquel(args.dsn, lease=args.lease, pool_size=args.concurrency + 2) as rq:

        def handler(job: Job) -> None:
            with rq.connection() as conn:
                conn.execute(RECORD, (job.id, os.getpid()))
            time.sleep(_sleep_for(job, args.sleep))

        worker = rq.subscribe(args.queue, concurrency=args.concurrency, grace_period=args.grace,
                              poll_interval=0.5)(handler)
        _announce_when_listening(worker)
        worker.run(handle_signals=True)


async def run_async(args: argparse.Namespace) -> None:
    async with AsyncRaquel(args.dsn, lease=args.lease, pool_size=args.concurrency + 2) as rq:

        async def handler(job: AsyncJob) -> None:
            async with rq.connection() as conn:
                await conn.execute(RECORD, (job.id, os.getpid()))
            delay = _sleep_for(job, args.sleep)
            if delay:
                await asyncio.sleep(delay)

        worker = rq.subscribe(args.queue, concurrency=args.concurrency, grace_period=args.grace,
                              poll_interval=0.5)(handler)
        _announce_when_listening(worker)
        await worker.run(handle_signals=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("queue")
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--lease", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    if args.use_async:
        asyncio.run(run_async(args))
    else:
        run_sync(args)
    print("stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
