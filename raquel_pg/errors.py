"""Exceptions raised by raquel_pg.

Every error a caller can act on derives from :class:`RaquelError`. Bad
arguments raise :class:`InvalidArgument`, which is also a :class:`ValueError`
and names the argument in ``argument``.
"""

from __future__ import annotations

import psycopg


class RaquelError(Exception):
    """Base class of raquel_pg's own errors."""


class InvalidArgument(RaquelError, ValueError):
    """An argument was refused, by the client or by a ``raquel_*`` SQL function.

    Nothing was written. ``argument`` names the argument.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class MigrationError(RaquelError):
    """The migrations cannot be applied: a changed or unknown migration, or a bad file."""


class NotMigrated(RaquelError):
    """A ``raquel_*`` function or table is missing: the database was never migrated (or is behind).

    The message says what is missing and to run ``raquel-pg migrate`` (or
    ``create_all()``). Nothing was written.
    """


def translate(error: psycopg.Error) -> Exception:
    """Turn a PostgreSQL error into the raquel_pg exception that says what went wrong.

    ``invalid_parameter_value`` raised by a ``raquel_*`` function (it names the
    argument in the error's column field) becomes :class:`InvalidArgument`; a
    missing ``raquel_*`` function or table, or schema ``raquel``, becomes :class:`NotMigrated`;
    anything else is returned unchanged.
    """
    if isinstance(error, psycopg.errors.InvalidParameterValue):
        argument = error.diag.column_name or "argument"
        return InvalidArgument(argument, error.diag.message_primary or str(error))
    if isinstance(
        error, (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)
    ):
        missing = error.diag.message_primary or str(error)
        if "raquel" in missing:
            return NotMigrated(
                f"{missing}: this database has no raquel_pg schema, or an older one "
                "(run: raquel-pg migrate, or create_all())"
            )
    return error


class StopSubscription(BaseException):
    """Raised by a subscribed function (or inside ``dequeue()``) to stop its subscription (raquel's).

    The job it was raised on is recorded as processed (success, unless an
    outcome was set by hand) before the subscription stops; from inside
    ``dequeue()`` it propagates after that. A BaseException, as in raquel, so
    that ``except Exception`` in job code does not swallow it.
    """


class JobFailed(RaquelError):
    """The awaited job ended without success: exhausted, expired or cancelled.

    Raised by ``result()`` / ``job.wait()``. ``job_id``, ``status`` (the
    job's final status) and ``error`` (its last error message, or None) say
    how it ended.
    """

    def __init__(self, job_id: object, status: str, error: str | None) -> None:
        super().__init__(f"job {job_id} ended {status}" + (f": {error}" if error else ""))
        self.job_id = job_id
        self.status = status
        self.error = error


class JobCancelled(RaquelError):
    """Raised inside a sync handler by ``job.raise_if_cancel_requested()``: stop, the job was cancelled.

    The worker records the job as 'cancelled' (never retried). An async
    handler is cancelled instead (``asyncio.CancelledError`` inside it).
    """


class ClaimLost(RaquelError):
    """``job.complete(conn=...)`` found the job's claim no longer current: nothing was recorded.

    The job's lease ran out and it was rescued (another attempt may be
    running): the caller's transaction must roll back, so that the work is
    not done twice.
    """
