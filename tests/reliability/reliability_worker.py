"""A worker process for the reliability tests (run as a script, not collected by pytest).

    python tests/reliability/reliability_worker.py DSN QUEUE [--async] [--lease MS] [--concurrency N]
                                               [--prefetch P] [--grace S] [--sleep S] [--pool N]
    python tests/reliability/reliability_worker.py DSN QUEUE --produce N [--batch B] [--pace S]

Runs a worker with ``handle_signals=True`` until it is stopped. The handler
records each execution in ``raquel_test_runs`` (one row per run, committed
before the handler sleeps ``--sleep`` seconds or the payload's "sleep"), so
the tests can count how many times each job ran, whatever killed the worker.
Prints "ready" once the worker is listening, and "stopping" once it stopped listening (a
stop signal was handled). With ``--produce N`` it is a
producer instead: prints "ready", enqueues N jobs one by one with
``Raquel.enqueue`` (or, with ``--batch B``, in transactions of B jobs), then prints how many it enqueued and how many calls
raised (after an error it waits 0.2 s and goes on with the next job).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel, params
from raquel_pg.queries import QUERIES

RECORD = "INSERT INTO raquel_test_runs (job_id, pid) VALUES (%s, %s)"


def _sleep_for(job: Any, default: float) -> float:
    payload = job.payload
    return float(payload.get("sleep", default)) if isinstance(payload, dict) else default


def _announce_when_listening(worker: Any) -> None:
    def wait() -> None:
        while not worker.listening:
            time.sleep(0.01)
        print("ready", flush=True)
        while worker.listening:
            time.sleep(0.01)
        print("stopping", flush=True)  # a stop signal was handled: no more claims

    threading.Thread(target=wait, daemon=True).start()


def run_sync(args: argparse.Namespace) -> None:
    with Raquel(args.dsn, lease=args.lease, pool_size=args.pool) as rq:

        def handler(job: Job) -> None:
            with rq.connection() as conn:
                conn.execute(RECORD, (job.id, os.getpid()))
            time.sleep(_sleep_for(job, args.sleep))

        worker = rq.subscribe(
            args.queue, concurrency=args.concurrency, prefetch=args.prefetch, grace_period=args.grace, poll_interval=0.5
        )(handler)
        _announce_when_listening(worker)
        worker.run(handle_signals=True)


async def run_async(args: argparse.Namespace) -> None:
    async with AsyncRaquel(args.dsn, lease=args.lease, pool_size=args.pool) as rq:

        async def handler(job: AsyncJob) -> None:
            async with rq.connection() as conn:
                await conn.execute(RECORD, (job.id, os.getpid()))
            delay = _sleep_for(job, args.sleep)
            if delay:
                await asyncio.sleep(delay)

        worker = rq.subscribe(
            args.queue, concurrency=args.concurrency, prefetch=args.prefetch, grace_period=args.grace, poll_interval=0.5
        )(handler)
        _announce_when_listening(worker)
        await worker.run(handle_signals=True)


def produce(args: argparse.Namespace) -> None:
    import psycopg

    enqueued = errors = 0
    with Raquel(args.dsn, pool_size=1) as rq:
        print("ready", flush=True)
        if args.batch > 1:
            # Transactions of --batch jobs, each the very statement enqueue() runs.
            statement, values = QUERIES["enqueue"], params.enqueue_args(args.queue, *[None] * 8)
            for start in range(0, args.produce, args.batch):
                with rq.connection() as conn, conn.transaction():
                    for _ in range(min(args.batch, args.produce - start)):
                        conn.execute(statement, values)
                enqueued += min(args.batch, args.produce - start)
        for _ in range(args.produce if args.batch <= 1 else 0):
            time.sleep(args.pace)
            try:
                rq.enqueue(args.queue)
                enqueued += 1
            except psycopg.OperationalError:
                errors += 1  # the job may or may not have been written: the caller knows
                time.sleep(0.2)
    print(f"enqueued {enqueued} errors {errors}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("queue")
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--lease", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--pool", type=int, default=4, help="connections per process")
    parser.add_argument("--produce", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between two enqueues")
    args = parser.parse_args()
    if args.produce:
        produce(args)
        return
    if args.use_async:
        asyncio.run(run_async(args))
    else:
        run_sync(args)
    print("stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
