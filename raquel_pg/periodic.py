"""Periodic jobs: the schedule record and cron tick arithmetic (no I/O).

The schedules live in the ``raquel_schedules`` table (migrations 0003_tables and 0010_schedules). Cron
expressions are evaluated in UTC with croniter; interval ticks are computed by
``raquel_fire_schedules`` itself. A scheduler reads the due schedules, plans
their next ticks here, and fires them with one compare-and-set call, so each
tick enqueues exactly one job however many schedulers run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from croniter import croniter

from . import params
from .errors import InvalidArgument

#: Columns read back for a schedule, in the order of :class:`Schedule`'s fields.
SCHEDULE_COLUMNS = (
    "name",
    "queue",
    "payload",
    "cron",
    "every",
    "priority",
    "max_age",
    "max_retry_count",
    "next_run_at",
    "last_run_at",
    "last_job_id",
)


@dataclass
class Schedule:
    """One row of ``raquel_schedules``.

    Exactly one of ``cron`` (UTC) and ``every`` (ms) is set. ``next_run_at``
    is the next tick (None: a cron schedule declared from SQL whose first tick
    no scheduler has computed yet); ``last_run_at`` the last tick fired and
    ``last_job_id`` the job enqueued for it. ``payload`` is decoded as for jobs.
    """

    name: str
    queue: str
    raw_payload: str | None
    cron: str | None
    every: int | None
    priority: int
    max_age: int | None
    max_retry_count: int | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: UUID | None

    @property
    def payload(self) -> Any:
        """The payload decoded as a job's is; JSON Python cannot read (nested too deeply, an integer
        longer than it converts) gives the stored text."""
        try:
            return params.decode_payload(self.raw_payload)
        except (RecursionError, ValueError):
            return self.raw_payload

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Schedule:
        """A schedule from a row of :data:`SCHEDULE_COLUMNS`."""
        values = dict(zip(SCHEDULE_COLUMNS, row))
        values["raw_payload"] = values.pop("payload")
        for name in ("next_run_at", "last_run_at"):  # clamped: a row set from SQL may be out of range
            values[name] = params.clamped_datetime(values[name])
        return cls(**values)


def cron_expression(cron: str | None) -> str | None:
    """A cron expression croniter accepts (5 fields, 6 with seconds, or ``@hourly`` ...), or None.

    Raises :class:`~raquel_pg.InvalidArgument` naming ``cron`` otherwise.
    """
    if cron is None:
        return None
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise InvalidArgument("cron", f"cron: not a valid cron expression: {cron!r}")
    return cron


def next_cron_tick(cron: str, after_ms: int) -> int:
    """The first tick of ``cron`` (UTC) strictly after ``after_ms``, in ms since epoch.

    Raises :class:`~raquel_pg.InvalidArgument` for an invalid expression.
    """
    cron_expression(cron)
    try:
        tick: datetime = croniter(cron, params.to_datetime(after_ms)).get_next(datetime)
    except (ValueError, KeyError) as error:
        raise InvalidArgument("cron", f"cron: cannot compute the next tick of {cron!r}: {error}") from error
    return params.timestamp_ms(tick, "cron") or 0


def schedule_args(
    name: str,
    queue: str,
    payload: Any,
    cron: str | None,
    every: timedelta | int | None,
    first_run_at: datetime | int | None,
    priority: int | None,
    max_age: timedelta | int | None,
    max_retry_count: int | None,
) -> dict[str, Any]:
    """The arguments of ``raquel_set_schedule``, converted.

    For a cron schedule without ``first_run_at``, the first tick is the next
    cron tick after the local clock's now. Range checks (exactly one of cron
    and every, every > 0, ...) are the SQL function's.
    """
    args: dict[str, Any] = {
        "name": params.queue_name(name, "name"),
        "queue": params.queue_name(queue),
        "payload": params.encode_payload(payload),
        "cron": cron_expression(cron),
        "every": params.duration_ms(every, "every"),
        "first_run_at": params.timestamp_ms(first_run_at, "first_run_at"),
        "priority": params.count(priority, "priority"),
        "max_age": params.duration_ms(max_age, "max_age"),
        "max_retry_count": params.count(max_retry_count, "max_retry_count"),
    }
    if args["cron"] is not None and args["first_run_at"] is None:
        args["first_run_at"] = next_cron_tick(args["cron"], params.now_ms())
    return args


def plan_ticks(due: list[tuple[Any, ...]], now_ms: int) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The arguments of ``raquel_fire_schedules`` for due schedules, and those left out.

    ``due`` rows are (name, cron, next_run_at) as read at ``now_ms``. Each
    schedule fires its tick ``next_run_at`` (None: only sets the first tick)
    and moves to its first cron tick after ``now_ms``; interval schedules get
    None, which the SQL function computes. A schedule whose cron expression
    croniter refuses (one set from psql) is left out and returned, as (name, cron).
    The arguments hold no ``now``: the caller adds its own (None: the SQL
    function reads the database clock; the engine lets only a role that
    may update raquel_jobs pass one).
    """
    names: list[str] = []
    ticks: list[int | None] = []
    nexts: list[int | None] = []
    invalid: list[tuple[str, str]] = []
    for name, cron, next_run_at in due:
        following = None
        if cron is not None:
            try:
                following = next_cron_tick(cron, now_ms)
            except InvalidArgument:
                invalid.append((name, cron))
                continue
        names.append(name)
        ticks.append(next_run_at)
        nexts.append(following)
    return {"names": names, "ticks": ticks, "next_run_ats": nexts}, invalid
