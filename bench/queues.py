"""``python -m bench.queues``: a worker subscribed to an explicit list of queues (issue 23's goal
"1,000 queues listed explicitly: claim p50 within 1.5x of one queue").

1. Claim latency. One database per case, each holding both claims: ``raquel_claim`` as migrated
   and ``raquel_claim`` as it was before the long-list branch (0006_claim.sql at BEFORE_COMMIT,
   read from git history, recreated beside it as ``raquel_claim_before``, as ``bench.controls``
   does). Cases: *spread N* (N = 1, 100, 1,000):
   the jobs spread evenly over N queues, the claim lists those N; *skewed 1,000*: the same 1,000
   listed queues holding few jobs each among a big unlisted queue's, enqueued interleaved (the
   listed ones about 4% of the waiting jobs at the start, fewer as they are claimed). Each
   round times ``--calls`` claims of ``--batch`` jobs per case and function, the two functions
   alternating call by call (the order reversed every other round), round trip timed in Python
   (a prepared statement, autocommit, durable, a lease of an hour), the list sent as a Python list
   (psycopg's list dumper dumps it at each call: 0.36 ms for 1,000 names) and as the workers send
   it (``FixedTextArray``: its binary ``text[]`` built once, the same bytes sent at every call).
   Medians of all timed calls (a warm-up round first, not counted).
2. Drain rate. ``AsyncRaquel(dsn)`` + ``subscribe(*queues, concurrency=10)`` with nothing else,
   in a process of its own (``bench.worker_proc default``), draining ``--jobs`` pre-enqueued no-op
   jobs (tables ANALYZEd), each drain in a fresh database; *before*: that database migrated up to
   0029 and its ``raquel_claim`` and ``raquel_next_due`` replaced by BEFORE_COMMIT's. Cases: 1
   queue, 1,000 queues (jobs spread), and 1,000 listed queues among a big unlisted queue (skewed;
   the listed jobs drained). Rounds interleaved (order reversed every other round); rate = jobs /
   (last success - first claim).

3. ``--sweeps``: the one-job claim's rescue of every queue against the queues asked for.
4. ``--walk``: a claim of 1,000 listed queues with the names sent (as migrated), by a
   registered list (0030_queue_lists), and with the names sent to 0006's walk (a hashed subplan),
   each in a database of its own beside a one-queue database, claims alternating.

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.queues``. It prints
Markdown to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from raquel_pg.migrate import migrate
from raquel_pg.schema import load_migrations
from raquel_pg.textarray import FixedTextArray

from .default_mode import default_worker
from .measure import read_span, wait_until
from .server import Server, server

ROOT = Path(__file__).resolve().parent.parent

#: The skewed cases: the big unlisted queue's jobs per listed job.
SKEW_RATIO = 25


#: A commit of main whose 0006_claim.sql holds raquel_claim and raquel_next_due as they were before
#: the long-list branch (raquel_claim_listed) and the claim's rescue of every queue; since the
#: migrations were folded, 0006_claim.sql itself defines them with both.
BEFORE_COMMIT = "6d4aad1"


def create_or_replace(text: str, function: str) -> str:
    """``function``'s CREATE FUNCTION statement in the migration ``text``, as CREATE OR REPLACE."""
    start = text.index(f"CREATE FUNCTION {function}(")
    end = text.index("\n$$;\n", start) + len("\n$$;\n")
    return text[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def sql_0006(function: str, name: str) -> str:
    """``function`` as BEFORE_COMMIT's 0006_claim.sql creates it, named ``name``, as CREATE OR REPLACE."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:migrations/0006_claim.sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.sub(rf"\b{function}\b", name, create_or_replace(text, function))


def install(conn: psycopg.Connection[Any], sql: str) -> None:
    """Runs ``sql`` with the engine schema first on the search_path (as the migrations run)."""
    conn.execute("SET search_path = raquel, pg_catalog, pg_temp")
    conn.execute(sql.encode())
    conn.execute("RESET search_path")


def names(count: int) -> list[str]:
    return [f"q{i}" for i in range(count)]


def fill(conn: psycopg.Connection[Any], listed: int, jobs: int, skewed: bool) -> None:
    """``jobs`` ready jobs over ``listed`` queues (spread evenly); skewed: among SKEW_RATIO times as
    many jobs of the unlisted queue 'big', interleaved. Then ANALYZE."""
    if skewed:
        conn.execute(
            "INSERT INTO raquel.raquel_jobs (queue, payload) "
            "SELECT CASE WHEN g %% %s = 0 THEN 'q' || (g / %s %% %s) ELSE 'big' END, 'x' "
            "FROM generate_series(1, %s) AS g",
            (SKEW_RATIO + 1, SKEW_RATIO + 1, listed, jobs * (SKEW_RATIO + 1)),
        )
    else:
        conn.execute(
            "INSERT INTO raquel.raquel_jobs (queue, payload) "
            "SELECT 'q' || (g %% %s), 'x' FROM generate_series(1, %s) AS g",
            (listed, jobs),
        )
    conn.execute("ANALYZE raquel.raquel_jobs")


#: A lease of an hour: the claimed jobs are never finished, and a lease run out would make the
#: next claims rescue them.
CLAIM = "SELECT count(*) FROM raquel.{fn}(%s::text[], 'bench', %s, 3600000)"
#: (the batch parameter unused: the same arguments as CLAIM)
NEXT_DUE = "SELECT raquel.{fn}(%s::text[]) + 0 * %s"

#: The claim-latency cases: label, queues listed, skewed.
CASES = [("spread, 1 queue", 1, False), ("spread, 100 queues", 100, False), ("spread, 1,000 queues", 1000, False)]
SKEWED = ("skewed, 1,000 queues", 1000, True)


def claim_latency(srv: Server, rounds: int, calls: int, batch: int) -> list[str]:
    """The Markdown table of part 1.

    Each claim is timed twice over: with the list as a Python list (psycopg's list dumper dumps it
    at each call) and as the workers send it: a ``FixedTextArray``, the
    list's binary ``text[]`` built once and the same bytes sent at every call (what the server's side
    of the claim costs, plus the same round trip).
    """
    functions = ("raquel_claim_before", "raquel_claim")
    modes = ("list", "binary")
    cases = [*CASES, SKEWED]
    #: What each round times, call by call: (statement, how the list is sent, function).
    variants = [(CLAIM, m, fn) for m in modes for fn in functions]
    variants += [(NEXT_DUE, "binary", fn) for fn in ("raquel_next_due_before", "raquel_next_due")]
    times: dict[tuple[str, str, str, str], list[float]] = {
        (c[0], stmt, m, fn): [] for c in cases for stmt, m, fn in variants
    }
    with (
        srv.database("queues_c1") as d1,
        srv.database("queues_c100") as d100,
        srv.database("queues_c1000") as d1000,
        srv.database("queues_cskew") as dskew,
    ):
        conns = {}
        for (label, listed, skewed), dsn in zip(cases, (d1, d100, d1000, dskew), strict=True):
            conn = psycopg.connect(dsn, autocommit=True)
            install(conn, sql_0006("raquel_claim", "raquel_claim_before"))
            install(conn, sql_0006("raquel_next_due", "raquel_next_due_before"))
            fill(conn, listed, (rounds + 1) * calls * batch * len(functions) * len(modes), skewed)
            conns[label] = (conn, {"list": names(listed), "binary": FixedTextArray(names(listed))})
        try:
            for r in range(rounds + 1):
                for label, _, _ in cases:
                    conn, queues = conns[label]
                    for _ in range(calls):
                        for stmt, mode, fn in variants if r % 2 == 0 else reversed(variants):
                            started = time.perf_counter()
                            conn.execute(stmt.format(fn=fn).encode(), (queues[mode], batch), prepare=True).fetchone()
                            if r:
                                times[label, stmt, mode, fn].append(time.perf_counter() - started)
        finally:
            for conn, _ in conns.values():
                conn.close()

    def row(label: str, what: str, stmt: str, mode: str, fns: tuple[str, str]) -> str:
        one_before, one = (statistics.median(times[CASES[0][0], stmt, mode, fn]) for fn in fns)
        before, after = (statistics.median(times[label, stmt, mode, fn]) for fn in fns)
        return (
            f"| {label} ({len(times[label, stmt, mode, fns[1]])} calls) | {what} "
            f"| {before * 1e3:.3f} | {before / one_before:.2f}x | {after * 1e3:.3f} | {after / one:.2f}x "
            f"| {after / before:.2f}x |"
        )

    out = [
        f"| claim of {batch} | list sent as | before: p50 ms | ÷ 1 queue | after: p50 ms | ÷ 1 queue "
        "| after ÷ before |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    out += [row(label, MODE_LABELS[m], CLAIM, m, functions) for m in modes for label, _, _ in cases]
    out += [
        "",
        "| raquel_next_due | list sent as | before: p50 ms | ÷ 1 queue | after: p50 ms | ÷ 1 queue | after ÷ before |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    nd = ("raquel_next_due_before", "raquel_next_due")
    out += [row(label, MODE_LABELS["binary"], NEXT_DUE, "binary", nd) for label, _, _ in cases]
    print("\n".join(out), file=sys.stderr, flush=True)
    return out


MODE_LABELS = {
    "list": "a Python list (dumped per call)",
    "binary": "binary, built once (up to 16 queues, the worker's way)",
}


SPAN_ALL = """
SELECT extract(epoch FROM raquel_ts(finished_at)), extract(epoch FROM raquel_ts(min(claimed_at) OVER ()))
FROM raquel_jobs WHERE queue <> 'big' AND status = 'success'"""
LEFT_ALL = """
SELECT (EXISTS (SELECT FROM raquel_jobs WHERE queue <> 'big' AND status IN ('queued', 'failed'))
        OR EXISTS (SELECT FROM raquel_jobs WHERE queue <> 'big' AND status = 'claimed'
                                             AND lease_expires_at IS NOT NULL))::int"""


def drain(srv: Server, listed: int, skewed: bool, before: bool, jobs: int) -> float:
    """One drain in a fresh database; jobs/s."""
    with srv.database("queues_drain", migrated=not before) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if before:
                # Up to 0029: 0030 gave raquel_claim another argument, so 0006's would be another function
                # beside it, not a replacement. (The worker then sends its names, with one warning.)
                migrate(conn, [m for m in load_migrations() if m.version <= 29])
                install(conn, sql_0006("raquel_claim", "raquel_claim"))
                install(conn, sql_0006("raquel_next_due", "raquel_next_due"))
            fill(conn, listed, jobs, skewed)
        with default_worker(dsn, ",".join(names(listed)), 10, None):
            wait_until(dsn, LEFT_ALL, [], lambda left: left == 0, timeout=900)
        rate = read_span(dsn, SPAN_ALL).rate
        assert rate is not None
        return rate


def drain_rates(srv: Server, rounds: int, jobs: int) -> list[str]:
    """The Markdown table of part 2."""
    cases = [("1 queue", 1, False), ("1,000 queues, spread", 1000, False), ("1,000 queues, skewed", 1000, True)]
    configs = [(case, before) for case in cases for before in (True, False)]
    rates: dict[tuple[str, bool], list[float]] = {(c[0], b): [] for c, b in configs}
    for r in range(rounds):
        for (label, listed, skewed), before in configs if r % 2 == 0 else reversed(configs):
            rates[label, before].append(drain(srv, listed, skewed, before, jobs))
            print(label, "before" if before else "after", f"{rates[label, before][-1]:,.0f}", file=sys.stderr)
    out = [
        f"| default worker, concurrency 10, {jobs:,} jobs | before: jobs/s | ÷ 1 queue "
        "| after: jobs/s | ÷ 1 queue | after ÷ before |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    one = {b: statistics.median(rates["1 queue", b]) for b in (True, False)}
    for label, _, _ in cases:
        old, new = (statistics.median(rates[label, b]) for b in (True, False))
        spread = {b: f"{min(rates[label, b]):,.0f}-{max(rates[label, b]):,.0f}" for b in (True, False)}
        out.append(
            f"| {label} | {old:,.0f} ({spread[True]}) | {old / one[True]:.2f}x "
            f"| {new:,.0f} ({spread[False]}) | {new / one[False]:.2f}x | {new / old:.2f}x |"
        )
    return out


def claim_before_sweeps_sql() -> str:
    """raquel_claim as 0006_claim.sql defines it but with the rescue as BEFORE_COMMIT made it: of
    the queues asked for, whenever any queue's lease has run out."""
    body = create_or_replace((ROOT / "migrations" / "0006_claim.sql").read_text(encoding="utf-8"), "raquel_claim")
    now = "PERFORM raquel_rescue(NULL, raquel_claim.now);"
    assert body.count(now) == 1
    return body.replace(now, "PERFORM raquel_rescue(raquel_claim.queues, raquel_claim.now);")


