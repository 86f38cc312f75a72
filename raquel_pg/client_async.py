"""AsyncRaquel: the raquel API over the ``raquel_*`` SQL functions.

The async client is the hand-written source; the sync client is generated
from it by ``tools/async_to_sync.py`` and CI fails when the two drift. The
client holds no queue logic: every database effect is one call to a
``raquel_*`` function.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from . import connect, params, tracing
from .controls_async import AsyncQueueControlCalls
from .errors import InvalidArgument, translate
from .job_async import AsyncJob, AsyncJobCalls
from .jsonvalues import read_unreadable_as_text
from .leases_async import AsyncLeaseKeeper
from .migrate_async import migrate, schema_warning, up_to_date
from .model import JobRecord, QueueStats
from .notifier_async import AsyncNotifier
from .queries import QUERIES
from .raquel_calls_async import MIN_LEASE_MS, AsyncRaquelCalls
from .results_async import AsyncEnqueuedJob, AsyncResults
from .schedules_async import AsyncSchedules
from .subscriptions_async import AsyncSubscription, AsyncSubscriptions
from .tasks_async import AsyncTasks

__all__ = ["AsyncJob", "AsyncRaquel"]

logger = logging.getLogger("raquel_pg")


def _has_rows(result: pq.abc.PGresult | None) -> bool:
    """Whether a statement returned a result set (``cursor.description``, without building it)."""
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


class AsyncRaquel(
    AsyncRaquelCalls, AsyncSubscriptions, AsyncSchedules, AsyncResults, AsyncTasks, AsyncQueueControlCalls
):
    """A raquel job queue in PostgreSQL.

    ``AsyncRaquel(dsn)`` owns a connection pool (autocommit, at most
    ``pool_size`` connections), opened on first use. ``dsn`` is a libpq DSN
    or what raquel takes: a SQLAlchemy URL (``postgresql+psycopg2://…``,
    ``postgresql+psycopg://…``, ``postgresql+asyncpg://…``), a
    ``sqlalchemy.engine.URL``, or an ``Engine`` / ``AsyncEngine`` (its URL
    is used, not its pool; see :mod:`raquel_pg.connect`). Or pass your own
    ``AsyncConnectionPool`` (autocommit is recommended: it saves the
    BEGIN/COMMIT round trips). ``lease`` is how long a claim stays valid
    without renewal; while a job runs its lease is renewed every lease/3, so it
    bounds how long a dead worker's job waits to be rescued.

    Behind a transaction pooler (PgBouncer ``pool_mode = transaction``): pass
    ``prepared_statements=False`` (no statement is prepared, on the pool's
    connections or on a ``conn=`` given to a call: a pooler hands each
    transaction a different server connection) and ``listen_dsn``, a direct
    connection to the server for the workers' one LISTEN connection (default:
    ``$RAQUEL_PG_LISTEN_DSN``, else ``dsn``); everything else works through
    the pooler. A worker whose notifications do not arrive says so once and
    polls (see :class:`~raquel_pg.AsyncWorker`).
    Use as ``async with AsyncRaquel(dsn) as rq:`` or call :meth:`close`.
    """

    DEFAULT = params.DEFAULT_QUEUE  # the queue enqueue() uses when none is named, as raquel's
    QUEUED = params.QUEUED
    CLAIMED = params.CLAIMED
    SUCCESS = params.SUCCESS
    FAILED = params.FAILED
    CANCELLED = params.CANCELLED
    EXPIRED = params.EXPIRED
    EXHAUSTED = params.EXHAUSTED
    STATUSES = params.STATUSES

    def __init__(
        self,
        dsn: Any,
        *,
        lease: timedelta | int = timedelta(seconds=60),
        pool_size: int = 10,
        listen_dsn: str | None = None,
        prepared_statements: bool = True,
    ) -> None:
        lease_ms = params.duration_ms(lease, "lease")
        if lease_ms is None or lease_ms < MIN_LEASE_MS:
            raise InvalidArgument("lease", f"lease: must be at least {MIN_LEASE_MS} ms, got {lease!r}")
        self.lease_ms: int = lease_ms
        if not isinstance(prepared_statements, bool):
            raise InvalidArgument(
                "prepared_statements", f"prepared_statements: expected a bool, got {prepared_statements!r}"
            )
        self.prepared_statements = prepared_statements
        # execute(prepare=False) on every call, the caller's own connections
        # and pools included; None leaves it to the connection's threshold.
        self._prepare: bool | None = None if prepared_statements else False
        if listen_dsn is None:
            listen_dsn = os.environ.get("RAQUEL_PG_LISTEN_DSN") or None
        if listen_dsn is not None and not isinstance(listen_dsn, str):
            raise InvalidArgument("listen_dsn", f"listen_dsn: expected a str, got {listen_dsn!r}")
        self.listen_dsn = listen_dsn
        #: raquel's subscriptions: every one made by subscribe() or add_subscription().
        self.subscriptions: list[AsyncSubscription] = []
        conninfo = None if isinstance(dsn, AsyncConnectionPool) else connect.conninfo(dsn)
        if conninfo is not None:
            self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                conninfo,
                min_size=1,
                max_size=pool_size,
                open=False,
                kwargs={"autocommit": True, "prepare_threshold": 0 if prepared_statements else None},
            )
            self._owns_pool = True
        elif not isinstance(dsn, AsyncConnectionPool):
            raise InvalidArgument(
                "dsn",
                f"dsn: expected a DSN, a SQLAlchemy URL or engine, or an AsyncConnectionPool, got {type(dsn).__name__}",
            )
        else:
            if not isinstance(dsn.conninfo, str) or callable(dsn.kwargs):
                raise InvalidArgument(
                    "dsn",
                    "dsn: a pool with a static conninfo and kwargs is needed "
                    "(the LISTEN connection of its workers is opened from them)",
                )
            self._pool = dsn
            self._owns_pool = False
        self._opened = False
        # One cursor per pooled connection, reused by _fetch: psycopg keeps a
        # cursor's loaders when it runs the same query again, where a new
        # cursor looks a loader up for every column. enqueue() (21 columns):
        # 57.6 against 77.9 us of client CPU per call (issue 24). Not a weak
        # mapping (a cursor holds its connection): _fetch drops the cursors of
        # connections the pool closed.
        self._cursors: dict[AsyncConnection[Any], AsyncCursor[Any]] = {}
        self._leases = AsyncLeaseKeeper(self)
        self._notifier = AsyncNotifier(self._listen_connection, self._fetch)
        #: The calls this client's workers make (internal interface, see
        #: :class:`~raquel_pg.job_async.AsyncJobCalls`; not a public API).
        self.job_calls = AsyncJobCalls(self._fetch, self._leases, self._notifier, self.lease_ms)

    async def __aenter__(self) -> AsyncRaquel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops renewing leases and closes the pool if this client created it."""
        await self._leases.close()
        await self._stop_results()
        if self._owns_pool:
            await self._pool.close()

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection from the pool, for as long as the block lasts; waits for one at most
        ``timeout`` seconds (None: the pool's own, 30 s by default), then psycopg_pool's PoolTimeout."""
        if self._owns_pool and not self._opened:
            self._opened = True
            await self._pool.open()
        async with self._pool.connection(timeout=timeout) as conn:
            yield conn

    async def _listen_connection(self) -> AsyncConnection[Any]:
        """A new autocommit connection outside the pool, for LISTEN: to ``listen_dsn`` if set."""
        assert isinstance(self._pool.conninfo, str) and not callable(self._pool.kwargs)
        kwargs = dict(self._pool.kwargs or {})
        kwargs.update(autocommit=True, prepare_threshold=None)
        return await AsyncConnection.connect(self.listen_dsn or self._pool.conninfo, **kwargs)

    async def _fetch(
        self,
        query: str,
        args: dict[str, Any] | None = None,
        conn: AsyncConnection[Any] | None = None,
        *,
        binary: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Runs one query of ``queries.sql``; SQL argument errors become InvalidArgument.

        On ``conn`` when given (the caller's connection, in whatever
        transaction it is in, never committed here; a new cursor, as the
        caller may share that connection), else on a pooled one, through the
        cursor this client keeps for it (the connection is this call's alone
        while it holds it), on which JSON Python cannot decode reads as
        :class:`~raquel_pg.UnreadableJSON` (registered once per connection; not
        on the caller's cursor, 21 us a call: the calls given ``conn=`` return
        no stored result, but one written by hand on an unfinished job).
        ``binary``: rows come in PostgreSQL's binary format, cheaper to load
        when there are many (enqueue_many's 10,000 ids: 1.07-1.17x the call's
        rate; a claim of 500 jobs: 0.77 against 1.22 us per job to fetch).
        """
        used = conn  # the connection the query went to (its encoding read only after a refusal)
        try:
            if conn is not None:
                # A cursor of psycopg's own class with tuple rows, whatever the connection's
                # factories: Django's connections make client-side-binding cursors (which refuse
                # binary results), and a dict_row factory would break reading the rows.
                if not isinstance(conn, AsyncConnection):
                    raise InvalidArgument("conn", f"conn: expected a psycopg AsyncConnection, got {conn!r}")
                cursor = AsyncCursor(conn, row_factory=tuple_row)
                await cursor.execute(QUERIES[query], args, prepare=self._prepare, binary=binary)
                return await cursor.fetchall() if _has_rows(cursor.pgresult) else []
            async with self.connection() as pooled:
                kept = self._cursors.get(pooled)
                if kept is None or kept.closed:
                    for known in list(self._cursors):  # list(): other threads may add theirs
                        if known.closed:  # closed by the pool: broken, or past its max_lifetime
                            self._cursors.pop(known, None)
                    kept = self._cursors[pooled] = pooled.cursor()
                    read_unreadable_as_text(kept)
                used = pooled
                await kept.execute(QUERIES[query], args, prepare=self._prepare, binary=binary)
                return await kept.fetchall() if _has_rows(kept.pgresult) else []
        except (
            psycopg.errors.InvalidParameterValue,
            psycopg.errors.UndefinedFunction,
            psycopg.errors.UndefinedTable,
            psycopg.errors.InvalidSchemaName,
        ) as error:
            raise translate(error) from None
        except UnicodeEncodeError:  # a lone surrogate, or a character the database cannot store: nothing was sent
            encoding = "utf-8" if used is None else used.info.encoding  # 1.5 us: not read on the way in
            unencodable = params.unencodable(args or {}, encoding)
            if unencodable is None:
                raise
            if args is not None and unencodable.argument in params.ESCAPED_WHEN_UNENCODABLE:
                return await self._fetch(query, params.escaped(args, encoding), conn, binary=binary)
            raise unencodable from None

    async def create_all(self) -> None:
        """Applies pending migrations (raquel's ``create_all``); a no-op when up to date.

        Any granted role may call it at an application's start (the no-op
        reads ``raquel_migrations`` only, wherever it is); applying a pending
        migration needs the owner (see :func:`~raquel_pg.migrate_async.migrate`).
        """
        async with self.connection() as conn:
            if not await up_to_date(conn):
                await migrate(conn)

    async def schema_warning(self, timeout: float = 5.0) -> str | None:
        """One line when the database's migrations are not this raquel_pg's (behind it, or ahead of
        it: see :func:`~raquel_pg.migrate_async.schema_warning`), else None. Never raises: a database
        it cannot reach within ``timeout`` seconds, or read, gives None. A worker logs it when it
        starts (waiting at most 1 s for it)."""
        try:
            async with self.connection(timeout=timeout) as conn:
                return await schema_warning(conn)
        except psycopg.Error:
            return None

    async def enqueue(
        self,
        queue: str | None = None,
        payload: Any = None,
        at: datetime | int | None = None,
        delay: timedelta | int | None = None,
        max_age: timedelta | int | None = None,
        max_retry_count: int | None = None,
        min_retry_delay: timedelta | int | None = None,
        max_retry_delay: timedelta | int | None = None,
        backoff_base: timedelta | int | None = None,
        *,
        priority: int | None = None,
        unique_key: str | None = None,
        unique_mode: Literal["keep", "replace"] | None = None,
        timeout: timedelta | int | None = None,
        conn: AsyncConnection[Any] | None = None,
    ) -> AsyncEnqueuedJob:
        """Adds a job and returns it, as stored (raquel's ``enqueue``), in one round trip.

        ``queue`` defaults to ``"default"``. ``payload``: a str is stored as
        is, None as NULL, anything else as JSON; a job (a :class:`JobRecord`,
        e.g. one returned by :meth:`get`) enqueues a copy of it: its queue,
        payload, schedule, max_age, retry options and priority, each replaced
        by the argument given here (not its unique_key, status or history).
        ``at`` (datetime, naive = local time as ``datetime.timestamp()`` reads it, or ms since epoch) and ``delay``
        (timedelta or ms) schedule it: at ``at`` + ``delay``, by default now.
        ``max_age`` (from enqueue) expires it if not started in time;
        ``max_retry_count`` caps the retries after the first attempt; the retry
        delay is ``backoff_base * 2^(attempt-1)`` clamped to
        [``min_retry_delay``, ``max_retry_delay``] (defaults 1 s, 1 s, 12 h).

        ``priority``: higher runs first (default 0, negative allowed); FIFO by
        schedule within one priority.

        ``unique_key``: while an unfinished job (queued, failed or claimed)
        holds this key, no second one is created: with ``unique_mode='keep'``
        (the default) the existing job's id is returned unchanged; with
        ``'replace'`` a waiting (queued or failed) job is rewritten with these
        arguments as if enqueued now (same id, attempts reset), and a running
        (claimed) one is returned unchanged. The key is free again once the job
        finishes.

        ``timeout`` (timedelta or ms, > 0): each attempt may run that long; a
        worker cancels it then and records a failure ("timed out after N ms"),
        retried as any failure. ``job.wait()`` on the returned job waits for
        its result (:meth:`result`).

        ``conn``: run on this psycopg connection, inside the caller's
        transaction, without committing it: the job exists, and workers are
        notified, only if that transaction commits. An error raised by the
        database (InvalidArgument included) aborts that transaction, as any
        failed statement does.

        Raises :class:`~raquel_pg.InvalidArgument` (a ValueError naming the
        argument) for bad input, having written nothing. A lost connection
        raises ``psycopg.OperationalError`` and is not retried (a retry after
        a reply was lost would enqueue the job twice): the job may or may not
        be stored, and the caller decides.
        """
        if isinstance(payload, JobRecord):
            template = payload
            queue = queue or template.queue
            payload = template.raw_payload
            at = template.scheduled_at if at is None else at
            max_age = template.max_age if max_age is None else max_age
            max_retry_count = template.max_retry_count if max_retry_count is None else max_retry_count
            min_retry_delay = template.min_retry_delay if min_retry_delay is None else min_retry_delay
            max_retry_delay = template.max_retry_delay if max_retry_delay is None else max_retry_delay
            backoff_base = template.backoff_base if backoff_base is None else backoff_base
            priority = template.priority if priority is None else priority
            timeout = template.timeout if timeout is None else timeout
        args = params.enqueue_args(
            params.DEFAULT_QUEUE if queue is None else queue,
            payload,
            at,
            delay,
            max_age,
            max_retry_count,
            min_retry_delay,
            max_retry_delay,
            backoff_base,
            priority,
            unique_key,
            unique_mode,
            timeout,
        )
        if not tracing.active():
            rows = await self._fetch("enqueue", args, conn, binary=True)
            return AsyncEnqueuedJob._of(self, rows[0])
        with tracing.enqueue_span(args["queue"]) as span:
            args["trace_context"] = span.carrier
            rows = await self._fetch("enqueue", args, conn, binary=True)
            job = AsyncEnqueuedJob._of(self, rows[0])
            span.job_id(job.id)
        return job

    async def enqueue_many(
        self,
        queue: str,
        payloads: Iterable[Any],
        *,
        at: datetime | int | None = None,
        delay: timedelta | int | None = None,
        max_age: timedelta | int | None = None,
        max_retry_count: int | None = None,
        min_retry_delay: timedelta | int | None = None,
        max_retry_delay: timedelta | int | None = None,
        backoff_base: timedelta | int | None = None,
        priority: int | None = None,
        unique_keys: Iterable[str | None] | None = None,
        unique_mode: Literal["keep", "replace"] | None = None,
        timeout: timedelta | int | None = None,
        conn: AsyncConnection[Any] | None = None,
    ) -> list[UUID]:
        """Adds one job per payload in one statement and returns their ids, in order.

        Every option means what it means for :meth:`enqueue` and applies to
        every job. ``unique_keys`` (one key or None per payload, as many as
        payloads) makes each keyed job behave as :meth:`enqueue` with that
        ``unique_key`` and ``unique_mode``, as if the jobs were enqueued one
        after the other: a key repeated within the call makes one job (with
        ``'keep'`` from its first payload, with ``'replace'`` ending with its
        last payload) whose id every payload with that key gets back.

        With tracing on (:mod:`raquel_pg.tracing`), one PRODUCER span covers
        the call and every job stores its context, so each job's CONSUMER
        span is its child.

        ``conn`` is used as in :meth:`enqueue`. Raises
        :class:`~raquel_pg.InvalidArgument` for bad input, having written
        nothing (a refused call inserts no job at all); a lost connection
        raises ``psycopg.OperationalError``, not retried, as for enqueue.
        """
        args = params.enqueue_many_args(
            queue,
            payloads,
            at,
            delay,
            max_age,
            max_retry_count,
            min_retry_delay,
            max_retry_delay,
            backoff_base,
            priority,
            unique_keys,
            unique_mode,
            timeout,
        )
        if not tracing.active():
            rows = await self._fetch("enqueue_many", args, conn, binary=True)
            job_ids: list[UUID] = rows[0][0]
            return job_ids
        with tracing.enqueue_span(args["queue"], batch=True) as span:
            args["trace_context"] = span.carrier
            rows = await self._fetch("enqueue_many", args, conn, binary=True)
            job_ids = rows[0][0]
            span.batch_size(len(job_ids))
        return job_ids

    @asynccontextmanager
    async def dequeue(
        self,
        *queues: str,
        before: datetime | int | None = None,
        claim_as: str | None = None,
        expire: bool = True,
        raise_stop_on_unhandled_exc: bool = False,
        reclaim_after: timedelta | int | None = None,
    ) -> AsyncIterator[AsyncJob | None]:
        """Claims the next ready job of ``queues`` (default: all) and yields it, or None.

        When the block ends normally the job is recorded as 'success'; when it
        raises an Exception, as failed (message and traceback stored, retried
        with backoff) and the exception is swallowed, as in raquel, unless
        ``raise_stop_on_unhandled_exc``: then :class:`StopSubscription` is
        raised after the failure is recorded. :class:`StopSubscription`
        raised in the block records the success and propagates. An outcome
        set inside the block (``job.fail()``, ``reschedule``, ``reject``,
        ``cancel``) replaces these. Cancellation, KeyboardInterrupt and
        SystemExit hand the job back untouched (no attempt counted) and
        propagate. The job's lease is renewed while the block runs.
        A claimed row the client cannot decode (times outside datetime's
        range, written around the raquel functions) is recorded as a failed
        attempt saying so, and None is yielded.
        ``before``, ``claim_as`` and ``reclaim_after`` are :meth:`claim`'s;
        ``expire`` is accepted for raquel's sake: every claim already marks
        the jobs past their max_age 'expired' (at once when it finds its
        queues drained, else at most once a second), so there is nothing to
        turn on or off.
        """
        job = await self.claim(*queues, before=before, claim_as=claim_as, reclaim_after=reclaim_after)
        if job is None:
            yield None
            return
        async with self.job_calls.process(job, raise_stop_on_unhandled_exc=raise_stop_on_unhandled_exc):
            yield job

    async def set_priority(self, job_id: UUID | str, priority: int) -> bool:
        """Sets the priority of an unfinished job (queued, failed or claimed).

        Returns False, changing nothing, when the job is missing or finished.
        Raises :class:`~raquel_pg.InvalidArgument` when ``priority`` is not an int.
        """
        rows = await self._fetch(
            "set_priority", {"job_id": params.job_id(job_id), "priority": params.count(priority, "priority")}
        )
        changed: bool = rows[0][0]
        return changed

    async def get(self, job_id: UUID | str) -> JobRecord | None:
        """The job with this id, or None."""
        rows = await self._fetch("get", {"job_id": params.job_id(job_id)})
        return JobRecord.from_row(rows[0]) if rows else None

    async def queues(self) -> list[str]:
        """Names of all queues that have jobs, sorted."""
        return [row[0] for row in await self._fetch("queues")]

    async def count(self, queue: str | None = None, status: str | Iterable[str] | None = None) -> int:
        """Number of jobs, optionally of one queue and of one status or several (any iterable)."""
        rows = await self._fetch(
            "count",
            {
                "queue": None if queue is None else params.queue_name(queue),
                "statuses": params.status_list(status),
            },
        )
        result: int = rows[0][0]
        return result

    async def stats(self, *queues: str, queue: str | None = None) -> dict[str, QueueStats]:
        """Job counts by status for each queue, or for ``queues`` (raquel's; ``queue=``: one queue)."""
        names = params.queue_list(queues + (() if queue is None else (queue,)))
        rows = await self._fetch("stats", {"queues": names})
        return {row[0]: QueueStats(*row) for row in rows}

    async def _claim(
        self,
        queues: list[str] | None,
        claim_as: str | None,
        batch: int,
        durable: bool = True,
        *,
        before: int | None = None,
        lease_ms: int | None = None,
    ) -> list[AsyncJob]:
        """``job_calls.claim``: for ``claim()`` and ``dequeue()``."""
        return await self.job_calls.claim(queues, claim_as, batch, durable, before=before, lease_ms=lease_ms)
