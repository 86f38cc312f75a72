"""Scenario 5: the same no-op jobs on raquel_pg and its peers, default modes and fast modes apart.

Every system drains pre-enqueued jobs on the same server, each run in a fresh database of its
own, ANALYZEd after the bulk enqueue, and is measured as raquel_pg is (see measure.py): jobs
finished / (last durable success - first claim). The runs take turns in interleaved rounds
(each round in another order); the figures are medians of the rounds, and each ratio is the
median of the rounds' ratios (the two systems measured in the same round).

Two tables, never mixed (issue 23): raquel_pg's default mode (``subscribe()`` with no option
but its concurrency) beside every peer's defaults, then raquel_pg's opt-in fast modes beside
each peer's own published fast settings. A peer that publishes no faster settings than its
defaults (pgqueuer, procrastinate) shows the same runs in both tables.
"""

from __future__ import annotations

import inspect
import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from raquel_pg import AsyncWorker

from . import node_peers, python_peers, workers
from .measure import Section, Sizes, Span, fmt, rate_cell
from .scenarios import CONCURRENCY, drain
from .server import Server

#: Jobs in flight of pgqueuer's own benchmark defaults: 5 QueueManagers x batch_size=10.
PGQUEUER_WIDE = 50

#: Jobs in flight of pure SQL in batches of 100: each of its CONCURRENCY clients holds up to 100
#: claimed jobs between its claim and its outcome transaction.
PURE_WIDE = CONCURRENCY * 100

#: graphile-worker's perfTest shape: 4 processes x concurrentJobs=24 (perfTest/run.js, graphile.config.js).
GRAPHILE_PROCESSES, GRAPHILE_JOBS = 4, 24
MULTI = f"{GRAPHILE_PROCESSES} x {GRAPHILE_JOBS}"

#: How raquel_pg's runs with the opt-in asynchronous claim commit are labelled.
NON_DURABLE = "durable_claims=False"

#: The fast rows' prefetch: jobs claimed ahead of the free slots, waiting in the worker (their
#: leases renewed), the analogue of graphile-worker's local queue (its perfTest fetches 500).
FAST_PREFETCH = 500

#: The two tables: raquel_pg's default mode beside the peers' defaults, its fast modes beside theirs.
DEFAULT, FAST = "default", "fast"

#: raquel_pg's roles: its default mode; prefetch=FAST_PREFETCH (durable claims); prefetch=FAST_PREFETCH
#: with durable_claims=False (its fastest published settings). Successes are batched in all three
#: (batch_outcomes=True, the default since issue 23).
PLAIN, BATCHED, FASTEST = "plain", "batched", "fastest"


@dataclass(frozen=True)
class Run:
    """One configuration of one system, run once per round."""

    system: str
    settings: str
    group: str  # jobs in flight: compared with raquel_pg's runs of the same group
    tables: tuple[str, ...]  # DEFAULT and/or FAST
    run: Callable[[str], Span] | None
    missing: str = ""  # why it cannot run (its rows say n/a with this)
    role: str = ""  # raquel_pg's PLAIN, BATCHED or FASTEST

    @property
    def key(self) -> str:
        """Unique name of the run (also its figure's name)."""
        return f"{self.system} {self.settings}"


def rounds_for(sizes: Sizes) -> int:
    """Interleaved rounds: 3, or 1 at the smoke test's tiny size."""
    return 1 if sizes.name == "tiny" else 3


