"""Least-privilege roles: grants an enqueue-only, a worker and an operator role.

The SQL is ``roles.sql`` (shipped in the package, runnable with psql too);
this module only runs it. The roles must exist already: creating roles,
passwords and logins is the operator's business, not the queue's.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from .errors import translate
from .queries import QUERIES


def roles_sql() -> LiteralString:
    """The text of ``roles.sql``: defines ``pg_temp.raquel_grant_roles`` for the session."""
    text: LiteralString = resources.files(__package__).joinpath("roles.sql").read_text(encoding="utf-8")
    return text


def grant_script(
    *,
    enqueuer: str | None = None,
    worker: str | None = None,
    operator: str | None = None,
    schema: str | None = None,
) -> str:
    """A psql script doing what :func:`grant_roles` does: ``roles.sql`` and the call.

    Names are quoted as SQL literals; ``schema`` None means the current schema
    of the session that runs the script. Needs no connection.
    """
    call = sql.SQL(QUERIES["grant_roles_script"]).format(
        schema=sql.Literal(schema),
        enqueuer=sql.Literal(enqueuer),
        worker=sql.Literal(worker),
        operator=sql.Literal(operator),
    )
    return f"{roles_sql()}\n{call.as_string(None)};\n"


def grant_roles(
    conn: psycopg.Connection[Any],
    *,
    enqueuer: str | None = None,
    worker: str | None = None,
    operator: str | None = None,
    schema: str | None = None,
) -> str | None:
    """Grants each given role its privileges on the raquel objects in ``schema``; returns the schema.

    ``schema`` defaults to the connection's current schema (where the
    migrations installed raquel_jobs). ``conn`` must belong to the objects'
    owner or a superuser. Grants add up and are idempotent; a role given as
    None is left alone. Raises :class:`~raquel_pg.InvalidArgument` when the
    schema has no raquel_jobs, and psycopg's error when a role does not exist.
    """
    try:
        with conn.transaction():
            conn.execute(roles_sql())
            if schema is None:
                row = conn.execute(QUERIES["current_schema"]).fetchone()
                schema = row[0] if row else None
            conn.execute(
                QUERIES["grant_roles"],
                {
                    "schema": schema,
                    "enqueuer": enqueuer,
                    "worker": worker,
                    "operator": operator,
                },
            )
    except psycopg.errors.InvalidParameterValue as error:
        raise translate(error) from None
    return schema
