"""``python -m bench.levels``: claims across priority levels (issue 23, 0016_claim_walks).

A claim takes the highest priority level's due jobs first, then the next level's. Before
0016_claim_walks it read each level with two statements of its own (the level's probe, then its claim), so a queue
whose jobs have many priorities (a score, a deadline) paid two statements per level a claim
reached, and a level holding only jobs not yet due (retries waiting for their backoff, delayed
jobs) cost those two statements at every claim. This script times today's ``raquel_claim``
against 0013's (recreated from migrations/0013_claim_generic_plans.sql beside it as
``raquel_claim_0013``; its levels are read as before 0016) in one database, one case at a time:
the table emptied and filled with the case's jobs (then ANALYZEd), one untimed call per function
(its statements planned again), then ``--calls`` timed claims (a prepared statement, autocommit,
``durable => false``); rounds interleaved, the order alternating, medians of the rounds' medians.

Cases, one queue named or all queues (NULL): 6,000 jobs each of its own priority; 6,000 jobs of
one priority; 1,000 levels each holding one job due in an hour above 1,000 due jobs of priority
0; nothing to claim.

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.levels``. It prints
Markdown to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import psycopg

from .controls import function_sql
from .server import server

#: Each case's jobs: statements run into an emptied table.
FILLS = {
    "distinct": ["SELECT count(raquel.raquel_enqueue('q', 'x', priority => g)) FROM generate_series(1, 6000) AS g"],
    "one level": ["SELECT count(*) FROM raquel.raquel_enqueue_many('q', array_fill('x'::text, ARRAY[6000]))"],
    "future levels": [
        "SELECT count(raquel.raquel_enqueue('q', 'x', delay => 3600000, priority => g))"
        " FROM generate_series(1, 1000) AS g",
        "SELECT count(*) FROM raquel.raquel_enqueue_many('q', array_fill('x'::text, ARRAY[1000]))",
    ],
    "empty": [],
}

#: (label, fill, batch): what each case claims.
CASES = [
    ("6,000 jobs, each its own priority; claims of 250", "distinct", 250),
    ("6,000 jobs, one priority; claims of 250", "one level", 250),
    ("6,000 jobs, each its own priority; claims of 10", "distinct", 10),
    ("6,000 jobs, one priority; claims of 10", "one level", 10),
    ("6,000 jobs, one priority; claims of 1", "one level", 1),
    ("1,000 levels of delayed jobs above 1,000 due; claims of 10", "future levels", 10),
    ("nothing to claim; claims of 10", "empty", 10),
]

FUNCTIONS = ("raquel_claim_0013", "raquel_claim")


def refill(conn: psycopg.Connection[Any], fill: str) -> None:
    """An emptied jobs table holding the case's jobs, analyzed."""
    conn.execute("TRUNCATE raquel.raquel_jobs")
    for statement in FILLS[fill]:
        conn.execute(statement.encode())
    conn.execute("ANALYZE raquel.raquel_jobs")


def timed(conn: psycopg.Connection[Any], query: bytes, calls: int) -> float:
    """The median ms of ``calls`` runs of ``query``, after one untimed run (its plans made again)."""
    conn.execute(query).fetchall()
    each = []
    for _ in range(calls):
        started = time.perf_counter()
        conn.execute(query).fetchall()
        each.append(time.perf_counter() - started)
    return statistics.median(each) * 1000


def levels(dsn: str, rounds: int, calls: int) -> list[str]:
    """The Markdown table."""
    out = [
        "| case | queues | 0013: ms | today: ms | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    with psycopg.connect(dsn, autocommit=True) as setup, psycopg.connect(dsn, autocommit=True) as conn:
        setup.execute("SET search_path = raquel, pg_catalog, pg_temp")
        setup.execute(function_sql("0013_claim_generic_plans.sql", "raquel_claim", "raquel_claim_0013").encode())
        setup.execute("RESET search_path")
        for label, fill, batch in CASES:
            for queues in ("ARRAY['q']", "NULL"):
                times: dict[str, list[float]] = {fn: [] for fn in FUNCTIONS}
                for r in range(rounds):
                    for fn in FUNCTIONS if r % 2 == 0 else tuple(reversed(FUNCTIONS)):
                        refill(setup, fill)
                        query = f"SELECT * FROM raquel.{fn}({queues}, 'w', {batch}, 60000, durable => false)"
                        times[fn].append(timed(conn, query.encode(), calls))
                old, new = (statistics.median(times[fn]) for fn in FUNCTIONS)
                name = "one, named" if queues != "NULL" else "all (NULL)"
                out.append(f"| {label} | {name} | {old:.3f} | {new:.3f} | {new / old:.3f} |")
                print(out[-1], file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.levels", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per figure (default 6)")
    parser.add_argument("--calls", type=int, default=20, help="timed claims per round and function (default 20)")
    args = parser.parse_args()
    with server() as srv, srv.database("levels") as dsn:
        print("\n".join(levels(dsn, args.rounds, args.calls)))


if __name__ == "__main__":
    main()
