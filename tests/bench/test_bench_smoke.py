"""The benchmark harness (bench/) works end to end, at a tiny size.

Runs every scenario against the test server in a few seconds; the figures
are meaningless at this size, only that each scenario produces them is
checked. Peers that are not installed (CI installs only '.[test]') show as
"n/a"; the raquel_pg and pure-SQL rows run regardless. The Node peers
(graphile-worker, pg-boss) are left out of the whole-harness run, to keep it
fast, and checked on their own below; those tests skip, saying why, where no
``node`` is on PATH.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from bench import node_peers, run
from bench.measure import SIZES


def test_every_scenario_runs_and_writes_results(
    server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAQUEL_PG_BENCH_DSN", server_dsn)
    monkeypatch.setattr(node_peers, "unavailable", lambda: "left out of the whole-harness smoke test")
    output = tmp_path / "RESULTS.md"

    sections = run.run(SIZES["tiny"], list(run.SCENARIOS), output, strict=True)

    text = output.read_text()
    for title in (
        "Targets, checked against this run",
        "1. Enqueue",
        "2. End to end",
        "3. Wake-up latency",
        "4. History",
        "5a. Peers, default modes",
        "5b. Peers, fast modes",
        "6. Behind PgBouncer",
        "8. Wake-up latency beside the peers",
    ):
        assert f"## {title}" in text
    assert "FAILED" not in text
    assert "synchronous_commit" in text and "PostgreSQL" in text
    assert "n/a (left out of the whole-harness smoke test)" in text
    figures = {name: value for section in sections for name, value in section.figures.items()}
    for name in (
        "enqueue_off_1",
        "enqueue_always_4",
        "enqueue_nowaiter_1",
        "enqueue_waiter_4",
        "enqueue_many",
        "e2e AsyncWorker, 10 tasks each at once",
        "e2e AsyncWorker, 10 tasks batch_outcomes=True",
        "wake_async_p50",
        "wake_sync_p99",
        "history_2000_claim_ratio",
        "history_2000_rate_ratio",
        "ratio batched pure SQL (pgbench) @1,000",
        "ratio fast pure SQL (pgbench) @1,000",
        "ratio fast pure SQL (pgbench) @10",
    ):
        assert figures[name] is not None and figures[name] > 0, name
    peers = {
        name: value for section in sections if section.title.startswith("5") for name, value in section.figures.items()
    }
    raquel = [value for name, value in peers.items() if name.startswith("raquel_pg ")]
    assert len(raquel) == 12 and all(value is not None and value > 0 for value in raquel), raquel


def _node_or_skip() -> None:
    reason = node_peers.unavailable()
    if reason is not None:
        pytest.skip(f"Node peers unavailable: {reason}")


def test_graphile_worker_drains_every_job(make_database: Callable[[], str]) -> None:
    _node_or_skip()
    dsn = make_database()

    span = node_peers.drain_graphile(dsn, 60, 5, "perftest", processes=2)

    assert span.jobs == 60 and span.rate is not None and span.rate > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM graphile_worker._private_jobs").fetchone() == (0,)


def test_pg_boss_drains_every_job(make_database: Callable[[], str]) -> None:
    _node_or_skip()
    dsn = make_database()

    span = node_peers.drain_pgboss(dsn, 60, 2, "fast", 10)

    assert span.jobs == 60 and span.rate is not None and span.rate > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pgboss.job WHERE name = 'noop' AND state = 'completed'"
        ).fetchone() == (60,)


def test_node_peers_wake_up_latency_is_measured(make_database: Callable[[], str]) -> None:
    _node_or_skip()

    graphile = node_peers.wake_graphile(make_database(), "default", 3)
    pgboss = node_peers.wake_pgboss(make_database(), "notify", 3)

    assert len(graphile) == 3 and len(pgboss) == 3
    assert all(0 < latency < 10_000 for latency in graphile + pgboss)
