"""What the dashboard reads and does, each a query of ``queries.sql`` over an async pool.

Every read is a call of the engine's functions (``raquel_queue_overview``,
``raquel_throughput``, migration 0011_dashboard) or a keyset read of ``raquel_jobs``;
every action is a call of the engine's own function (``raquel_retry``,
``raquel_cancel``, ``raquel_purge``, ``raquel_pause_queue``, ``raquel_resume_queue``).
Nothing here decides what happens to a job. Connections plan each statement with its values (no prepared
statements), so that filters given as NULL drop out of the plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .. import params
from ..errors import translate
from ..jsonvalues import read_unreadable_as_text
from ..model import JobRecord
from ..queries import QUERIES

#: Final statuses the throughput chart counts as failures.
FAILURES = ("exhausted", "expired")
#: The chart's windows: (length, bucket) in ms.
WINDOWS = {"hour": (3_600_000, 60_000), "day": (86_400_000, 900_000)}
#: Jobs with an error one page of the error search reads at most.
ERROR_SCAN = 5000
#: How long one purge request may go on deleting batches.
PURGE_BUDGET = 5.0
#: How long a request waits for a pooled connection (the live table refreshes every 5 s).
CONNECTION_WAIT = 5.0


@dataclass
class QueueRow:
    """One queue on the queues page: live numbers, what finished in the last hour, and its
    controls (migration 0009_operations): paused, and its limits (None: no such limit)."""

    name: str
    queued: int = 0
    failed: int = 0
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    lease_expired: int = 0
    oldest_ready_age_ms: int | None = None
    finished_hour: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    max_running: int | None = None
    per_second: float | None = None

    @property
    def succeeded_hour(self) -> int:
        return self.finished_hour.get("success", 0)

    @property
    def failed_hour(self) -> int:
        return sum(self.finished_hour.get(s, 0) for s in FAILURES)

    @property
    def cancelled_hour(self) -> int:
        return self.finished_hour.get("cancelled", 0)


@dataclass
class JobSummary:
    """One row of the jobs list."""

    id: UUID
    queue: str
    status: str
    attempts: int
    error: str | None
    enqueued_at: datetime | None
    scheduled_at: datetime | None
    finished_at: datetime | None
    priority: int


@dataclass(frozen=True)
class JobFilters:
    """What the jobs list keeps: a queue (None: any), any of ``statuses`` (empty: any status), and
    jobs finished at or after ``finished_after`` (ms since the epoch; None: finished or not)."""

    queue: str | None = None
    statuses: tuple[str, ...] = ()
    finished_after: int | None = None

    def args(self) -> dict[str, Any]:
        """The filters as the ``dash_jobs`` queries take them."""
        return {"queue": self.queue, "statuses": list(self.statuses) or None, "finished_after": self.finished_after}


def _summary(row: tuple[Any, ...]) -> JobSummary:
    return JobSummary(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        params.to_datetime(row[5]),
        params.to_datetime(row[6]),
        params.to_datetime(row[7]),
        row[8],
    )


@dataclass
class ErrorSearch:
    """A page of the error search: the matches, how many jobs with an error were read, and
    ``resume``: the id to search below next when the read stopped at its limit (else None:
    every older job with an error was read)."""

    jobs: list[JobSummary]
    scanned: int
    resume: UUID | None


@dataclass(frozen=True)
class Privileges:
    """What the connected role may do (and the role's name)."""

    retry: bool
    cancel: bool
    purge: bool
    role: str
    #: May pause and resume queues (raquel_pause_queue and raquel_resume_queue).
    pause: bool = False

    @property
    def any(self) -> bool:
        return self.retry or self.cancel or self.purge or self.pause


NO_PRIVILEGES = Privileges(False, False, False, "", False)


async def _configure(conn: AsyncConnection[Any]) -> None:
    """A new pooled connection: JSON Python cannot decode reads as its text (a job page shows it)."""
    read_unreadable_as_text(conn)


class Store:
    """The dashboard's database: an async pool of up to ``max_size`` connections to ``dsn``."""

    def __init__(self, dsn: str, *, max_size: int = 4) -> None:
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            name="raquel-dashboard",
            kwargs={"autocommit": True, "prepare_threshold": None},
            configure=_configure,
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch(self, name: str, values: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of the query ``name``; a raquel_* argument error becomes InvalidArgument.

        Waits at most :data:`CONNECTION_WAIT` seconds for a connection (psycopg_pool's
        PoolTimeout, an OperationalError, when the database is gone: the page answers 503).
        """
        async with self.pool.connection(timeout=CONNECTION_WAIT) as conn:
            try:
                cursor = await conn.execute(QUERIES[name], values)
            except psycopg.errors.InvalidParameterValue as error:
                raise translate(error) from None
            return await cursor.fetchall() if cursor.description else []

    async def privileges(self) -> Privileges:
        row = (await self.fetch("dash_privileges"))[0]
        return Privileges(bool(row[0]), bool(row[1]), bool(row[2]), row[3], bool(row[4]) and bool(row[5]))

    async def now_ms(self) -> int:
        now: int = (await self.fetch("dash_now"))[0][0]
        return now

    async def queues(self) -> list[QueueRow]:
        """Every queue with waiting or running jobs, jobs finished in the last hour, or a pause or
        limit set, by name, with its controls."""
        rows = {r[0]: QueueRow(*r) for r in await self.fetch("dash_overview")}
        since = await self.now_ms() - WINDOWS["hour"][0]
        for _, queue, status, jobs in await self.fetch("dash_throughput", {"since": since}):
            row = rows.get(queue) or rows.setdefault(queue, QueueRow(queue))
            row.finished_hour[status] = row.finished_hour.get(status, 0) + jobs
        for queue, paused, max_running, per_second in await self.fetch("dash_controls"):
            row = rows.get(queue) or rows.setdefault(queue, QueueRow(queue))
            row.paused, row.max_running, row.per_second = paused, max_running, per_second
        return [rows[name] for name in sorted(rows)]

    async def pause(self, queue: str) -> bool:
        """``raquel_pause_queue``: True when this call paused the queue."""
        return bool((await self.fetch("pause_queue", {"queue": queue}))[0][0])

    async def resume(self, queue: str) -> bool:
        """``raquel_resume_queue``: True when the queue was paused (its waiting workers are woken)."""
        return bool((await self.fetch("resume_queue", {"queue": queue}))[0][0])

    async def throughput(self, window: str, queue: str | None = None) -> dict[str, Any]:
        """Jobs finished per bucket of ``window`` ('hour': minutes, 'day': quarter hours).

        Returns ``{"window", "bucket_seconds", "labels" (ISO 8601 UTC bucket
        starts), "success", "failure" (exhausted, expired), "cancelled"}``,
        every bucket present (0 when nothing finished).
        """
        length, bucket = WINDOWS[window]
        now = await self.now_ms()
        first = (now - length) // bucket * bucket + bucket
        count = (now - first) // bucket + 1
        series = {name: [0] * count for name in ("success", "failure", "cancelled")}
        rows = await self.fetch("dash_throughput_buckets", {"since": first, "bucket": bucket, "queue": queue})
        for start, status, jobs in rows:
            index = (start - first) // bucket
            if 0 <= index < count:
                name = "success" if status == "success" else "cancelled" if status == "cancelled" else "failure"
                series[name][index] += jobs
        labels = [datetime.fromtimestamp((first + i * bucket) / 1000, timezone.utc).isoformat() for i in range(count)]
        return {"window": window, "bucket_seconds": bucket // 1000, "labels": labels, **series}

    async def jobs(self, filters: JobFilters, *, before: UUID | None, limit: int) -> list[JobSummary]:
        """A page of the jobs ``filters`` keeps, newest first, below ``before`` (an id) when given."""
        rows = await self.fetch("dash_jobs", {**filters.args(), "before": before, "limit": limit})
        return [_summary(r) for r in rows]

    async def search_errors(self, text: str, filters: JobFilters, *, before: UUID | None, limit: int) -> ErrorSearch:
        """Up to ``limit`` jobs ``filters`` keeps whose error contains ``text`` (any case), newest first,
        below ``before``.

        Reads at most :data:`ERROR_SCAN` jobs that have an error, so that a
        page answers in bounded time however many there are: see ErrorSearch.
        """
        rows = await self.fetch(
            "dash_jobs_error",
            {**filters.args(), "error": text, "before": before, "limit": limit, "scan": ERROR_SCAN},
        )
        scanned_to, scanned = rows[0][9], rows[0][10]
        jobs = [_summary(r) for r in rows if r[0] is not None]
        return ErrorSearch(jobs, scanned, scanned_to if scanned == ERROR_SCAN else None)

    async def job(self, job_id: UUID) -> JobRecord | None:
        rows = await self.fetch("get", {"job_id": job_id})
        return JobRecord.from_row(rows[0]) if rows else None

    async def retry(self, job_id: UUID) -> bool:
        """``raquel_retry``: True when the job was requeued."""
        return bool((await self.fetch("ops_retry", {"job_id": job_id}))[0][0])

    async def cancel(self, job_id: UUID) -> bool:
        """``raquel_cancel`` of a waiting job: True when it was cancelled."""
        return (await self.fetch("cancel", {"job_id": job_id, "claim_id": None}))[0][0] is not None

    async def purge(self, older_than: timedelta, statuses: list[str]) -> tuple[int, bool]:
        """``raquel_purge`` batch after batch for at most :data:`PURGE_BUDGET` seconds.

        Returns (jobs deleted, whether every matching job is gone).
        """
        values = {"older_than": older_than, "statuses": statuses, "now": await self.now_ms(), "batch_size": 1000}
        deadline = time.monotonic() + PURGE_BUDGET
        purged = 0
        while True:
            deleted: int = (await self.fetch("ops_purge", values))[0][0]
            purged += deleted
            if deleted == 0:
                return purged, True
            if time.monotonic() > deadline:
                return purged, False
