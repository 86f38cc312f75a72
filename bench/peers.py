"""Scenario 5: the same no-op jobs on pgqueuer, procrastinate and plain SQL.

Every system drains pre-enqueued jobs on the same server, each in a
database of its own, and is measured as raquel_pg is (see measure.py): jobs
finished / (last durable success - first claim), from its own tables.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

import psycopg

from . import workers
from .measure import Section, Sizes, Span, pgbench, rate_cell, ratios, read_span
from .scenarios import CONCURRENCY, PROCESSES, drain
from .server import Server

PGQUEUER_SPAN = """
SELECT extract(epoch FROM created),
       (SELECT extract(epoch FROM min(created)) FROM pgqueuer_log WHERE status = 'picked')
FROM pgqueuer_log WHERE status = 'successful'"""

PROCRASTINATE_SPAN = """
SELECT extract(epoch FROM at),
       (SELECT extract(epoch FROM min(at)) FROM procrastinate_events WHERE type = 'started')
FROM procrastinate_events WHERE type = 'succeeded'"""

PURE_SPAN = """
SELECT extract(epoch FROM finished_at), extract(epoch FROM min(claimed_at) OVER ())
FROM sql_jobs WHERE status = 'done'"""


def installed(module: str) -> bool:
    """True when ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


async def _pgqueuer(dsn: str, jobs: int, managers: int, batch_size: int) -> None:
    """Installs pgqueuer, enqueues ``jobs`` no-op jobs, drains them with ``managers`` QueueManagers.

    The managers run in pgqueuer's continuous mode and are shut down (as
    pgqueuer's own benchmark does) once its queue table is empty: a job's row
    is deleted when its outcome is logged, so every job is then durably done
    and the managers' exit is no part of the figures.
    """
    from pgqueuer import Job, QueueManager
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.queries import Queries

    async def connect() -> Any:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True)

    setup = Queries(PsycopgDriver(await connect()))
    await setup.install()
    await setup.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
    queue_managers = []
    for _ in range(managers):
        qm = QueueManager(Queries(PsycopgDriver(await connect())))

        @qm.entrypoint("noop")
        async def noop(job: Job) -> None:
            return None

        queue_managers.append(qm)

    runs = [asyncio.create_task(qm.run(batch_size=batch_size)) for qm in queue_managers]
    async with await connect() as conn:
        # Stops at the first job left (as raquel_pg's poll, scenarios.RAQUEL_LEFT).
        while (await (await conn.execute("SELECT EXISTS (SELECT FROM pgqueuer)")).fetchall())[0][0]:
            await asyncio.sleep(0.05)
    for qm in queue_managers:
        qm.shutdown.set()
    # Its shutdown waits out internal timeouts (seconds); the jobs are done, so cut it short.
    _, pending = await asyncio.wait(runs, timeout=1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*runs, return_exceptions=True)


def run_pgqueuer(dsn: str, jobs: int, managers: int, batch_size: int) -> Span:
    """A pgqueuer drain, measured from its log table."""
    asyncio.run(_pgqueuer(dsn, jobs, managers, batch_size))
    return read_span(dsn, PGQUEUER_SPAN)


