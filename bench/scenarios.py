"""raquel_pg's own scenarios: enqueue, end to end, wake-up latency, history.

Each scenario takes the server and the sizes and returns a :class:`Section`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg

from raquel_pg import Raquel
from raquel_pg.queries import QUERIES

from . import capabilities, workers
from .measure import (NA, Section, Sizes, Span, pgbench, percentiles, rate_cell, ratio, ratios, read_span,
                      wait_until)
from .server import Server

#: Jobs in flight per worker in the end-to-end, history and peer scenarios.
CONCURRENCY = 10
#: Worker processes in the multi-process end-to-end run.
PROCESSES = 2

RAQUEL_SPAN = """
SELECT extract(epoch FROM raquel_ts(finished_at)), extract(epoch FROM raquel_ts(min(claimed_at) OVER ()))
FROM raquel_jobs WHERE queue = %s AND status = 'success'"""

#: Jobs of a queue not yet durably finished (both halves use a partial index).
RAQUEL_LEFT = """
SELECT (SELECT count(*) FROM raquel_jobs WHERE queue = %s AND status IN ('queued', 'failed'))
     + (SELECT count(*) FROM raquel_jobs WHERE queue = %s AND status = 'claimed')"""

WorkerRunner = Callable[[str, str], AbstractContextManager[None]]


def enqueue_sql(dsn: str, queue: str, jobs: int) -> None:
    """Enqueues ``jobs`` jobs with one statement calling raquel_enqueue once per job."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])


