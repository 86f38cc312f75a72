"""AsyncWorker: runs a handler on the jobs of some queues, woken by NOTIFY.

The async worker is the hand-written source; the sync worker (threads instead
of tasks) is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from . import params
from ._acompat import AEvent, acancel, acurrent, ajoin, aon_signals, aspawn
from .errors import InvalidArgument, RaquelError, StopSubscription
from .handlers import is_async_handler, refuse_async_handler, refuse_awaitable, run_in_thread

if TYPE_CHECKING:
    from .client_async import AsyncJob, AsyncRaquel

#: What ``subscribe()`` decorates: a coroutine function taking the job.
AsyncHandler = Callable[["AsyncJob"], Awaitable[Any]]

logger = logging.getLogger("raquel_pg.worker")

#: Longest wait between reconnection attempts of the notification connection.
MAX_RECONNECT_DELAY = 30.0

#: The signals ``run(handle_signals=True)`` turns into :meth:`~AsyncWorker.stop`.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


#: First wait before claiming again when raquel_wait_begin found a producer
#: in flight; it doubles at each new refusal, up to poll_interval.
RACE_DELAY = 0.005

#: Seconds between two maintenance sweeps of a worker (the first at a random
#: point of the first interval, so that workers started together spread out).
MAINTENANCE_INTERVAL = 60.0

#: Batched outcomes: a flush as soon as this many successes wait ...
OUTCOME_BATCH_SIZE = 100
#: ... else this many seconds after the first of them came.
OUTCOME_FLUSH_INTERVAL = 0.005


class AsyncOutcomeBatcher:
    """Records a worker's successes in batches, one ``raquel_complete_many`` call each.

    A success waits for the flush at most ``OUTCOME_FLUSH_INTERVAL`` seconds
    (sooner once ``OUTCOME_BATCH_SIZE`` wait), plus the call's own time, and
    its job's lease is renewed until the flush has recorded it, so another
    worker cannot rescue it meanwhile; if the lease is lost all the same, the
    fenced call records nothing for that job (logged). A flush that fails
    (after retries while the leases last) leaves those jobs to be rescued and
    run again: at-least-once, as after a crash before the flush.
    After :meth:`close` (which flushes), :meth:`add` declines.
    """

    def __init__(self, rq: AsyncRaquel) -> None:
        self._rq = rq
        self._buffer: list[AsyncJob] = []
        self._lock = threading.Lock()
        self._added = AEvent()
        self._full = AEvent()
        self._closed = False
        self._task = aspawn(self._run, name="raquel-outcome-batcher")

    async def add(self, job: AsyncJob) -> bool:
        """Buffers the success of ``job``; False (nothing done) once closed."""
        with self._lock:
            if self._closed:
                return False
            job._settled = True
            self._buffer.append(job)
            full = len(self._buffer) >= OUTCOME_BATCH_SIZE
        self._added.set()
        if full:
            self._full.set()
        return True

    async def _run(self) -> None:
        while not self._closed:
            await self._added.wait_timeout(None)
            await self._full.wait_timeout(OUTCOME_FLUSH_INTERVAL)
            self._added.clear()
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        """Records every buffered success now (one call)."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            recorded = await self._rq._complete_many(batch)
        except psycopg.Error as error:
            logger.warning("%d successes not recorded (%s); those jobs run again once their leases "
                           "run out", len(batch), error)
            recorded = [False] * len(batch)
        for job, done in zip(batch, recorded):
            self._rq._leases.discard(job)
            if done:
                job._recorded("complete", params.SUCCESS, {})
            else:
                logger.warning("job %s (queue %s): complete not recorded, this worker's claim is no "
                               "longer current (or the call failed)", job.id, job.queue)

    async def close(self) -> None:
        """Stops the flushing task, then flushes what is left."""
        with self._lock:
            self._closed = True
        self._added.set()
        self._full.set()
        await ajoin([self._task], None)
        await self.flush()


