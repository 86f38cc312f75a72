"""RESULTS.md: the environment, then one table per scenario."""

from __future__ import annotations

from datetime import datetime, timezone

from .fast_mode import FASTEST
from .measure import Section, Sizes, fmt
from .peers import BATCHED, DEFAULT, FAST, FAST_PREFETCH, MULTI, NON_DURABLE, PURE_WIDE

TARGETS = """Targets (issue 5, on the 2-core machine, same run): end-to-end jobs/s >= 2x pgqueuer,
>= 5x procrastinate, >= 50% of the pure-SQL batch-100 limit (each compared at the same number of
jobs in flight, default mode with default mode and fast mode with fast mode); `enqueue_many` >=
100,000 jobs/s; single enqueue with the NOTIFY trigger on >= 80% of the rate with it off (0009,
with and without a waiter); wake-up p50 < 5 ms, p99 < 25 ms; with 1M finished jobs, claim latency
and jobs/s within 10% of the empty table. Goals of issue 23: default mode >= 1.5x graphile-worker's
defaults at 10 and 50 in flight; the fastest settings (prefetch, durable_claims=False, the queue's
retention 0) >= 1.5x graphile-worker with its perfTest's settings at 10 and 50 in flight and in its
4 x 24 shape (scenario fast); wake-up p50 <= 1 ms, p99 <= 3 ms."""

#: (table, peer, jobs in flight, bound, issue) of the peer targets: each a median of the rounds'
#: ratios of raquel_pg's rate to the peer's (bench/peers.py), default mode beside default mode,
#: fast beside fast.
PEER_TARGETS = (
    (DEFAULT, "pgqueuer", "10", 2.0, "5"),
    (DEFAULT, "pgqueuer", "50", 2.0, "5"),
    (DEFAULT, "procrastinate", "10", 5.0, "5"),
    (DEFAULT, "graphile-worker", "10", 1.5, "23"),
    (DEFAULT, "graphile-worker", "50", 1.5, "23"),
    (FAST, "pgqueuer", "10", 2.0, "5"),
    (FAST, "pgqueuer", "50", 2.0, "5"),
    (FAST, "procrastinate", "10", 5.0, "5"),
    (BATCHED, "pure SQL (pgbench)", f"{PURE_WIDE:,}", 0.5, "5"),
    (FAST, "pure SQL (pgbench)", f"{PURE_WIDE:,}", 0.5, "5"),
)

#: Issue 23's fast-mode goal (>= 1.5x graphile-worker's perfTest), read on scenario ``fast``'s
#: fastest settings (bench/fast_mode.py: the queue's retention 0 too, as graphile-worker deletes its
#: finished jobs; scenario 5b's fast rows keep them), by jobs in flight.
FASTEST_TARGETS = ("10", "50", MULTI)

#: How each table's raquel_pg mode is named in the targets.
MODES = {
    DEFAULT: "default mode",
    BATCHED: f"prefetch={FAST_PREFETCH}",
    FAST: f"prefetch={FAST_PREFETCH}, {NON_DURABLE}",
}


def _at_least(value: float | None, bound: float) -> str:
    return "n/a" if value is None else ("met" if value >= bound else "NOT met")


def _at_most(value: float | None, bound: float) -> str:
    return "n/a" if value is None else ("met" if value <= bound else "NOT met")


