"""raquel_pg's own scenarios: enqueue, end to end, wake-up latency, history.

Each scenario takes the server and the sizes and returns a :class:`Section`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext

import psycopg

from raquel_pg import Raquel
from raquel_pg.queries import QUERIES

from . import workers
from .measure import (
    NA,
    Section,
    Sizes,
    Span,
    fmt,
    percentiles,
    pgbench,
    rate_cell,
    ratio,
    ratios,
    read_span,
    wait_until,
)
from .server import Server

#: Jobs in flight per worker in the end-to-end, history and peer scenarios.
CONCURRENCY = 10
#: Worker processes in the multi-process end-to-end run.
PROCESSES = 2

RAQUEL_SPAN = """
SELECT extract(epoch FROM raquel_ts(finished_at)), extract(epoch FROM raquel_ts(min(claimed_at) OVER ()))
FROM raquel_jobs WHERE queue = %s AND status = 'success'"""

#: Whether a queue has a job not yet durably finished (1) or not (0), polled
#: every 50 ms while workers drain it. Each half stops at its first match in a
#: partial index (a claimed job always has a lease, by raquel_jobs_claim_check):
#: counting them instead read every waiting job's entry at each poll (11.9 ms
#: per poll beside 200,000 waiting jobs, against 0.38 ms), CPU taken from the
#: run it measured: 2 processes x 500 tasks drained 200,000 jobs at 24,783
#: jobs/s polled by count, 29,133 by this (medians of 3, alternating).
RAQUEL_LEFT = """
SELECT (EXISTS (SELECT FROM raquel_jobs WHERE queue = %s AND status IN ('queued', 'failed'))
        OR EXISTS (SELECT FROM raquel_jobs WHERE queue = %s AND status = 'claimed'
                                             AND lease_expires_at IS NOT NULL))::int"""

WorkerRunner = Callable[[str, str], AbstractContextManager[None]]


def enqueue_sql(dsn: str, queue: str, jobs: int) -> None:
    """Enqueues ``jobs`` jobs with one statement calling raquel_enqueue once per job."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])


