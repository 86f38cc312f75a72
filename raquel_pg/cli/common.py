"""What the ``raquel-pg`` commands share: the database they use, the connection, output helpers.

Nothing here blocks except :func:`resolve_dsn` (it may start the embedded server) and the
queries (:func:`fetch`, :func:`get_job`), which wait on the database.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any
from uuid import UUID

import psycopg

from .. import embedded, params
from ..errors import RaquelError, translate
from ..jsonvalues import read_unreadable_as_text
from ..migrate import schema_warning
from ..model import JobRecord
from ..queries import QUERIES


class UserError(RaquelError):
    """A mistake on the command line, reported as one line with exit status 2."""


def configured_dsn(dsn: str | None) -> tuple[str, str] | None:
    """(where it comes from, the DSN) of the configured database: --dsn, RAQUEL_PG_DSN, DATABASE_URL; else None."""
    for source, candidate in (
        ("--dsn", dsn),
        ("RAQUEL_PG_DSN", os.environ.get("RAQUEL_PG_DSN")),
        ("DATABASE_URL", os.environ.get("DATABASE_URL")),
    ):
        if candidate:
            return source, candidate
    return None


def resolve_dsn(dsn: str | None, *, announce: bool = True) -> str:
    """The DSN to use: the argument, RAQUEL_PG_DSN, DATABASE_URL, else the embedded server's."""
    configured = configured_dsn(dsn)
    if configured is not None:
        return configured[1]
    url = embedded.start()
    if announce:
        print(f"using the embedded PostgreSQL with data in {embedded.DEFAULT_DATA_DIR.resolve()}", file=sys.stderr)
    return url


#: The commands that do not warn when the database's migrations are not this raquel-pg's.
NO_SCHEMA_WARNING = frozenset({"migrate", "grant", "import-raquel"})


def connect(args: argparse.Namespace) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the command's database (no prepared statements if asked).

    Prints a warning on stderr when the database is behind this raquel-pg, or ahead of it
    (:func:`~raquel_pg.migrate.schema_warning`), but for the commands that manage the schema.
    """
    dsn = resolve_dsn(args.dsn)
    if args.no_prepared_statements:
        conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    else:
        conn = psycopg.connect(dsn, autocommit=True)
    read_unreadable_as_text(conn)  # a job whose result Python cannot decode is shown as its text
    if args.command not in NO_SCHEMA_WARNING:
        warning = schema_warning(conn)
        if warning is not None:
            print(f"raquel-pg {args.command}: warning: {warning}", file=sys.stderr)
    return conn


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Raquel/AsyncRaquel keyword arguments the command line sets."""
    return {"listen_dsn": args.listen_dsn, "prepared_statements": not args.no_prepared_statements}


def fetch(
    conn: psycopg.Connection[tuple[Any, ...]], query: str, values: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Runs one query of ``queries.sql``; a raquel_* argument error becomes InvalidArgument."""
    try:
        cursor = conn.execute(QUERIES[query], values)
    except psycopg.errors.InvalidParameterValue as error:
        raise translate(error) from None
    except UnicodeEncodeError:  # a lone surrogate, or a character the database cannot store: nothing was sent
        unencodable = params.unencodable(values or {}, conn.info.encoding)
        if unencodable is None:
            raise
        raise unencodable from None
    return cursor.fetchall() if cursor.description else []


def print_json(value: Any) -> None:
    """Prints ``value`` as indented JSON (anything JSON does not know as its str())."""
    print(json.dumps(value, indent=2, default=str))


def parse_job_id(text: str) -> UUID:
    """The job id written on the command line; UserError if it is not a UUID."""
    try:
        return UUID(text)
    except ValueError:
        raise UserError(f"{text!r} is not a job id (a UUID)") from None


def get_job(conn: psycopg.Connection[tuple[Any, ...]], job_id: UUID) -> JobRecord | None:
    """The job with this id, or None."""
    rows = fetch(conn, "get", {"job_id": job_id})
    return JobRecord.from_row(rows[0]) if rows else None


def require_extra(extra: str, *modules: str) -> None:
    """Raises UserError naming the extra to install when one of ``modules`` cannot be imported."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(
                f"{module} is not installed: this command needs the {extra} extra (pip install 'raquel-pg[{extra}]')"
            ) from None
