"""The data the clients return: job records and queue statistics (no I/O)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Self
from uuid import UUID, uuid4

from . import params

#: Columns read back for a job, in the order of :class:`JobRecord`'s fields.
JOB_COLUMNS = (
    "id",
    "queue",
    "payload",
    "status",
    "max_age",
    "max_retry_count",
    "min_retry_delay",
    "max_retry_delay",
    "backoff_base",
    "enqueued_at",
    "scheduled_at",
    "attempts",
    "error",
    "error_trace",
    "claimed_by",
    "claimed_at",
    "finished_at",
    "lease_expires_at",
    "claim_id",
    "priority",
    "unique_key",
    "result",
    "timeout",
)
#: The default of ``JobRecord.payload``: decoded from ``raw_payload``.
_UNSET: Any = object()

#: The number of :data:`JOB_COLUMNS`; a worker's claim reads ``trace_context`` after them.
_WIDTH = len(JOB_COLUMNS)
#: Positions of the ms timestamps in :data:`JOB_COLUMNS`.
_TIMESTAMPS = tuple(i for i, name in enumerate(JOB_COLUMNS) if name.endswith("_at"))
#: Positions of the columns every row of one claim shares (the claim's status, worker, time,
#: lease and id), which a worker's claim reads from one row (:meth:`JobRecord.from_claim_row`).
CLAIM_WIDE = tuple(
    JOB_COLUMNS.index(name) for name in ("status", "claimed_by", "claimed_at", "lease_expires_at", "claim_id")
)


@dataclass
class JobRecord:
    """One row of ``raquel_jobs``, as raquel shows it.

    Timestamps are aware UTC datetimes; durations (``max_age``, retry delays)
    are ms, as stored. ``payload`` is the decoded payload (JSON when the text
    is JSON, else the text); ``raw_payload`` is the stored text.
    ``attempts`` counts finished attempts: 0 while the first attempt runs.
    ``priority``: higher runs first; ``unique_key``: the key given at enqueue
    (it stays on the row after the job finishes), else None.
    ``result``: what the handler returned (decoded JSON) once the job
    succeeded, else None; ``timeout``: the job's time limit per attempt in
    ms, or None. ``trace_context`` (keyword): the enqueuer's OpenTelemetry
    trace context as stored (JSON text), read only by a worker's claim (the
    column after :data:`JOB_COLUMNS`; elsewhere None).
    ``out_of_range``: None, or the stored ms of the times outside datetime's
    range (years 1-9999, possible only in rows written around the client),
    by column; those columns then hold datetime's nearest end.
    ``payload_too_deep``: True when the payload is JSON nested deeper than
    Python's json module reads (the interpreter's recursion limit, ~1,000
    levels; PostgreSQL stores such text, and ``raquel_enqueue`` accepts it):
    ``payload`` then holds the stored text. ``payload_unreadable``: None, or
    why Python cannot read the payload, valid JSON otherwise (an integer of
    more than 4,300 digits, Python's limit on converting text to int);
    ``payload`` then holds the stored text too. A worker never runs a job of
    these kinds: it records a failed attempt saying why (:meth:`undecodable`).
    A claimed job's ``result`` is None (it has not succeeded). A stored
    result Python's json cannot decode (nested deeper than its recursion
    limit, an int of more than 4,300 digits) reads as
    :class:`~raquel_pg.UnreadableJSON`, its text.

    As raquel's ``Job``, it can be built by hand as a template for
    ``enqueue(payload=job)``: ``Job(queue="ingest", payload=1)``; every field
    has raquel's default (a new id, status 'queued', now, retry delays
    1 s / 12 h / 1 s), and ``payload`` (keyword) is encoded as enqueue
    encodes it, unless ``raw_payload`` is given.
    """

    id: UUID = field(default_factory=uuid4)
    queue: str = params.DEFAULT_QUEUE
    raw_payload: str | None = None
    status: str = params.QUEUED
    max_age: int | None = None
    max_retry_count: int | None = None
    min_retry_delay: int = 1000
    max_retry_delay: int = 12 * 3600 * 1000
    backoff_base: int = 1000
    enqueued_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    scheduled_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    attempts: int = 0
    error: str | None = None
    error_trace: str | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    claim_id: UUID | None = None
    priority: int = 0
    unique_key: str | None = None
    result: Any = None
    timeout: int | None = None
    payload: Any = field(default=_UNSET, repr=False, kw_only=True)
    trace_context: str | None = field(default=None, repr=False, kw_only=True)
    out_of_range: dict[str, int] | None = field(init=False, repr=False, default=None)
    payload_too_deep: bool = field(init=False, repr=False, default=False)
    payload_unreadable: str | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.payload is _UNSET:
            try:
                self.payload = params.decode_payload(self.raw_payload)
            except RecursionError:  # JSON nested deeper than Python's recursion limit
                self.payload, self.payload_too_deep = self.raw_payload, True
            except ValueError as error:  # JSON Python cannot read (an integer's digits)
                self.payload, self.payload_unreadable = self.raw_payload, str(error)
        elif self.raw_payload is None:
            self.raw_payload = params.encode_payload(self.payload)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Self:
        """The record (of this class) of a row of :data:`JOB_COLUMNS`, ms timestamps made datetimes.

        Built positionally (the fields follow the columns): half the cost of
        building keyword arguments, paid once per claimed job.
        """
        values = list(row)
        try:
            for index in _TIMESTAMPS:
                values[index] = params.to_datetime(values[index])
        except OverflowError:
            return cls._clamped(row)
        if len(values) > _WIDTH:  # a claim's row: JOB_COLUMNS, then trace_context
            return cls(*values[:_WIDTH], trace_context=values[_WIDTH])
        return cls(*values)

    @classmethod
    def from_claim_row(cls, row: tuple[Any, ...], claim: tuple[Any, ...] | None = None) -> Self:
        """:meth:`from_row` for a worker's claimed row (:data:`JOB_COLUMNS`, then ``trace_context``).

        ``claim``: the row of the same claim that carries the values every
        row of one claim shares (:data:`CLAIM_WIDE`: the ``claim`` query sends
        them in one row, the others' NULL), read from it instead of ``row``;
        None: ``row``'s own. The same record, built with no intermediate list
        (issue 23: 1.44 -> 1.05 us per row); the positions are
        :data:`JOB_COLUMNS`' (the timestamps :data:`_TIMESTAMPS`;
        ``test_from_claim_row_is_from_row`` holds the two together).
        """
        dt: Callable[[int | None], Any] = params.to_datetime  # NOT NULL columns give datetimes
        c = row if claim is None else claim
        try:
            return cls(
                row[0], row[1], row[2], c[3], row[4], row[5], row[6], row[7], row[8],
                dt(row[9]), dt(row[10]), row[11], row[12], row[13], c[14],
                dt(c[15]), dt(row[16]), dt(c[17]), c[18], row[19], row[20], row[21], row[22],
                trace_context=row[23],
            )  # fmt: skip
        except OverflowError:
            if claim is not None:
                row = tuple(claim[i] if i in CLAIM_WIDE else value for i, value in enumerate(row))
            return cls._clamped(row)

    @classmethod
    def _clamped(cls, row: tuple[Any, ...]) -> Self:
        """The record of a row with times outside datetime's range: clamped, and listed in ``out_of_range``."""
        values = list(row)
        out_of_range = {}
        for index in _TIMESTAMPS:
            ms = values[index]
            try:
                values[index] = params.to_datetime(ms)
            except OverflowError:
                values[index] = params.clamped_datetime(ms)
                out_of_range[JOB_COLUMNS[index]] = ms
        record = cls(*values[:_WIDTH])
        record.trace_context = values[_WIDTH] if len(values) > _WIDTH else None
        record.out_of_range = out_of_range
        return record

    def decodable(self) -> bool:
        """Whether a worker can run this job as stored (:meth:`undecodable` is None), without building the reason."""
        return self.out_of_range is None and not self.payload_too_deep and self.payload_unreadable is None

    def undecodable(self) -> str | None:
        """Why this job cannot be run as stored (times outside datetime's range, a payload nested
        too deeply or holding an integer longer than Python converts), or None."""
        reasons = []
        if self.out_of_range:
            times = ", ".join(f"{column} = {ms} ms" for column, ms in self.out_of_range.items())
            reasons.append(
                f"the row cannot be decoded: {times} since the epoch is outside the range of Python's "
                "datetime (years 1-9999); the row was written around the raquel functions"
            )
        if self.payload_too_deep:
            reasons.append(
                "the payload cannot be decoded: it is JSON nested deeper than Python's json module "
                f"reads (the interpreter's recursion limit, {sys.getrecursionlimit()})"
            )
        if self.payload_unreadable is not None:
            reasons.append(f"the payload cannot be decoded: it is JSON Python cannot read ({self.payload_unreadable})")
        return "; ".join(reasons) or None


