"""Scenario 6: behind PgBouncer in transaction mode against direct connections (issue 19).

The same work both ways, in interleaved rounds (the order alternates), and
the medians compared: 4 worker processes x AsyncWorker with 50 tasks each
(pools of 10 connections: 40 client connections) drain pre-enqueued no-op
jobs, directly or through a PgBouncer with ``default_pool_size = 10`` (10
server connections), the workers' LISTEN direct in both; then an idle worker's
wake-up latency, its enqueues sent through the same path as its claims.
"""

from __future__ import annotations

import statistics
import time

import psycopg

from . import pgbouncer, workers
from .measure import Section, Sizes, Span, fmt, percentiles, ratio, read_span, wait_until
from .scenarios import RAQUEL_LEFT, RAQUEL_SPAN, enqueue_sql
from .server import Server

PROCESSES = 4
CONCURRENCY = 50
#: PgBouncer's default_pool_size: server connections per database and user.
POOL_SIZE = 10
#: Rounds of each way (full size; fewer at the smaller sizes).
ROUNDS = {"tiny": 1, "quick": 2, "full": 3}
#: Targets of issue 19.
TARGET_RATIO = 0.8
TARGET_WAKE_P99_MS = 25.0

NOPREPARE = "noprepare"


def flags(direct: str, pooled: bool) -> tuple[str, ...]:
    """worker_proc's client flags: through the pooler, no prepared statements and LISTEN direct."""
    return (f"listen={direct}", NOPREPARE) if pooled else ()


def drain_rate(direct: str, path: str, pooled: bool, jobs: int) -> Span:
    """Pre-enqueued jobs drained by the worker processes connected by ``path``."""
    queue = "bench_pooler"
    enqueue_sql(direct, queue, jobs)
    with workers.worker_processes(path, queue, CONCURRENCY, PROCESSES, client_flags=flags(direct, pooled)):
        wait_until(direct, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
    return read_span(direct, RAQUEL_SPAN, [queue])


def wake_latencies(direct: str, path: str, pooled: bool, samples: int, warmup: int = 5) -> list[float]:
    """ms from an enqueue's commit (sent by ``path``) to its handler's start, idle AsyncWorker."""
    worker = workers.spawn("wake", path, "bench_wake", "async", *flags(direct, pooled))
    assert worker.stdout is not None
    latencies = []
    try:
        with psycopg.connect(path, autocommit=True, prepare_threshold=None if pooled else 0) as conn:
            for i in range(samples + warmup):
                conn.execute("SELECT raquel_enqueue('bench_wake', %s)", [str(i)])
                committed = time.time()
                payload, started = worker.stdout.readline().split()
                assert payload == str(i), f"unexpected job {payload} (expected {i})"
                if i >= warmup:
                    latencies.append((float(started) - committed) * 1000)
                time.sleep(0.015)  # the worker records the outcome and is idle again
    finally:
        workers.stop(worker)
    return latencies


def scenario_pooler(server: Server, sizes: Sizes) -> Section:
    """Scenario 6: drain rate and wake-up latency through PgBouncer (transaction mode) and direct."""
    rounds = ROUNDS[sizes.name]
    section = Section(
        "6. Behind PgBouncer", f"{PROCESSES} worker processes x AsyncWorker with {CONCURRENCY} tasks "
        f"(each a pool of 10 connections) drain {sizes.e2e_jobs:,} pre-enqueued no-op jobs, outcomes "
        f"each at once, connected directly or through PgBouncer (`pool_mode = transaction`, "
        f"`default_pool_size = {POOL_SIZE}`: 40 client connections on {POOL_SIZE} server connections; "
        "the clients `prepared_statements=False`, their LISTEN direct). jobs/s as in scenario 2. "
        f"Wake-up: an idle AsyncWorker and {sizes.wake_samples // rounds:,} single enqueues per round, "
        "sent the same way as the worker's calls, as in scenario 3. "
        f"{rounds} interleaved rounds (the order alternates); the medians of the rounds' rates, the "
        "percentiles of all rounds' latencies.",
        ["connections", "rounds", "jobs/s per round", "median jobs/s", "ratio to direct",
         "wake p50 ms", "wake p99 ms", "wake max ms"])
    reason = pgbouncer.missing()
    if reason is not None:
        section.notes.append(f"Not run: {reason}.")
        return section
    rates: dict[str, list[float]] = {"direct": [], "PgBouncer": []}
    waits: dict[str, list[float]] = {"direct": [], "PgBouncer": []}
    with pgbouncer.running(server.dsn, pool_size=POOL_SIZE) as pooled_admin:
        port = pgbouncer.port_of(pooled_admin)
        for n in range(rounds):
            order = ["direct", "PgBouncer"] if n % 2 == 0 else ["PgBouncer", "direct"]
            for way in order:
                pooled = way == "PgBouncer"
                with server.database("pooler") as direct:
                    path = pgbouncer.through(direct, port) if pooled else direct
                    span = drain_rate(direct, path, pooled, sizes.e2e_jobs)
                    if span.rate is not None:
                        rates[way].append(span.rate)
                    waits[way] += wake_latencies(direct, path, pooled, max(sizes.wake_samples // rounds, 5))
    medians = {way: statistics.median(r) if r else None for way, r in rates.items()}
    for way in ("direct", "PgBouncer"):
        p50, _, p99 = percentiles(waits[way])
        section.add(way, len(rates[way]), ", ".join(fmt(r) for r in rates[way]), medians[way],
                    ratio(medians[way], medians["direct"]), p50, p99, max(waits[way]))
        section.figures[f"pooler {way} jobs/s"] = medians[way]
        section.figures[f"pooler {way} wake p99"] = p99
    pooled_ratio = (medians["PgBouncer"] or 0) / medians["direct"] if medians["direct"] else None
    p99 = percentiles(waits["PgBouncer"])[2]
    section.notes.append(
        f"Targets (issue 19): through PgBouncer >= {TARGET_RATIO}x the direct drain rate: "
        f"{'n/a' if pooled_ratio is None else f'{pooled_ratio:.2f}x'} "
        f"({'met' if pooled_ratio is not None and pooled_ratio >= TARGET_RATIO else 'NOT met'}); "
        f"wake-up p99 through PgBouncer < {TARGET_WAKE_P99_MS:g} ms: {p99:.1f} ms "
        f"({'met' if p99 < TARGET_WAKE_P99_MS else 'NOT met'}).")
    return section
