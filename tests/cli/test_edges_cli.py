"""Safe at the edges (issue 18), from the command line: the demo, the worker, the read commands.

The installed ``raquel-pg`` runs as a subprocess against the test database;
the rules are listed in docs/guarantees-workers.md.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

import raquel_pg
from tests.cli.test_cli import Run, clean_env, cli, entry_point, one_line_error  # noqa: F401 (fixture)

Conn = psycopg.Connection[tuple[Any, ...]]

#: One ms before 0001-01-01T00:00:00Z.
BEFORE_YEAR_1 = -62135596800001


def enqueue(conn: Conn, queue: str = "q", payload: str | None = None) -> UUID:
    row = conn.execute("SELECT raquel_enqueue(%s, %s)", (queue, payload)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def status_of(conn: Conn, job_id: UUID) -> str | None:
    row = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else str(row[0])


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_version_names_the_installed_distribution() -> None:
    result = subprocess.run([*entry_point(), "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"raquel-pg {raquel_pg.__version__}\n")
    assert raquel_pg.__version__ != "0+unknown"


# --- the read commands show an undecodable row --------------------------------------------------------


@pytest.fixture
def bad_job(conn: Conn) -> UUID:
    """A queued job whose enqueued_at is before year 1 (written as the owner, around the functions)."""
    job_id = enqueue(conn, "q", "bad")
    conn.execute("UPDATE raquel_jobs SET enqueued_at = %s WHERE id = %s", (BEFORE_YEAR_1, job_id))
    return job_id


def test_jobs_and_show_show_a_result_python_cannot_decode(cli: Run, conn: Conn) -> None:
    # Stored through raquel_complete: an int of 5,000 digits, past Python's limit on reading ints.
    job_id = enqueue(conn, "q", "x")
    claim_id = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['q'])").fetchone()[0]  # type: ignore[index]
    conn.execute("SELECT raquel_complete(%s, %s, result => %s::jsonb)", (job_id, claim_id, "9" * 5_000))
    listed = cli("jobs")
    assert listed.returncode == 0 and str(job_id) in listed.stdout, listed.stderr
    shown = cli("show", str(job_id))
    assert shown.returncode == 0 and "9" * 5_000 in shown.stdout, shown.stderr


def test_jobs_and_show_escape_the_control_characters_of_an_error(cli: Run, conn: Conn) -> None:
    # An exception's message may carry what a user sent: escape sequences would reach the
    # operator's terminal (this one retitles the window, then clears the screen).
    job_id = enqueue(conn, "q\x1b[31m", "x")
    claim_id = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['q\x1b[31m'])").fetchone()[0]  # type: ignore[index]
    error = "bad\x1b]0;owned\x07\x1b[2J"
    conn.execute("SELECT raquel_fail(%s, %s, %s, %s)", (job_id, claim_id, error, "Traceback\n\tline\x1b[2J\n"))
    listed, shown = cli("jobs"), cli("show", str(job_id))
    assert listed.returncode == 0 and shown.returncode == 0, listed.stderr + shown.stderr
    for output in (listed.stdout, shown.stdout):
        assert "\x1b" not in output and "\x07" not in output
    assert "bad\\x1b]0;owned\\x07\\x1b[2J" in listed.stdout and "q\\x1b[31m" in listed.stdout
    assert "Traceback\n\tline\\x1b[2J" in shown.stdout  # a trace keeps its lines and tabs


def test_jobs_and_show_show_an_undecodable_row(cli: Run, bad_job: UUID) -> None:
    listed = cli("jobs")
    assert listed.returncode == 0 and str(bad_job) in listed.stdout, listed.stderr
    shown = cli("show", str(bad_job))
    assert shown.returncode == 0, shown.stderr
    assert "enqueued_at" in shown.stdout and f"{BEFORE_YEAR_1} ms since epoch (out of range)" in shown.stdout
    as_json = json.loads(cli("show", str(bad_job), "--json").stdout)
    assert as_json["enqueued_at"] == f"{BEFORE_YEAR_1} ms since epoch (out of range)"
    assert as_json["payload"] == "bad"


def test_jobs_marks_an_out_of_range_time_in_its_table(cli: Run, conn: Conn, bad_job: UUID) -> None:
    conn.execute("UPDATE raquel_jobs SET scheduled_at = %s WHERE id = %s", (BEFORE_YEAR_1, bad_job))
    listed = cli("jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)
    assert job["scheduled_at"] == f"{BEFORE_YEAR_1} ms since epoch (out of range)"
    assert "out of range" in cli("jobs").stdout


def test_stats_counts_an_undecodable_row(cli: Run, bad_job: UUID) -> None:
    result = cli("stats", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["queues"]["q"]["queued"] == 1


# --- durations that overflow are one-line errors ------------------------------------------------------


def test_an_enqueue_delay_too_long_is_a_one_line_error(cli: Run, conn: Conn) -> None:
    line = one_line_error(cli("enqueue", "q", "--delay", "99999999999999999d"))
    assert "--delay" in line and "too long" in line
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


def test_retry_since_too_long_ago_is_a_one_line_error(cli: Run) -> None:
    assert "--since" in one_line_error(cli("retry", "--since", "99999999999d"))
    assert "before year 1" in one_line_error(cli("retry", "--since", "9999999w"))


def test_purge_older_than_before_year_1_is_refused_before_anything_runs(cli: Run, conn: Conn) -> None:
    job_id = enqueue(conn)
    # Finished long before the cutoff of 9999999w: the purge would delete it if it ran.
    conn.execute("UPDATE raquel_jobs SET status = 'success', finished_at = %s WHERE id = %s", (-7 * 10**15, job_id))
    line = one_line_error(cli("purge", "--older-than", "9999999w"))
    assert "--older-than" in line and "before year 1" in line
    assert status_of(conn, job_id) == "success"


# --- a closed pipe, server status, the demo -----------------------------------------------------------


def test_stats_into_a_closed_pipe_ends_quietly(dsn: str, conn: Conn) -> None:
    # Enough queues that the output outgrows the pipe, so the write surely meets the closed end.
    conn.execute("SELECT raquel_enqueue('queue-' || g) FROM generate_series(1, 2000) g")
    command = f"{shlex.join(entry_point())} --dsn {shlex.quote(dsn)} stats --json | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=clean_env())
    assert result.stdout == "{\n"
    assert result.stderr == ""


def test_server_status_names_the_database_the_commands_use(tmp_path: Path, dsn: str) -> None:
    env = {**clean_env(), "RAQUEL_PG_DSN": dsn}
    result = subprocess.run(
        [*entry_point(), "server", "status", "--data-dir", str(tmp_path / "pg")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "not running",
        "(the other commands use the database of RAQUEL_PG_DSN, not this embedded server)",
    ]
    as_json = subprocess.run(
        [*entry_point(), "server", "status", "--json", "--data-dir", str(tmp_path / "pg")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert json.loads(as_json.stdout)["commands_use"] == "RAQUEL_PG_DSN"


def test_the_demo_refuses_a_configured_database(dsn: str, conn: Conn) -> None:
    job_id = enqueue(conn, "emails", '{"to": "customer@example.com"}')
    env = {**clean_env(), "DATABASE_URL": dsn}
    result = subprocess.run([*entry_point(), "demo"], capture_output=True, text=True, timeout=60, env=env)
    line = one_line_error(result)
    assert "DATABASE_URL" in line and "--on-this-database" in line
    assert status_of(conn, job_id) == "queued"


def test_the_demo_on_this_database_leaves_other_jobs_alone(cli: Run, conn: Conn) -> None:
    emails = enqueue(conn, "emails", '{"to": "customer@example.com"}')
    reports = enqueue(conn, "reports", '{"report": "monthly"}')
    result = cli("demo", "--on-this-database", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "6. deleted the 4 jobs the demo created" in result.stdout
    assert (status_of(conn, emails), status_of(conn, reports)) == ("queued", "queued")
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (2,)


# --- the worker -----------------------------------------------------------------------------------------


HANDLERS = """
import asyncio

