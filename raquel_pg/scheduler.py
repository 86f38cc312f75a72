# WARNING: this file is generated from scheduler_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change scheduler_async.py and run `python tools/async_to_sync.py`.

"""Scheduler: fires the periodic jobs of ``raquel_schedules`` on time.

The async scheduler is the hand-written source; the sync one is generated
from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg

from . import params
from ._acompat import Event
from .errors import RaquelError

if TYPE_CHECKING:
    from .schedules import Schedules

logger = logging.getLogger("raquel_pg.scheduler")

#: Longest wait between attempts while the database cannot be reached.
MAX_RETRY_DELAY = 30.0


class Scheduler:
    """Calls ``rq.run_schedules()`` at every tick of any schedule until :meth:`stop`.

    Run one per process next to the workers, or as many as you like: each
    tick enqueues exactly one job however many schedulers run. It sleeps until
    the earliest ``next_run_at`` in ``raquel_schedules``, and at most
    ``poll_interval`` seconds, so schedules declared elsewhere are picked up
    within that time. Database errors (a lost connection, a tick refused) are
    logged and retried with backoff: the scheduler never stops on one.
    """

    def __init__(self, rq: Schedules, *, poll_interval: float | timedelta = 10.0) -> None:
        self.rq = rq
        self.poll_interval = params.seconds(poll_interval, "poll_interval")
        self._stopping = Event()

    def stop(self) -> None:
        """Asks :meth:`run` to return (at once if it is sleeping)."""
        self._stopping.set()

    def run(self) -> None:
        """Fires due schedules until :meth:`stop` is called (or the task is cancelled)."""
        error_delay = 0.1
        while not self._stopping.is_set():
            timeout = self.poll_interval
            try:
                self.rq.run_schedules()
                due_in = self.rq._next_schedule_in()
                # Still due after our run: another scheduler is firing it, or
                # its cron expression is invalid (logged); poll, do not spin.
                if due_in is not None and due_in > 0:
                    timeout = min(timeout, due_in / 1000)
                error_delay = 0.1
            except (psycopg.Error, RaquelError) as error:
                # A lost connection, or one schedule's tick refused (a bad row
                # written by hand): the scheduler goes on, with backoff.
                logger.warning("running schedules failed (%s); retrying in %.1fs", error, error_delay)
                timeout = error_delay
                error_delay = min(error_delay * 2, MAX_RETRY_DELAY)
            self._stopping.wait_timeout(timeout)
