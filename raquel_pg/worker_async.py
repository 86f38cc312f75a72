"""AsyncWorker: runs a handler on the jobs of some queues, woken by NOTIFY.

The worker is four parts along river's seams, each in its own module:

- the producer (:class:`~raquel_pg.producer_async.AsyncProducer`) claims
  jobs for the free slots, never more, and waits (NOTIFY, next due time,
  poll) when there are none;
- the executor (:class:`~raquel_pg.executor_async.AsyncExecutor`) runs each
  job's handler on up to ``concurrency`` runners, and hands back what it
  will not run;
- the completer (:class:`~raquel_pg.completer_async.AsyncCompleter`)
  records each job's outcome, at once or (successes) batched;
- the notifier (:class:`~raquel_pg.notifier_async.AsyncNotifier`, one per
  client) LISTENs and wakes the producers of its workers.

They reach the database only through the client's
:class:`~raquel_pg.job_async.AsyncJobCalls` (``rq.job_calls``). This module
wires them and owns the worker's life: run, stop, abort, signals.

The async worker is the hand-written source; the sync worker (threads instead
of tasks) is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from . import params
from ._acompat import AEvent, ajoin, aon_signals, araise_if_cancelled, aspawn
from .completer_async import AsyncCompleter
from .errors import InvalidArgument, RaquelError
from .executor_async import AsyncExecutor, AsyncHandler
from .handlers import is_async_handler, refuse_async_handler
from .producer_async import AsyncProducer

if TYPE_CHECKING:
    from .client_async import AsyncJob, AsyncRaquel

__all__ = ["AsyncHandler", "AsyncWorker", "STOP_SIGNALS"]

logger = logging.getLogger("raquel_pg.worker")

#: The signals ``run(handle_signals=True)`` turns into :meth:`~AsyncWorker.stop`.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: Seconds between two maintenance sweeps of a worker (the first at a random
#: point of the first interval, so that workers started together spread out).
MAINTENANCE_INTERVAL = 60.0


class AsyncWorker:
    """Runs ``handler(job)`` on the jobs of ``queues`` (all queues when empty).

    How it waits: the client's notification connection (one per client,
    shared by its workers: :class:`~raquel_pg.notifier_async.AsyncNotifier`)
    LISTENs on the ``raquel_jobs`` channel; a notification for one of its
    queues wakes the worker at once.
    Jobs are notified only to registered waiters (``raquel_wait_begin``,
    migration 0008_notifications): the worker registers when a claim finds its queues
    drained (then claims once more, so no job slips between the two) and
    unregisters when a claim fills all its free slots and when it stops.
    A registration wakes the worker once: the notifying producer
    consumes it (so a worker woken by a notification has nothing to
    unregister), and the worker registers again when it next finds its
    queues drained.
    When idle it also wakes at the next ``scheduled_at`` (or lease deadline)
    it knows of from ``raquel_next_due``, and at least every
    ``poll_interval`` seconds, which keeps it working while the notification
    connection is down (it reconnects with exponential backoff) or unheard
    (:attr:`listening` False: notifications sent through the main DSN do not
    reach it, as through a transaction pooler; one warning says so).

    Up to ``concurrency`` jobs run at once (tasks on one event loop; threads in
    the sync :class:`Worker`); it never claims more jobs than it has free
    slots plus ``prefetch`` (default 0): with ``prefetch=P``, up to P claimed
    jobs wait in the worker for a slot, their leases renewed like those of the
    running jobs, so that the next jobs are there when a slot frees (no round
    trip between two jobs, and claims of up to ``concurrency + P``); they are
    handed back (``queued``, no attempt counted) when the worker stops. It
    claims again once half the prefetch is free, not at each freed slot: one
    claim of at least P/2 jobs, sent at once (the runners let the producer
    run) so that it runs while the jobs still held run, and, while there is a
    backlog, a second one if half the prefetch is free again before the first
    came back (two claims in flight, each for the slots it reserved: never
    more than ``concurrency + P`` jobs held). A
    prefetched job waits for a slot instead of going to another, idle worker:
    keep ``prefetch`` for short jobs. Jobs run on
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
    an awaitable as failed, never as a success. Successes are recorded in
    batches (:class:`~raquel_pg.completer_async.AsyncOutcomeBatcher`: one
    ``raquel_complete_many`` call once 100 wait or 5 ms after the first, the
    successes of the jobs that end while a call runs in the next, leases
    renewed until recorded, flushed on stop), and a crash before a flush runs
    those jobs again (at-least-once, as a crash while they run does); while
    more than ``OUTCOME_BACKLOG`` (5,000, or ``concurrency + prefetch`` when
    more) wait to be recorded, the worker claims nothing more. Every
    other outcome is recorded at once. ``batch_outcomes=False`` records each
    success at once too.
    Claims are durable (their commit waits for the WAL flush) unless
    ``durable_claims=False`` (``raquel_claim(durable => false)``, migration
    0006_claim): then a crash of the PostgreSQL server can undo the claims of its
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
    What the handler returns is stored with the job's success (JSON; see
    :meth:`~raquel_pg.AsyncRaquel.result`). ``timeout`` (ms or timedelta):
    the time limit of a job that sets none (enqueue's ``timeout``); a job
    past it, or whose cancellation was requested
    (``cancel(job_id, running=True)``, heard by NOTIFY), is stopped: an async
    handler is cancelled, a plain function sees ``job.cancel_requested``
    (see :class:`~raquel_pg.executor_async.AsyncExecutor`).

    Queue controls (migration 0009_operations) are enforced by the
    engine's claim: a paused queue gives no job, a limited one no more than
    its limits allow, and the worker then sleeps until ``raquel_next_due``
    says a claim can succeed (a resume, a raised limit, or a job of a queue
    held at its max_running ending wakes it by NOTIFY).
    Its maintenance (every ``maintenance_interval`` seconds; None: none)
    deletes finished jobs past their retention
    (:meth:`~raquel_pg.AsyncRaquel.prune`: one sweep at a time across all
    workers), logging how many.
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
        batch_outcomes: bool = True,
        durable_claims: bool = True,
        prefetch: int = 0,
        lease_ms: int | None = None,
        raise_stop_on_unhandled_exc: bool = False,
        maintenance_interval: float | timedelta | None = MAINTENANCE_INTERVAL,
        timeout: timedelta | int | None = None,
    ) -> None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise InvalidArgument("concurrency", f"concurrency: must be an int >= 1, got {concurrency!r}")
        if not callable(handler):
            raise TypeError(f"handler: expected a callable taking the job, got {handler!r}")
        if True:  # ASYNC
            # A plain function runs in a thread (what it returns is awaited if
            # it is awaitable: a lambda returning a coroutine still works).
            in_thread = not is_async_handler(handler)
        else:
            refuse_async_handler(handler)
            in_thread = False
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
        if not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 0:
            raise InvalidArgument("prefetch", f"prefetch: must be an int >= 0, got {prefetch!r}")
        self.prefetch = prefetch
        #: The lease of this worker's claims (ms); None: the client's.
        self.lease_ms = lease_ms
        self.raise_stop_on_unhandled_exc = raise_stop_on_unhandled_exc
        #: Seconds between maintenance sweeps (retention); None: no maintenance.
        self.maintenance_interval = (
            None if maintenance_interval is None else params.seconds(maintenance_interval, "maintenance_interval")
        )
        #: Each job's time limit (ms) when the job sets none; None: no limit.
        self.timeout_ms = params.duration_ms(timeout, "timeout")
        if self.timeout_ms is not None and self.timeout_ms <= 0:
            raise InvalidArgument("timeout", f"timeout: must be > 0 ms, got {timeout!r}")
        self._calls = rq.job_calls
        self._stopping = AEvent()
        self._aborting = AEvent()
        self._subscribed = False
        self._completer = AsyncCompleter(
            self._calls, batched=batch_outcomes, raise_stop_on_unhandled_exc=raise_stop_on_unhandled_exc
        )
        self._executor = AsyncExecutor(
            self._calls,
            handler,
            self._completer,
            self._stopping,
            concurrency=concurrency,
            prefetch=prefetch,
            in_thread=in_thread,
            finished=self._wake_producer,
            stop=self.stop,
            timeout_ms=self.timeout_ms,
        )
        self._producer = AsyncProducer(
            self._calls,
            self._executor,
            self._stopping,
            queues=self.queues,
            claim_as=self.claim_as,
            durable=durable_claims,
            lease_ms=lease_ms,
            poll_interval=self.poll_interval,
            idle=self._completer.idle,
            second_claim=prefetch > 0,
        )

    @property
    def listening(self) -> bool:
        """True while the client's notification connection LISTENs and is heard (see AsyncNotifier)."""
        return self._subscribed and self._calls.notifier.listening

    @property
    def running(self) -> int:
        """How many jobs are running now."""
        return self._executor.running

    def __call__(self, job: AsyncJob) -> Any:
        """The worker still calls like its handler."""
        return self.handler(job)

    def stop(self) -> None:
        """Asks :meth:`run` to stop claiming and return once running jobs are done.

        Running jobs get ``grace_period`` seconds (see the class docstring).
        """
        self._stopping.set()
        self._producer.wake()

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
        self._calls.notifier.subscribe(self, self.queues, self._producer.heard)
        self._calls.notifier.subscribe_payloads(self, "raquel_cancel", self._executor.stop_job)
        self._calls.notifier.subscribe_payloads(self._producer, "raquel_handoff", self._producer.handed)
        self._subscribed = True
        self._completer.open(flushed=self._executor.flushed)
        maintainer = (
            None
            if self.maintenance_interval is None
            else aspawn(self._maintain, self.maintenance_interval, name="raquel-maintenance")
        )
        grace_period = 0.0
        try:
            await self._warn_if_schema_differs()
            await self._producer.run()
            grace_period = self.grace_period
        finally:
            self._stopping.set()
            try:
                self._subscribed = False
                await self._calls.notifier.unsubscribe(self)
                # No longer waiting: no enqueue may hand this worker a job while its
                # running jobs finish (the grace period).
                await self._producer.unregister()
                await self._executor.shutdown(grace_period, self._aborting)
            finally:
                if maintainer is not None:
                    await ajoin([maintainer], None)
                await self._producer.unregister()  # hands back what was handed meanwhile
                await self._calls.notifier.unsubscribe(self._producer)  # hand-offs heard until unregistered
                await self._completer.close()
                if restore is not None:
                    restore()

    async def _warn_if_schema_differs(self) -> None:
        """Logs a warning when the database's migrations are not this raquel_pg's (behind, or ahead)."""
        warning = await self.rq.schema_warning(timeout=1.0)  # a database down: the claims retry
        if warning is not None:
            logger.warning("%s", warning)

    async def _maintain(self, interval: float) -> None:
        """The maintenance: deletes finished jobs past their retention every ``interval`` seconds.

        Returns when the worker stops. A database error is logged and the
        sweep tried again at the next interval: it never stops the worker.
        """
        delay = random.uniform(0.1, 1.0) * interval
        while True:
            araise_if_cancelled()
            if await self._stopping.wait_timeout(delay):
                return
            delay = interval
            try:
                pruned = await self.rq.prune()
            except (psycopg.Error, RaquelError) as error:
                logger.warning("maintenance: pruning finished jobs failed (%s); trying again in %.0fs", error, interval)
                continue
            if pruned:
                logger.info("maintenance: pruned %d finished jobs past their retention", pruned)

    def _wake_producer(self) -> None:
        """A job's slot freed: the producer may claim again."""
        self._producer.wake()

    def _on_signal(self) -> None:
        if self._stopping.is_set():
            logger.warning("second stop signal: stopping now, without the grace period")
            self.abort()
        else:
            logger.warning(
                "stop signal: no more claims; running jobs have %.1fs to finish (signal again to stop now)",
                self.grace_period,
            )
            self.stop()