def handle(job):
    pass

async def ahandle(job):
    await asyncio.sleep(0)
"""


def start_worker(dsn: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return subprocess.Popen(
        [*entry_point(), "--dsn", dsn, "worker", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def stop(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    return log


def test_a_worker_without_queues_is_refused(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    result = subprocess.run(
        [*entry_point(), "worker", "handlers:handle"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    line = one_line_error(result)
    assert "-q QUEUE" in line and "--all-queues" in line


def test_a_worker_with_all_queues_works_every_queue(dsn: str, conn: Conn, tmp_path: Path) -> None:
    jobs = [enqueue(conn, "emails"), enqueue(conn, "reports")]
    worker = start_worker(dsn, tmp_path, "handlers:handle", "--all-queues")
    wait_for(lambda: all(status_of(conn, j) == "success" for j in jobs))
    assert "started on all queues" in stop(worker)


def test_the_worker_runs_a_coroutine_handler_without_the_async_flag(dsn: str, conn: Conn, tmp_path: Path) -> None:
    job_id = enqueue(conn, "a")
    worker = start_worker(dsn, tmp_path, "handlers:ahandle", "-q", "a")
    wait_for(lambda: status_of(conn, job_id) == "success")
    assert "async worker" in stop(worker)


def test_the_worker_runs_a_plain_handler_despite_the_async_flag(dsn: str, conn: Conn, tmp_path: Path) -> None:
    job_id = enqueue(conn, "s")
    worker = start_worker(dsn, tmp_path, "handlers:handle", "-q", "s", "--async")
    wait_for(lambda: status_of(conn, job_id) == "success")
    assert conn.execute("SELECT attempts FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == (1,)
    stop(worker)


def test_a_database_never_migrated_says_to_migrate(make_database: Any) -> None:
    result = subprocess.run(
        [*entry_point(), "--dsn", make_database(), "enqueue", "q", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert "run: raquel-pg migrate" in one_line_error(result)