WAKE_CLAIM = "SELECT count(*) FROM raquel.raquel_claim(ARRAY['w'], 'bench', 10)"


def sweep_latency(srv: Server, rounds: int, calls: int) -> list[str]:
    """The claim a woken worker makes (one waiting job, ten free slots: a short claim), the rescue
    of every queue (0006_claim.sql) against the rescue of the queues asked for, each in a database
    of its own, calls alternating between the two; with nothing to sweep, and with one lease run
    out in a queue nobody claims."""
    out = [
        "| one-job claim (batch 10) | rescue of the queues asked for: p50 ms | of every queue: p50 ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for case in ("nothing to sweep", "a lease run out in another queue"):
        times: dict[str, list[float]] = {"asked": [], "every": []}
        with srv.database("queues_sw_old") as old_dsn, srv.database("queues_sw_new") as new_dsn:
            conns = {
                "asked": psycopg.connect(old_dsn, autocommit=True),
                "every": psycopg.connect(new_dsn, autocommit=True),
            }
            try:
                install(conns["asked"], claim_before_sweeps_sql())
                for conn in conns.values():
                    if case != "nothing to sweep":
                        conn.execute("SELECT raquel.raquel_enqueue('stale', 'x')")
                        conn.execute("SELECT count(*) FROM raquel.raquel_claim(ARRAY['stale'], 'gone', 1, 1)")
                        time.sleep(0.01)  # its lease (1 ms) runs out; nobody claims 'stale' again
                for r in range(rounds + 1):
                    for _ in range(calls):
                        for label in ("asked", "every") if r % 2 == 0 else ("every", "asked"):
                            conn = conns[label]
                            conn.execute("SELECT raquel.raquel_enqueue('w', 'x')")
                            started = time.perf_counter()
                            conn.execute(WAKE_CLAIM.encode(), prepare=True).fetchone()
                            if r:
                                times[label].append(time.perf_counter() - started)
            finally:
                for conn in conns.values():
                    conn.close()
        old, new = (statistics.median(times[k]) for k in ("asked", "every"))
        out.append(f"| {case} ({len(times['every'])} calls) | {old * 1e3:.3f} | {new * 1e3:.3f} | {new / old:.2f}x |")
    print("\n".join(out), file=sys.stderr, flush=True)
    return out


def listed_0006_sql() -> str:
    """raquel_claim_listed as 0006_claim.sql defines it (its walk's hashed subplan), as CREATE OR REPLACE."""
    return create_or_replace(
        (ROOT / "migrations" / "0006_claim.sql").read_text(encoding="utf-8"), "raquel_claim_listed"
    )


#: ``--walk``'s claim by a registered list (0030_queue_lists).
CLAIM_LIST = (
    "SELECT count(*) FROM raquel.raquel_claim(claim_as => 'bench', batch => %s, lease => 3600000, queue_list => %s)"
)


def walk_latency(srv: Server, rounds: int, calls: int, batch: int) -> list[str]:
    """Part 4 (``--walk``): a claim of 1,000 listed queues three ways, interleaved with one queue's.

    Four databases: one queue's jobs, and three holding the same jobs spread over 1,000 queues:
    claimed with the names sent (as migrated: since 0031, 0006's hashed subplan again), by a registered list
    (0030_queue_lists: an index probe of its members per job read), and with the names sent to
    0006's walk (a hashed subplan; that database migrated up to 0029, whose ``raquel_claim`` calls
    it). Claims of ``batch`` (durable, a lease of an hour, the names binary and built once)
    alternate call by call across the four, the order reversed every other round; one round
    unmeasured first.
    """
    labels = (
        "one queue",
        "1,000 listed queues, names sent",
        "1,000 listed queues, registered list",
        "1,000 listed queues, names sent, 0006's walk",
    )
    jobs = (rounds + 1) * calls * batch
    times: dict[str, list[float]] = {label: [] for label in labels}
    per_round: dict[str, list[float]] = {label: [] for label in labels}
    with (
        srv.database("walk_1") as d1,
        srv.database("walk_names") as dnames,
        srv.database("walk_list") as dlist,
        srv.database("walk_old", migrated=False) as dold,
    ):
        conns = {
            label: psycopg.connect(dsn, autocommit=True)
            for label, dsn in zip(labels, (d1, dnames, dlist, dold), strict=True)
        }
        try:
            migrate(conns[labels[3]], [m for m in load_migrations() if m.version <= 29])
            install(conns[labels[3]], listed_0006_sql())
            for label, listed in zip(labels, (1, 1000, 1000, 1000), strict=True):
                fill(conns[label], listed, jobs, skewed=False)
            row = conns[labels[2]].execute("SELECT raquel.raquel_queue_list(%s)", (names(1000),)).fetchone()
            assert row is not None
            calls_of: dict[str, tuple[str, tuple[Any, ...]]] = {
                labels[0]: (CLAIM.format(fn="raquel_claim"), (FixedTextArray(names(1)), batch)),
                labels[1]: (CLAIM.format(fn="raquel_claim"), (FixedTextArray(names(1000)), batch)),
                labels[2]: (CLAIM_LIST, (batch, row[0])),
                labels[3]: (CLAIM.format(fn="raquel_claim"), (FixedTextArray(names(1000)), batch)),
            }
            for r in range(rounds + 1):
                this_round: dict[str, list[float]] = {label: [] for label in labels}
                for _ in range(calls):
                    for label in labels if r % 2 else reversed(labels):
                        statement, args = calls_of[label]
                        started = time.perf_counter()
                        conns[label].execute(statement.encode(), args, prepare=True)
                        this_round[label].append(time.perf_counter() - started)
                if r:
                    for label in labels:
                        times[label] += this_round[label]
                        per_round[label].append(statistics.median(this_round[label]))
        finally:
            for conn in conns.values():
                conn.close()
    one = statistics.median(times[labels[0]])
    out = [f"| claim of {batch} | p50 ms | ÷ one queue |", "|---|---:|---:|"]
    out += [
        f"| {label} | {statistics.median(times[label]) * 1e3:.3f} | {statistics.median(times[label]) / one:.2f}x |"
        for label in labels
    ]
    for label in labels[1:]:
        ratios = [x / o for x, o in zip(per_round[label], per_round[labels[0]], strict=True)]
        out.append(f"\n{label} ÷ one queue, per round: " + ", ".join(f"{x:.2f}" for x in ratios))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queues", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of part 1 (default 5)")
    parser.add_argument("--calls", type=int, default=100, help="claims per case, function and round (default 100)")
    parser.add_argument("--batch", type=int, default=10, help="jobs per claim (default 10)")
    parser.add_argument("--drain-rounds", type=int, default=3, help="interleaved rounds of part 2 (default 3)")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per drain (default 20,000)")
    parser.add_argument("--skip-drain", action="store_true", help="part 1 only")
    parser.add_argument("--sweeps", action="store_true", help="only the one-job claim's rescue (part 3)")
    parser.add_argument("--walk", action="store_true", help="only the long list's walk against 0006's (part 4)")
    args = parser.parse_args()
    with server() as srv:
        if args.sweeps:
            print("\n".join(sweep_latency(srv, args.rounds, args.calls)))
            return
        if args.walk:
            print("\n".join(walk_latency(srv, args.rounds, args.calls, args.batch)))
            return
        lines = claim_latency(srv, args.rounds, args.calls, args.batch)
        if not args.skip_drain:
            lines += ["", *drain_rates(srv, args.drain_rounds, args.jobs)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
