"""The benchmark's Python peers and the pure-SQL limit: pgqueuer, procrastinate, pgbench.

Each runner takes a fresh database, installs the system with its own installer, bulk-enqueues
no-op jobs with its own call, ANALYZEs the database (as autovacuum would in time: without it
the planner sees the peer's freshly filled tables as empty; on a server with autovacuum off
procrastinate then drained at 126 jobs/s instead of 650-700, issue 23), drains the jobs and
returns the span read from the system's own tables (see measure.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import psycopg

from .measure import Span, pgbench, read_span
from .server import Server
from .workers import ROOT

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


def analyze(dsn: str) -> None:
    """ANALYZE every table of the database (each system runs in a database of its own)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


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
    analyze(dsn)
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

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=concurrency + 2)
    )

    @app.task(name="noop", queue="bench")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*([{}] * jobs))
        analyze(dsn)
        await app.run_worker_async(queues=["bench"], concurrency=concurrency, wait=False, install_signal_handlers=False)


def run_procrastinate(dsn: str, jobs: int, concurrency: int) -> Span:
    """A procrastinate drain, measured from its events table."""
    asyncio.run(_procrastinate(dsn, jobs, concurrency))
    return read_span(dsn, PROCRASTINATE_SPAN)


def run_pure_sql(server: Server, dsn: str, jobs: int, script: str, batch: int, clients: int) -> Span:
    """The pure-SQL pipeline: ``jobs`` rows inserted, then claimed and completed by pgbench."""
    program = server.pgbench()
    assert program is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((ROOT / "bench" / "sql" / "pure_schema.sql").read_bytes())
        conn.execute("INSERT INTO sql_jobs (queue, payload) SELECT 'bench', 'x' FROM generate_series(1, %s)", [jobs])
    analyze(dsn)
    pgbench(program, dsn, script, clients=clients, transactions=max(1, jobs // (clients * batch)))
    return read_span(dsn, PURE_SPAN)