@dataclass(frozen=True)
class QueueStats:
    """Job counts of one queue by status (raquel's ``QueueStats``)."""

    name: str
    total: int = 0
    queued: int = 0
    claimed: int = 0
    success: int = 0
    failed: int = 0
    expired: int = 0
    exhausted: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class QueueControls:
    """What an operator set for one queue (``raquel_queue_controls()``, migration 0009_operations).

    ``queue`` None is the row of the default retention (the queues without their own).
    ``max_running`` / ``per_second`` None: no such limit; ``retention`` None: the default
    (for the default's row: keep forever), ``timedelta.max``: kept forever; ``pruned``:
    finished jobs of the queue that ``raquel_prune`` deleted (None on the default's row).
    """

    queue: str | None
    paused: bool = False
    max_running: int | None = None
    per_second: float | None = None
    retention: timedelta | None = None
    pruned: int | None = 0

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> QueueControls:
        """From a row of the ``queue_controls`` query."""
        queue, paused, max_running, per_second, retention_ms, pruned = row
        retention = None
        if retention_ms is not None:
            # Forever (0022_retention_forever), or set from SQL beyond timedelta's range: timedelta.max.
            forever = retention_ms >= params.RETENTION_FOREVER_MS
            retention = timedelta.max if forever else timedelta(milliseconds=retention_ms)
        return cls(queue, paused, max_running, per_second, retention, pruned)
