"""The benchmark harness (bench/) works end to end, at a tiny size.

Runs every scenario against the test server in a few seconds; the figures
are meaningless at this size, only that each scenario produces them is
checked. Peers that are not installed (CI installs only '.[test]') show as
"n/a"; the raquel_pg and pure-SQL rows run regardless.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run
from bench.measure import SIZES


def test_every_scenario_runs_and_writes_results(
        server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAQUEL_PG_BENCH_DSN", server_dsn)
    output = tmp_path / "RESULTS.md"

    sections = run.run(SIZES["tiny"], list(run.SCENARIOS), output, strict=True)

    text = output.read_text()
    for title in ("Targets, checked against this run", "1. Enqueue", "2. End to end", "3. Wake-up latency", "4. History", "5. Peers",
                  "6. Behind PgBouncer"):
        assert f"## {title}" in text
    assert "FAILED" not in text
    assert "synchronous_commit" in text and "PostgreSQL" in text
    figures = {name: value for section in sections for name, value in section.figures.items()}
    for name in ("enqueue_off_1", "enqueue_always_4", "enqueue_nowaiter_1", "enqueue_waiter_4", "enqueue_many",
                 "e2e AsyncWorker, 10 tasks each at once", "e2e AsyncWorker, 10 tasks batch_outcomes=True",
                 "wake_async_p50", "wake_sync_p99", "history_2000_claim_ratio", "history_2000_rate_ratio", "raquel_pg @10", "raquel_pg @50",
                 "raquel_pg @1000", "raquel_pg durable_claims=False @10", "raquel_pg durable_claims=False @1000"):
        assert figures[name] is not None and figures[name] > 0, name
    raquel = [value for name, value in figures.items() if name.startswith("raquel_pg AsyncWorker")]
    assert len(raquel) == 7 and all(value is not None and value > 0 for value in raquel), raquel
