"""Shared measuring tools: sizes, result tables, spans read from the tables, pgbench.

Throughput is measured the same way for every system: the jobs a run
finished, divided by the span from the first claim to the last durable
success, both read from timestamps the system itself writes in the database
(raquel_pg: ``claimed_at``/``finished_at``; pgqueuer: its log's ``picked`` and
``successful`` rows; procrastinate: its ``started``/``succeeded`` events;
pure SQL: its own columns). The harness only polls to learn when to stop.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

#: The pgbench scripts.
SQL_DIR = Path(__file__).with_name("sql")


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does."""

    name: str
    enqueue_calls: int  # single enqueue() calls per producer
    enqueue_many: int  # jobs per enqueue_many() call
    pgbench_seconds: int  # duration of each pgbench enqueue run
    e2e_jobs: int  # jobs drained per end-to-end run
    wake_samples: int  # wake-up latency samples
    history: tuple[int, ...]  # finished jobs in the table, per history run
    claim_samples: int  # raquel_claim calls timed per history run
    peer_jobs: int  # jobs per peer run (pure SQL batched: 10x)


SIZES = {
    "tiny": Sizes("tiny", 50, 1_000, 1, 200, 10, (0, 2_000), 50, 200),
    "quick": Sizes("quick", 500, 10_000, 3, 3_000, 200, (0, 100_000), 300, 3_000),
    "full": Sizes("full", 2_000, 10_000, 10, 20_000, 1_000, (0, 100_000, 1_000_000), 2_000, 20_000),
}


@dataclass
class Section:
    """One scenario's results: a table for RESULTS.md, and its key figures."""

    title: str
    method: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)

    def add(self, *cells: object) -> None:
        """Appends a row, formatting numbers."""
        self.rows.append([fmt(cell) for cell in cells])


NA = "n/a (not available)"


def fmt(value: object) -> str:
    """A table cell: floats rounded for reading, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(numerator: float | None, denominator: float | None) -> str:
    """``numerator / denominator`` as '1.23x', or n/a."""
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of ``samples`` (in the samples' unit)."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return cuts[49], cuts[94], cuts[98]


@dataclass(frozen=True)
class Span:
    """A drain: when its first job was claimed, and when each job durably succeeded (epoch s, sorted)."""

    first_claim: float | None
    successes: list[float]
    #: For a system that keeps no per-job timestamps (graphile-worker deletes a job's row when it
    #: completes): the jobs done and when the last was durably done; ``successes`` is then empty.
    done: int | None = None
    last_success: float | None = None

    @property
    def jobs(self) -> int:
        """Jobs that succeeded."""
        return self.done if self.done is not None else len(self.successes)

    @property
    def rate(self) -> float | None:
        """jobs / (last success - first claim): the headline figure; None when empty."""
        last = self.last_success if self.last_success is not None else (self.successes[-1] if self.successes else None)
        if not self.jobs or last is None or self.first_claim is None:
            return None
        return self.jobs / max(last - self.first_claim, 1e-3)

    @property
    def steady_rate(self) -> float | None:
        """jobs/s between the 5th and the 95th percentile of the successes.

        Leaves out start-up and the tail (a system's first batch, its last
        flush), which weigh on short runs; None for fewer than 40 jobs, or without per-job times.
        """
        cut = self.jobs // 20
        if len(self.successes) < 40:
            return None
        first, last = self.successes[cut], self.successes[self.jobs - cut - 1]
        return (self.jobs - 2 * cut - 1) / max(last - first, 1e-3)


def read_span(dsn: str, query: str, args: Sequence[object] = ()) -> Span:
    """A Span from a query returning (success epoch, first claim epoch) per succeeded job."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(query.encode(), args).fetchall()
    first = _float(rows[0][1]) if rows else None
    return Span(first, sorted(float(row[0]) for row in rows))


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def rate_cell(span: Span | None) -> tuple[str, str]:
    """(jobs/s, steady jobs/s) cells of a span."""
    if span is None or span.rate is None:
        return NA, ""
    return fmt(span.rate), fmt(span.steady_rate)


def ratios(reference: Span | None, span: Span | None) -> str:
    """'headline ratio (steady ratio)' of reference / span."""
    if reference is None or span is None:
        return "n/a"
    return f"{ratio(reference.rate, span.rate)} ({ratio(reference.steady_rate, span.steady_rate)})"


def wait_until(
    dsn: str, query: str, args: Sequence[object], done: Callable[[int], bool], timeout: float, interval: float = 0.05
) -> None:
    """Polls ``query`` (one integer) on one connection until ``done(value)``; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(query.encode(), args).fetchone()
            if row is not None and done(int(row[0])):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not done after {timeout:.0f}s: {query}")
            time.sleep(interval)


_TPS = re.compile(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)")


def pgbench(
    program: str,
    dsn: str,
    script: str,
    *,
    clients: int,
    seconds: int | None = None,
    transactions: int | None = None,
    cores: int = 2,
) -> float:
    """Runs ``script`` (a file of bench/sql/) with pgbench; returns its tps (no connection time).

    Prepared statements (``-M prepared``), no vacuum; either ``seconds`` (-T)
    or ``transactions`` per client (-t). Raises RuntimeError when pgbench
    prints no tps line.
    """
    command = [
        program,
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(min(clients, cores)),
        "-f",
        str(SQL_DIR / script),
    ]
    command += ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
    done = subprocess.run([*command, dsn], capture_output=True, text=True, timeout=900)
    found = _TPS.search(done.stdout)
    if not found:
        raise RuntimeError(f"pgbench {script} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return float(found.group(1))
