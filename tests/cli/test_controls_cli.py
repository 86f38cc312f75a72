"""Queue controls from the command line (issue 21), and with several worker processes at once:
pause/resume, limits, retention/prune, controls, stats, the scheduler process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli.test_cli import Run, clean_env, cli, entry_point, one_line_error, wait_for  # noqa: F401 (fixture)

Conn = psycopg.Connection[tuple[Any, ...]]


def count(conn: Conn, queue: str, status: str) -> int:
    row = conn.execute("SELECT count(*) FROM raquel_jobs WHERE queue = %s AND status = %s", (queue, status)).fetchone()
    assert row is not None
    return int(row[0])


def controls(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT queue, paused, max_running, per_second, retention_ms FROM raquel_queue_controls()"
    ).fetchall()


# --- pause, resume, limits, retention, prune, controls, stats -----------------------------


def test_pause_pauses_the_queue(cli: Run, conn: Conn) -> None:
    result = cli("pause", "emails")
    assert (result.returncode, result.stdout) == (0, "paused emails\n")
    assert controls(conn) == [("emails", True, None, None, None)]


def test_pause_of_a_paused_queue_says_so(cli: Run) -> None:
    cli("pause", "emails")
    result = cli("pause", "emails", "--json")
    assert json.loads(result.stdout) == {"queue": "emails", "paused": True, "changed": False}


def test_resume_resumes_the_queue(cli: Run, conn: Conn) -> None:
    cli("pause", "emails")
    result = cli("resume", "emails")
    assert result.stdout.startswith("resumed emails")
    assert controls(conn) == [("emails", False, None, None, None)]


def test_pause_with_an_empty_name_is_a_one_line_error(cli: Run, conn: Conn) -> None:
    assert "queue" in one_line_error(cli("pause", ""))
    assert controls(conn) == []


def test_limits_sets_both_limits(cli: Run, conn: Conn) -> None:
    result = cli("limits", "emails", "--max-running", "3", "--per-second", "2.5")
    assert (result.returncode, result.stdout) == (0, "emails: max 3, 2.5/s\n")
    assert controls(conn) == [("emails", False, 3, 2.5, None)]


def test_limits_without_options_lifts_them(cli: Run, conn: Conn) -> None:
    cli("limits", "emails", "--max-running", "3")
    assert cli("limits", "emails").stdout == "emails: no limits\n"
    assert controls(conn) == [("emails", False, None, None, None)]


def test_limits_refuses_a_max_running_below_one(cli: Run, conn: Conn) -> None:
    assert one_line_error(cli("limits", "emails", "--max-running", "0")).startswith("raquel-pg limits: --max-running: ")
    assert controls(conn) == []


def test_retention_sets_the_default(cli: Run, conn: Conn) -> None:
    result = cli("retention", "7d")
    assert result.returncode == 0, result.stderr
    assert controls(conn) == [(None, False, None, None, 7 * 86_400_000)]


def test_retention_forever_of_one_queue(cli: Run, conn: Conn) -> None:
    cli("retention", "1h", "--queue", "emails")
    cli("retention", "forever", "--queue", "emails")
    assert controls(conn) == [("emails", False, None, None, 315_576_000_000_000)]  # longer than the time range
    assert "forever" in cli("controls").stdout.splitlines()[-1]


def test_retention_zero_of_one_queue(cli: Run, conn: Conn) -> None:
    # As rq.set_retention("pings", 0) and the guides write it: its successes are deleted at once.
    result = cli("retention", "0", "--queue", "pings")
    assert result.returncode == 0, result.stderr
    assert controls(conn) == [("pings", False, None, None, 0)]


def test_retention_with_a_bad_duration_is_a_one_line_error(cli: Run, conn: Conn) -> None:
    assert "KEEP" in one_line_error(cli("retention", "1week"))


def test_prune_deletes_finished_jobs_past_the_retention(cli: Run, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('old', 'x', now => 1000) FROM generate_series(1, 3)")
    for job_id, claim_id in conn.execute(
        "SELECT id, claim_id FROM raquel_claim(ARRAY['old'], 'w', 3, now => 2000)"
    ).fetchall():
        conn.execute("SELECT raquel_complete(%s, %s, 3000)", (job_id, claim_id))
    conn.execute("SELECT raquel_enqueue('old', 'waiting')")
    cli("retention", "1d")
    result = cli("prune", "--batch-size", "2", "--json")
    assert json.loads(result.stdout) == {"pruned": 3, "another_sweep_running": False}
    assert (count(conn, "old", "success"), count(conn, "old", "queued")) == (0, 1)


def test_controls_lists_what_is_set(cli: Run) -> None:
    cli("pause", "a")
    cli("limits", "b", "--max-running", "2")
    lines = cli("controls").stdout.splitlines()
    assert lines[0].split() == ["queue", "paused", "limits", "retention", "pruned"]
    assert [line.split()[:3] for line in lines[2:]] == [["a", "paused", "-"], ["b", "-", "max"]]


def test_stats_json_shows_paused_and_limits(cli: Run, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('emails')")
    cli("pause", "emails")
    cli("limits", "reports", "--per-second", "4")
    queues = json.loads(cli("stats", "--json").stdout)["queues"]
    assert (queues["emails"]["paused"], queues["emails"]["max_running"]) == (True, None)
    assert (queues["reports"]["total"], queues["reports"]["per_second"]) == (0, 4.0)


def test_stats_table_shows_a_paused_queue(cli: Run, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('emails')")
    cli("pause", "emails")
    lines = cli("stats").stdout.splitlines()
    assert lines[0].split()[-2:] == ["paused", "limits"]
    assert lines[2].split()[-2:] == ["paused", "-"]


# --- several worker processes at once ----------------------------------------------------


HANDLERS = """
import time