class AsyncWorker:
    """Runs ``handler(job)`` on the jobs of ``queues`` (all queues when empty).

    How it waits: the client's notification connection (one per client,
    shared by its workers: :class:`~raquel_pg.notifier_async.AsyncNotifier`)
    LISTENs on the ``raquel_jobs`` channel; a notification for one of its
    queues wakes the worker at once.
    Jobs are notified only to registered waiters (``raquel_wait_begin``,
    migration 0008): the worker registers when a claim finds its queues
    drained (then claims once more, so no job slips between the two) and
    unregisters when a claim fills all its free slots and when it stops.
    A registration wakes the worker once (0009): the notifying producer
    consumes it, and the worker registers again when it next finds its
    queues drained.
    When idle it also wakes at the next ``scheduled_at`` (or lease deadline)
    it knows of from ``raquel_next_due``, and at least every
    ``poll_interval`` seconds, which keeps it working while the notification
    connection is down (it reconnects with exponential backoff) or unheard
    (:attr:`listening` False: notifications sent through the main DSN do not
    reach it, as through a transaction pooler; one warning says so).

    Up to ``concurrency`` jobs run at once (tasks on one event loop; threads in
    the sync :class:`Worker`); it never claims more jobs than it has free
    slots, so no claimed job sits waiting while its lease runs. Jobs run on
    runners (:meth:`_run_jobs`): up to ``concurrency`` of them, started as
    jobs need them and then kept, each running jobs one after another; a job
    starts in a context of its own, as in a new task (a runner whose job set a
    context variable retires, and a new one takes its place).
    Each job runs as in ``dequeue()``: success on return, failure with
    backoff on an exception, or the outcome the handler set. The async
    worker awaits a coroutine function and runs a plain function in a thread
    (``asyncio.to_thread``; the job's outcome methods are coroutines it cannot
    run from there: it raises to fail); the sync worker refuses a coroutine
    function (TypeError, when made) and records a job whose handler returned
    an awaitable as failed, never as a success. Each outcome is
    recorded at once, unless ``batch_outcomes=True``: then successes are
    recorded in batches (:class:`AsyncOutcomeBatcher`: at most a few ms late,
    leases renewed until recorded, flushed on stop), and a crash before a
    flush runs those jobs again (at-least-once); other outcomes stay immediate.
    Claims are durable (their commit waits for the WAL flush) unless
    ``durable_claims=False`` (``raquel_claim(durable => false)``, migration
    0010): then a crash of the PostgreSQL server can undo the claims of its
    last moments, and those jobs run again; a worker crash changes nothing.

    :meth:`stop` ends :meth:`run`: no more claims, jobs claimed but not yet
    started are handed back at once (``queued``, no attempt counted), and
    running jobs get ``grace_period`` seconds to finish. Async jobs still
    running then are cancelled and handed back untouched; sync threads cannot
    be interrupted, so :meth:`run` returns and leaves them to finish on their
    own (or, if the process exits, their jobs are rescued when their leases
    run out). :meth:`abort` is :meth:`stop` without the grace period.
    With ``run(handle_signals=True)``, SIGTERM and SIGINT call :meth:`stop`
    and a second one calls :meth:`abort`. A stopped worker stays stopped.
    A handler raising :class:`~raquel_pg.StopSubscription` (raquel's) has its
    job recorded as a success and then stops the worker as :meth:`stop`
    does; ``raise_stop_on_unhandled_exc=True`` stops it after a job failed
    by an exception too. ``lease_ms``: the lease of this worker's claims
    (default: the client's ``lease``).

    Queue controls (migration 0025) are enforced by the engine's claim: a
    paused queue gives no job, a limited one no more than its limits allow,
    and the worker then sleeps until ``raquel_next_due`` says a claim can
    succeed (a resume or a raised limit wakes it by NOTIFY). Its maintenance
    (every ``maintenance_interval`` seconds; None: none) deletes finished jobs
    past their retention (:meth:`~raquel_pg.AsyncRaquel.prune`: one sweep at a
    time across all workers), logging how many.
    """

    def __init__(
        self,
        rq: AsyncRaquel,
        handler: AsyncHandler,
        queues: tuple[str, ...],
        *,
        claim_as: str | None = None,
        concurrency: int = 1,
        poll_interval: float | timedelta = 2.0,
        grace_period: float | timedelta = 30.0,
        batch_outcomes: bool = False,
        durable_claims: bool = True,
        lease_ms: int | None = None,
        raise_stop_on_unhandled_exc: bool = False,
        maintenance_interval: float | timedelta | None = MAINTENANCE_INTERVAL,
    ) -> None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise InvalidArgument("concurrency", f"concurrency: must be an int >= 1, got {concurrency!r}")
        if not callable(handler):
            raise TypeError(f"handler: expected a callable taking the job, got {handler!r}")
        if True:  # ASYNC
            # A plain function runs in a thread (what it returns is awaited if
            # it is awaitable: a lambda returning a coroutine still works).
            self._in_thread = not is_async_handler(handler)
        else:
            refuse_async_handler(handler)
        self.rq = rq
        self.handler = handler
        self.queues = params.queue_list(queues)
        self.claim_as = params.optional_text(claim_as, "claim_as") or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.poll_interval = params.seconds(poll_interval, "poll_interval")
        self.grace_period = params.seconds(grace_period, "grace_period")
        if not isinstance(batch_outcomes, bool):
            raise InvalidArgument("batch_outcomes", f"batch_outcomes: expected a bool, got {batch_outcomes!r}")
        self.batch_outcomes = batch_outcomes
        if not isinstance(durable_claims, bool):
            raise InvalidArgument("durable_claims", f"durable_claims: expected a bool, got {durable_claims!r}")
        self.durable_claims = durable_claims
        #: The lease of this worker's claims (ms); None: the client's.
        self.lease_ms = lease_ms
        self.raise_stop_on_unhandled_exc = raise_stop_on_unhandled_exc
        #: Seconds between maintenance sweeps (retention); None: no maintenance.
        self.maintenance_interval = (None if maintenance_interval is None
                                     else params.seconds(maintenance_interval, "maintenance_interval"))
        self._batcher: AsyncOutcomeBatcher | None = None
        # The waiter registration (raquel_wait_begin): NOTIFYs reach this
        # worker only while it is registered, i.e. while it has found its
        # queues drained. It lives ttl seconds and is refreshed once half
        # of that is gone (the worker wakes at least every poll_interval).
        # The first NOTIFY it causes consumes it (0009): the listener then
        # counts a wake-up and forgets it, so the worker registers again
        # before its next wait.
        self._waiter_id = uuid.uuid4()
        self._waiter_ttl = max(30.0, 3 * self.poll_interval)
        self._registered_until = 0.0  # time.monotonic(); 0: not confirmed
        self._registered = False
        self._wakeups = 0  # notifications heard (and listener reconnections)
        self._race_delay = RACE_DELAY
        self._stopping = AEvent()
        self._aborting = AEvent()
        self._wake = AEvent()
        self._subscribed = False
        # Jobs claimed and not finished (started or not), by id.
        self._active: set[UUID] = set()
        # The runners: claimed jobs not yet started, the wake-up events of the
        # runners waiting for one, and the runner called and not yet there.
        self._runners: list[Any] = []
        self._ready: deque[AsyncJob] = deque()
        self._idle: list[AEvent] = []
        self._called: AEvent | None = None
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        """True while the client's notification connection LISTENs and is heard (see AsyncNotifier)."""
        return self._subscribed and self.rq._notifier.listening

    def __call__(self, job: AsyncJob) -> Any:
        """The worker still calls like its handler."""
        return self.handler(job)

    def stop(self) -> None:
        """Asks :meth:`run` to stop claiming and return once running jobs are done.

        Running jobs get ``grace_period`` seconds (see the class docstring).
        """
        self._stopping.set()
        self._wake.set()

    def abort(self) -> None:
        """Asks :meth:`run` to return at once, without the grace period.

        Async jobs are cancelled and handed back; sync threads are left
        running, and their jobs are rescued by lease if the process exits.
        """
        self._aborting.set()
        self.stop()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Processes jobs until :meth:`stop` is called.

        Cancelling the task that runs it (async) cancels the running jobs at
        once: each is handed back untouched (``raquel_release``), not failed.

        ``handle_signals``: while running, the first SIGTERM or SIGINT calls
        :meth:`stop` and the next one :meth:`abort`; the previous handlers are
        restored on return. The sync worker can do this only in the main
        thread (ValueError otherwise).
        """
        restore = aon_signals(STOP_SIGNALS, self._on_signal) if handle_signals else None
        self.rq._notifier.subscribe(self, self.queues, self._heard)
        self._subscribed = True
        if self.batch_outcomes:
            self._batcher = AsyncOutcomeBatcher(self.rq)
        maintainer = (None if self.maintenance_interval is None
                      else aspawn(self._maintain, self.maintenance_interval, name="raquel-maintenance"))
        grace_period = 0.0
        try:
            await self._claim_loop()
            grace_period = self.grace_period
        finally:
            self._stopping.set()
            try:
                await self._shutdown(grace_period)
            finally:
                if maintainer is not None:
                    await ajoin([maintainer], None)
                await self._unregister()
                if self._batcher is not None:
                    await self._batcher.close()
                if restore is not None:
                    restore()

    async def _maintain(self, interval: float) -> None:
        """The maintenance: deletes finished jobs past their retention every ``interval`` seconds.

        Returns when the worker stops. A database error is logged and the
        sweep tried again at the next interval: it never stops the worker.
        """
        delay = random.uniform(0.1, 1.0) * interval
        while not await self._stopping.wait_timeout(delay):
            delay = interval
            try:
                pruned = await self.rq.prune()
            except (psycopg.Error, RaquelError) as error:
                logger.warning("maintenance: pruning finished jobs failed (%s); trying again in %.0fs",
                               error, interval)
                continue
            if pruned:
                logger.info("maintenance: pruned %d finished jobs past their retention", pruned)

    def _on_signal(self) -> None:
        if self._stopping.is_set():
            logger.warning("second stop signal: stopping now, without the grace period")
            self.abort()
        else:
            logger.warning("stop signal: no more claims; running jobs have %.1fs to finish "
                           "(signal again to stop now)", self.grace_period)
            self.stop()

    @property
    def running(self) -> int:
        """How many jobs are running now."""
        return len(self._active)

    async def _claim_loop(self) -> None:
        error_delay = 0.1
        while not self._stopping.is_set():
            # Clear before claiming: a notification that arrives from here on
            # is for a job this claim may miss, so it must wake the wait below.
            self._wake.clear()
            timeout = self.poll_interval
            free = self.concurrency - len(self._active)
            if free > 0:
                claimed = False
                try:
                    jobs = await self.rq._claim(self.queues, self.claim_as, free, self.durable_claims,
                                                lease_ms=self.lease_ms)
                    claimed, error_delay = True, 0.1
                except psycopg.OperationalError as error:
                    logger.warning("claim failed (%s); retrying in %.1fs", error, error_delay)
                    jobs, timeout = [], error_delay
                    error_delay = min(error_delay * 2, MAX_RECONNECT_DELAY)
                if self._stopping.is_set():
                    await self._hand_back(jobs)
                    break
                # Start what was claimed before anything else can fail: a
                # claimed job that is never started would sit with its lease
                # renewed and never run.
                self._start(jobs)
                if jobs and len(jobs) == free:
                    await self._unregister()  # backlog: claim again, no notifications needed
                    continue
                if claimed:
                    wait = await self._register()
                    if wait == 0.0:
                        continue  # just registered: one more claim sees what was not notified
                    timeout = await self._until_due(timeout) if wait is None else min(wait, timeout)
            await self._wake.wait_timeout(timeout)

    async def _register(self) -> float | None:
        """Registers this worker as waiting (``raquel_wait_begin``) unless it is already.

        Returns None when the registration stands (wait for a notification),
        0.0 when it was just made or refreshed with no producer in flight
        (claim once more, then wait), or a short, backing-off delay before
        the next claim when a producer was in flight (its job may not have
        been notified). A connection error gives None: the worker then waits
        at most poll_interval, as when the notification connection is down.
        """
        if self._registered_until - time.monotonic() > self._waiter_ttl / 2:
            return None
        sent_at, wakeups = time.monotonic(), self._wakeups
        try:
            self._registered = True
            confirmed = await self.rq._wait_begin(self._waiter_id, self.queues, int(self._waiter_ttl * 1000))
        except psycopg.OperationalError as error:
            logger.warning("could not register as waiting (%s)", error)
            self._registered_until = 0.0
            return None
        if not confirmed:
            self._registered_until = 0.0
            delay = self._race_delay
            self._race_delay = min(self._race_delay * 2, self.poll_interval)
            return delay
        self._race_delay = RACE_DELAY
        # A notification heard meanwhile may have consumed this very
        # registration: then it does not stand, and the next wait registers again.
        with self._lock:
            self._registered_until = sent_at + self._waiter_ttl if wakeups == self._wakeups else 0.0
        return 0.0

    async def _unregister(self) -> None:
        """Removes this worker's waiter registration, if it made one (``raquel_wait_end``)."""
        if not self._registered:
            return
        self._registered, self._registered_until = False, 0.0
        try:
            await self.rq._wait_end(self._waiter_id)
        except psycopg.Error as error:
            logger.warning("could not unregister as waiting (%s); the registration lapses in %.0fs",
                           error, self._waiter_ttl)

    async def _until_due(self, timeout: float) -> float:
        """``timeout``, shortened to when the next job of our queues falls due (as far as known)."""
        try:
            due = await self.rq._next_due(self.queues)
        except psycopg.OperationalError as error:
            logger.warning("could not read when the next job is due (%s)", error)
            return timeout
        if due is None:
            return timeout
        due_in = (due - params.now_ms()) / 1000
        return min(timeout, due_in if due_in > 0 else 0.05)

    async def _hand_back(self, jobs: list[AsyncJob]) -> None:
        """Releases jobs claimed but not started (the worker is stopping) and frees their slots."""
        for job in jobs:
            try:
                await job._settle("release")
            except psycopg.Error as error:
                logger.warning("job %s (queue %s): could not hand it back (%s); it is rescued when "
                               "its lease runs out", job.id, job.queue, error)
            finally:
                self._finished(job)

    def _start(self, jobs: list[AsyncJob]) -> None:
        """Hands claimed jobs to the runners."""
        if not jobs:
            return
        with self._lock:
            self._active.update(job.id for job in jobs)
            self._ready.extend(jobs)
            self._call_runner()

    def _call_runner(self) -> None:
        """Sees that a runner comes for the next ready job (called with the lock held).

        One runner on its way is enough: the one that comes takes a job and
        calls the next before running it, so a job that blocks its runner does
        not hold back the others, and jobs that never wait run one after the
        other on one runner, with no switch of task (or thread) in between.
        """
        if not self._ready or self._called is not None:
            return
        if self._idle:
            self._called = self._idle.pop()
            self._called.set()
        elif len(self._runners) < self.concurrency and not self._stopping.is_set():
            # (Stopping: no new runner; _shutdown hands back what none took.)
            self._called = AEvent()
            self._runners.append(aspawn(self._run_jobs, self._called, name="raquel-runner"))

    async def _run_jobs(self, wake: AEvent) -> None:
        """A runner: runs ready jobs one after another, waits on ``wake`` when there are none.

        It returns when the worker stops and no job is ready, and retires after
        a job that changed its context (contextvars), so that every job starts
        in the context a task of its own would have; a job interrupted by a
        BaseException (cancellation) ends its runner too. A job taken after the
        worker began to stop is handed back instead of run.
        """
        fresh = contextvars.copy_context()
        try:
            while True:
                with self._lock:
                    if self._called is wake:
                        self._called = None
                    job = self._ready.popleft() if self._ready else None
                    if job is None:
                        if self._stopping.is_set():
                            return
                        wake.clear()
                        self._idle.append(wake)
                    else:
                        self._call_runner()
                if job is None:
                    await wake.wait_timeout(None)
                    continue
                if self._stopping.is_set():
                    await self._hand_back([job])
                    continue
                await self._execute(job)
                if contextvars.copy_context() != fresh:
                    return
        finally:
            with self._lock:
                self._runners.remove(acurrent())
                if self._called is wake:
                    self._called = None
                self._call_runner()

    async def _execute(self, job: AsyncJob) -> None:
        try:
            async with self.rq._process(job, self._batcher, self.raise_stop_on_unhandled_exc):
                if True:  # ASYNC
                    if self._in_thread:
                        await run_in_thread(self.handler, job)
                    else:
                        await self.handler(job)
                else:
                    refuse_awaitable(self.handler(job), self.handler)
        except StopSubscription:
            logger.info("job %s (queue %s): StopSubscription, stopping", job.id, job.queue)
            self.stop()
        except Exception:
            logger.exception("job %s (queue %s): outcome not recorded; it will be retried "
                             "when its lease runs out", job.id, job.queue)
        finally:
            self._finished(job)

    def _finished(self, job: AsyncJob) -> None:
        """Frees the job's slot and wakes the claim loop."""
        with self._lock:
            self._active.discard(job.id)
        self._wake.set()

    def _heard(self) -> None:
        """A wake-up for our queues: wake the claim loop; the registration is spent."""
        with self._lock:
            self._wakeups += 1
            self._registered_until = 0.0
        self._wake.set()

    async def _shutdown(self, grace_period: float) -> None:
        self._subscribed = False
        await self.rq._notifier.unsubscribe(self)
        with self._lock:
            for wake in self._idle:
                wake.set()  # a runner woken with the worker stopping returns
            self._idle.clear()
            runners = list(self._runners)
        # Wait in short steps so that abort() (a second signal) cuts the grace short.
        deadline = time.monotonic() + grace_period
        still = await ajoin(runners, 0)
        while still and not self._aborting.is_set() and time.monotonic() < deadline:
            still = await ajoin(runners, min(0.1, max(0.0, deadline - time.monotonic())))
        if still:
            with self._lock:
                running = len(self._active) - len(self._ready)
            why = "on abort" if self._aborting.is_set() else f"after the {grace_period:.1f}s grace period"
            if acancel(runners):
                await ajoin(runners, None)
                if running:
                    logger.warning("%d jobs cancelled %s and handed back", running, why)
            elif running:
                logger.warning("%d jobs still running %s; they finish on their own or are rescued "
                               "when their leases run out", running, why)
        with self._lock:
            left = list(self._ready)
            self._ready.clear()
        await self._hand_back(left)
