"""Scenario ``fast`` (issue 23): raquel_pg's fastest opt-in settings beside graphile-worker's perfTest.

The fast-mode rows of scenario 5b that issue 23's goal names, alone, with the CPU each raquel_pg job
costs: raquel_pg with ``prefetch=500`` (the analogue of graphile-worker's local queue of 500),
successes batched (the default), with ``durable_claims=False`` and with durable claims, and with
``durable_claims=False`` on a queue whose retention is 0 (0007_outcomes: its successes are deleted
at once, as graphile-worker deletes every completed job; that row's span ends at the last
statement that deleted jobs, whose time a statement trigger of the benchmark's own appends to an
unlogged table: see :data:`DELETES_TIMED`), beside graphile-worker with its perfTest's
settings, at 10 and 50 jobs in flight and in graphile-worker's 4 processes x 24 shape. Each round
drains the same number of pre-enqueued no-op jobs with every configuration, each in a fresh database
of the same server (ANALYZEd after the bulk enqueue), the configurations taking turns (order
reversed every other round); figures are the medians of the rounds, each ratio the median of the
rounds' ratios (both measured in the same round). raquel_pg's workers run in processes of their own
(``bench.worker_proc e2e``, pools of 10 connections), so that their CPU, and that of their server
processes, is read from /proc; graphile-worker's is not measured. raquel_pg's queue is paused while
its processes start and resumed once all are ready (the resume's NOTIFY wakes them), so that they
begin together; graphile-worker's processes load, then are started together
(bench.node_peers.drain_graphile). Every system's span begins at its first handler start, in its
worker processes (raquel_pg's report it as they stop: ``bench.worker_proc e2e``), so that neither
counts the first fetch (it counted raquel_pg's before 2026-12-07's ninth pass: the resume's
wake-up and first claim, 8-18 ms of a 0.65 s drain at 4 x 24).
``RAQUEL_PG_BENCH_BASELINE=DIR[:DIR...]`` adds rows of another version's ``raquel_pg`` (as in
scenario ``default``), so that a change is measured against what it replaces in the same rounds,
``RAQUEL_PG_BENCH_BASELINE_SQL`` run in each baseline's database first (to undo a migration under
test, as in scenario ``default``); ``RAQUEL_PG_BENCH_FAST_ROUNDS`` sets the rounds (default 3; 1 at
the tiny size). ``RAQUEL_PG_BENCH_FAST_SETTINGS=nondurable,durable,retention0`` keeps only the named
settings (default: all three), ``RAQUEL_PG_BENCH_FAST_SHAPES=10,50,4x24`` only the named shapes
(default: all three), for a shorter run; ``RAQUEL_PG_BENCH_FAST_PREFETCH=500,1000`` the prefetches
tried (default: :data:`~bench.peers.FAST_PREFETCH`), a row each."""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import psycopg

from . import node_peers
from .default_mode import cpu_seconds, server_cpu_seconds
from .measure import Section, Sizes, Span, fmt, read_span, wait_until
from .peers import FAST_PREFETCH, GRAPHILE_JOBS, GRAPHILE_PROCESSES, NON_DURABLE
from .scenarios import RAQUEL_LEFT, RAQUEL_SPAN
from .server import Server
from .workers import ROOT, first_handler_start, spawn, stop

#: (jobs in flight per process, processes): 10 and 50 in one process, graphile-worker's 4 x 24.
SHAPES = ((10, 1), (50, 1), (GRAPHILE_JOBS, GRAPHILE_PROCESSES))

#: Run in a retention-0 drain's database before its jobs are enqueued: each statement that deletes
#: jobs appends its time to an unlogged table (no index, no row shared between the worker
#: processes, so no lock between their completions), and the drain ends at the latest. The harness
#: used to time that drain by polling ``RAQUEL_LEFT`` every 2 ms instead: a query every 2.4 ms took
#: about a fifth of a core from the drain it timed on a 2-core machine (bench/RESULTS.md, "The
#: retention-0 drain's timing"), while graphile-worker's drains are timed in its own processes.
DELETES_TIMED = """
CREATE UNLOGGED TABLE public.bench_deletes (at timestamptz NOT NULL);
CREATE FUNCTION public.bench_deletes_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.bench_deletes VALUES (clock_timestamp());
    RETURN NULL;
END $$;
CREATE TRIGGER bench_deletes_time AFTER DELETE ON raquel.raquel_jobs FOR EACH STATEMENT
    EXECUTE FUNCTION public.bench_deletes_time();
"""

#: When the last statement that deleted jobs ran (epoch s), after a retention-0 drain.
LAST_DELETE = "SELECT extract(epoch FROM max(at)) FROM public.bench_deletes"

#: A drain: its span, and the CPU (us per job) of the worker processes and of their server
#: processes (None when not measured).
Run = tuple[Span, float | None, float | None]


#: The fastest settings (docs/guides/fast-paths.md, "The fastest settings"): issue 23's fast-mode
#: goal is read on them (bench/report.py), graphile-worker deleting its finished jobs too.
FASTEST = f"prefetch={FAST_PREFETCH}, {NON_DURABLE}, the queue's retention 0"


