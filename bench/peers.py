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
from .scenarios import CONCURRENCY, WIDE, drain, wide_worker
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
        while (await (await conn.execute("SELECT count(*) FROM pgqueuer")).fetchall())[0][0]:
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


#: How the raquel_pg run with as many jobs in flight as pure SQL's claims of 100 starts its settings.
WIDE_SETTINGS = f"AsyncWorker, concurrency={WIDE}"


def systems(server: Server, sizes: Sizes) -> list[tuple[str, str, Callable[[str], Span] | None]]:
    """(system, settings, run or None when unavailable) of scenario 5, raquel_pg first."""
    jobs = sizes.peer_jobs
    has_pgbench = server.pgbench() is not None
    raquel_settings = f"AsyncWorker, concurrency={CONCURRENCY}, pool_size={CONCURRENCY}"
    return [
        ("raquel_pg", raquel_settings + ", outcomes each at once",
         lambda dsn: drain(dsn, "bench", jobs, lambda d, q: workers.async_worker(d, q, CONCURRENCY))),
        ("raquel_pg", raquel_settings + ", batch_outcomes=True",
         lambda dsn: drain(dsn, "bench", jobs, lambda d, q: workers.async_worker(d, q, CONCURRENCY, True))),
        ("raquel_pg", f"{WIDE_SETTINGS}, pool_size={CONCURRENCY}, batch_outcomes=True "
         "(for the pure-SQL batch-100 limit only)",
         lambda dsn: drain(dsn, "bench", jobs, wide_worker)),
        ("pgqueuer", f"1 QueueManager, PsycopgDriver, batch_size={CONCURRENCY}",
         (lambda dsn: run_pgqueuer(dsn, jobs, 1, CONCURRENCY)) if installed("pgqueuer") else None),
        ("pgqueuer", "5 QueueManagers x batch_size=10 (its own benchmark's defaults)",
         (lambda dsn: run_pgqueuer(dsn, jobs, 5, 10)) if installed("pgqueuer") else None),
        ("procrastinate", f"1 worker, PsycopgConnector (pool max {CONCURRENCY + 2}), concurrency={CONCURRENCY}",
         (lambda dsn: run_procrastinate(dsn, jobs, CONCURRENCY)) if installed("procrastinate") else None),
        ("pure SQL (pgbench)", f"1 job per claim, {CONCURRENCY} clients",
         (lambda dsn: run_pure_sql(server, dsn, jobs, "pure_claim_complete_1.sql", 1)) if has_pgbench else None),
        ("pure SQL (pgbench)", f"batches of 100, {CONCURRENCY} clients",
         (lambda dsn: run_pure_sql(server, dsn, 10 * jobs, "pure_claim_complete_100.sql", 100))
         if has_pgbench else None),
    ]


def scenario_peers(server: Server, sizes: Sizes) -> Section:
    """Scenario 5: raquel_pg, pgqueuer, procrastinate and pure SQL, same jobs, same server."""
    section = Section(
        "5. Peers", f"{sizes.peer_jobs:,} pre-enqueued no-op jobs per system ({10 * sizes.peer_jobs:,} for "
        "pure SQL in batches of 100), each system in a fresh database of the same server, "
        f"{CONCURRENCY} jobs in flight (plus one raquel_pg run with {WIDE}, to compare with pure SQL's "
        "claims of 100). jobs/s = jobs / (last durable success - first claim), from "
        "each system's own timestamps (raquel_pg: claimed_at/finished_at; pgqueuer: pgqueuer_log "
        "'picked'/'successful'; procrastinate: procrastinate_events 'started'/'succeeded'; pure SQL: "
        "its claimed_at/finished_at). Steady jobs/s: the same between the 5th and 95th percentile "
        "of the successes. Ratio = raquel_pg's rate / this system's rate, headline (steady); > 1: "
        "raquel_pg is faster.",
        ["system", "settings", "jobs", "jobs/s", "steady jobs/s", "raquel_pg (each at once) ÷ this",
         "raquel_pg (batched) ÷ this", f"raquel_pg ({WIDE} in flight, batched) ÷ this"])
    results: list[tuple[str, str, Span | None]] = []
    for name, settings, run in systems(server, sizes):
        if run is None:
            results.append((name, settings, None))
            continue
        with server.database(name.split()[0].replace("_", ""), migrated=name == "raquel_pg") as dsn:
            results.append((name, settings, run(dsn)))
    plain, batched, wide = (span for _, _, span in results[:3])
    for name, settings, span in results:
        section.add(name, settings, span.jobs if span else "", *rate_cell(span),
                    ratios(plain, span), ratios(batched, span), ratios(wide, span))
        section.figures[f"{name} {settings}"] = span.rate if span else None
    section.figures.update(best_rates(results))
    return section


def best_rates(results: list[tuple[str, str, Span | None]]) -> dict[str, float | None]:
    """The best headline rate of each system (key: 'best <system>'), for the targets' check.

    raquel_pg's run with :data:`WIDE` jobs in flight counts only under
    'best raquel_pg, any concurrency' (compared with pure SQL's batches of
    100), not under 'best raquel_pg' (compared with the peers at
    ``CONCURRENCY`` jobs in flight).
    """
    best: dict[str, float | None] = {}
    for name, settings, span in results:
        if "batches of 100" in settings:
            key = "best pure SQL batch-100"
        elif settings.startswith(WIDE_SETTINGS):
            key = "best raquel_pg, any concurrency"
        else:
            key = f"best {name}"
        rate = span.rate if span else None
        if rate is not None or key not in best:
            best[key] = max(rate, best.get(key) or 0.0) if rate is not None else None
    best["best raquel_pg, any concurrency"] = max(
        (rate for key, rate in best.items() if key.startswith("best raquel_pg") and rate is not None), default=None)
    return best
