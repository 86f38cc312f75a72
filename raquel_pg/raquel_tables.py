"""raquel's ``jobs`` tables as the importer reads them, and what an import reports.

Shared by the sync and async importers (``importer.py``, ``importer_async.py``).
Every raquel schema is understood: 0.3's (uuid ids, ``backoff_base``),
0.1-0.2's (``max_retry_exponent``, not carried over: raquel_pg's backoff is
``backoff_base``, default 1 s) and 0.0's (bigserial ids, ``locked_by``,
``locked_at``, ``failed_error``, ``failed_traceback``, ``cancelled_reason``,
status ``locked``). A uuid id is kept; any other id becomes :func:`legacy_id`
of it, the same UUID on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid3

from psycopg import sql

from .errors import InvalidArgument, RaquelError
from .queries import QUERIES

#: Namespace of the UUIDs given to raquel's non-uuid (bigserial) job ids.
LEGACY_ID_NAMESPACE = UUID("512128fc-7855-5cbb-89c8-f34b00b8911e")

#: raquel_jobs column <- (the source columns it is read from, first non-NULL
#: wins: raquel 0.3's name, then older releases'; whether the source must
#: have one of them).
SOURCES: dict[str, tuple[tuple[str, ...], bool]] = {
    "queue": (("queue",), True),
    "payload": (("payload",), False),
    "status": (("status",), True),
    "max_age": (("max_age",), False),
    "max_retry_count": (("max_retry_count",), False),
    "min_retry_delay": (("min_retry_delay",), False),
    "max_retry_delay": (("max_retry_delay",), False),
    "backoff_base": (("backoff_base",), False),
    "enqueued_at": (("enqueued_at",), True),
    "scheduled_at": (("scheduled_at",), True),
    "attempts": (("attempts",), True),
    "error": (("error", "failed_error", "cancelled_reason"), False),
    "error_trace": (("error_trace", "failed_traceback"), False),
    "claimed_by": (("claimed_by", "locked_by"), False),
    "claimed_at": (("claimed_at", "locked_at"), False),
    "finished_at": (("finished_at",), False),
}


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, with ``dry_run``, would do).

    ``source_rows``: rows in the source table; ``copied``: rows written to
    raquel_jobs; ``already_present``: valid rows whose id raquel_jobs already
    had (left unchanged); ``invalid``: (source id as text, reason) of every
    row that breaks a rule, none of them copied.
    """

    table: str
    source_rows: int
    copied: int
    already_present: int
    invalid: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False


class ImportRefused(RaquelError):
    """Rows of the source break a rule of raquel_jobs: nothing was copied.

    ``report.invalid`` lists each such row (source id, reason).
    """

    def __init__(self, report: ImportReport) -> None:
        first = "; ".join(f"{job_id}: {reason}" for job_id, reason in report.invalid[:3])
        more = f" (and {len(report.invalid) - 3} more)" if len(report.invalid) > 3 else ""
        super().__init__(
            f"{len(report.invalid)} row(s) of {report.table} break a rule of raquel_jobs, nothing "
            f"was copied: {first}{more}"
        )
        self.report = report


class RollBack(Exception):
    """Raised inside the import's transaction to roll it back; carries the report out."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__()
        self.report = report


def legacy_id(source_id: int | str) -> UUID:
    """The raquel_pg id of a raquel job whose id is not a UUID (raquel < 0.1's bigserial)."""
    return uuid3(LEGACY_ID_NAMESPACE, str(source_id))


def source_table(table: str, rows: list[tuple[object, ...]]) -> tuple[sql.Identifier, dict[str, str]]:
    """The source table (schema-qualified) and its columns (name -> type) from import_raquel_table's ``rows``.

    Raises :class:`InvalidArgument` (``table``) when there is no such table or
    it lacks a column every raquel release has.
    """
    if not rows:
        raise InvalidArgument("table", f"table: no table {table!r} on this connection's search_path")
    columns = {str(r[2]): str(r[3]) for r in rows}
    missing = [
        name for name, (sources, required) in SOURCES.items() if required and not any(s in columns for s in sources)
    ]
    if "id" not in columns:
        missing.insert(0, "id")
    if missing:
        raise InvalidArgument("table", f"table: {table!r} is not a raquel jobs table (no column {', '.join(missing)})")
    return sql.Identifier(str(rows[0][0]), str(rows[0][1])), columns


def lock_statement(source: sql.Identifier) -> sql.Composed:
    """The import_raquel_lock statement (queries.sql) for the source table."""
    return sql.SQL(QUERIES["import_raquel_lock"]).format(table=source)


def source_view(source: sql.Identifier, columns: dict[str, str]) -> sql.Composed:
    """The import_raquel_source statement (queries.sql) for a source table with ``columns``."""
    parts: dict[str, sql.Composable] = {
        "table": source,
        "id": sql.Identifier("id"),
        "id_is_uuid": sql.Literal(columns["id"] == "uuid"),
    }
    for target, (sources, _) in SOURCES.items():
        present = [sql.SQL("s.{}").format(sql.Identifier(s)) for s in sources if s in columns]
        if not present:
            parts[target] = sql.NULL
        elif len(present) == 1:
            parts[target] = present[0]
        else:
            parts[target] = sql.SQL("coalesce({})").format(sql.SQL(", ").join(present))
    return sql.SQL(QUERIES["import_raquel_source"]).format(**parts)