def shape_name(concurrency: int, processes: int) -> str:
    """How a shape is shown: '10', or '4 x 24'."""
    return str(concurrency) if processes == 1 else f"{processes} x {concurrency}"


def run_raquel(
    dsn: str,
    jobs: int,
    concurrency: int,
    processes: int,
    durable: bool,
    baseline: str | None,
    retention_zero: bool = False,
    setup_sql: str | None = None,
    prefetch: int = FAST_PREFETCH,
) -> Run:
    """Enqueues ``jobs`` jobs (then ANALYZE), drains them with ``processes`` worker processes of
    ``concurrency`` slots and ``prefetch`` each; the span and the CPU per job (the
    worker processes', and their server processes', from every worker's 'ready' to the last job
    done; the queue is paused until every process is ready). ``baseline``: a directory holding
    another ``raquel_pg`` to run instead of this tree's. ``retention_zero``: the queue's retention
    set to 0 first (0007_outcomes: its successes are deleted at once, as graphile-worker's are).
    ``setup_sql``: run in the database first (a baseline's: to undo a migration under test)."""
    queue = "bench"
    with psycopg.connect(dsn, autocommit=True) as conn:
        if setup_sql:
            conn.execute(setup_sql.encode())
        if retention_zero:
            conn.execute("SELECT raquel_set_retention(%s, '0')", [queue])
            conn.execute(DELETES_TIMED.encode())
        conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])
        conn.execute("ANALYZE raquel_jobs")
        # Paused while the processes start, so that all of them begin together (the first one
        # ready would otherwise drain much of the queue alone) and their CPU is read from there.
        conn.execute("SELECT raquel_pause_queue(%s)", [queue])
    flags = ["batch", f"prefetch={prefetch}"] + ([] if durable else ["nondurable"])
    started = spawn(
        "e2e", dsn, queue, str(concurrency), *flags, count=processes, cwd=Path(baseline) if baseline else ROOT
    )
    try:
        clients0 = [cpu_seconds(p.pid) for p in started]
        server0 = server_cpu_seconds(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT raquel_resume_queue(%s)", [queue])
        resumed = time.time()
        wait_until(dsn, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
        clients1 = [cpu_seconds(p.pid) for p in started]
        server1 = server_cpu_seconds(dsn)
    finally:
        for process in started:
            stop(process)
    client = (
        None
        if None in clients0 or None in clients1
        else (sum(c or 0.0 for c in clients1) - sum(c or 0.0 for c in clients0)) * 1e6 / jobs
    )
    server = None if server0 is None or server1 is None else (server1 - server0) * 1e6 / jobs
    # The span begins at the first handler start, as graphile-worker's (a worker that does not
    # report it, a baseline's older bench.worker_proc: at the resume, or the first claim).
    firsts = [first for first in map(first_handler_start, started) if first is not None]
    if retention_zero:
        # The successes are deleted: to the last statement that deleted jobs (the last
        # raquel_complete_many), as graphile-worker's span is timed in its processes.
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(LAST_DELETE).fetchone()
        assert row is not None and row[0] is not None, "no job was deleted"
        return Span(min(firsts, default=resumed), [], done=jobs, last_success=float(row[0])), client, server
    span = read_span(dsn, RAQUEL_SPAN, [queue])
    return (replace(span, first_claim=min(firsts)) if firsts else span), client, server


def run_graphile(dsn: str, jobs: int, concurrency: int, processes: int) -> Run:
    """graphile-worker with its perfTest's settings (its CPU not measured)."""
    return node_peers.drain_graphile(dsn, jobs, concurrency, "perftest", processes), None, None


#: One configuration: (system, settings, shape, run on a fresh database's DSN, migrated).
Config = tuple[str, str, str, Callable[[str], Run], bool]


def configs(sizes: Sizes) -> list[Config]:
    """The configurations of each round."""
    jobs = sizes.peer_jobs * 5 // 2
    baselines = [b for b in os.environ.get("RAQUEL_PG_BENCH_BASELINE", "").split(os.pathsep) if b]
    baseline_sql = os.environ.get("RAQUEL_PG_BENCH_BASELINE_SQL") or None
    for baseline in baselines:
        shutil.rmtree(os.path.join(baseline, "bench"), ignore_errors=True)
        shutil.copytree(ROOT / "bench", os.path.join(baseline, "bench"))
    missing = node_peers.unavailable()
    versions: list[str | None] = [None, *baselines]
    wanted = os.environ.get("RAQUEL_PG_BENCH_FAST_SETTINGS", "nondurable,durable,retention0").split(",")
    settings_kept = [
        flags
        for name, flags in (("nondurable", (False, False)), ("durable", (True, False)), ("retention0", (False, True)))
        if name in wanted
    ]
    prefetches = [int(p) for p in os.environ.get("RAQUEL_PG_BENCH_FAST_PREFETCH", str(FAST_PREFETCH)).split(",")]
    shapes_wanted = os.environ.get("RAQUEL_PG_BENCH_FAST_SHAPES", "10,50,4x24").replace(" ", "").split(",")
    runs: list[Config] = []
    for concurrency, processes in SHAPES:
        shape = shape_name(concurrency, processes)
        if shape.replace(" ", "") not in shapes_wanted:
            continue
        each = f"{processes} processes x " if processes > 1 else ""
        for (durable, retention_zero), prefetch in itertools.product(settings_kept, prefetches):
            settings = (
                f"{each}concurrency={concurrency}, prefetch={prefetch}"
                + ("" if durable else f", {NON_DURABLE}")
                + (", the queue's retention 0" if retention_zero else "")
            )
            for code in versions:
                name = "raquel_pg" if code is None else f"raquel_pg (code of {os.path.basename(code.rstrip('/'))})"
                runs.append(
                    (
                        name,
                        settings,
                        shape,
                        partial(
                            run_raquel,
                            jobs=jobs,
                            concurrency=concurrency,
                            processes=processes,
                            durable=durable,
                            baseline=code,
                            retention_zero=retention_zero,
                            setup_sql=None if code is None else baseline_sql,
                            prefetch=prefetch,
                        ),
                        True,
                    )
                )
        if missing is None:
            runs.append(
                (
                    "graphile-worker",
                    f"its perfTest: {each}concurrentJobs={concurrency}, localQueue 500, batched completions",
                    shape,
                    partial(run_graphile, jobs=jobs, concurrency=concurrency, processes=processes),
                    False,
                )
            )
    return runs


def scenario_fast(server: Server, sizes: Sizes) -> Section:
    """raquel_pg's fastest opt-in settings beside graphile-worker's perfTest, rounds interleaved, medians."""
    rounds = 1 if sizes.name == "tiny" else int(os.environ.get("RAQUEL_PG_BENCH_FAST_ROUNDS", "3"))
    runs = configs(sizes)
    section = Section(
        "Fast modes beside graphile-worker's perfTest (issue 23)",
        f"{sizes.peer_jobs * 5 // 2:,} pre-enqueued no-op jobs per run, each run in a fresh database of the "
        f"same server (tables ANALYZEd after the bulk enqueue); {rounds} rounds, the configurations taking "
        "turns (order reversed every other round); jobs/s = jobs / (last durable success - first handler "
        "start, in the worker processes) (graphile-worker: to its runOnce() returning, as scenario 5; "
        "raquel_pg with retention 0: to its last statement that deleted jobs), median of the "
        "rounds (min-max beside). raquel_pg: `bench.worker_proc e2e` processes (pools of 10 connections), "
        f"`subscribe(queue, concurrency=N, prefetch={FAST_PREFETCH})`, successes batched (the default). "
        "÷ graphile-worker: the median of the rounds' ratios at the same jobs in flight. CPU per job "
        "(raquel_pg only): its worker processes' and their server processes' (read from /proc).",
        [
            "system",
            "settings",
            "in flight",
            "jobs/s (median)",
            "min-max",
            "÷ graphile-worker perfTest",
            "worker CPU µs/job",
            "server CPU µs/job",
        ],
    )
    results: list[list[Run | None]] = [[] for _ in runs]
    for round_number in range(rounds):
        order = list(range(len(runs)))
        if round_number % 2:
            order.reverse()
        for i in order:
            name, settings, shape, run, migrated = runs[i]
            print(f"[bench] fast: round {round_number + 1}, {name} {settings}", file=sys.stderr, flush=True)
            with server.database(name.split()[0].replace("_", "").replace("-", ""), migrated=migrated) as dsn:
                results[i].append(run(dsn))
            last = results[i][-1]
            rate = last[0].rate if last is not None else None
            print(f"[bench] fast: round {round_number + 1} rate {fmt(rate)} jobs/s", file=sys.stderr, flush=True)
    peer = {shape: got for (name, _, shape, _, _), got in zip(runs, results) if name == "graphile-worker"}
    for (name, settings, shape, _, _), got in zip(runs, results):
        done = [r for r in got if r is not None]
        rates = [span.rate or 0.0 for span, _, _ in done]
        clients = [c for _, c, _ in done if c is not None]
        servers = [s for _, _, s in done if s is not None]
        ratios = [
            mine[0].rate / theirs[0].rate
            for mine, theirs in zip(got, peer.get(shape, []))
            if mine is not None and theirs is not None and mine[0].rate and theirs[0].rate
        ]
        median = statistics.median(rates) if rates else None
        ratio = statistics.median(ratios) if ratios and name != "graphile-worker" else None
        section.add(
            name,
            settings,
            shape,
            median,
            f"{fmt(min(rates))}-{fmt(max(rates))}" if rates else "",
            "" if ratio is None else f"{ratio:.2f}x",
            statistics.median(clients) if clients else None,
            statistics.median(servers) if servers else None,
        )
        section.figures[f"{name} {settings}"] = median
        if ratio is not None:
            section.figures[f"ratio {name} {settings}"] = ratio
            if name == "raquel_pg" and settings.endswith(FASTEST):
                section.figures[f"ratio fastest graphile-worker @{shape}"] = ratio
    return section
