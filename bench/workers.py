"""Running raquel_pg workers for a benchmark: threads, an event loop, processes.

Each runner is a context manager: the workers run inside the block and are
stopped (gracefully) when it ends.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from raquel_pg import AsyncJob, AsyncRaquel, AsyncWorker, Job, Raquel

#: The repository root, from which ``python -m bench.worker_proc`` runs.
ROOT = Path(__file__).resolve().parent.parent


def noop(job: Job) -> None:
    """The sync no-op handler."""


async def anoop(job: AsyncJob) -> None:
    """The async no-op handler."""


@contextmanager
def sync_worker(dsn: str, queue: str, concurrency: int, batched: bool = False) -> Iterator[None]:
    """One sync ``Worker`` (``concurrency`` threads) on a thread of this process."""
    with Raquel(dsn, pool_size=concurrency) as rq:
        worker = rq.subscribe(queue, concurrency=concurrency, batch_outcomes=batched)(noop)
        thread = threading.Thread(target=worker.run, name="bench-sync-worker")
        thread.start()
        try:
            yield
        finally:
            worker.stop()
            thread.join()


@contextmanager
def async_worker(
    dsn: str,
    queue: str,
    concurrency: int,
    batched: bool = False,
    pool_size: int | None = None,
    durable_claims: bool = True,
    prefetch: int = 0,
) -> Iterator[None]:
    """One ``AsyncWorker`` (``concurrency`` tasks, ``prefetch`` more jobs claimed ahead) on an
    event loop in a thread of this process.

    Its client's pool has ``pool_size`` connections (default: ``concurrency``).
    """
    started = threading.Event()
    handle: dict[str, Any] = {}

    async def main() -> None:
        async with AsyncRaquel(dsn, pool_size=pool_size or concurrency) as rq:
            worker: AsyncWorker = rq.subscribe(
                queue, concurrency=concurrency, batch_outcomes=batched, durable_claims=durable_claims, prefetch=prefetch
            )(anoop)
            handle.update(loop=asyncio.get_running_loop(), worker=worker)
            started.set()
            await worker.run()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="bench-async-worker")
    thread.start()
    started.wait()
    try:
        yield
    finally:
        handle["loop"].call_soon_threadsafe(handle["worker"].stop)
        thread.join()


def spawn(*args: str, count: int = 1, cwd: Path = ROOT) -> list[subprocess.Popen[str]]:
    """Starts ``count`` processes ``python -m bench.worker_proc *args`` (from ``cwd``) at once, then
    waits for the 'ready' line of each (so that they start together, as the Node peers' do)."""
    started = [
        subprocess.Popen([sys.executable, "-m", "bench.worker_proc", *args], cwd=cwd, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    await_ready(started, "benchmark worker")
    return started


def await_ready(started: list[subprocess.Popen[str]], what: str) -> None:
    """Waits for the 'ready' line of each of ``started``; kills them all and raises RuntimeError
    (naming ``what``) when one prints anything else."""
    for process in started:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            for other in started:
                other.kill()
            raise RuntimeError(f"{what} did not start: {line!r}")


def first_handler_start(process: subprocess.Popen[str]) -> float | None:
    """When a stopped ``bench.worker_proc e2e`` process's first handler started (epoch s, its
    ``first`` line), or None (no job ran, or a worker that does not print it)."""
    assert process.stdout is not None
    for line in process.stdout.read().splitlines():
        word, _, value = line.partition(" ")
        if word == "first" and value != "none":
            return float(value)
    return None


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the worker's graceful stop), then waits; kills it after 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def worker_processes(
    dsn: str,
    queue: str,
    concurrency: int,
    processes: int,
    batched: bool = False,
    durable_claims: bool = True,
    client_flags: tuple[str, ...] = (),
    prefetch: int = 0,
) -> Iterator[None]:
    """``processes`` processes, each one ``AsyncWorker`` with ``concurrency`` tasks and ``prefetch``
    more jobs claimed ahead (and a pool of at most 10 connections); ``client_flags``: see
    bench/worker_proc.py."""
    extra = (
        (["batch"] if batched else [])
        + ([] if durable_claims else ["nondurable"])
        + ([f"prefetch={prefetch}"] if prefetch else [])
        + list(client_flags)
    )
    started = spawn("e2e", dsn, queue, str(concurrency), *extra, count=processes)
    try:
        yield
    finally:
        for process in started:
            stop(process)
