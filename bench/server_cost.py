"""Scenario ``servercost`` (issue 23): the server's CPU and WAL per job, raquel_pg's fast mode beside
graphile-worker with its perfTest settings.

Each round drains the same number of pre-enqueued no-op jobs with every
configuration, at 10 and 50 jobs in flight, each in a fresh database of the
same server, the configurations taking turns (order reversed every other
round); the figures are medians of the rounds. Only the drain is measured:
after the bulk enqueue the database is ANALYZEd and a CHECKPOINT is taken, so
each system pays a full-page image at its first write of every page it
touches (the same start for both; ``FPI`` columns say how much of it that is).

- **Server CPU**: time on a CPU (user + system) of every
  server process connected to the run's database except the harness's own,
  over their whole life (connection start-up included), read once the drain
  is over and before they exit (graphile-worker's pool is held open for it:
  ``drain-graphile-held``; ``/proc/<pid>/schedstat``, in ns). WAL writer, checkpointer and the other
  cluster-wide processes are not counted. n/a when the server is not on this
  machine.
- **WAL**: the records of the drain's span (``pg_walinspect``, a temporary
  physical replication slot keeping the segments) that touch the run's
  database, plus the commit records of their transactions: other databases'
  WAL on a shared server is left out. Bytes are the records' lengths, full-page
  images included. Each transaction is put in one kind: *complete* when it
  deletes a row or inserts into ``raquel_jobs_finished_idx``, *claim* when it
  inserts into ``raquel_jobs_lease_idx`` or updates a row, else *other*;
  records without a transaction (page pruning) are *no transaction*. n/a
  without ``pg_walinspect`` or a free replication slot.

raquel_pg: ``AsyncRaquel(dsn)`` and ``subscribe(queue, concurrency=N,
prefetch=500, durable_claims=False)`` (``batch_outcomes`` its default, True),
in a process of its own, its queue's retention left unset (finished jobs kept) and set to 0
(successes without a result deleted at once, as graphile-worker deletes every completed job).
``RAQUEL_PG_BENCH_VARIANTS="LABEL::SQL||LABEL::SQL"`` adds raquel_pg rows that
run that SQL (without ``||``) in their database before the enqueue (to undo a
migration under test, or to try a change), measured in the same rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import psycopg

from .default_mode import default_worker
from .measure import Section, Sizes, Span, read_span, wait_until
from .node_peers import NODE_DIR, SCRIPT, prepare, unavailable, url
from .scenarios import RAQUEL_LEFT, RAQUEL_SPAN
from .server import Server

#: Jobs in flight compared.
IN_FLIGHT = (10, 50)

#: Rounds (each configuration drains once per round).
ROUNDS = 3

#: raquel_pg's fast mode, as issue 23 measured it.
FAST_OPTIONS = ("prefetch=500", "durable_claims=False")

#: The drain's WAL records, with the relation and transaction kind of each (see the module text).
WAL_RECORDS = r"""
WITH r AS (
    SELECT xid, resource_manager || ' ' || split_part(record_type, '+', 1) AS kind, record_length, fpi_length,
           regexp_match(block_ref, 'rel \d+/(\d+)/(\d+)') AS rel
    FROM pg_get_wal_records_info(%(start)s, %(end)s)),
mine AS (
    SELECT r.xid, r.kind, r.record_length, r.fpi_length, coalesce(c.relname::text, r.rel[2]) AS relname
    FROM r LEFT JOIN pg_class c ON c.relfilenode = r.rel[2]::oid AND c.relfilenode <> 0
    WHERE r.rel[1]::oid = (SELECT oid FROM pg_database WHERE datname = current_database())),
xacts AS (
    SELECT xid,
           CASE WHEN bool_or(kind LIKE 'Heap DELETE%%' OR relname = 'raquel_jobs_finished_idx') THEN 'complete'
                WHEN bool_or(relname = 'raquel_jobs_lease_idx' OR kind LIKE 'Heap %%UPDATE%%') THEN 'claim'
                ELSE 'other' END AS xkind
    FROM mine WHERE xid <> 0 GROUP BY xid),
everything AS (
    SELECT xid, kind, record_length, fpi_length, relname FROM mine
    UNION ALL
    SELECT r.xid, r.kind, r.record_length, r.fpi_length, '' FROM r
    WHERE r.rel IS NULL AND r.xid <> 0 AND r.xid IN (SELECT xid FROM xacts))