def raquel_runs(sizes: Sizes) -> list[Run]:
    """raquel_pg's runs: default mode at 10 and 50 in flight; its fast modes (``prefetch`` =
    :data:`FAST_PREFETCH`, with durable claims and without) at 10, 50, 1,000 (one process, and 2
    processes x 500) and graphile-worker's 4 x 24 shape."""
    jobs, fast_jobs, wide_jobs = sizes.peer_jobs, sizes.peer_jobs * 5 // 2, 10 * sizes.peer_jobs

    def one(
        concurrency: int, count: int, batched: bool, durable: bool = True, prefetch: int = 0
    ) -> Callable[[str], Span]:
        return lambda dsn: drain(
            dsn,
            "bench",
            count,
            lambda d, q: workers.async_worker(
                d, q, concurrency, batched, pool_size=CONCURRENCY, durable_claims=durable, prefetch=prefetch
            ),
        )

    def processes(count: int, each: int, number: int, durable: bool) -> Callable[[str], Span]:
        return lambda dsn: drain(
            dsn,
            "bench",
            count,
            lambda d, q: workers.worker_processes(
                d, q, each, number, True, durable_claims=durable, prefetch=FAST_PREFETCH
            ),
        )

    # The default mode is the worker's own defaults, read from its signature (successes batched
    # since issue 23), never a value written here.
    default_batched = bool(inspect.signature(AsyncWorker).parameters["batch_outcomes"].default)
    runs = [
        Run(
            "raquel_pg",
            f"AsyncWorker, concurrency={n}, every other option its default (pool_size=10, "
            f"batch_outcomes={default_batched})",
            str(n),
            (DEFAULT,),
            one(n, jobs, default_batched),
            role=PLAIN,
        )
        for n in (CONCURRENCY, PGQUEUER_WIDE)
    ]
    fast = f"prefetch={FAST_PREFETCH}, batch_outcomes=True"
    for n in (CONCURRENCY, PGQUEUER_WIDE):
        settings = f"AsyncWorker, concurrency={n}, pool_size=10, {fast}"
        runs.append(
            Run("raquel_pg", settings, str(n), (FAST,), one(n, fast_jobs, True, True, FAST_PREFETCH), role=BATCHED)
        )
        runs.append(
            Run(
                "raquel_pg",
                f"{settings}, {NON_DURABLE}",
                str(n),
                (FAST,),
                one(n, fast_jobs, True, False, FAST_PREFETCH),
                role=FASTEST,
            )
        )
    for durable in (True, False):
        suffix = "" if durable else f", {NON_DURABLE}"
        role = BATCHED if durable else FASTEST
        runs.append(
            Run(
                "raquel_pg",
                f"AsyncWorker, concurrency={PURE_WIDE}, pool_size=10, {fast}{suffix}",
                f"{PURE_WIDE:,}",
                (FAST,),
                one(PURE_WIDE, wide_jobs, True, durable, FAST_PREFETCH),
                role=role,
            )
        )
        runs.append(
            Run(
                "raquel_pg",
                f"2 processes x AsyncWorker, concurrency=500, pool_size=10 each, {fast}{suffix}",
                f"{PURE_WIDE:,}",
                (FAST,),
                processes(wide_jobs, PURE_WIDE // 2, 2, durable),
                role=role,
            )
        )
        runs.append(
            Run(
                "raquel_pg",
                f"{GRAPHILE_PROCESSES} processes x AsyncWorker, concurrency="
                f"{GRAPHILE_JOBS}, pool_size=10 each, {fast}{suffix}",
                MULTI,
                (FAST,),
                processes(fast_jobs, GRAPHILE_JOBS, GRAPHILE_PROCESSES, durable),
                role=role,
            )
        )
    return runs


def node_runs(sizes: Sizes) -> list[Run]:
    """graphile-worker and pg-boss: their defaults at 10 and 50 in flight, and their own fast settings."""
    missing = node_peers.unavailable() or ""
    fast_jobs = sizes.peer_jobs * 5 // 2

    def run(make: Callable[[str], Span]) -> Callable[[str], Span] | None:
        return None if missing else make

    def graphile(jobs: int, concurrency: int, mode: str, processes: int = 1) -> Callable[[str], Span]:
        return lambda dsn: node_peers.drain_graphile(dsn, jobs, concurrency, mode, processes)

    def pgboss(jobs: int, workers: int, mode: str, batch: int) -> Callable[[str], Span]:
        return lambda dsn: node_peers.drain_pgboss(dsn, jobs, workers, mode, batch)

    runs = []
    for n in (CONCURRENCY, PGQUEUER_WIDE):
        runs.append(
            Run(
                "graphile-worker",
                f"concurrentJobs={n}, every other option its default (maxPoolSize=10, "
                "no local queue, completions one at a time)",
                str(n),
                (DEFAULT,),
                run(graphile(sizes.peer_jobs, n, "default")),
                missing,
            )
        )
        # pg-boss's defaults poll every 2 s after each fetch of one job: 3 jobs per worker take ~4 s.
        runs.append(
            Run(
                "pg-boss",
                f"work() with localConcurrency={n}, every other option its default (batchSize=1, "
                "pollingIntervalSeconds=2)",
                str(n),
                (DEFAULT,),
                run(pgboss(3 * n, n, "default", 1)),
                missing,
            )
        )
    perftest = "localQueue size 500 (refetchDelay 10 ms), completeJobBatchDelay=0, failJobBatchDelay=0"
    for n in (CONCURRENCY, PGQUEUER_WIDE):
        runs.append(
            Run(
                "graphile-worker",
                f"its perfTest's settings: concurrentJobs={n}, maxPoolSize={n + 1}, {perftest}",
                str(n),
                (FAST,),
                run(graphile(fast_jobs, n, "perftest")),
                missing,
            )
        )
        teams = n // CONCURRENCY
        runs.append(
            Run(
                "pg-boss",
                f"work() with localConcurrency={teams}, batchSize={CONCURRENCY}, burstWhenBatchFull=true",
                str(n),
                (FAST,),
                run(pgboss(fast_jobs, teams, "fast", CONCURRENCY)),
                missing,
            )
        )
    runs.append(
        Run(
            "graphile-worker",
            f"its perfTest: {GRAPHILE_PROCESSES} processes x "
            f"concurrentJobs={GRAPHILE_JOBS}, "
            f"maxPoolSize={GRAPHILE_JOBS + 1}, {perftest}",
            MULTI,
            (FAST,),
            run(graphile(fast_jobs, GRAPHILE_JOBS, "perftest", GRAPHILE_PROCESSES)),
            missing,
        )
    )
    return runs


def python_runs(server: Server, sizes: Sizes) -> list[Run]:
    """pgqueuer and procrastinate (their defaults, in both tables: neither publishes faster
    settings), and the pure-SQL limit (fast table)."""
    jobs = sizes.peer_jobs
    no_pgqueuer = "" if python_peers.installed("pgqueuer") else "pgqueuer not installed (pip install -e '.[bench]')"
    no_procrastinate = (
        "" if python_peers.installed("procrastinate") else "procrastinate not installed (pip install -e '.[bench]')"
    )
    no_pgbench = "" if server.pgbench() is not None else "no pgbench"
    both = (DEFAULT, FAST)
    return [
        Run(
            "pgqueuer",
            f"1 QueueManager, PsycopgDriver, batch_size={CONCURRENCY} (its default)",
            str(CONCURRENCY),
            both,
            None if no_pgqueuer else (lambda dsn: python_peers.run_pgqueuer(dsn, jobs, 1, CONCURRENCY)),
            no_pgqueuer,
        ),
        Run(
            "pgqueuer",
            "5 QueueManagers x batch_size=10 (its own benchmark's defaults)",
            str(PGQUEUER_WIDE),
            both,
            None if no_pgqueuer else (lambda dsn: python_peers.run_pgqueuer(dsn, jobs, 5, 10)),
            no_pgqueuer,
        ),
        Run(
            "procrastinate",
            f"1 worker, PsycopgConnector (pool max {CONCURRENCY + 2}), concurrency={CONCURRENCY}",
            str(CONCURRENCY),
            both,
            None if no_procrastinate else (lambda dsn: python_peers.run_procrastinate(dsn, jobs // 2, CONCURRENCY)),
            no_procrastinate,
        ),
        Run(
            "pure SQL (pgbench)",
            f"1 job per claim, {CONCURRENCY} clients",
            str(CONCURRENCY),
            (FAST,),
            None
            if no_pgbench
            else (
                lambda dsn: python_peers.run_pure_sql(
                    server, dsn, sizes.peer_jobs * 5 // 2, "pure_claim_complete_1.sql", 1, CONCURRENCY
                )
            ),
            no_pgbench,
        ),
        Run(
            "pure SQL (pgbench)",
            f"batches of 100, {CONCURRENCY} clients",
            f"{PURE_WIDE:,}",
            (FAST,),
            None
            if no_pgbench
            else (
                lambda dsn: python_peers.run_pure_sql(
                    server, dsn, 10 * sizes.peer_jobs, "pure_claim_complete_100.sql", 100, CONCURRENCY
                )
            ),
            no_pgbench,
        ),
    ]


def measure(server: Server, runs: list[Run], rounds: int) -> tuple[dict[str, list[Span | None]], dict[str, str]]:
    """Each run once per round, each round in another (rotated) order, each run in a fresh
    database; the spans per run (None where it could not run), and the first error per run."""
    spans: dict[str, list[Span | None]] = {run.key: [] for run in runs}
    errors: dict[str, str] = {}
    for round_ in range(rounds):
        shift = round_ * len(runs) // rounds
        for run in runs[shift:] + runs[:shift]:
            span = None
            if run.run is not None:
                label = run.system.split()[0].replace("_", "").replace("-", "")
                try:
                    with server.database(label, migrated=run.system == "raquel_pg") as dsn:
                        span = run.run(dsn)
                except Exception as error:  # a peer's failure is reported in its row, not fatal
                    errors.setdefault(run.key, f"{error!r}"[:300])
                    traceback.print_exc()
            spans[run.key].append(span)
    return spans, errors


def _rate(span: Span | None) -> float | None:
    return None if span is None else span.rate


def reference(runs: list[Run], spans: dict[str, list[Span | None]], group: str, role: str, round_: int) -> float | None:
    """raquel_pg's best rate in a round among its runs of ``group`` in ``role``."""
    rates = [
        _rate(spans[run.key][round_])
        for run in runs
        if run.system == "raquel_pg" and run.group == group and run.role == role
    ]
    measured = [rate for rate in rates if rate]
    return max(measured) if measured else None


def median_ratio(runs: list[Run], spans: dict[str, list[Span | None]], run: Run, role: str) -> float | None:
    """The median over the rounds of raquel_pg's best ``role`` rate ÷ ``run``'s rate, in the same round."""
    ratios = []
    for round_, span in enumerate(spans[run.key]):
        mine, ours = _rate(span), reference(runs, spans, run.group, role, round_)
        if mine and ours:
            ratios.append(ours / mine)
    return statistics.median(ratios) if ratios else None


def median_span_cells(spans: list[Span | None]) -> tuple[str, str, str, str]:
    """(jobs, median jobs/s, jobs/s per round, median steady jobs/s) of a run's rounds."""
    rates = [span.rate for span in spans if span is not None and span.rate]
    steady = [span.steady_rate for span in spans if span is not None and span.steady_rate]
    jobs = next((span.jobs for span in spans if span is not None), None)
    if not rates:
        return "", rate_cell(None)[0], "", ""
    return (
        fmt(jobs),
        fmt(statistics.median(rates)),
        " / ".join(fmt(rate) for rate in rates),
        fmt(statistics.median(steady)) if steady else "n/a",
    )


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def scenario_peers(server: Server, sizes: Sizes) -> list[Section]:
    """Scenario 5: raquel_pg and its peers, default modes (5a) and fast modes (5b) apart."""
    rounds = rounds_for(sizes)
    runs = raquel_runs(sizes) + node_runs(sizes) + python_runs(server, sizes)
    spans, errors = measure(server, runs, rounds)
    common = (
        f"Each run in a fresh database of the same server, its jobs bulk-enqueued with the system's own "
        "call, then `ANALYZE` of that database, then the drain timed. jobs/s = jobs / (last durable "
        "success - first claim), from each system's own timestamps (raquel_pg: claimed_at/finished_at; "
        "pgqueuer: pgqueuer_log 'picked'/'successful'; procrastinate: procrastinate_events "
        "'started'/'succeeded'; pg-boss: pgboss.job started_on/completed_on; graphile-worker, which "
        "deletes a job's row when it completes: first handler start to the return of its runOnce() "
        "with every completion committed, as its perfTest times it; pure SQL: its claimed_at/finished_at). "
        f"{rounds} interleaved rounds (each round runs every configuration once, in a rotated order); "
        "jobs/s is the median of the rounds; each ratio is the median of the rounds' ratios (raquel_pg's "
        "rate ÷ this system's rate in the same round; > 1: raquel_pg is faster). Steady jobs/s: between "
        "the 5th and 95th percentile of the successes (n/a for graphile-worker: no per-job times)."
    )
    default = Section(
        "5a. Peers, default modes",
        f"raquel_pg's default mode (an `AsyncWorker`, `subscribe()` with no option but `concurrency`) beside "
        f"every peer with its defaults, at the same jobs in flight (10 and 50). {sizes.peer_jobs:,} no-op jobs "
        f"per run ({sizes.peer_jobs // 2:,} for procrastinate; 3 per worker for pg-boss, whose default worker "
        "fetches one job and then waits its 2 s polling interval). " + common,
        [
            "system",
            "settings",
            "in flight",
            "jobs",
            "jobs/s",
            "jobs/s per round",
            "steady jobs/s",
            "raquel_pg default ÷ this",
        ],
    )
    fast = Section(
        "5b. Peers, fast modes",
        f"raquel_pg's fastest published opt-in settings: `prefetch={FAST_PREFETCH}` (each worker claims up to "
        f"{FAST_PREFETCH} jobs ahead of its free slots; they wait in the worker, their leases renewed, and are "
        "handed back when it stops: the analogue of graphile-worker's local queue of 500), successes batched "
        "(`batch_outcomes=True`, the default), with durable claims and with `durable_claims=False` (claims "
        "commit without waiting for their WAL flush, so a crash of the server can undo the last claims and run "
        "those jobs again), beside each peer's own published fast settings (graphile-worker: its perfTest's; pg-boss: "
        "its documented batchSize/localConcurrency and burst settings; pgqueuer and procrastinate publish none "
        f"beyond their defaults, so their rows are 5a's runs), at the same jobs in flight. "
        f"{sizes.peer_jobs * 5 // 2:,} no-op jobs per run ({10 * sizes.peer_jobs:,} at {PURE_WIDE:,} in flight). "
        + common,
        [
            "system",
            "settings",
            "in flight",
            "jobs",
            "jobs/s",
            "jobs/s per round",
            "steady jobs/s",
            f"raquel_pg prefetch={FAST_PREFETCH} + {NON_DURABLE} ÷ this",
            f"raquel_pg prefetch={FAST_PREFETCH} ÷ this",
        ],
    )
    for section, table in ((default, DEFAULT), (fast, FAST)):
        for run in sorted((r for r in runs if table in r.tables), key=_group_order):
            reason = errors.get(run.key) or run.missing
            jobs, rate, per_round, steady = median_span_cells(spans[run.key])
            if reason and not per_round:
                rate = f"n/a ({reason})"
            peer = run.system != "raquel_pg"
            if table == DEFAULT:
                ratio = median_ratio(runs, spans, run, PLAIN) if peer else None
                section.add(
                    run.system, run.settings, run.group, jobs, rate, per_round, steady, _x(ratio) if peer else ""
                )
                section.figures[f"ratio {DEFAULT} {run.system} @{run.group}"] = ratio if peer else None
            else:
                fastest = median_ratio(runs, spans, run, FASTEST) if peer else None
                batched = median_ratio(runs, spans, run, BATCHED) if peer else None
                section.add(
                    run.system,
                    run.settings,
                    run.group,
                    jobs,
                    rate,
                    per_round,
                    steady,
                    _x(fastest) if peer else "",
                    _x(batched) if peer else "",
                )
                if peer:
                    section.figures[f"ratio {FAST} {run.system} @{run.group}"] = fastest
                    section.figures[f"ratio {BATCHED} {run.system} @{run.group}"] = batched
            rates = [span.rate for span in spans[run.key] if span is not None and span.rate]
            section.figures[run.key] = statistics.median(rates) if rates else None
    _multi_note(fast, runs, spans)
    return [default, fast]


def _group_order(run: Run) -> tuple[int, int]:
    """Rows by jobs in flight, then raquel_pg first."""
    order = [str(CONCURRENCY), str(PGQUEUER_WIDE), MULTI, f"{PURE_WIDE:,}"]
    return order.index(run.group), 0 if run.system == "raquel_pg" else 1


def _multi_note(section: Section, runs: list[Run], spans: dict[str, list[Span | None]]) -> None:
    """The issue's other multi-process comparison: graphile-worker's 4 x 24 against raquel_pg's 2 x 500."""
    graphile = next((run for run in runs if run.system == "graphile-worker" and run.group == MULTI), None)
    two = next(
        (
            run
            for run in runs
            if run.system == "raquel_pg" and run.settings.startswith("2 processes") and NON_DURABLE in run.settings
        ),
        None,
    )
    if graphile is None or two is None:
        return
    ratios = [
        ours.rate / theirs.rate
        for ours, theirs in zip(spans[two.key], spans[graphile.key])
        if ours is not None and theirs is not None and ours.rate and theirs.rate
    ]
    value = statistics.median(ratios) if ratios else None
    section.figures[f"ratio {FAST} graphile-worker {MULTI} vs raquel_pg 2 x 500"] = value
    section.notes.append(
        f"Multi-process shapes: raquel_pg's 2 processes x 500 (`prefetch={FAST_PREFETCH}`, `{NON_DURABLE}`) ÷ "
        f"graphile-worker's perfTest shape {MULTI}, median of the rounds' ratios: {_x(value)}."
    )
