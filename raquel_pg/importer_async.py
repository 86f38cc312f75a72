"""Copies the jobs of an existing raquel ``jobs`` table into raquel_jobs.

One transaction: the source table is locked against writes (SHARE mode:
raquel workers and enqueuers still running on it wait until the copy ends),
every row is checked against the rules of raquel_jobs, and the rows are
copied with their ids, statuses, attempts, errors and timings. A claimed row
comes over claimable again (status ``queued``, ``claimed_by``/``claimed_at``
cleared, as raquel's ``unclaim()`` leaves it; attempts kept). A row whose id
raquel_jobs already has is left alone, so running the import again copies
nothing twice. Which raquel schemas are read, and how ids map: see
``raquel_tables.py``.

Rows that break a rule (an unknown status, a negative delay, ...) are never
dropped silently: by default the import refuses the whole table and writes
nothing (:class:`~raquel_pg.raquel_tables.ImportRefused`, listing every such
row and why); ``skip_invalid=True`` copies the others and reports the skipped
ones.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection

from .errors import InvalidArgument
from .queries import QUERIES
from .raquel_tables import (
    ImportRefused,
    ImportReport,
    RollBack,
    lock_statement,
    source_table,
    source_view,
)


async def import_raquel(
    conn: AsyncConnection[Any], table: str = "jobs", *, dry_run: bool = False, skip_invalid: bool = False
) -> ImportReport:
    """Copies raquel's ``table`` into raquel_jobs and says what it did.

    ``table`` is read as SQL reads a table name (``jobs``, ``app.jobs``,
    ``"Jobs"``). Runs in one transaction on ``conn`` (a savepoint if ``conn``
    is already in one), blocking raquel's writers of ``table`` until it ends.
    With ``dry_run`` everything is done and then rolled back: the report says
    what a real run would copy. Raises :class:`~raquel_pg.InvalidArgument`
    (``table``) when the table does not exist or lacks a raquel column, and
    :class:`~raquel_pg.ImportRefused` when rows break a rule and
    ``skip_invalid`` is false; in both cases nothing is written.
    """
    try:
        async with conn.transaction():
            try:
                cursor = await conn.execute(QUERIES["import_raquel_table"], {"table": table})
            except psycopg.errors.InvalidName as error:
                raise InvalidArgument("table", f"table: {table!r} is not a table name ({error})") from None
            source, columns = source_table(table, await cursor.fetchall())
            await conn.execute(lock_statement(source))
            await conn.execute(source_view(source, columns))
            await conn.execute(QUERIES["import_raquel_checked"])
            source_rows = await _count(conn, "import_raquel_count")
            cursor = await conn.execute(QUERIES["import_raquel_problems"])
            invalid = [(str(r[0]), str(r[1])) for r in await cursor.fetchall()]
            if invalid and not skip_invalid:
                raise RollBack(ImportReport(table, source_rows, 0, 0, invalid, dry_run))
            copied = await _count(conn, "import_raquel_copy")
            await conn.execute(QUERIES["import_raquel_done"])
            report = ImportReport(table, source_rows, copied, source_rows - len(invalid) - copied, invalid, dry_run)
            if dry_run:
                raise RollBack(report)
    except RollBack as rolled_back:
        if rolled_back.report.invalid and not skip_invalid:
            raise ImportRefused(rolled_back.report) from None
        return rolled_back.report  # the dry run
    return report


async def _count(conn: AsyncConnection[Any], query: str) -> int:
    cursor = await conn.execute(QUERIES[query])
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