SELECT coalesce(x.xkind, 'no transaction'), e.kind, e.relname, count(*), sum(e.record_length), sum(e.fpi_length)
FROM everything e LEFT JOIN xacts x USING (xid)
GROUP BY 1, 2, 3"""


@dataclass
class Cost:
    """One drain: its span, the server CPU (s), and its WAL records grouped by
    (transaction kind, record kind, relation): [records, bytes, FPI bytes]."""

    span: Span
    jobs: int
    cpu: float | None = None
    backends: int = 0
    wal: dict[tuple[str, str, str], list[int]] | None = None
    notes: list[str] = field(default_factory=list)

    def per_job(self, kind: str | None = None, fpi: bool = False) -> float | None:
        """WAL bytes per job (of one transaction kind; FPI bytes only with ``fpi``)."""
        if self.wal is None:
            return None
        index = 2 if fpi else 1
        return sum(v[index] for k, v in self.wal.items() if kind is None or k[0] == kind) / self.jobs


def cpu_ns(pid: int) -> int | None:
    """Time (ns) a process has run on a CPU so far (``/proc/<pid>/schedstat``: ns, where ``stat``
    counts 10 ms ticks, too coarse beside a few ms per backend); None when unreadable."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class WalWindow:
    """The harness's connection to a run's database: server CPU of the others, WAL since :meth:`start`."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.start_lsn: str | None = None
        self.why: str | None = None
        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            self.conn.execute(
                "SELECT pg_create_physical_replication_slot('raquel_bench_wal_' || pg_backend_pid(), true, true)"
            )
        except psycopg.Error as error:
            self.why = f"WAL not measured: {str(error).strip().splitlines()[0]}"

    def start(self) -> None:
        """CHECKPOINT, then remembers where the WAL is."""
        self.conn.execute("CHECKPOINT")
        row = self.conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        self.start_lsn = None if row is None else str(row[0])

    def backends_cpu(self) -> tuple[float | None, int]:
        """CPU (s) used so far by the other server processes of this database, and how many there are."""
        pids = [
            pid
            for (pid,) in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        times = [cpu_ns(pid) for pid in pids]
        if not times or any(t is None for t in times):
            return None, len(pids)
        return sum(t for t in times if t is not None) / 1e9, len(pids)

    def records(self) -> dict[tuple[str, str, str], list[int]] | None:
        """The database's WAL records since :meth:`start`, grouped (see WAL_RECORDS); None when not measured."""
        if self.why is not None or self.start_lsn is None:
            return None
        row = self.conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        end = str(row[0])
        deadline = time.monotonic() + 30
        while True:  # the records must be flushed before pg_walinspect reads them
            flushed = self.conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", [end]).fetchone()
            if (flushed and flushed[0]) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        grouped: dict[tuple[str, str, str], list[int]] = {}
        for xkind, kind, relname, count, size, fpi in self.conn.execute(
            WAL_RECORDS, {"start": self.start_lsn, "end": end}
        ):
            grouped[(xkind, kind, relname)] = [int(count), int(size), int(fpi or 0)]
        return grouped

    def close(self) -> None:
        self.conn.close()  # the temporary slot goes with the session


def run_raquel(
    dsn: str, jobs: int, concurrency: int, setup_sql: str | None = None, retention_zero: bool = False
) -> Cost:
    """Enqueues ``jobs`` jobs, ANALYZE, CHECKPOINT, then the fast-mode worker drains them.

    ``retention_zero``: the queue's retention set to 0 first (its successes deleted at once:
    no success rows are left to time, so jobs/s is n/a).
    """
    queue = "bench"
    window = WalWindow(dsn)
    try:
        if setup_sql:
            window.conn.execute(setup_sql.encode())
        if retention_zero:
            window.conn.execute("SELECT raquel_set_retention(%s, '0')", [queue])
        window.conn.execute("SELECT count(raquel_enqueue(%s, 'x')) FROM generate_series(1, %s)", [queue, jobs])
        window.conn.execute("ANALYZE raquel_jobs")
        window.start()
        with default_worker(dsn, queue, concurrency, None, FAST_OPTIONS):
            wait_until(dsn, RAQUEL_LEFT, [queue, queue], lambda left: left == 0, timeout=900)
            cpu, backends = window.backends_cpu()
        cost = Cost(read_span(dsn, RAQUEL_SPAN, [queue]), jobs, cpu, backends, window.records())
    finally:
        window.close()
    if window.why:
        cost.notes.append(window.why)
    return cost