def drain(dsn: str, queue: str, jobs: int, runner: WorkerRunner) -> Span:
    """Pre-enqueues ``jobs`` jobs, ANALYZEs the jobs table (as autovacuum would in time, and as
    the harness does for every peer), lets ``runner``'s workers drain them, returns the span."""
    enqueue_sql(dsn, queue, jobs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE raquel.raquel_jobs")
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


#: The NOTIFY paths scenario 1 compares, each in a database of its own: (key, label).
NOTIFY_MODES = (
    ("off", "trigger off"),
    ("always", "always NOTIFY (0001's trigger)"),
    ("nowaiter", "0009, no waiter"),
    ("waiter", "0009, one waiter registered (woken once)"),
    ("rewaiter", "0009, one idle waiter registering again at each wake-up"),
)


#: The jobs table's first insert trigger function (a NOTIFY per ready queue at every insert,
#: whether a worker waits or not), as it was before idle workers registered (docs/internals.md).
ORIGINAL_INSERT_TRIGGER = """\
CREATE OR REPLACE FUNCTION raquel.raquel_tg_jobs__notify_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = raquel, pg_catalog, pg_temp
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    PERFORM pg_notify('raquel_jobs', ready.queue)
    FROM (SELECT DISTINCT n.queue FROM raquel_new_jobs n
          WHERE n.status IN ('queued', 'failed') AND n.scheduled_at <= v_now) AS ready;
    RETURN NULL;
END;
$$;
"""


def original_insert_trigger() -> bytes:
    """:data:`ORIGINAL_INSERT_TRIGGER`, to put back in place of the migrated one."""
    return ORIGINAL_INSERT_TRIGGER.encode()


def set_notify_mode(dsn: str, mode: str, queue: str = "bench_enqueue") -> None:
    """Puts a fresh database in a NOTIFY mode of :data:`NOTIFY_MODES`.

    off: the jobs table's triggers disabled; always: the original insert trigger
    function put back (the database is dropped after the scenario); nowaiter:
    as migrated; waiter: ``raquel_wait_begin`` registers a waiter for
    ``queue`` for an hour, which the first job's NOTIFY consumes (0009);
    rewaiter: see :func:`rewaiting` (run it around the timed calls).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        if mode == "off":
            conn.execute("ALTER TABLE raquel.raquel_jobs DISABLE TRIGGER USER")
        elif mode == "always":
            conn.execute(original_insert_trigger())
        elif mode == "waiter":
            conn.execute("SELECT raquel_wait_begin(gen_random_uuid(), ARRAY[%s], 3600000)", [queue])


@contextmanager
def rewaiting(dsn: str, queue: str = "bench_enqueue") -> Iterator[None]:
    """An idle waiter for ``queue`` that registers again at once after each NOTIFY (claiming
    nothing): the most a waiter can cost producers, every job notifies it while it lasts."""
    stop = threading.Event()
    ready = threading.Event()

    def wait() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("LISTEN raquel_jobs")
            register = ("SELECT raquel_wait_begin('00000000-0000-0000-0000-000000000001', ARRAY[%s], 3600000)", [queue])
            conn.execute(*register)
            ready.set()
            while not stop.is_set():
                if any(True for _ in conn.notifies(timeout=0.1)):
                    conn.execute(*register)

    thread = threading.Thread(target=wait, name="bench-rewaiter")
    thread.start()
    ready.wait()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def notify_mode_rates(dsns: dict[str, str], calls: int, repeats: int = 3) -> dict[tuple[str, int], float]:
    """Median enqueue rate by (NOTIFY mode, producers 1 and 4), runs interleaved.

    The modes alternate, ``repeats`` rounds of each, so that the machine's
    noise falls on all alike.
    """
    runs: dict[tuple[str, int], list[float]] = {}
    for _ in range(repeats):
        for producers in (1, 4):
            for mode, dsn in dsns.items():
                with rewaiting(dsn) if mode == "rewaiter" else nullcontext():
                    runs.setdefault((mode, producers), []).append(timed_enqueues(dsn, producers, calls))
    return {key: statistics.median(rates) for key, rates in runs.items()}


def enqueue_many_rates(dsn: str, jobs: int, rounds: int = 5) -> list[tuple[str, float]]:
    """(how, median jobs/s) of ``jobs`` jobs per call: ``Raquel.enqueue_many``, and
    ``raquel_enqueue_many`` called from SQL with the payloads as a text and as a binary parameter.

    Each way is called once untimed (its connection's first call compiles the
    function and prepares the statement), then once per round, in rotating
    order, so that none is measured on a colder server or a smaller table.
    """
    payloads = ["x"] * jobs
    with Raquel(dsn) as rq, psycopg.connect(dsn, autocommit=True) as conn:

        def sql(binary: bool, statement: str) -> Callable[[], object]:
            return lambda: conn.cursor(binary=binary).execute(statement.encode(), [payloads]).fetchall()

        calls: dict[str, Callable[[], object]] = {
            f"enqueue_many() of {jobs:,}": lambda: rq.enqueue_many("bench_many", payloads),
            f"SELECT raquel_enqueue_many(...) of {jobs:,}, text parameter": sql(
                False, "SELECT raquel_enqueue_many('bench_many', %s::text[])"
            ),
            f"SELECT raquel_enqueue_many(...) of {jobs:,}, binary parameter": sql(
                True, "SELECT raquel_enqueue_many('bench_many', %b::text[])"
            ),
        }
        for call in calls.values():
            call()
        rates: dict[str, list[float]] = {how: [] for how in calls}
        for round_ in range(rounds):
            order = list(calls)[round_ % len(calls) :] + list(calls)[: round_ % len(calls)]
            for how in order:
                started = time.perf_counter()
                calls[how]()
                rates[how].append(jobs / (time.perf_counter() - started))
    return [(how, statistics.median(measured)) for how, measured in rates.items()]


def scenario_enqueue(server: Server, sizes: Sizes) -> Section:
    """Scenario 1: single enqueue() calls per NOTIFY path, enqueue_many, pgbench."""
    section = Section(
        "1. Enqueue",
        "Single `Raquel.enqueue()` calls from 1 and 4 producer threads (one pool, "
        f"{sizes.enqueue_calls:,} calls each; for the NOTIFY paths, 9 runs of {sizes.enqueue_calls // 3:,}), "
        "each NOTIFY path in a database of its own: trigger off "
        "(`ALTER TABLE raquel_jobs DISABLE TRIGGER USER`), always NOTIFY (0001's insert trigger put "
        "back), 0009 with no waiter, 0009 with one waiter registered for the queue (`raquel_wait_begin`, "
        "nobody LISTENing: the first job's NOTIFY consumes the registration, as it does a worker's), "
        "0009 with an idle waiter that LISTENs and registers again at once after each NOTIFY, claiming "
        "nothing (the worst case: a waiter that is never busy, so jobs keep notifying it); "
        "the paths' runs interleaved, median of 9 each. Then on 0009 (one run each) "
        "while a worker (its own process) waits for another queue, or runs this queue's jobs as they "
        "come (it then shares the CPU with the producers). `enqueue_many()` and SQL "
        f"`raquel_enqueue_many` of {sizes.enqueue_many:,} jobs (each way called once untimed, then 5 "
        "rounds in rotating order; median); "
        "`SELECT raquel_enqueue('bench_pgbench', 'x')` "
        f"by pgbench (-M prepared, {sizes.pgbench_seconds} s per run); a plain INSERT into the pure-SQL "
        "table by pgbench as a reference. jobs/s = jobs / wall-clock time of the calls.",
        ["how", "producers", "NOTIFY", "jobs/s", "ratio to trigger off"],
    )
    with ExitStack() as stack:
        dsns = {mode: stack.enter_context(server.database(f"enqueue_{mode}")) for mode, _ in NOTIFY_MODES}
        for mode, dsn in dsns.items():
            set_notify_mode(dsn, mode)
        # Many short runs rather than a few long ones: a single producer's
        # rate follows the disk's fsync latency, which drifts by the minute.
        rates = notify_mode_rates(dsns, sizes.enqueue_calls // 3, repeats=9)
        for producers in (1, 4):
            off = rates["off", producers]
            for mode, label in NOTIFY_MODES:
                rate = rates[mode, producers]
                section.add("enqueue()", producers, label, rate, ratio(rate, off))
                section.figures[f"enqueue_{mode}_{producers}"] = rate
        dsn = dsns["nowaiter"]
        for label, args in (
            ("one idle worker of another queue", ("wake", dsn, "bench_idle", "async")),
            ("one worker running this queue's jobs", ("e2e", dsn, "bench_enqueue", str(CONCURRENCY))),
        ):
            (worker,) = workers.spawn(*args)
            try:
                for producers in (1, 4):
                    rate = timed_enqueues(dsn, producers, sizes.enqueue_calls)
                    section.add(f"enqueue(), {label}", producers, "0009", rate, ratio(rate, rates["off", producers]))
            finally:
                workers.stop(worker)
        for how, rate in enqueue_many_rates(dsn, sizes.enqueue_many):
            section.add(how, 1, "0009", rate, "")
            section.figures.setdefault("enqueue_many", rate)  # the first: Raquel.enqueue_many
        started = time.perf_counter()
        enqueue_sql(dsn, "bench_sql", sizes.enqueue_many)
        section.add(
            f"SELECT raquel_enqueue(...) FROM generate_series(1, {sizes.enqueue_many:,})",
            1,
            "0009",
            sizes.enqueue_many / (time.perf_counter() - started),
            "",
        )
    _pgbench_enqueue(server, sizes, section)
    return section


def _pgbench_enqueue(server: Server, sizes: Sizes, section: Section) -> None:
    """The pgbench rows of scenario 1 (n/a without pgbench)."""
    program = server.pgbench()
    for producers in (1, 4):
        if program is None:
            section.add("pgbench: SELECT raquel_enqueue(...)", producers, "0009", NA, "")
            continue
        with server.database("enqueue_pgbench") as dsn:
            rate = pgbench(program, dsn, "raquel_enqueue.sql", clients=producers, seconds=sizes.pgbench_seconds)
        section.add("pgbench: SELECT raquel_enqueue(...)", producers, "0009", rate, "")
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


#: Tasks of scenario 2's widest AsyncWorker.
WIDE = 100


def wide_worker(dsn: str, queue: str) -> AbstractContextManager[None]:
    """The AsyncWorker of :data:`WIDE` tasks, ``batch_outcomes=True``, on a pool of :data:`CONCURRENCY`."""
    return workers.async_worker(dsn, queue, WIDE, True, pool_size=CONCURRENCY)


def e2e_runners() -> list[tuple[str, str, WorkerRunner]]:
    """(worker kind, outcomes, runner) of scenario 2."""
    kinds: list[tuple[str, Callable[[str, str, bool], AbstractContextManager[None]]]] = [
        (
            f"sync Worker, {CONCURRENCY} threads",
            lambda dsn, q, batched: workers.sync_worker(dsn, q, CONCURRENCY, batched),
        ),
        (
            f"AsyncWorker, {CONCURRENCY} tasks",
            lambda dsn, q, batched: workers.async_worker(dsn, q, CONCURRENCY, batched),
        ),
        (
            f"{PROCESSES} processes x AsyncWorker, {CONCURRENCY} tasks each",
            lambda dsn, q, batched: workers.worker_processes(dsn, q, CONCURRENCY, PROCESSES, batched),
        ),
    ]
    runners: list[tuple[str, str, WorkerRunner]] = []
    for name, make in kinds:
        runners.append((name, "each at once", _fixed(make, False)))
        runners.append((name, "batch_outcomes=True", _fixed(make, True)))
    runners.append((f"AsyncWorker, {WIDE} tasks, pool_size={CONCURRENCY}", "batch_outcomes=True", wide_worker))
    return runners


def scenario_e2e(server: Server, sizes: Sizes) -> Section:
    """Scenario 2: pre-enqueued no-op jobs drained by threads, tasks, processes."""
    section = Section(
        "2. End to end",
        f"{sizes.e2e_jobs:,} no-op jobs enqueued first, then drained by the workers. "
        "jobs/s = jobs / (last `finished_at` - first `claimed_at`) of those jobs, read from the table "
        "(ms resolution): from the first claim to the last durable success. Steady jobs/s: the same "
        "between the 5th and 95th percentile of the successes (no start-up, no tail).",
        ["workers", "outcomes", "jobs", "jobs/s", "steady jobs/s", "ratio to AsyncWorker, headline (steady)"],
    )
    spans: list[tuple[str, str, Span]] = []
    for name, outcomes, runner in e2e_runners():
        with server.database("e2e") as dsn:
            spans.append((name, outcomes, drain(dsn, "bench_e2e", sizes.e2e_jobs, runner)))
    reference = next(
        span for name, outcomes, span in spans if name.startswith("AsyncWorker") and outcomes == "each at once"
    )
    for name, outcomes, span in spans:
        section.add(name, outcomes, span.jobs, *rate_cell(span), ratios(span, reference))
        section.figures[f"e2e {name} {outcomes}"] = span.rate
    return section


# --- 3. wake-up latency --------------------------------------------------------


def wake_samples(dsn: str, kind: str, samples: int, warmup: int = 5) -> list[float]:
    """Latencies (ms) from an enqueue's commit to its handler's start, idle worker in another process."""
    (worker,) = workers.spawn("wake", dsn, "bench_wake", kind)
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
        "3. Wake-up latency",
        f"An idle worker (one slot, its own process) and {sizes.wake_samples:,} "
        "jobs enqueued one at a time from another connection, each after the previous job ran and "
        "the worker was idle again (15 ms pause). Latency = handler start (`time.time()` in the "
        "worker) - the moment the enqueue's commit was acknowledged to the producer, in ms.",
        ["worker", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    )
    for kind in ("async", "sync"):
        with server.database("wake") as dsn:
            latencies = wake_samples(dsn, kind, sizes.wake_samples)
        p50, p95, p99 = percentiles(latencies)
        section.add("AsyncWorker" if kind == "async" else "sync Worker", len(latencies), p50, p95, p99, max(latencies))
        section.figures[f"wake_{kind}_p50"], section.figures[f"wake_{kind}_p99"] = p50, p99
    return section


# --- 4. history ----------------------------------------------------------------

HISTORY_INSERT = """
INSERT INTO raquel_jobs (queue, payload, status, attempts, enqueued_at, scheduled_at, claimed_by,
                         claimed_at, finished_at)
SELECT 'bench_history', 'x', 'success', 1, t, t, 'bench', t, t
FROM (SELECT raquel_now_ms() - 86400000 + g AS t FROM generate_series(1, %s) AS g) AS s"""


#: Each size's end-to-end run of a history round is drained in this many
#: slices, the sizes taking turns slice by slice.
HISTORY_SLICES = 4


def sliced_rate(spans: list[Span]) -> float | None:
    """jobs/s of drains taken together: all their jobs over the sum of their spans; None if one is empty."""
    durations = []
    for span in spans:
        rate = span.rate
        if rate is None:
            return None
        durations.append(span.jobs / rate)
    return sum(span.jobs for span in spans) / sum(durations)


def claim_latencies(dsns: dict[int, str], samples: int, queue: str = "bench_claim") -> dict[int, list[float]]:
    """Round-trip times (ms) of ``samples`` claims of one job (the client's claim statement) in
    each database, the databases taking turns claim by claim, so that the machine's noise of
    any moment falls on all of them alike."""
    for dsn in dsns.values():
        enqueue_sql(dsn, queue, samples)
    latencies: dict[int, list[float]] = {key: [] for key in dsns}
    args = {"queues": [queue], "claim_as": "bench", "batch": 1, "lease": 60000, "durable": True, "before": None}
    with ExitStack() as stack:
        conns = {
            key: stack.enter_context(psycopg.connect(dsn, autocommit=True, prepare_threshold=0))
            for key, dsn in dsns.items()
        }
        for _ in range(samples):
            for key, conn in conns.items():
                started = time.perf_counter()
                conn.execute(QUERIES["claim"], args).fetchall()
                latencies[key].append((time.perf_counter() - started) * 1000)
        # As raquel_complete leaves them: a finished job keeps no lease (a
        # lease left set would put it in the lease index the claims probe).
        for conn in conns.values():
            conn.execute(
                "UPDATE raquel_jobs SET status = 'success', attempts = attempts + 1, "
                "finished_at = raquel_now_ms(), lease_expires_at = NULL WHERE queue = %s",
                [queue],
            )
    return latencies


def scenario_history(server: Server, sizes: Sizes, rounds: int = 3) -> Section:
    """Scenario 4: claim latency and end-to-end jobs/s with finished jobs in the table.

    One database per size, all filled first and then checkpointed, so that no
    size's run pays for writing out the bulk load; then ``rounds`` rounds, each
    starting from vacuumed tables, with its claims taking turns between the
    sizes claim by claim and then its end-to-end runs taking turns slice by
    slice (:data:`HISTORY_SLICES`); medians of the rounds.
    """
    section = Section(
        "4. History",
        "Finished (`success`) jobs bulk-inserted into the table (INSERT ... SELECT "
        "generate_series, then VACUUM ANALYZE), one database per size, then a CHECKPOINT so that no "
        f"run writes out the bulk load. Then {rounds} rounds, each in queues of its own and starting "
        "with a VACUUM ANALYZE of every table (the last round's drains left dead rows, which "
        "autovacuum would otherwise clean up on the small tables during the claims): "
        f"{sizes.claim_samples:,} claims of one job per size (`raquel_claim` via the client's "
        "statement, round trip timed in Python), the sizes taking turns claim by claim (one connection "
        "each) so that the machine's noise falls on all alike; then an end-to-end run of "
        f"{sizes.e2e_jobs:,} jobs per size (AsyncWorker, {CONCURRENCY} tasks, outcomes each at once, "
        f"measured as in scenario 2) drained in {HISTORY_SLICES} slices, the sizes taking turns slice by "
        "slice; a round's jobs/s = its jobs / the sum of its slices' spans. Figures: medians over the rounds; "
        "the ratios to the empty table are taken per round (its sizes were measured side by side) and "
        "their median is given.",
        [
            "finished jobs in the table",
            "claim p50 ms",
            "claim p95 ms",
            "claim mean ms",
            "e2e jobs/s",
            "e2e jobs/s per round",
            "claim p50 vs empty",
            "jobs/s vs empty",
            "jobs/s vs empty per round",
        ],
    )
    with ExitStack() as stack:
        dsns = {}
        for finished in sizes.history:
            dsns[finished] = dsn = stack.enter_context(server.database("history"))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(HISTORY_INSERT.encode(), [finished])
                conn.execute("VACUUM ANALYZE raquel.raquel_jobs")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        claims: dict[int, list[tuple[float, float, float]]] = {n: [] for n in dsns}
        rates: dict[int, list[float | None]] = {n: [] for n in dsns}
        for round_ in range(rounds):
            order = list(dsns)[round_ % len(dsns) :] + list(dsns)[: round_ % len(dsns)]
            # The last round's drains left each table tens of thousands of
            # dead rows: vacuumed here, as autovacuum would, so that no
            # size's claims run beside a vacuum of their own table (which
            # autovacuum starts on the small tables, not on the 1M one).
            for dsn in dsns.values():
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE raquel.raquel_jobs")
            latencies = claim_latencies({n: dsns[n] for n in order}, sizes.claim_samples, f"bench_claim_{round_}")
            for finished in order:
                p50, p95, _ = percentiles(latencies[finished])
                claims[finished].append((p50, p95, statistics.fmean(latencies[finished])))
            spans: dict[int, list[Span]] = {n: [] for n in order}
            for slice_ in range(HISTORY_SLICES):
                for finished in order:
                    spans[finished].append(
                        drain(
                            dsns[finished],
                            f"bench_e2e_{round_}_{slice_}",
                            sizes.e2e_jobs // HISTORY_SLICES,
                            lambda d, q: workers.async_worker(d, q, CONCURRENCY),
                        )
                    )
            for finished in order:
                rates[finished].append(sliced_rate(spans[finished]))
    for finished in sizes.history:
        p50, p95, mean = (statistics.median(c[i] for c in claims[finished]) for i in range(3))
        measured = [r for r in rates[finished] if r is not None]
        rate = statistics.median(measured) if measured else None
        # Each round measured every size side by side (interleaved): its
        # ratios to the empty table are paired, and their median is the figure.
        claim_ratios = [mine[0] / empty[0] for mine, empty in zip(claims[finished], claims[0])]
        rate_ratios = [
            mine / empty for mine, empty in zip(rates[finished], rates[0]) if mine is not None and empty is not None
        ]
        claim_ratio = statistics.median(claim_ratios)
        rate_ratio = statistics.median(rate_ratios) if rate_ratios else None
        section.add(
            finished,
            p50,
            p95,
            mean,
            rate,
            " / ".join(fmt(r) for r in rates[finished]),
            f"{claim_ratio:.2f}x",
            "n/a" if rate_ratio is None else f"{rate_ratio:.2f}x",
            " / ".join(f"{r:.2f}x" for r in rate_ratios),
        )
        section.figures[f"history_{finished}_claim_ratio"] = claim_ratio
        section.figures[f"history_{finished}_rate_ratio"] = rate_ratio
    return section
