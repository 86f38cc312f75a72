"""Where a job's new row versions go (0003_tables: fillfactor = 50): beside the old ones, on the job's page.

A claim and a completion both change indexed columns, so each writes a new
version of the row (no HOT update). raquel_jobs keeps half of each page free
at enqueue, so the claimed version fits on the row's own page: WAL-logged as
the bytes that changed, without a lock record or a second page. Measured on
full pages: with the table's default fill (100) no claimed version stayed on
its page; with 50, 85% did (100-byte payloads). The finished version fits
there too once the queued versions are pruned, which a transaction open
elsewhere in the database delays, so that is measured (scenario servercost),
not tested.
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

JOBS = 300


def pages(conn: Conn) -> dict[Any, int]:
    """Each job's heap page (the block of its current version's ctid)."""
    return dict(conn.execute("SELECT id, (ctid::text::point)[0]::int FROM raquel.raquel_jobs").fetchall())


def enqueue_full_pages(conn: Conn) -> dict[Any, int]:
    """Enqueues JOBS jobs of 100-byte payloads (several pages' worth); their pages."""
    conn.execute("SELECT count(raquel_enqueue('q', repeat('p', 100))) FROM generate_series(1, %s)", [JOBS])
    enqueued = pages(conn)
    assert len(set(enqueued.values())) > 3
    return enqueued


def test_most_claimed_versions_stay_on_their_jobs_page(conn: Conn) -> None:
    enqueued = enqueue_full_pages(conn)
    assert (
        len(conn.execute("SELECT id FROM raquel_claim(claim_as => 'host:1234', batch => %s)", [JOBS]).fetchall())
        == JOBS
    )
    claimed = pages(conn)
    assert sum(enqueued[job] == claimed[job] for job in enqueued) >= JOBS * 2 // 3