async def _procrastinate(dsn: str, jobs: int, concurrency: int) -> None:
    """Installs procrastinate, defers ``jobs`` no-op jobs, drains them with one worker."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=dsn, min_size=1, max_size=concurrency + 2))

    @app.task(name="noop", queue="bench")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*([{}] * jobs))
        await app.run_worker_async(queues=["bench"], concurrency=concurrency, wait=False,
                                   install_signal_handlers=False)


def run_procrastinate(dsn: str, jobs: int, concurrency: int) -> Span:
    """A procrastinate drain, measured from its events table."""
    asyncio.run(_procrastinate(dsn, jobs, concurrency))
    return read_span(dsn, PROCRASTINATE_SPAN)


def run_pure_sql(server: Server, dsn: str, jobs: int, script: str, batch: int) -> Span:
    """The pure-SQL pipeline: ``jobs`` rows inserted, then claimed and completed by pgbench."""
    program = server.pgbench()
    assert program is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((workers.ROOT / "bench" / "sql" / "pure_schema.sql").read_bytes())
        conn.execute("INSERT INTO sql_jobs (queue, payload) SELECT 'bench', 'x' FROM generate_series(1, %s)",
                     [jobs])
        conn.execute("VACUUM ANALYZE sql_jobs")
    pgbench(program, dsn, script, clients=CONCURRENCY, transactions=max(1, jobs // (CONCURRENCY * batch)))
    return read_span(dsn, PURE_SPAN)


#: Jobs in flight of pgqueuer's own benchmark defaults: 5 QueueManagers x batch_size=10.
PGQUEUER_WIDE = 50

#: Jobs in flight of pure SQL in batches of 100: each of its CONCURRENCY clients holds up to 100
#: claimed jobs between its claim and its outcome transaction.
PURE_WIDE = CONCURRENCY * 100

#: How raquel_pg's runs with the opt-in asynchronous claim commit are labelled.
NON_DURABLE = "durable_claims=False"

#: One system's run: (system, settings, jobs in flight, run or None when unavailable).
System = tuple[str, str, int, Callable[[str], Span] | None]


def systems(server: Server, sizes: Sizes) -> list[System]:
    """The runs of scenario 5, raquel_pg first. Each peer is compared with raquel_pg at its in-flight count."""
    jobs = sizes.peer_jobs
    has_pgbench = server.pgbench() is not None
    has_pgqueuer, has_procrastinate = installed("pgqueuer"), installed("procrastinate")

    def raquel(concurrency: int, batched: bool, durable: bool = True, processes: int = 1,
               count: int = jobs) -> Callable[[str], Span]:
        if processes > 1:
            return lambda dsn: drain(dsn, "bench", count, lambda d, q: workers.worker_processes(
                d, q, concurrency // processes, processes, batched, durable_claims=durable))
        return lambda dsn: drain(dsn, "bench", count, lambda d, q: workers.async_worker(
            d, q, concurrency, batched, pool_size=CONCURRENCY, durable_claims=durable))

    pool = f"pool_size={CONCURRENCY}"
    runs: list[System] = [
        ("raquel_pg", f"AsyncWorker, concurrency={CONCURRENCY}, {pool}, outcomes each at once", CONCURRENCY,
         raquel(CONCURRENCY, False)),
    ]
    for in_flight in (CONCURRENCY, PGQUEUER_WIDE):
        settings = f"AsyncWorker, concurrency={in_flight}, {pool}, batch_outcomes=True"
        runs.append(("raquel_pg", settings, in_flight, raquel(in_flight, True)))
        runs.append(("raquel_pg", f"{settings}, {NON_DURABLE}", in_flight, raquel(in_flight, True, False)))
    # Against pure SQL in batches of 100: as many jobs as it drains, and also
    # two worker processes (pgbench runs two threads of its own).
    wide = 10 * jobs
    for processes in (1, PROCESSES):
        settings = (f"AsyncWorker, concurrency={PURE_WIDE}, {pool}" if processes == 1 else
                    f"{processes} processes x AsyncWorker, concurrency={PURE_WIDE // processes}, "
                    f"{pool} each")
        settings += ", batch_outcomes=True"
        runs.append(("raquel_pg", settings, PURE_WIDE, raquel(PURE_WIDE, True, True, processes, wide)))
        runs.append(("raquel_pg", f"{settings}, {NON_DURABLE}", PURE_WIDE,
                     raquel(PURE_WIDE, True, False, processes, wide)))
    return runs + [
        ("pgqueuer", f"1 QueueManager, PsycopgDriver, batch_size={CONCURRENCY}", CONCURRENCY,
         (lambda dsn: run_pgqueuer(dsn, jobs, 1, CONCURRENCY)) if has_pgqueuer else None),
        ("pgqueuer", "5 QueueManagers x batch_size=10 (its own benchmark's defaults)", PGQUEUER_WIDE,
         (lambda dsn: run_pgqueuer(dsn, jobs, 5, 10)) if has_pgqueuer else None),
        ("procrastinate", f"1 worker, PsycopgConnector (pool max {CONCURRENCY + 2}), concurrency={CONCURRENCY}",
         CONCURRENCY, (lambda dsn: run_procrastinate(dsn, jobs, CONCURRENCY)) if has_procrastinate else None),
        ("pure SQL (pgbench)", f"1 job per claim, {CONCURRENCY} clients", CONCURRENCY,
         (lambda dsn: run_pure_sql(server, dsn, jobs, "pure_claim_complete_1.sql", 1)) if has_pgbench else None),
        ("pure SQL (pgbench)", f"batches of 100, {CONCURRENCY} clients", PURE_WIDE,
         (lambda dsn: run_pure_sql(server, dsn, 10 * jobs, "pure_claim_complete_100.sql", 100))
         if has_pgbench else None),
    ]


def scenario_peers(server: Server, sizes: Sizes) -> Section:
    """Scenario 5: raquel_pg, pgqueuer, procrastinate and pure SQL, same jobs, same server."""
    section = Section(
        "5. Peers", f"{sizes.peer_jobs:,} pre-enqueued no-op jobs per system ({10 * sizes.peer_jobs:,} for "
        f"pure SQL in batches of 100 and for raquel_pg's runs with {PURE_WIDE:,} in flight, one of them "
        f"with {PROCESSES} worker processes, as pgbench runs {PROCESSES} threads), each system in a fresh "
        "database of the same server. Each peer is "
        "compared with raquel_pg's best run with as many jobs in flight: 10 (pgqueuer's single "
        f"QueueManager, procrastinate, pure SQL one job per claim), {PGQUEUER_WIDE} (pgqueuer's own "
        f"benchmark defaults, 5 QueueManagers x 10) and {PURE_WIDE:,} (pure SQL's {CONCURRENCY} clients, "
        "each holding up to 100 claimed jobs). "
        "jobs/s = jobs / (last durable success - first claim), from each system's own timestamps "
        "(raquel_pg: claimed_at/finished_at; pgqueuer: pgqueuer_log 'picked'/'successful'; "
        "procrastinate: procrastinate_events 'started'/'succeeded'; pure SQL: its claimed_at/finished_at). "
        "Steady jobs/s: the same between the 5th and 95th percentile of the successes. Ratios = "
        "raquel_pg's rate / this system's rate, headline (steady); > 1: raquel_pg is faster. The first "
        "ratio takes raquel_pg's best run with durable claims (the default); the second its best run "
        f"with {NON_DURABLE} (opt-in: claims commit without waiting for their WAL flush, so a crash of "
        "the server can undo the last claims and run those jobs again; see README).",
        ["system", "settings", "in flight", "jobs", "jobs/s", "steady jobs/s",
         "best raquel_pg ÷ this (durable claims)", f"best raquel_pg ÷ this ({NON_DURABLE})"])
    results: list[tuple[str, str, int, Span | None]] = []
    for name, settings, in_flight, run in systems(server, sizes):
        span = None
        if run is not None:
            with server.database(name.split()[0].replace("_", ""), migrated=name == "raquel_pg") as dsn:
                span = run(dsn)
        results.append((name, settings, in_flight, span))
    durable = best_raquel(results, non_durable=False)
    non_durable = best_raquel(results, non_durable=True)
    for name, settings, in_flight, span in results:
        peer = name != "raquel_pg"
        section.add(name, settings, in_flight, span.jobs if span else "", *rate_cell(span),
                    ratios(durable.get(in_flight), span) if peer else "",
                    ratios(non_durable.get(in_flight), span) if peer else "")
        section.figures[f"{name} {settings}"] = span.rate if span else None
        if peer:
            key = "pure SQL batch-100" if "batches of 100" in settings else name
            section.figures[f"{key} @{in_flight}"] = span.rate if span else None
    for label, best in (("raquel_pg", durable), (f"raquel_pg {NON_DURABLE}", non_durable)):
        for in_flight, span in best.items():
            section.figures[f"{label} @{in_flight}"] = span.rate if span else None
    return section


def best_raquel(results: list[tuple[str, str, int, Span | None]], *, non_durable: bool) -> dict[int, Span | None]:
    """raquel_pg's fastest run (headline rate) per in-flight count, among its runs with durable
    claims, or among those with ``durable_claims=False``."""
    best: dict[int, Span | None] = {}
    for name, settings, in_flight, span in results:
        if name != "raquel_pg" or (NON_DURABLE in settings) != non_durable:
            continue
        current = best.get(in_flight)
        if current is None or (span is not None and (span.rate or 0.0) > (current.rate or 0.0)):
            best[in_flight] = span
    return best
