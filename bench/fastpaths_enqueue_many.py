"""Ad-hoc measure of raquel_enqueue_many: 10 calls of 10,000 jobs into an empty table.

Usage: python bench/fastpaths_enqueue_many.py DSN   (a migrated database; its jobs are truncated)
Prints jobs/s for the SQL function called with text and with binary parameters,
and for Raquel.enqueue_many.
"""

from __future__ import annotations

import sys
import time

import psycopg

from raquel_pg import Raquel


def main(dsn: str, calls: int = 10, size: int = 10_000) -> None:
    payloads = [f'{{"n": {i}}}' for i in range(size)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        print(conn.execute("SHOW server_version").fetchone())
        for label, binary in (("SQL, text params", False), ("SQL, binary params", True)):
            conn.execute("TRUNCATE raquel_jobs")
            start = time.perf_counter()
            for _ in range(calls):
                cur = conn.cursor(binary=binary)
                cur.execute("SELECT raquel_enqueue_many('bench', %b::text[])" if binary
                            else "SELECT raquel_enqueue_many('bench', %s::text[])", (payloads,))
                assert len(cur.fetchall()) == size
            elapsed = time.perf_counter() - start
            print(f"{label}: {calls * size / elapsed:,.0f} jobs/s")
        conn.execute("TRUNCATE raquel_jobs")
    with Raquel(dsn) as rq:
        start = time.perf_counter()
        for _ in range(calls):
            assert len(rq.enqueue_many("bench", payloads)) == size
        elapsed = time.perf_counter() - start
        print(f"Raquel.enqueue_many: {calls * size / elapsed:,.0f} jobs/s")


if __name__ == "__main__":
    main(sys.argv[1])
