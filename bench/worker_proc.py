"""A raquel_pg worker in a process of its own, started by the benchmark.

``python -m bench.worker_proc e2e DSN QUEUE CONCURRENCY [batch] [nondurable] [prefetch=N]``:
an AsyncWorker with no-op jobs until SIGTERM, then prints ``first <epoch s>`` (its first handler
start; ``first none``) (``batch``: batch_outcomes=True;
``nondurable``: durable_claims=False; ``prefetch=N``: prefetch=N), its pool at most 10 connections.
``python -m bench.worker_proc wake DSN QUEUE async|sync``: a worker with one
slot that prints ``<payload> <time.time() at handler start>`` per job.
``python -m bench.worker_proc default DSN QUEUE CONCURRENCY [KEY=VALUE ...]``:
``AsyncRaquel(dsn)`` and ``subscribe(queue, concurrency=CONCURRENCY)`` with
the defaults (QUEUE may be several names joined by commas: one subscription
to all of them), plus any worker option given as KEY=VALUE (an int, a float,
True or False), until SIGTERM (issue 23's default-mode scenario).
All print ``ready`` once their worker LISTENs. Behind a transaction pooler
(the pooler scenario), two more flags after those: ``listen=DSN`` (the
client's listen_dsn) and ``noprepare`` (prepared_statements=False).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel


def _announce_when_listening(worker: Any) -> None:
    """Prints 'ready' once ``worker`` LISTENs (polled from a thread)."""

    def watch() -> None:
        while not worker.listening:
            time.sleep(0.005)
        print("ready", flush=True)

    threading.Thread(target=watch, daemon=True).start()


def client_options(flags: list[str]) -> dict[str, Any]:
    """The Raquel/AsyncRaquel keyword arguments of the ``listen=DSN`` and ``noprepare`` flags."""
    listen = next((flag.partition("=")[2] for flag in flags if flag.startswith("listen=")), None)
    return {"listen_dsn": listen, "prepared_statements": "noprepare" not in flags}


async def run_e2e(
    dsn: str,
    queue: str,
    concurrency: int,
    batched: bool,
    durable_claims: bool,
    options: dict[str, Any],
    prefetch: int = 0,
) -> None:
    """Runs no-op jobs of ``queue`` until SIGTERM, then prints ``first <epoch s>``: when its first
    handler started (``first none`` when none did)."""
    first: list[float] = []
    async with AsyncRaquel(dsn, pool_size=min(concurrency, 10), **options) as rq:

        @rq.subscribe(
            queue, concurrency=concurrency, batch_outcomes=batched, durable_claims=durable_claims, prefetch=prefetch
        )
        async def noop(job: AsyncJob) -> None:
            if not first:
                first.append(time.time())

        _announce_when_listening(noop)
        await noop.run(handle_signals=True)
    print(f"first {first[0] if first else 'none'}", flush=True)


def worker_options(flags: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` flags as worker keyword arguments: True/False, an int, a float, else the text."""
    options: dict[str, Any] = {}
    for flag in flags:
        key, _, text = flag.partition("=")
        value: Any = {"True": True, "False": False}.get(text, text)
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                pass
        options[key] = value
    return options


async def run_default(dsn: str, queue: str, concurrency: int, options: dict[str, Any]) -> None:
    """Runs no-op jobs of ``queue`` with the default client and worker (plus ``options``) until SIGTERM."""
    async with AsyncRaquel(dsn) as rq:

        @rq.subscribe(*queue.split(","), concurrency=concurrency, **options)
        async def noop(job: AsyncJob) -> None:
            return None

        _announce_when_listening(noop)
        await noop.run(handle_signals=True)


async def run_wake_async(dsn: str, queue: str, options: dict[str, Any]) -> None:
    """Reports each job's handler start time, async worker, until SIGTERM."""
    async with AsyncRaquel(dsn, **options) as rq:

        @rq.subscribe(queue)
        async def report(job: AsyncJob) -> None:
            print(job.raw_payload, time.time(), flush=True)

        _announce_when_listening(report)
        await report.run(handle_signals=True)


def run_wake_sync(dsn: str, queue: str, options: dict[str, Any]) -> None:
    """Reports each job's handler start time, sync worker, until SIGTERM."""
    with Raquel(dsn, **options) as rq:

        @rq.subscribe(queue)
        def report(job: Job) -> None:
            print(job.raw_payload, time.time(), flush=True)

        _announce_when_listening(report)
        report.run(handle_signals=True)


def main(argv: list[str]) -> None:
    """Dispatches on the mode (see the module docstring)."""
    logging.basicConfig(level=logging.ERROR)  # not the stop signal's warning
    mode, dsn, queue, option = argv[:4]
    flags = argv[4:]
    if mode == "default":
        asyncio.run(run_default(dsn, queue, int(option), worker_options(flags)))
        return
    options = client_options(flags)
    if mode == "e2e":
        prefetch = next((int(flag.partition("=")[2]) for flag in flags if flag.startswith("prefetch=")), 0)
        asyncio.run(run_e2e(dsn, queue, int(option), "batch" in flags, "nondurable" not in flags, options, prefetch))
    elif option == "async":
        asyncio.run(run_wake_async(dsn, queue, options))
    else:
        run_wake_sync(dsn, queue, options)


if __name__ == "__main__":
    main(sys.argv[1:])