def _quotient(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def targets(figures: dict[str, float | None], sizes: Sizes) -> list[list[str]]:
    """Rows (target, measured, verdict) checking issue 5's targets and issue 23's goals against this run."""
    rows: list[list[str]] = []
    for table, peer, in_flight, bound, issue in PEER_TARGETS:
        value = figures.get(f"ratio {table} {peer} @{in_flight}")
        rows.append(
            [
                f"e2e, {in_flight} in flight, raquel_pg {MODES[table]} ÷ {peer} "
                f"({'defaults' if table == DEFAULT else 'fast settings'}) >= {bound:.2f}x (issue {issue})",
                "n/a" if value is None else f"{value:.2f}x",
                _at_least(value, bound),
            ]
        )
    for in_flight in FASTEST_TARGETS:
        value = figures.get(f"ratio fastest graphile-worker @{in_flight}")
        rows.append(
            [
                f"e2e, {in_flight} in flight, raquel_pg {FASTEST} ÷ graphile-worker (fast settings) >= 1.50x "
                "(issue 23, scenario fast)",
                "n/a" if value is None else f"{value:.2f}x",
                _at_least(value, 1.5),
            ]
        )
    many = figures.get("enqueue_many")
    rows.append(["enqueue_many >= 100,000 jobs/s", fmt(many), _at_least(many, 100_000)])
    for producers in (1, 4):
        for mode, label in (("nowaiter", "0009 no waiter"), ("waiter", "0009 one waiter registered")):
            value = _quotient(figures.get(f"enqueue_{mode}_{producers}"), figures.get(f"enqueue_off_{producers}"))
            rows.append(
                [
                    f"enqueue(), {producers} producer(s): {label} ÷ trigger off >= 0.80x",
                    "n/a" if value is None else f"{value:.2f}x",
                    _at_least(value, 0.8),
                ]
            )
    for kind in ("async", "sync"):
        p50, p99 = figures.get(f"wake_{kind}_p50"), figures.get(f"wake_{kind}_p99")
        verdict = "n/a" if p50 is None or p99 is None else ("met" if p50 < 5 and p99 < 25 else "NOT met")
        rows.append([f"wake-up ({kind} worker): p50 < 5 ms, p99 < 25 ms", f"{fmt(p50)} / {fmt(p99)} ms", verdict])
    p50, p99 = figures.get("wake_async_p50"), figures.get("wake_async_p99")
    verdict = "n/a" if p50 is None or p99 is None else ("met" if p50 <= 1 and p99 <= 3 else "NOT met")
    rows.append(["wake-up (async worker): p50 <= 1 ms, p99 <= 3 ms (issue 23)", f"{fmt(p50)} / {fmt(p99)} ms", verdict])
    largest = max(sizes.history)
    claim = figures.get(f"history_{largest}_claim_ratio")
    rows.append(
        [
            f"{largest:,} finished jobs: claim p50 <= 1.10x empty",
            "n/a" if claim is None else f"{claim:.2f}x",
            _at_most(claim, 1.1),
        ]
    )
    rate = figures.get(f"history_{largest}_rate_ratio")
    rows.append(
        [
            f"{largest:,} finished jobs: e2e jobs/s >= 0.90x empty",
            "n/a" if rate is None else f"{rate:.2f}x",
            _at_least(rate, 0.9),
        ]
    )
    return rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(sizes: Sizes, environment: dict[str, str], sections: list[Section], seconds: float) -> str:
    """The whole RESULTS.md."""
    size_note = {
        "full": "full size",
        "quick": "QUICK size (`--quick`): smaller runs, noisier figures",
        "tiny": "TINY size (smoke test): figures are meaningless",
    }[sizes.name]
    parts = [
        "# raquel_pg benchmark results",
        f"Generated by `python -m bench.run{' --quick' if sizes.name == 'quick' else ''}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min — **{size_note}**. "
        "Every figure is measured in this run, on this server; compare ratios, not absolute "
        "numbers (the machine is shared and noisy). How each figure is measured: bench/README.md.",
        "## Environment",
        markdown_table(["", ""], [[key, value] for key, value in environment.items()]),
        TARGETS.replace("\n", " "),
    ]
    figures = {name: value for section in sections for name, value in section.figures.items()}
    parts += [
        "## Targets, checked against this run",
        markdown_table(["target", "measured", "verdict"], targets(figures, sizes)),
    ]
    for section in sections:
        parts += [f"## {section.title}", section.method, markdown_table(section.headers, section.rows)]
        parts += section.notes
    return "\n\n".join(parts) + "\n"
