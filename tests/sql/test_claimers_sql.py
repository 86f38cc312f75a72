"""Who else claims a worker's queues (raquel_claimers, 0028_claimers): the distinct workers other than
the caller that hold claimed jobs of the queues, among the newest leases.

Time is fixed through the functions' ``now`` argument: T is an arbitrary instant in ms.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]


def claim(conn: Conn, queue: str, worker: str, at: int = T, jobs: int = 1) -> None:
    """Enqueues ``jobs`` jobs on ``queue`` and has ``worker`` claim them at ``at`` (a lease of 60 s)."""
    for _ in range(jobs):
        conn.execute("SELECT raquel_enqueue(%s, 'x', now => %s)", (queue, at))
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY[%s], %s, %s, 60000, %s)", (queue, worker, jobs, at))


def claimers(conn: Conn, queues: list[str] | None, other_than: str | None, sample: int = 1000) -> int:
    row = conn.execute("SELECT raquel_claimers(%s::text[], %s, %s)", (queues, other_than, sample)).fetchone()
    assert row is not None
    count: int = row[0]
    return count


def test_claimers_counts_the_other_workers_holding_jobs_of_the_queues(conn: Conn) -> None:
    claim(conn, "q", "me")
    claim(conn, "q", "w2", jobs=2)
    claim(conn, "q", "w3")
    claim(conn, "other", "w4")
    assert claimers(conn, ["q"], "me") == 2
    assert claimers(conn, ["q", "other"], "me") == 3
    assert claimers(conn, None, "me") == 3  # any queue
    assert claimers(conn, ["q"], None) == 3  # nobody left out


def test_claimers_is_zero_for_a_worker_alone_on_its_queues(conn: Conn) -> None:
    claim(conn, "q", "me", jobs=3)
    claim(conn, "other", "w2")
    assert claimers(conn, ["q"], "me") == 0


def test_claimers_counts_only_claimed_jobs(conn: Conn) -> None:
    claim(conn, "q", "w2")
    conn.execute("SELECT raquel_complete(id, claim_id) FROM raquel_jobs WHERE claimed_by = 'w2'")
    assert claimers(conn, ["q"], "me") == 0


def test_claimers_reads_only_the_sample_newest_leases(conn: Conn) -> None:
    claim(conn, "q", "old", at=T)
    claim(conn, "q", "me", at=T + 1000, jobs=2)
    assert claimers(conn, ["q"], "me", sample=2) == 0  # the two newest leases are this worker's
    assert claimers(conn, ["q"], "me", sample=3) == 1


@pytest.mark.parametrize("sample", [0, 1_000_001, None])
def test_claimers_refuses_a_sample_out_of_range_naming_it(conn: Conn, sample: int | None) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"sample"'):
        claimers(conn, ["q"], "me", sample)  # type: ignore[arg-type]
