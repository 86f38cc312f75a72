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
from .measure import Section, Sizes, Span, fmt, percentiles, read_span, wait_until
from .report import markdown_table
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


def drain_rate(direct: str, path: str, pooled: bool, batched: bool, jobs: int) -> Span:
    """Pre-enqueued jobs drained by the worker processes connected by ``path``."""
    queue = "bench_pooler"
    enqueue_sql(direct, queue, jobs)
    with workers.worker_processes(path, queue, CONCURRENCY, PROCESSES, batched, client_flags=flags(direct, pooled)):
        wait_until(direct, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
    return read_span(direct, RAQUEL_SPAN, [queue])


def wake_latencies(direct: str, path: str, pooled: bool, samples: int, warmup: int = 5) -> list[float]:
    """ms from an enqueue's commit (sent by ``path``) to its handler's start, idle AsyncWorker."""
    (worker,) = workers.spawn("wake", path, "bench_wake", "async", *flags(direct, pooled))
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


WAYS = ("direct", "PgBouncer")
OUTCOMES = {"each at once": False, "batch_outcomes=True": True}


def scenario_pooler(server: Server, sizes: Sizes) -> Section:
    """Scenario 6: drain rate and wake-up latency through PgBouncer (transaction mode) and direct."""
    rounds = ROUNDS[sizes.name]
    section = Section(
        "6. Behind PgBouncer",
        f"{PROCESSES} worker processes x AsyncWorker with {CONCURRENCY} tasks "
        f"(each a pool of 10 connections) drain {sizes.e2e_jobs:,} pre-enqueued no-op jobs, "
        "connected directly or through PgBouncer (`pool_mode = transaction`, "
        f"`default_pool_size = {POOL_SIZE}`: 40 client connections on {POOL_SIZE} server connections; "
        "the clients `prepared_statements=False`, their LISTEN direct), outcomes each at once and "
        "batched. jobs/s as in scenario 2. Each round drains once each way for each outcome mode, "
        f"the two ways back to back (the order alternates between rounds); {rounds} rounds. "
        "Ratio: PgBouncer / direct within each round, and the median of those.",
        ["connections", "outcomes", "jobs/s per round", "median jobs/s", "ratio to direct per round", "median ratio"],
    )
    wake = Section(
        "6b. Wake-up behind PgBouncer",
        f"An idle AsyncWorker and {sizes.wake_samples // rounds:,} single "
        "enqueues per round and way, sent the same way as the worker's calls (through the pooler "
        "or direct; the LISTEN direct in both), as in scenario 3; the percentiles of all rounds.",
        ["connections", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    )
    reason = pgbouncer.missing()
    if reason is not None:
        section.notes.append(f"Not run: {reason}.")
        return section
    rates: dict[tuple[str, str], list[float]] = {(w, o): [] for w in WAYS for o in OUTCOMES}
    waits: dict[str, list[float]] = {w: [] for w in WAYS}
    with pgbouncer.running(server.dsn, pool_size=POOL_SIZE) as pooled_admin:
        port = pgbouncer.port_of(pooled_admin)
        for n in range(rounds):
            order = WAYS if n % 2 == 0 else WAYS[::-1]
            for outcomes, batched in OUTCOMES.items():
                for way in order:
                    pooled = way == "PgBouncer"
                    with server.database("pooler") as direct:
                        path = pgbouncer.through(direct, port) if pooled else direct
                        span = drain_rate(direct, path, pooled, batched, sizes.e2e_jobs)
                        rates[way, outcomes].append(span.rate or 0.0)
            for way in order:
                pooled = way == "PgBouncer"
                with server.database("pooler") as direct:
                    path = pgbouncer.through(direct, port) if pooled else direct
                    waits[way] += wake_latencies(direct, path, pooled, max(sizes.wake_samples // rounds, 5))
    verdicts = []
    for outcomes in OUTCOMES:
        direct_rates = rates["direct", outcomes]
        for way in WAYS:
            mine = rates[way, outcomes]
            per_round = [m / d if d else 0.0 for m, d in zip(mine, direct_rates)]
            median_ratio = statistics.median(per_round)
            section.add(
                way,
                outcomes,
                ", ".join(fmt(r) for r in mine),
                statistics.median(mine),
                ", ".join(f"{r:.2f}x" for r in per_round),
                f"{median_ratio:.2f}x",
            )
            section.figures[f"pooler {way} {outcomes} jobs/s"] = statistics.median(mine)
            if way == "PgBouncer":
                section.figures[f"pooler ratio {outcomes}"] = median_ratio
                verdicts.append(
                    f"{outcomes} {median_ratio:.2f}x ({'met' if median_ratio >= TARGET_RATIO else 'NOT met'})"
                )
    for way in WAYS:
        p50, p95, p99 = percentiles(waits[way])
        wake.add(way, len(waits[way]), p50, p95, p99, max(waits[way]))
        section.figures[f"pooler {way} wake p99"] = p99
    p99 = percentiles(waits["PgBouncer"])[2]
    section.notes.append(
        f"Targets (issue 19): through PgBouncer >= {TARGET_RATIO}x the direct drain rate (median of the "
        f"rounds' ratios): {'; '.join(verdicts)}. Wake-up p99 through PgBouncer < {TARGET_WAKE_P99_MS:g} ms: "
        f"{p99:.1f} ms ({'met' if p99 < TARGET_WAKE_P99_MS else 'NOT met'})."
    )
    section.notes += [f"### {wake.title}", wake.method, markdown_table(wake.headers, wake.rows)]
    return section
