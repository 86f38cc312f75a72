"""Scenario ``default`` (issue 23): raquel_pg's default worker beside pgqueuer's defaults, side by side.

Each round drains the same number of pre-enqueued no-op jobs with every
configuration, at 10 and at 50 jobs in flight, each in a fresh database of
the same server, the configurations taking turns round by round; the figures
are the medians of the rounds. raquel_pg runs ``subscribe(queue,
concurrency=N)`` with nothing else (its defaults), in a process of its own;
with ``RAQUEL_PG_BENCH_BASELINE=DIR[:DIR...]`` (directories holding another version's
``raquel_pg`` package, e.g. ``git archive <commit> raquel_pg | tar -x -C DIR``;
the worker runs from there, beside a copy of this ``bench``) the same worker
also runs on that code, so a change is measured against what it replaces in
the same rounds. ``RAQUEL_PG_BENCH_BASELINE_SQL`` is run in each baseline's database first (to
undo a migration under test). ``RAQUEL_PG_BENCH_OPTIONS="key=value ...;key=value ..."``
adds rows of this tree's worker with those options. Every system's tables
are ANALYZEd after its bulk enqueue.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import psycopg

from .measure import Section, Sizes, Span, fmt, ratio, read_span, wait_until
from .python_peers import installed, run_pgqueuer
from .scenarios import RAQUEL_LEFT, RAQUEL_SPAN
from .server import Server
from .workers import ROOT

#: Jobs in flight compared: pgqueuer's one QueueManager (batch_size=10) and its benchmark's 5 x 10.
IN_FLIGHT = (10, 50)

#: Rounds (each configuration drains once per round).
ROUNDS = 3


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, s) a process has used so far, from /proc; None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(dsn: str) -> float | None:
    """CPU time used so far by the server processes of ``dsn``'s database (other than this query's).

    Needs the server on this machine, its /proc readable; None otherwise.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    times = [cpu_seconds(pid) for pid in pids]
    return None if not times or None in times else sum(t for t in times if t is not None)


