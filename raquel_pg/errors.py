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
    if isinstance(error, (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable,
                          psycopg.errors.InvalidSchemaName)):
        missing = error.diag.message_primary or str(error)
        if "raquel" in missing:
            return NotMigrated(f"{missing}: this database has no raquel_pg schema, or an older one "
                               "(run: raquel-pg migrate, or create_all())")
    return error