def hold(job):
    time.sleep(float(job.payload))
"""


def start_workers(
    dsn: str, tmp_path: Path, queue: str, processes: int, concurrency: int
) -> list[subprocess.Popen[str]]:
    (tmp_path / "holders.py").write_text(textwrap.dedent(HANDLERS))
    return [
        subprocess.Popen(
            [
                *entry_point(),
                "--dsn",
                dsn,
                "worker",
                "holders:hold",
                "-q",
                queue,
                "-c",
                str(concurrency),
                "--log-level",
                "warning",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for _ in range(processes)
    ]


def stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        _, log = process.communicate(timeout=60)
        assert process.returncode == 0, log


def test_max_running_holds_exactly_across_worker_processes(dsn: str, conn: Conn, tmp_path: Path) -> None:
    conn.execute("SELECT raquel_set_queue_limits('bounded', max_running => 3)")
    conn.execute("SELECT raquel_enqueue('bounded', '0.05') FROM generate_series(1, 60)")
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(dsn, autocommit=True) as own:
            while not done.is_set():
                seen.append(count(own, "bounded", "claimed"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = start_workers(dsn, tmp_path, "bounded", processes=3, concurrency=3)
    try:
        wait_for(lambda: count(conn, "bounded", "success") == 60, timeout=120)
    finally:
        done.set()
        sampler.join()
        stop(workers)
    assert max(seen) == 3


def test_per_second_holds_within_one_bucket_across_worker_processes(dsn: str, conn: Conn, tmp_path: Path) -> None:
    conn.execute("SELECT raquel_set_queue_limits('paced', per_second => 20)")  # a bucket of 2
    conn.execute("SELECT raquel_enqueue('paced', '0') FROM generate_series(1, 50)")
    workers = start_workers(dsn, tmp_path, "paced", processes=3, concurrency=2)
    try:
        wait_for(lambda: count(conn, "paced", "success") == 50, timeout=120)
    finally:
        stop(workers)
    times = sorted(
        row[0] for row in conn.execute("SELECT claimed_at FROM raquel_jobs WHERE queue = 'paced'").fetchall()
    )
    most = max(sum(1 for t in times[i:] if t < start + 1000) for i, start in enumerate(times))
    assert most <= 20 + 2
    assert times[-1] - times[0] >= (50 - 2) / 20 * 1000 - 50  # no faster than the rate overall


# --- the scheduler process ---------------------------------------------------------------


def start_scheduler(dsn: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*entry_point(), "--dsn", dsn, "scheduler", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


@pytest.fixture
def ticking(conn: Conn, no_schedules: str) -> Conn:
    """A schedule firing a job on queue 'ticks' every 300 ms."""
    conn.execute("SELECT raquel_set_schedule('tick', 'ticks', every => 300)")
    return conn


def test_two_schedulers_fire_each_tick_once(dsn: str, ticking: Conn) -> None:
    schedulers = [start_scheduler(dsn, "--poll-interval", "0.1"), start_scheduler(dsn, "--poll-interval", "0.1")]
    try:
        wait_for(lambda: count(ticking, "ticks", "queued") >= 5, timeout=60)
    finally:
        for scheduler in schedulers:
            scheduler.send_signal(signal.SIGTERM)
        for scheduler in schedulers:
            scheduler.communicate(timeout=30)
    ticks = [row[0] for row in ticking.execute("SELECT scheduled_at FROM raquel_jobs WHERE queue = 'ticks'").fetchall()]
    assert len(ticks) == len(set(ticks))


def test_the_scheduler_stops_cleanly_on_sigterm(dsn: str, ticking: Conn) -> None:
    scheduler = start_scheduler(dsn)
    wait_for(lambda: count(ticking, "ticks", "queued") >= 1, timeout=60)
    scheduler.send_signal(signal.SIGTERM)
    _, log = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, log
    assert "scheduler stopped" in log


def test_worker_with_scheduler_fires_and_runs_the_schedules_jobs(dsn: str, ticking: Conn, tmp_path: Path) -> None:
    (tmp_path / "holders.py").write_text(textwrap.dedent(HANDLERS))
    ticking.execute("UPDATE raquel_schedules SET payload = '0'")
    worker = subprocess.Popen(
        [*entry_point(), "--dsn", dsn, "worker", "holders:hold", "-q", "ticks", "--with-scheduler"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    wait_for(lambda: count(ticking, "ticks", "success") >= 2, timeout=60)
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=60)
    assert worker.returncode == 0, log
    assert "scheduler started beside the worker" in log