@contextmanager
def default_worker(
    dsn: str, queue: str, concurrency: int, baseline: str | None, options: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[str]]:
    """One process running ``subscribe(queue, concurrency=concurrency)`` with the client's defaults.

    ``baseline``: a directory holding another ``raquel_pg``; the worker runs
    from there (its ``bench`` is a copy of this one's, made by :func:`configs`),
    so that its ``raquel_pg`` is imported instead of this tree's. ``options``: ``key=value``
    worker options (bools as True/False) added to the defaults.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.worker_proc", "default", dsn, queue, str(concurrency), *options],
        cwd=baseline or ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("benchmark worker did not start")
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: A drain: its span, and the CPU (us per job) of the worker process and of its server processes
#: (None when not measured).
Run = tuple[Span, float | None, float | None]


def run_raquel(
    dsn: str,
    jobs: int,
    concurrency: int,
    baseline: str | None,
    options: tuple[str, ...] = (),
    setup_sql: str | None = None,
) -> Run:
    """Enqueues ``jobs`` jobs (then ANALYZE), drains them with the default worker; span and CPU per job.

    CPU: the worker process's and its server processes' (pool and LISTEN
    connections), from the worker's 'ready' to the last job done.
    ``setup_sql``: run in the database first (a baseline's: to undo a migration under test).
    """
    queue = "bench"
    with psycopg.connect(dsn, autocommit=True) as conn:
        if setup_sql:
            conn.execute(setup_sql.encode())
        conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])
        conn.execute("ANALYZE raquel_jobs")
    with default_worker(dsn, queue, concurrency, baseline, options) as process:
        client0, server0 = cpu_seconds(process.pid), server_cpu_seconds(dsn)
        wait_until(dsn, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
        client1, server1 = cpu_seconds(process.pid), server_cpu_seconds(dsn)
    client = None if client0 is None or client1 is None else (client1 - client0) * 1e6 / jobs
    server = None if server0 is None or server1 is None else (server1 - server0) * 1e6 / jobs
    return read_span(dsn, RAQUEL_SPAN, [queue]), client, server


def run_peer(dsn: str, jobs: int, managers: int) -> Run:
    """A pgqueuer drain (its CPU not measured: its workers run in this process)."""
    return run_pgqueuer(dsn, jobs, managers, 10), None, None


#: One configuration: (system, settings, in flight, run on a fresh database's DSN, migrated).
Config = tuple[str, str, int, Callable[[str], Run], bool]


def configs(sizes: Sizes) -> list[Config]:
    """The configurations of each round, raquel_pg first."""
    jobs = sizes.peer_jobs
    baselines = [b for b in os.environ.get("RAQUEL_PG_BENCH_BASELINE", "").split(os.pathsep) if b]
    baseline_sql = os.environ.get("RAQUEL_PG_BENCH_BASELINE_SQL") or None
    for baseline in baselines:
        shutil.rmtree(os.path.join(baseline, "bench"), ignore_errors=True)
        shutil.copytree(ROOT / "bench", os.path.join(baseline, "bench"))
    extra = [tuple(o.split()) for o in os.environ.get("RAQUEL_PG_BENCH_OPTIONS", "").split(";") if o.strip()]
    runs: list[Config] = []
    for n in IN_FLIGHT:
        runs.append(
            (
                "raquel_pg",
                f"subscribe(concurrency={n}), defaults",
                n,
                partial(run_raquel, jobs=jobs, concurrency=n, baseline=None),
                True,
            )
        )
        for options in extra:
            runs.append(
                (
                    "raquel_pg",
                    f"subscribe(concurrency={n}, {', '.join(options)})",
                    n,
                    partial(run_raquel, jobs=jobs, concurrency=n, baseline=None, options=options),
                    True,
                )
            )
        for baseline in baselines:
            runs.append(
                (
                    "raquel_pg (baseline)",
                    f"subscribe(concurrency={n}), defaults, code of {os.path.basename(baseline.rstrip('/'))}",
                    n,
                    partial(run_raquel, jobs=jobs, concurrency=n, baseline=baseline, setup_sql=baseline_sql),
                    True,
                )
            )
        if installed("pgqueuer"):
            managers = 1 if n == 10 else n // 10
            runs.append(
                (
                    "pgqueuer",
                    f"{managers} QueueManager(s) x batch_size=10, PsycopgDriver",
                    n,
                    partial(run_peer, jobs=jobs, managers=managers),
                    False,
                )
            )
    return runs


def scenario_default(server: Server, sizes: Sizes) -> Section:
    """raquel_pg's default worker against pgqueuer's defaults, rounds interleaved, medians."""
    section = Section(
        "Default mode (issue 23)",
        f"{sizes.peer_jobs:,} pre-enqueued no-op jobs per run, each run in a fresh database of the "
        f"same server (tables ANALYZEd after the bulk enqueue); {ROUNDS} rounds, the configurations "
        "taking turns within each round; jobs/s = jobs / (last durable success - first claim) from "
        "each system's own timestamps (as scenario 5), median of the rounds (min-max in brackets). "
        "raquel_pg: `AsyncRaquel(dsn)` and `subscribe(queue, concurrency=N)` with nothing else, in a "
        "process of its own. Ratio: this row / pgqueuer at the same jobs in flight. CPU per job "
        "(raquel_pg only): the worker process's, and its server processes' (its pool and LISTEN "
        "connections, read from /proc), from the worker's start to the last job done.",
        [
            "system",
            "settings",
            "in flight",
            "jobs/s (median)",
            "min-max",
            "steady jobs/s (median)",
            "÷ pgqueuer",
            "worker CPU µs/job",
            "server CPU µs/job",
        ],
    )
    runs = configs(sizes)
    results: list[list[Run]] = [[] for _ in runs]
    for round_number in range(ROUNDS):
        order = list(range(len(runs)))
        if round_number % 2:
            order.reverse()
        for i in order:
            name, _, _, run, migrated = runs[i]
            print(f"[bench] default: round {round_number + 1}, {runs[i][1]}", file=sys.stderr, flush=True)
            with server.database(name.split()[0].replace("_", ""), migrated=migrated) as dsn:
                results[i].append(run(dsn))
    medians: dict[int, float] = {}
    for (name, _settings, n, _, _), got in zip(runs, results):
        if name == "pgqueuer":
            medians[n] = statistics.median(span.rate or 0.0 for span, _, _ in got)
    for (name, settings, n, _, _), got in zip(runs, results):
        rates = [span.rate or 0.0 for span, _, _ in got]
        steady = [span.steady_rate or 0.0 for span, _, _ in got]
        clients = [c for _, c, _ in got if c is not None]
        servers = [s for _, _, s in got if s is not None]
        median = statistics.median(rates)
        section.add(
            name,
            settings,
            n,
            median,
            f"{fmt(min(rates))}-{fmt(max(rates))}",
            statistics.median(steady),
            "" if name == "pgqueuer" else ratio(median, medians.get(n)),
            statistics.median(clients) if clients else None,
            statistics.median(servers) if servers else None,
        )
        section.figures[f"{name} {settings}"] = median
    return section