def run_graphile(dsn: str, jobs: int, concurrency: int) -> Cost:
    """graphile-worker's perfTest settings, one ``runOnce()`` process, its pool held open until measured."""
    prepare("graphile", dsn, jobs)
    window = WalWindow(dsn)
    try:
        window.start()
        process = subprocess.Popen(
            ["node", str(SCRIPT), "drain-graphile-held", url(dsn), str(concurrency), "perftest"],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stdin is not None
        report = json.loads(process.stdout.readline())
        cpu, backends = window.backends_cpu()
        process.stdin.close()
        if process.wait(60) != 0:
            raise RuntimeError(f"graphile-worker drain failed ({process.returncode})")
        span = Span(report["first"], [], done=int(report["jobs"]), last_success=float(report["end"]))
        cost = Cost(span, jobs, cpu, backends, window.records())
    finally:
        window.close()
    if window.why:
        cost.notes.append(window.why)
    return cost


#: One configuration: (system, settings, in flight, run on a fresh database's DSN, migrated).
Config = tuple[str, str, int, Callable[[str], Cost], bool]


def configs(sizes: Sizes) -> list[Config]:
    """The configurations of each round."""
    jobs = sizes.peer_jobs
    variants = [v.partition("::") for v in os.environ.get("RAQUEL_PG_BENCH_VARIANTS", "").split("||") if v.strip()]
    node = unavailable()
    runs: list[Config] = []
    for n in IN_FLIGHT:
        settings = f"subscribe(concurrency={n}, prefetch=500, durable_claims=False)"
        runs.append(("raquel_pg", settings, n, partial(run_raquel, jobs=jobs, concurrency=n), True))
        runs.append(
            (
                "raquel_pg",
                f"{settings}, the queue's retention 0",
                n,
                partial(run_raquel, jobs=jobs, concurrency=n, retention_zero=True),
                True,
            )
        )
        for label, _, sql in variants:
            runs.append(
                (
                    f"raquel_pg ({label.strip()})",
                    settings,
                    n,
                    partial(run_raquel, jobs=jobs, concurrency=n, setup_sql=sql),
                    True,
                )
            )
        if node is None:
            runs.append(
                (
                    "graphile-worker",
                    f"perfTest: concurrentJobs={n}, maxPoolSize={n + 1}, localQueue 500, batched completions",
                    n,
                    partial(run_graphile, jobs=jobs, concurrency=n),
                    False,
                )
            )
    return runs


def scenario_server_cost(server: Server, sizes: Sizes) -> list[Section]:
    """Server CPU and WAL per job of a drain, raquel_pg's fast mode beside graphile-worker's perfTest."""
    section = Section(
        "Server cost per job (issue 23)",
        f"{sizes.peer_jobs:,} pre-enqueued no-op jobs per run, each in a fresh database of the same "
        "server, ANALYZEd, then a CHECKPOINT, then the drain; "
        f"{ROUNDS} rounds, configurations taking turns; medians of the rounds. Server CPU: the run's "
        "server processes (all but the harness's), on-CPU time from /proc/PID/schedstat over their life. WAL: the "
        "drain's records touching the run's database and their commits (pg_walinspect), full-page "
        "images included; split by transaction kind (bench/server_cost.py).",
        [
            "system",
            "settings",
            "in flight",
            "jobs/s",
            "server CPU µs/job",
            "backends",
            "WAL B/job",
            "of which FPI",
            "claim B/job",
            "complete B/job",
            "other B/job",
        ],
    )
    runs = configs(sizes)
    results: list[list[Cost]] = [[] for _ in runs]
    for round_number in range(ROUNDS):
        order = list(range(len(runs)))
        if round_number % 2:
            order.reverse()
        for i in order:
            name, settings, _, run, migrated = runs[i]
            print(f"[bench] servercost: round {round_number + 1}, {name} {settings}", file=sys.stderr, flush=True)
            with server.database(name.split()[0].replace("_", "").replace("-", ""), migrated=migrated) as dsn:
                results[i].append(run(dsn))

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    sections = [section]
    for (name, settings, n, _, _), got in zip(runs, results):
        section.add(
            name,
            settings,
            n,
            median([c.span.rate for c in got]),
            median([None if c.cpu is None else c.cpu * 1e6 / c.jobs for c in got]),
            max(c.backends for c in got),
            median([c.per_job() for c in got]),
            median([c.per_job(fpi=True) for c in got]),
            median([c.per_job("claim") for c in got]),
            median([c.per_job("complete") for c in got]),
            median(
                [
                    None
                    if c.wal is None
                    else (c.per_job() or 0) - (c.per_job("claim") or 0) - (c.per_job("complete") or 0)
                    for c in got
                ]
            ),
        )
        section.figures[f"{name} {n} server CPU us/job"] = median(
            [None if c.cpu is None else c.cpu * 1e6 / c.jobs for c in got]
        )
        section.figures[f"{name} {n} WAL B/job"] = median([c.per_job() for c in got])
        for note in {note for c in got for note in c.notes}:
            section.notes.append(f"{name}: {note}")
        sections.extend(breakdown(name, n, got))
    return sections


def breakdown(name: str, n: int, got: list[Cost]) -> list[Section]:
    """The WAL records of one configuration per job (its median round), largest kinds first."""
    rounds = [c for c in got if c.wal is not None]
    if not rounds:
        return []
    totals = sorted(rounds, key=lambda c: c.per_job() or 0)
    mid = totals[len(totals) // 2]
    assert mid.wal is not None
    section = Section(
        f"Server cost: WAL records of {name} at {n} in flight",
        "Its median round, per job; rows under 0.5 bytes per job left out.",
        ["transaction", "record", "relation", "records/job", "bytes/job", "FPI bytes/job"],
    )
    by_kind: dict[str, float] = defaultdict(float)
    for key, (_count, size, _) in mid.wal.items():
        by_kind[key[0]] += size
    for (xkind, kind, relname), (count, size, fpi) in sorted(
        mid.wal.items(), key=lambda item: (-by_kind[item[0][0]], -item[1][1])
    ):
        if size / mid.jobs < 0.5:
            continue
        section.add(xkind, kind, relname or "-", count / mid.jobs, size / mid.jobs, fpi / mid.jobs)
    return [section]