def drain(dsn: str, queue: str, jobs: int, runner: WorkerRunner) -> Span:
    """Pre-enqueues ``jobs`` jobs, lets ``runner``'s workers drain them, returns the span."""
    enqueue_sql(dsn, queue, jobs)
    with runner(dsn, queue):
        wait_until(dsn, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
    return read_span(dsn, RAQUEL_SPAN, [queue])


# --- 1. enqueue ----------------------------------------------------------------


def timed_enqueues(dsn: str, producers: int, calls: int, queue: str = "bench_enqueue") -> float:
    """jobs/s of ``producers`` threads each making ``calls`` single ``enqueue()`` calls."""
    with Raquel(dsn, pool_size=producers) as rq:
        barrier = threading.Barrier(producers + 1)

        def produce() -> None:
            for _ in range(10):  # warm-up: the pool grows to one connection per producer
                rq.enqueue("bench_warmup", "x")
            barrier.wait()
            for _ in range(calls):
                rq.enqueue(queue, "x")

        threads = [threading.Thread(target=produce) for _ in range(producers)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        return producers * calls / (time.perf_counter() - started)


def on_off_rates(on_dsn: str, off_dsn: str, calls: int, repeats: int = 3
                 ) -> tuple[dict[int, float], dict[int, float]]:
    """Median enqueue rates by producers (1, 4) with the trigger on and off, runs interleaved.

    On and off alternate, ``repeats`` times each, so that the machine's noise
    falls on both alike.
    """
    runs: dict[tuple[str, int], list[float]] = {}
    for _ in range(repeats):
        for producers in (1, 4):
            for trigger, dsn in (("on", on_dsn), ("off", off_dsn)):
                runs.setdefault((trigger, producers), []).append(timed_enqueues(dsn, producers, calls))
    return ({p: statistics.median(runs["on", p]) for p in (1, 4)},
            {p: statistics.median(runs["off", p]) for p in (1, 4)})


def enqueue_many_rate(dsn: str, jobs: int) -> float | None:
    """Median jobs/s of three ``enqueue_many`` calls of ``jobs`` jobs, None without the API."""
    if not capabilities.has_enqueue_many():
        return None
    rates = []
    with Raquel(dsn) as rq:
        for _ in range(3):
            started = time.perf_counter()
            rq.enqueue_many("bench_many", ["x"] * jobs)  # type: ignore[attr-defined]
            rates.append(jobs / (time.perf_counter() - started))
    return statistics.median(rates)


def scenario_enqueue(server: Server, sizes: Sizes) -> Section:
    """Scenario 1: single enqueue() calls (NOTIFY on/off), enqueue_many, pgbench."""
    section = Section(
        "1. Enqueue", "Single `Raquel.enqueue()` calls from 1 and 4 producer threads (one pool, "
        f"{sizes.enqueue_calls:,} calls each), with the NOTIFY trigger on and off (`ALTER TABLE raquel_jobs "
        "DISABLE TRIGGER USER` in a database of its own; on and off runs interleaved, median of 3 "
        "each), and on (one run each) while a worker (its own process) "
        "waits for another queue, or runs this queue's jobs as they come (it then shares the CPU "
        "with the producers); `enqueue_many()` of "
        f"{sizes.enqueue_many:,} jobs (median of 3 calls); `SELECT raquel_enqueue('bench_pgbench', 'x')` "
        f"by pgbench (-M prepared, {sizes.pgbench_seconds} s per run); a plain INSERT into the pure-SQL "
        "table by pgbench as a reference. jobs/s = jobs / wall-clock time of the calls.",
        ["how", "producers", "NOTIFY trigger", "jobs/s", "ratio to trigger off"])
    with server.database("enqueue_off") as off_dsn, server.database("enqueue_on") as dsn:
        with psycopg.connect(off_dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE raquel_jobs DISABLE TRIGGER USER")
        on, off = on_off_rates(dsn, off_dsn, sizes.enqueue_calls)
        for trigger, rates in (("on", on), ("off", off)):
            for producers in (1, 4):
                rate = rates[producers]
                section.add("enqueue()", producers, trigger, rate, ratio(rate, off[producers]))
                section.figures[f"enqueue_{trigger}_{producers}"] = rates[producers]
        for label, args in (("one idle worker of another queue", ("wake", dsn, "bench_idle", "async")),
                            ("one worker running this queue's jobs",
                             ("e2e", dsn, "bench_enqueue", str(CONCURRENCY)))):
            worker = workers.spawn(*args)
            try:
                for producers in (1, 4):
                    rate = timed_enqueues(dsn, producers, sizes.enqueue_calls)
                    section.add(f"enqueue(), {label}", producers, "on", rate, ratio(rate, off[producers]))
            finally:
                workers.stop(worker)
        many = enqueue_many_rate(dsn, sizes.enqueue_many)
        section.add(f"enqueue_many() of {sizes.enqueue_many:,}", 1, "on", many if many else NA, "")
        section.figures["enqueue_many"] = many
        started = time.perf_counter()
        enqueue_sql(dsn, "bench_sql", sizes.enqueue_many)
        section.add(f"SELECT raquel_enqueue(...) FROM generate_series(1, {sizes.enqueue_many:,})", 1, "on",
                    sizes.enqueue_many / (time.perf_counter() - started), "")
    _pgbench_enqueue(server, sizes, section)
    return section


def _pgbench_enqueue(server: Server, sizes: Sizes, section: Section) -> None:
    """The pgbench rows of scenario 1 (n/a without pgbench)."""
    program = server.pgbench()
    for producers in (1, 4):
        if program is None:
            section.add("pgbench: SELECT raquel_enqueue(...)", producers, "on", NA, "")
            continue
        with server.database("enqueue_pgbench") as dsn:
            rate = pgbench(program, dsn, "raquel_enqueue.sql", clients=producers, seconds=sizes.pgbench_seconds)
        section.add("pgbench: SELECT raquel_enqueue(...)", producers, "on", rate, "")
        section.figures[f"pgbench_enqueue_{producers}"] = rate
    if program is not None:
        with server.database("enqueue_pure", migrated=False) as dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute((workers.ROOT / "bench" / "sql" / "pure_schema.sql").read_bytes())
            rate = pgbench(program, dsn, "pure_insert.sql", clients=4, seconds=sizes.pgbench_seconds)
        section.add("pgbench: plain INSERT, minimal table (reference)", 4, "none", rate, "")


# --- 2. end to end -------------------------------------------------------------


def _fixed(make: Callable[[str, str, bool], AbstractContextManager[None]], batched: bool) -> WorkerRunner:
    """``make`` with its ``batched`` argument fixed."""
    def runner(dsn: str, queue: str) -> AbstractContextManager[None]:
        return make(dsn, queue, batched)
    return runner


def e2e_runners() -> list[tuple[str, str, WorkerRunner | None]]:
    """(worker kind, outcomes, runner or None when unavailable) of scenario 2."""
    batched = capabilities.has_batch_outcomes()
    kinds: list[tuple[str, Callable[[str, str, bool], AbstractContextManager[None]]]] = [
        (f"sync Worker, {CONCURRENCY} threads",
         lambda dsn, q, batched: workers.sync_worker(dsn, q, CONCURRENCY, batched)),
        (f"AsyncWorker, {CONCURRENCY} tasks",
         lambda dsn, q, batched: workers.async_worker(dsn, q, CONCURRENCY, batched)),
        (f"{PROCESSES} processes x AsyncWorker, {CONCURRENCY} tasks each",
         lambda dsn, q, batched: workers.worker_processes(dsn, q, CONCURRENCY, PROCESSES, batched)),
    ]
    runners: list[tuple[str, str, WorkerRunner | None]] = []
    for name, make in kinds:
        runners.append((name, "each at once", _fixed(make, False)))
        runners.append((name, "batched", _fixed(make, True) if batched else None))
    return runners


def scenario_e2e(server: Server, sizes: Sizes) -> Section:
    """Scenario 2: pre-enqueued no-op jobs drained by threads, tasks, processes."""
    section = Section(
        "2. End to end", f"{sizes.e2e_jobs:,} no-op jobs enqueued first, then drained by the workers. "
        "jobs/s = jobs / (last `finished_at` - first `claimed_at`) of those jobs, read from the table "
        "(ms resolution): from the first claim to the last durable success. Steady jobs/s: the same "
        "between the 5th and 95th percentile of the successes (no start-up, no tail).",
        ["workers", "outcomes", "jobs", "jobs/s", "steady jobs/s", "ratio to AsyncWorker, headline (steady)"])
    spans: list[tuple[str, str, Span | None]] = []
    for name, outcomes, runner in e2e_runners():
        if runner is None:
            spans.append((name, outcomes, None))
            continue
        with server.database("e2e") as dsn:
            spans.append((name, outcomes, drain(dsn, "bench_e2e", sizes.e2e_jobs, runner)))
    reference = next(span for name, outcomes, span in spans
                     if name.startswith("AsyncWorker") and outcomes == "each at once")
    for name, outcomes, span in spans:
        section.add(name, outcomes, span.jobs if span else "", *rate_cell(span), ratios(span, reference))
        section.figures[f"e2e {name} {outcomes}"] = span.rate if span else None
    return section


# --- 3. wake-up latency --------------------------------------------------------


def wake_samples(dsn: str, kind: str, samples: int, warmup: int = 5) -> list[float]:
    """Latencies (ms) from an enqueue's commit to its handler's start, idle worker in another process."""
    worker = workers.spawn("wake", dsn, "bench_wake", kind)
    assert worker.stdout is not None
    latencies = []
    try:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
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


def scenario_wake(server: Server, sizes: Sizes) -> Section:
    """Scenario 3: enqueue-commit to handler start, idle worker woken by NOTIFY."""
    section = Section(
        "3. Wake-up latency", f"An idle worker (one slot, its own process) and {sizes.wake_samples:,} "
        "jobs enqueued one at a time from another connection, each after the previous job ran and "
        "the worker was idle again (15 ms pause). Latency = handler start (`time.time()` in the "
        "worker) - the moment the enqueue's commit was acknowledged to the producer, in ms.",
        ["worker", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"])
    for kind in ("async", "sync"):
        with server.database("wake") as dsn:
            latencies = wake_samples(dsn, kind, sizes.wake_samples)
        p50, p95, p99 = percentiles(latencies)
        section.add("AsyncWorker" if kind == "async" else "sync Worker", len(latencies), p50, p95, p99,
                    max(latencies))
        section.figures[f"wake_{kind}_p50"], section.figures[f"wake_{kind}_p99"] = p50, p99
    return section


# --- 4. history ----------------------------------------------------------------

HISTORY_INSERT = """
INSERT INTO raquel_jobs (queue, payload, status, attempts, enqueued_at, scheduled_at, claimed_by,
                         claimed_at, finished_at)
SELECT 'bench_history', 'x', 'success', 1, t, t, 'bench', t, t
FROM (SELECT raquel_now_ms() - 86400000 + g AS t FROM generate_series(1, %s) AS g) AS s"""


def claim_latencies(dsn: str, samples: int) -> list[float]:
    """Round-trip times (ms) of ``samples`` claims of one job (the client's claim statement)."""
    enqueue_sql(dsn, "bench_claim", samples)
    latencies = []
    args = {"queues": ["bench_claim"], "claim_as": "bench", "batch": 1, "lease": 60000}
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        for _ in range(samples):
            started = time.perf_counter()
            conn.execute(QUERIES["claim"], args).fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
        conn.execute("UPDATE raquel_jobs SET status = 'success', finished_at = raquel_now_ms() "
                     "WHERE queue = 'bench_claim'")
    return latencies


def scenario_history(server: Server, sizes: Sizes) -> Section:
    """Scenario 4: claim latency and end-to-end jobs/s with finished jobs in the table."""
    section = Section(
        "4. History", "Finished (`success`) jobs bulk-inserted into the table (INSERT ... SELECT "
        f"generate_series, then VACUUM ANALYZE), then {sizes.claim_samples:,} claims of one job "
        "(`raquel_claim` via the client's statement, round trip timed in Python) and an end-to-end "
        f"run of {sizes.e2e_jobs:,} jobs (AsyncWorker, {CONCURRENCY} tasks, measured as in scenario 2).",
        ["finished jobs in the table", "claim p50 ms", "claim p95 ms", "claim mean ms", "e2e jobs/s",
         "claim p50 vs empty", "jobs/s vs empty"])
    empty_claim = empty_rate = None
    for finished in sizes.history:
        with server.database("history") as dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(HISTORY_INSERT.encode(), [finished])
                conn.execute("VACUUM ANALYZE raquel_jobs")
            claims = claim_latencies(dsn, sizes.claim_samples)
            span = drain(dsn, "bench_e2e", sizes.e2e_jobs,
                         lambda d, q: workers.async_worker(d, q, CONCURRENCY))
        p50, p95, _ = percentiles(claims)
        if finished == 0:
            empty_claim, empty_rate = p50, span.rate
        section.add(finished, p50, p95, statistics.fmean(claims), span.rate,
                    ratio(p50, empty_claim), ratio(span.rate, empty_rate))
        section.figures[f"history_{finished}_claim_p50"] = p50
        section.figures[f"history_{finished}_rate"] = span.rate
    return section

