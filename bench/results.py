"""Scenario ``results`` (issue 25): what storing results costs, and how fast a waiter wakes.

1. End-to-end rate of no-op jobs drained by an AsyncWorker whose handler
   returns None (nothing stored) or a small dict (stored with the success),
   each outcome at once and with ``batch_outcomes=True``; plus the same with
   the result-waiters trigger disabled (what the schema cost before issue
   25). Rounds interleaved, medians.
2. Result wake-up: a client blocked in ``rq.result(job_id)`` (a thread of
   this process, its own client) and the job's success committed from another
   connection; latency = ``result()`` returning - the success's commit
   acknowledged, in ms.
"""

from __future__ import annotations

import asyncio
import queue as queues
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from raquel_pg import AsyncJob, AsyncRaquel, Raquel

from .measure import Section, Sizes, percentiles, read_span, wait_until
from .scenarios import CONCURRENCY, RAQUEL_LEFT, RAQUEL_SPAN, enqueue_sql
from .server import Server

#: What the result-storing handler returns.
RESULT = {"ok": True, "n": 1}


async def returns_none(job: AsyncJob) -> None:
    """No result."""


async def returns_result(job: AsyncJob) -> dict[str, Any]:
    """A small result, stored with the success."""
    return RESULT


@contextmanager
def worker(dsn: str, queue: str, handler: Any, batched: bool) -> Iterator[None]:
    """An AsyncWorker of :data:`CONCURRENCY` tasks running ``handler`` on a loop in a thread."""
    started = threading.Event()
    handle: dict[str, Any] = {}

    async def main() -> None:
        async with AsyncRaquel(dsn, pool_size=CONCURRENCY) as rq:
            running = rq.subscribe(queue, concurrency=CONCURRENCY, batch_outcomes=batched)(handler)
            handle.update(loop=asyncio.get_running_loop(), worker=running)
            started.set()
            await running.run()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="bench-results-worker")
    thread.start()
    started.wait()
    try:
        yield
    finally:
        handle["loop"].call_soon_threadsafe(handle["worker"].stop)
        thread.join()


def set_trigger(dsn: str, enabled: bool) -> None:
    """Enables or disables the result-waiters trigger of raquel_jobs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            b"ALTER TABLE raquel.raquel_jobs ENABLE TRIGGER raquel_jobs_30_notify_results"
            if enabled
            else b"ALTER TABLE raquel.raquel_jobs DISABLE TRIGGER raquel_jobs_30_notify_results"
        )


#: (label, handler, trigger enabled) of the rate runs.
VARIANTS = (
    ("no result, result trigger disabled (as before issue 25)", returns_none, False),
    ("no result", returns_none, True),
    ("result stored", returns_result, True),
)


def rates(dsn: str, jobs: int, batched: bool, rounds: int) -> dict[str, list[float]]:
    """jobs/s of each variant, ``rounds`` interleaved runs each (variant order rotated)."""
    measured: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    for round_number in range(rounds):
        order = VARIANTS[round_number % 3 :] + VARIANTS[: round_number % 3]
        for label, handler, trigger in order:
            queue = f"bench_results_{round_number}_{VARIANTS.index((label, handler, trigger))}"
            set_trigger(dsn, trigger)
            enqueue_sql(dsn, queue, jobs)
            with worker(dsn, queue, handler, batched):
                wait_until(dsn, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
            span = read_span(dsn, RAQUEL_SPAN, [queue])
            if span.rate is not None:
                measured[label].append(span.rate)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM raquel.raquel_jobs WHERE queue = %s", [queue])
    set_trigger(dsn, True)
    return measured


def wake_latencies(dsn: str, samples: int, warmup: int = 5) -> list[float]:
    """ms from a success's commit to ``result()`` returning in a waiting thread."""
    ids: queues.Queue[Any] = queues.Queue()
    returned: queues.Queue[float] = queues.Queue()

    def waiter() -> None:
        with Raquel(dsn, pool_size=2) as rq:
            while (job_id := ids.get()) is not None:
                rq.result(job_id, timeout=60)
                returned.put(time.time())

    thread = threading.Thread(target=waiter, name="bench-result-waiter")
    thread.start()
    latencies = []
    try:
        with (
            psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn,
            psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as probe,
        ):
            for i in range(samples + warmup):
                job_id = conn.execute("SELECT raquel_enqueue('bench_result_wake', 'x')").fetchone()[0]  # type: ignore[index]
                claimed = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['bench_result_wake'])").fetchone()
                ids.put(job_id)
                deadline = time.monotonic() + 30
                while probe.execute("SELECT count(*) FROM raquel.raquel_result_waiters").fetchone() == (0,):
                    assert time.monotonic() < deadline, "the waiter never registered"
                    time.sleep(0.001)
                conn.execute("SELECT raquel_complete(%s, %s, result => '1')", claimed)
                committed = time.time()
                done = returned.get(timeout=60)
                if i >= warmup:
                    latencies.append((done - committed) * 1000)
    finally:
        ids.put(None)
        thread.join()
    return latencies


def scenario_results(server: Server, sizes: Sizes) -> Section:
    """Scenario ``results``: the rate with results stored vs not, and result wake-up p50/p99."""
    rounds = 1 if sizes.name == "tiny" else 3
    section = Section(
        "Results (issue 25)",
        f"{sizes.e2e_jobs:,} no-op jobs enqueued first, drained by one AsyncWorker of {CONCURRENCY} "
        "tasks whose handler returns None or a small dict (stored with the success); "
        f"{rounds} interleaved rounds, median jobs/s (headline: first claim to last durable success). "
        "The first row disables the result-waiters trigger (the schema before issue 25). "
        f"Then result wake-up: {sizes.wake_samples:,} jobs, each claimed and completed from SQL "
        "while a thread of the harness (its own client) blocks in `rq.result(job_id)`: ms from "
        "the success's commit acknowledged to `result()` returning (NOTIFY raquel_results, "
        "then one read).",
        ["measure", "outcomes", "median jobs/s or ms", "runs / samples", "ratio to no result"],
    )
    for batched in (False, True):
        with server.database("results") as dsn:
            measured = rates(dsn, sizes.e2e_jobs, batched, rounds)
        outcomes = "batch_outcomes=True" if batched else "each at once"
        base = statistics.median(measured["no result"]) if measured["no result"] else None
        for label, values in measured.items():
            median = statistics.median(values) if values else None
            section.add(
                label,
                outcomes,
                f"{median:,.0f}" if median else "n/a",
                len(values),
                f"{median / base:.2f}x" if median and base else "n/a",
            )
            section.figures[f"results {label} {outcomes}"] = median
    with server.database("results_wake") as dsn:
        latencies = wake_latencies(dsn, sizes.wake_samples)
    p50, p95, p99 = percentiles(latencies)
    section.add(
        "result wake-up p50 / p95 / p99 / max",
        "-",
        f"{p50:.2f} / {p95:.2f} / {p99:.2f} / {max(latencies):.2f} ms",
        len(latencies),
        "-",
    )
    section.figures["result_wake_p50"], section.figures["result_wake_p99"] = p50, p99
    return section
