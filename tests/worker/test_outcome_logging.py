"""Every job outcome is logged with job id, queue, attempt and duration."""

from __future__ import annotations

import logging

import pytest

from raquel_pg import Raquel


def outcome_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if hasattr(r, "outcome")]


def test_success_is_logged_with_id_queue_attempt_and_duration(rq: Raquel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="raquel_pg")
    job_id = rq.enqueue("logs", "x").id
    with rq.dequeue("logs"):
        pass
    [record] = outcome_records(caplog)
    assert (record.job_id, record.queue, record.attempt, record.outcome, record.status) == (  # type: ignore[attr-defined]
        str(job_id),
        "logs",
        1,
        "complete",
        "success",
    )
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


def test_failure_is_logged_with_its_error(rq: Raquel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="raquel_pg")
    rq.enqueue("logs", "x")
    with rq.dequeue("logs"):
        raise RuntimeError("smtp down")
    [record] = outcome_records(caplog)
    assert (record.outcome, record.status, record.attempt) == ("fail", "failed", 1)  # type: ignore[attr-defined]
    assert "smtp down" in record.getMessage()
