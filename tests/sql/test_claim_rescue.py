"""The rescue a claim makes (raquel_claim, 0006_claim): when any lease has run out, every queue's lost
jobs are put back, not only those of the queues asked for.

Time is fixed through the functions' ``now`` argument: T is an arbitrary instant in ms.
"""

from __future__ import annotations

from typing import Any

import psycopg

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
Conn = psycopg.Connection[tuple[Any, ...]]


def status_of(conn: Conn, queue: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT status FROM raquel_jobs WHERE queue = %s", (queue,))]


def test_a_claim_of_one_queue_rescues_a_lost_job_of_another(conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('a', 'x', now => %s)", (T,))
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['a'], 'dead', 1, 1000, %s)", (T,))
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['b'], 'w', 1, 60000, %s)", (T + 5000,))
    assert status_of(conn, "a") == ["failed"]  # its lease ran out: claimable again


def test_a_claim_rescues_a_lease_that_runs_out_at_its_now_and_not_one_a_ms_later(conn: Conn) -> None:
    # The rescue probe reads the leases at or before now (0027_claim_probes).
    for queue, lease in [("ends-now", 5000), ("ends-later", 5001)]:
        conn.execute("SELECT raquel_enqueue(%s, 'x', now => %s)", (queue, T))
        conn.execute("SELECT count(*) FROM raquel_claim(ARRAY[%s], 'dead', 1, %s, %s)", (queue, lease, T))
    conn.execute("SELECT count(*) FROM raquel_claim(ARRAY['other'], 'w', 1, 60000, %s)", (T + 5000,))
    assert status_of(conn, "ends-now") == ["failed"]
    assert status_of(conn, "ends-later") == ["claimed"]
