"""The ``raquel-pg`` command, run as a subprocess against the test database.

The installed entry point when there is one, else ``python -m raquel_pg`` from this checkout.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from raquel_pg.schema import load_migrations

Conn = psycopg.Connection[tuple[Any, ...]]
Run = Callable[..., subprocess.CompletedProcess[str]]

DAY_MS = 86_400_000


ROOT = Path(__file__).resolve().parents[2]


def entry_point() -> list[str]:
    """The command: the installed ``raquel-pg`` script, else ``python -m raquel_pg``."""
    script = Path(sysconfig.get_path("scripts")) / "raquel-pg"
    found = str(script) if script.exists() else shutil.which("raquel-pg")
    return [found] if found else [sys.executable, "-m", "raquel_pg"]


def clean_env() -> dict[str, str]:
    """The environment without any DSN, so only --dsn decides; this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAQUEL_PG_DSN", "DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def cli(dsn: str) -> Run:
    """Runs ``raquel-pg --dsn <test db> ARGS`` and returns the completed process (text output)."""

    def run(*args: str, dsn_: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*entry_point(), "--dsn", dsn_ or dsn, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )

    return run


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Asserts the failure looks like a user error: status 2, one stderr line, no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def enqueue(conn: Conn, queue: str = "q", payload: str | None = None, **opts: Any) -> UUID:
    names = "".join(f", {k} => %({k})s" for k in opts)
    row = conn.execute(
        f"SELECT raquel_enqueue(%(queue)s, %(payload)s{names})".encode(), {"queue": queue, "payload": payload, **opts}
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def finish(conn: Conn, queue: str, outcome: str = "complete", now: int | None = None) -> UUID:
    """Claims the next job of ``queue`` and gives it ``outcome`` (complete or fail), dated ``now``."""
    row = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY[%s], 'w1')", (queue,)).fetchone()
    assert row is not None
    if outcome == "fail":
        conn.execute(
            "SELECT raquel_fail(%s, %s, 'ValueError: bad address', 'Traceback ...', %s)", (row[0], row[1], now)
        )
    else:
        conn.execute("SELECT raquel_complete(%s, %s, %s)", (row[0], row[1], now))
    return row[0]  # type: ignore[no-any-return]


def status_of(conn: Conn, job_id: UUID) -> str | None:
    row = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else row[0]


# --- migrate -----------------------------------------------------------------------


def test_migrate_on_an_up_to_date_database_says_so(cli: Run) -> None:
    result = cli("migrate")
    assert (result.returncode, result.stdout) == (0, "database is up to date\n")


def test_migrate_applies_every_migration_to_a_new_database(cli: Run, make_database: Any) -> None:
    fresh = make_database()
    result = cli("migrate", dsn_=fresh)
    assert result.returncode == 0
    assert result.stdout.splitlines()[:2] == [f"applied {m.filename}" for m in load_migrations()[:2]]


def test_migrate_without_a_lock_timeout_applies_every_migration(cli: Run, make_database: Any) -> None:
    fresh = make_database()
    result = cli("migrate", "--lock-timeout", "0", dsn_=fresh)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == len(load_migrations())


@pytest.mark.parametrize("zero", ["0", "0s", "0ms", "00"])
def test_migrate_sql_with_any_zero_lock_timeout_sets_no_limit(cli: Run, make_database: Any, zero: str) -> None:
    result = cli("migrate", "--sql", "--lock-timeout", zero, dsn_=make_database())
    assert result.returncode == 0
    assert result.stdout.count("set_config('lock_timeout', '0', true)") == len(load_migrations())
    assert "'1ms'" not in result.stdout


def test_migrate_refuses_a_lock_timeout_past_postgresqls_limit(cli: Run, make_database: Any) -> None:
    fresh = make_database()
    for command in (("migrate",), ("migrate", "--sql")):
        result = cli(*command, "--lock-timeout", "30d", dsn_=fresh)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "raquel-pg migrate: --lock-timeout: at most 2147483647 ms (PostgreSQL's limit), got 2592000000 ms"
        )
    with psycopg.connect(fresh) as conn:
        assert conn.execute("SELECT to_regclass('raquel_migrations')").fetchone() == (None,)


def test_a_command_on_a_database_behind_this_raquel_pg_warns(cli: Run, conn: Any) -> None:
    last = load_migrations()[-1]
    conn.execute("DELETE FROM raquel_migrations WHERE version = %s", (last.version,))
    try:
        result = cli("stats")
        assert result.returncode == 0
        assert result.stderr == (
            "raquel-pg stats: warning: the database is behind this raquel_pg: 1 migration(s) pending, from "
            f"{last.filename}; run raquel-pg migrate (docs/deploying.md: migrate first, then roll the code)\n"
        )
    finally:
        conn.execute(
            "INSERT INTO raquel_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (last.version, last.name, last.checksum),
        )
    assert cli("stats").stderr == ""


def test_migrate_refuses_a_lock_timeout_that_is_not_a_duration(cli: Run, make_database: Any) -> None:
    fresh = make_database()
    result = cli("migrate", "--lock-timeout", "soon", dsn_=fresh)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("raquel-pg migrate: --lock-timeout: 'soon' is not a duration")
    with psycopg.connect(fresh) as conn:
        assert conn.execute("SELECT to_regclass('raquel_migrations')").fetchone() == (None,)


# --- enqueue -----------------------------------------------------------------------


def test_enqueue_prints_the_new_job_id(cli: Run, conn: Conn) -> None:
    result = cli("enqueue", "emails", '{"to": "ada@example.com"}')
    assert result.returncode == 0
    row = conn.execute(
        "SELECT queue, payload, status FROM raquel_jobs WHERE id = %s", (UUID(result.stdout.strip()),)
    ).fetchone()
    assert row == ("emails", '{"to": "ada@example.com"}', "queued")


def test_enqueue_options_become_the_jobs_settings(cli: Run, conn: Conn) -> None:
    result = cli("enqueue", "q", "x", "--delay", "1h", "--max-age", "2h", "--max-retry-count", "3")
    row = conn.execute(
        "SELECT scheduled_at - enqueued_at, max_age, max_retry_count FROM raquel_jobs WHERE id = %s",
        (UUID(result.stdout.strip()),),
    ).fetchone()
    assert row == (3_600_000, 7_200_000, 3)


def test_enqueue_at_schedules_at_that_time(cli: Run, conn: Conn) -> None:
    result = cli("enqueue", "q", "--at", "2030-01-01T00:00:00Z", "--json")
    job = json.loads(result.stdout)
    assert job["scheduled_at"] == "2030-01-01T00:00:00.000Z"
    assert status_of(conn, UUID(job["id"])) == "queued"


def test_an_argument_the_engine_refuses_is_named_by_the_option_typed(cli: Run, conn: Conn) -> None:
    error = one_line_error(cli("enqueue", "q", "x", "--max-retry-count", "-1"))
    assert error.startswith("raquel-pg enqueue: --max-retry-count: "), error
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


def test_enqueue_with_a_bad_duration_is_a_one_line_error(cli: Run, conn: Conn) -> None:
    line = one_line_error(cli("enqueue", "q", "x", "--delay", "soon"))
    assert "--delay" in line and "'soon'" in line
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)


# --- stats ---------------------------------------------------------------------------


def test_stats_json_has_the_documented_keys(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails")
    enqueue(conn, "emails", delay=60_000)
    finish(conn, "emails")
    enqueue(conn, "emails")
    data = json.loads(cli("stats", "--json").stdout)
    assert set(data) == {"generated_at", "queues"}
    emails = data["queues"]["emails"]
    assert list(emails) == [
        "total",
        "queued",
        "claimed",
        "success",
        "failed",
        "cancelled",
        "expired",
        "exhausted",
        "ready",
        "scheduled",
        "lease_expired",
        "oldest_ready_age_ms",
        "paused",
        "max_running",
        "per_second",
    ]
    assert (emails["total"], emails["success"], emails["ready"], emails["scheduled"]) == (3, 1, 1, 1)
    assert isinstance(emails["oldest_ready_age_ms"], int)


def test_stats_prints_a_table_with_one_line_per_queue(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails")
    enqueue(conn, "reports")
    lines = cli("stats").stdout.splitlines()
    assert lines[0].split()[:3] == ["queue", "total", "queued"]
    assert [line.split()[0] for line in lines[2:]] == ["emails", "reports"]


def read_into(stream: Any, lines: list[str]) -> threading.Thread:
    """A thread appending each line ``stream`` yields to ``lines``, until it closes."""

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def interrupt_when(process: subprocess.Popen[str], ready: Callable[[str], bool]) -> tuple[str, str]:
    """Sends SIGINT to ``process`` once ``ready(its output so far)``; returns (stdout, stderr)
    after it exited."""
    lines: list[str] = []
    reader = read_into(process.stdout, lines)
    wait_for(lambda: ready("".join(lines)) or process.poll() is not None)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait(timeout=10)
    reader.join(timeout=10)
    return "".join(lines), err


def test_stats_watch_refreshes_until_interrupted(dsn: str, conn: Conn) -> None:
    enqueue(conn, "emails")
    process = subprocess.Popen(
        [*entry_point(), "--dsn", dsn, "stats", "--watch", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    out, err = interrupt_when(process, lambda out: out.count("raquel-pg stats, every 0.2s") >= 2)
    assert process.returncode == 0, err
    assert out.count("raquel-pg stats, every 0.2s") >= 2
    assert "emails" in out


def test_stats_watch_json_prints_one_document_per_line(dsn: str, conn: Conn) -> None:
    enqueue(conn, "emails")
    process = subprocess.Popen(
        [*entry_point(), "--dsn", dsn, "stats", "--json", "--watch", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    out, err = interrupt_when(process, lambda out: out.count("\n") >= 2)
    assert process.returncode == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert len(documents) >= 2
    assert all(d["queues"]["emails"]["queued"] == 1 for d in documents)


# --- jobs, show ----------------------------------------------------------------------------


def test_jobs_json_filters_by_queue_and_status_newest_first(cli: Run, conn: Conn) -> None:
    first = enqueue(conn, "emails", "1")
    second = enqueue(conn, "emails", "2")
    enqueue(conn, "reports", "3")
    finish(conn, "emails")
    jobs = json.loads(cli("jobs", "--queue", "emails", "--status", "queued", "--json").stdout)
    assert [j["id"] for j in jobs] == [str(second)]
    everything = json.loads(cli("jobs", "--json").stdout)
    assert len(everything) == 3 and str(first) in {j["id"] for j in everything}


def test_jobs_limit_caps_the_list(cli: Run, conn: Conn) -> None:
    for _ in range(4):
        enqueue(conn)
    assert len(json.loads(cli("jobs", "--limit", "2", "--json").stdout)) == 2


def test_jobs_table_shows_the_error(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails")
    job_id = finish(conn, "emails", "fail")
    lines = cli("jobs").stdout.splitlines()
    assert lines[2].split()[:4] == [str(job_id), "emails", "failed", "1"]
    assert "ValueError: bad address" in lines[2]


def test_show_prints_every_column_and_the_trace(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails", '{"to": "ada"}')
    job_id = finish(conn, "emails", "fail")
    result = cli("show", str(job_id))
    assert result.returncode == 0
    assert f"id                {job_id}" in result.stdout
    assert result.stdout.rstrip().endswith("error_trace:\nTraceback ...")
    data = json.loads(cli("show", str(job_id), "--json").stdout)
    assert (data["status"], data["payload"], data["error"]) == ("failed", '{"to": "ada"}', "ValueError: bad address")


def test_show_unknown_job_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("show", "00000000-0000-0000-0000-000000000000"))
    assert line == "raquel-pg show: no job 00000000-0000-0000-0000-000000000000"


def test_show_of_something_that_is_not_an_id_is_a_one_line_error(cli: Run) -> None:
    assert one_line_error(cli("show", "42")) == "raquel-pg show: '42' is not a job id (a UUID)"


# --- retry, cancel ---------------------------------------------------------------------------


def test_retry_by_id_requeues_the_job(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails", max_retry_count=0)
    job_id = finish(conn, "emails", "fail")
    assert status_of(conn, job_id) == "exhausted"
    result = cli("retry", str(job_id))
    assert (result.returncode, result.stdout) == (0, f"retried {job_id}\n")
    assert status_of(conn, job_id) == "queued"


def test_retry_of_a_job_that_did_not_fail_exits_1_saying_why(cli: Run, conn: Conn) -> None:
    job_id = enqueue(conn, "emails")
    result = cli("retry", str(job_id))
    assert result.returncode == 1
    assert result.stderr == (
        f"not retried {job_id}: it is queued; only failed, exhausted, expired, cancelled jobs can be retried\n"
    )


def test_retry_by_queue_and_since(cli: Run, conn: Conn) -> None:
    now = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]
    enqueue(conn, "emails", max_retry_count=0)
    old = finish(conn, "emails", "fail", now=now - 2 * DAY_MS)
    enqueue(conn, "emails", max_retry_count=0)
    recent = finish(conn, "emails", "fail")
    enqueue(conn, "reports", max_retry_count=0)
    other = finish(conn, "reports", "fail")
    result = cli("retry", "--queue", "emails", "--since", "1d", "--json")
    assert json.loads(result.stdout) == {"retried": 1}
    assert [status_of(conn, j) for j in (old, recent, other)] == ["exhausted", "queued", "exhausted"]


def test_retry_without_ids_or_filters_is_refused(cli: Run) -> None:
    assert "--all" in one_line_error(cli("retry"))


def test_cancel_cancels_a_queued_job(cli: Run, conn: Conn) -> None:
    job_id = enqueue(conn)
    result = cli("cancel", str(job_id))
    assert (result.returncode, result.stdout) == (0, f"cancelled {job_id}\n")
    assert status_of(conn, job_id) == "cancelled"


def test_cancel_refuses_a_running_job_and_says_so(cli: Run, conn: Conn) -> None:
    enqueue(conn)
    row = conn.execute("SELECT id FROM raquel_claim(NULL, 'worker-7')").fetchone()
    assert row is not None
    result = cli("cancel", str(row[0]), "--json")
    assert result.returncode == 1
    [outcome] = json.loads(result.stdout)
    assert outcome["cancelled"] is False and outcome["cancel_requested"] is False
    assert "claimed by worker-7 and running" in outcome["reason"] and "--running" in outcome["reason"]
    assert status_of(conn, row[0]) == "claimed"


def test_cancel_running_asks_the_worker_of_a_claimed_job_to_stop_it(cli: Run, conn: Conn) -> None:
    enqueue(conn)
    waiting = enqueue(conn)
    row = conn.execute("SELECT id, claim_id FROM raquel_claim(NULL, 'worker-7')").fetchone()
    assert row is not None and row[0] != waiting
    result = cli("cancel", "--running", str(row[0]), str(waiting))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"cancel requested {row[0]} (running: its worker stops it, and it ends cancelled)",
        f"cancelled {waiting}",
    ]
    # The claim is marked (its worker hears NOTIFY raquel_cancel); its failure then ends it cancelled.
    assert conn.execute("SELECT cancel_claim_id = claim_id FROM raquel_jobs WHERE id = %s", (row[0],)).fetchone() == (
        True,
    )
    conn.execute("SELECT raquel_fail(%s, %s, 'stopped')", row)
    assert (status_of(conn, row[0]), status_of(conn, waiting)) == ("cancelled", "cancelled")


# --- purge ----------------------------------------------------------------------------------------


def test_purge_deletes_old_finished_jobs_and_prints_the_count(cli: Run, conn: Conn) -> None:
    now = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]
    old = []
    for _ in range(5):
        enqueue(conn, "q")
        old.append(finish(conn, "q", now=now - 8 * DAY_MS))
    enqueue(conn, "q")
    recent = finish(conn, "q")
    result = cli("purge", "--older-than", "7d", "--batch-size", "2")
    assert result.returncode == 0
    assert result.stdout.startswith("purged 5 jobs (success, cancelled, expired, exhausted) finished before ")
    assert [status_of(conn, j) for j in old] == [None] * 5
    assert status_of(conn, recent) == "success"


def test_purge_status_narrows_what_is_deleted(cli: Run, conn: Conn) -> None:
    now = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]
    enqueue(conn, "q")
    success = finish(conn, "q", now=now - 2 * DAY_MS)
    cancelled = enqueue(conn, "q")
    conn.execute("SELECT raquel_cancel(%s, NULL, %s)", (cancelled, now - 2 * DAY_MS))
    result = cli("purge", "--older-than", "1d", "--status", "cancelled", "--json")
    assert json.loads(result.stdout)["purged"] == 1
    assert (status_of(conn, success), status_of(conn, cancelled)) == ("success", None)


def test_purge_shows_a_progress_bar_on_a_terminal(dsn: str, conn: Conn) -> None:
    now = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]
    for _ in range(3):
        enqueue(conn, "q")
        finish(conn, "q", now=now - 2 * DAY_MS)
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [*entry_point(), "--dsn", dsn, "purge", "--older-than", "1d", "--batch-size", "2"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        os.close(follower)
        bar = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
    assert result.returncode == 0
    assert "\r[####################..........] 2/3" in bar
    assert "\r[##############################] 3/3" in bar
    assert result.stdout.startswith("purged 3 jobs")


def test_purge_with_a_bad_duration_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("purge", "--older-than", "a week"))
    assert line.startswith("raquel-pg purge: --older-than: 'a week' is not a duration")


# --- errors, psql, python -m -------------------------------------------------------------------


def test_a_bad_dsn_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("stats", dsn_="postgresql://nobody@127.0.0.1:1/none"))
    assert line.startswith("raquel-pg stats: connection failed")


def test_a_usage_mistake_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("jobs", "--limit", "many"))
    assert line == ("raquel-pg jobs: argument --limit/-n: invalid int value: 'many' (see raquel-pg jobs --help)")


def test_an_unmigrated_database_gets_a_hint(cli: Run, make_database: Any) -> None:
    line = one_line_error(cli("stats", dsn_=make_database()))
    assert line.endswith("(is the database migrated? run: raquel-pg migrate)")


def test_psql_runs_on_the_configured_database(cli: Run, conn: Conn) -> None:
    enqueue(conn)
    result = cli("psql", "--", "-Atc", "SELECT count(*) FROM raquel_jobs")
    assert (result.returncode, result.stdout) == (0, "1\n")


def test_psql_takes_psql_options_without_a_double_dash(cli: Run, conn: Conn) -> None:
    enqueue(conn, "emails")
    result = cli("psql", "-c", "SELECT queue FROM raquel_jobs")
    assert result.returncode == 0, result.stderr
    assert "emails" in result.stdout


def test_psql_falls_back_to_the_embedded_wheels_psql(dsn: str) -> None:
    env = {**clean_env(), "PATH": "/nonexistent"}  # no system psql on the PATH
    result = subprocess.run(
        [*entry_point(), "--dsn", dsn, "psql", "--", "-Atc", "SELECT 42"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert (result.returncode, result.stdout) == (0, "42\n"), result.stderr


def test_python_dash_m_runs_the_same_command(dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 0 and "queues" in json.loads(result.stdout)


# --- worker ----------------------------------------------------------------------------------------


HANDLERS = """
import asyncio, time
from pathlib import Path

def handle(job):
    Path(f"started-{job.id}").touch()  # the tests wait for the handler, not just the claim
    if job.payload == "boom":
        raise RuntimeError("boom")
    time.sleep(float(job.payload or 0))

async def ahandle(job):
    await asyncio.sleep(float(job.payload or 0))
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


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_runs_the_handler_and_logs_each_outcome(dsn: str, conn: Conn, tmp_path: Path) -> None:
    ok = enqueue(conn, "emails", "0")
    bad = enqueue(conn, "emails", "boom", max_retry_count=0)
    worker = start_worker(dsn, tmp_path, "handlers:handle", "--queue", "emails")
    wait_for(lambda: (status_of(conn, ok), status_of(conn, bad)) == ("success", "exhausted"))
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    assert f"job {ok} (queue emails) attempt 1: complete -> success in " in log
    assert f"job {bad} (queue emails) attempt 1: fail -> exhausted in " in log


def test_worker_on_sigterm_lets_the_running_job_finish(dsn: str, conn: Conn, tmp_path: Path) -> None:
    job_id = enqueue(conn, "slow", "1.5")
    worker = start_worker(dsn, tmp_path, "handlers:handle", "-q", "slow")
    wait_for(lambda: (tmp_path / f"started-{job_id}").exists())  # running, not only claimed
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    assert status_of(conn, job_id) == "success"


def test_worker_prefetch_claims_ahead_and_sigterm_hands_the_rest_back(dsn: str, conn: Conn, tmp_path: Path) -> None:
    jobs = [enqueue(conn, "pf", "0.2") for _ in range(30)]
    worker = start_worker(dsn, tmp_path, "handlers:handle", "-q", "pf", "--prefetch", "10", "--no-durable-claims")
    claimed = "SELECT count(*) FROM raquel_jobs WHERE status = 'claimed'"
    wait_for(lambda: conn.execute(claimed).fetchone() == (11,))  # one running, ten held
    worker.send_signal(signal.SIGTERM)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log
    done = sum(status_of(conn, job) == "success" for job in jobs)
    assert conn.execute(claimed).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'queued' AND attempts = 0").fetchone() == (
        30 - done,
    )


def test_worker_with_a_negative_prefetch_is_a_one_line_error(dsn: str, tmp_path: Path) -> None:
    worker = start_worker(dsn, tmp_path, "handlers:handle", "-q", "pf", "--prefetch", "-1")
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 2
    assert log.strip() == "raquel-pg worker: --prefetch: must be an int >= 0, got -1"


def test_async_worker_runs_a_coroutine_handler(dsn: str, conn: Conn, tmp_path: Path) -> None:
    jobs = [enqueue(conn, "a", "0.2") for _ in range(3)]
    worker = start_worker(dsn, tmp_path, "handlers:ahandle", "-q", "a", "--async", "--concurrency", "3")
    wait_for(lambda: all(status_of(conn, j) == "success" for j in jobs))
    worker.send_signal(signal.SIGINT)
    _, log = worker.communicate(timeout=30)
    assert worker.returncode == 0, log


def test_worker_with_an_unknown_handler_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("worker", "no_such_module:handle"))
    assert line.startswith("raquel-pg worker: handler 'no_such_module:handle': cannot import")


def test_worker_second_sigterm_stops_at_once(dsn: str, conn: Conn, tmp_path: Path) -> None:
    job_id = enqueue(conn, "slow", "30")
    worker = start_worker(dsn, tmp_path, "handlers:handle", "-q", "slow", "--grace-period", "60")
    wait_for(lambda: (tmp_path / f"started-{job_id}").exists())  # running, not only claimed
    lines: list[str] = []
    reader = read_into(worker.stderr, lines)
    worker.send_signal(signal.SIGTERM)
    # Two SIGTERMs before the first is handled would be delivered as one.
    wait_for(lambda: "stop signal: no more claims" in "".join(lines))
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.stdout is not None
    worker.stdout.read()
    worker.wait(timeout=30)
    reader.join(timeout=10)
    log = "".join(lines)
    assert worker.returncode == 0, log
    assert time.monotonic() - started < 10  # not the 30 s job, not the 60 s grace period
    assert "stop signal: no more claims" in log and "second stop signal" in log
    assert status_of(conn, job_id) == "claimed"  # a sync thread: rescued when its lease runs out


# --- grant ----------------------------------------------------------------------------------------


@pytest.fixture
def new_roles(conn: Conn) -> Any:
    """Fresh roles enqueuer, worker, operator (the first with a quote in its name); dropped at the end."""
    suffix = os.urandom(4).hex()
    names = {
        "enqueuer": f"raquel_cli_o'enq_{suffix}",
        "worker": f"raquel_cli_work_{suffix}",
        "operator": f"raquel_cli_op_{suffix}",
    }
    for name in names.values():
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    yield names
    for name in names.values():
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def as_role(dsn: str, role: str) -> str:
    return make_conninfo(dsn, options=f"-c role={role.replace(chr(39), chr(92) + chr(39))}")


def test_grant_gives_each_role_its_privileges(cli: Run, dsn: str, conn: Conn, new_roles: dict[str, str]) -> None:
    result = cli(
        "grant",
        "--enqueuer",
        new_roles["enqueuer"],
        "--worker",
        new_roles["worker"],
        "--operator",
        new_roles["operator"],
    )
    assert result.returncode == 0, result.stderr
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    assert result.stdout.splitlines() == [
        f"granted {kind} privileges on schema {schema} to {role}" for kind, role in new_roles.items()
    ]

    enqueuer, operator = as_role(dsn, new_roles["enqueuer"]), as_role(dsn, new_roles["operator"])
    assert cli("enqueue", "q", dsn_=enqueuer).returncode == 0
    assert one_line_error(cli("stats", dsn_=enqueuer)) == (
        "raquel-pg stats: permission denied for function raquel_stats (this role was not granted it: the operator "
        "role may run every command but migrate and grant; as the owner, run: raquel-pg grant --operator ROLE)"
    )
    assert one_line_error(cli("grant", "--worker", new_roles["worker"], dsn_=operator)).endswith(
        "(migrate and grant run as the owner of raquel_pg's objects: give the owner's --dsn)"
    )
    assert "permission denied" in one_line_error(cli("purge", "--older-than", "1d", dsn_=enqueuer))
    stats = cli("stats", "--json", dsn_=operator)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["queues"]["q"]["queued"] == 1
    assert cli("purge", "--older-than", "1d", dsn_=operator).returncode == 0


def test_grant_json_names_the_schema_and_roles(cli: Run, conn: Conn, new_roles: dict[str, str]) -> None:
    result = cli("grant", "--worker", new_roles["worker"], "--json")
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    assert json.loads(result.stdout) == {
        "schema": schema,
        "enqueuer": None,
        "worker": new_roles["worker"],
        "operator": None,
    }


def test_grant_sql_prints_a_psql_script_without_a_database(dsn: str, conn: Conn, new_roles: dict[str, str]) -> None:
    from raquel_pg import embedded

    result = subprocess.run(
        [*entry_point(), "grant", "--sql", "--enqueuer", new_roles["enqueuer"]],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no embedded server was started: the script needs no database
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql")
    subprocess.run(
        [psql, dsn, "-v", "ON_ERROR_STOP=1", "-q"], input=result.stdout, text=True, check=True, capture_output=True
    )
    with psycopg.connect(as_role(dsn, new_roles["enqueuer"]), autocommit=True) as enqueuer:
        enqueuer.execute("SELECT raquel_enqueue('q')")
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 1


def test_grant_without_a_role_is_a_one_line_error(cli: Run) -> None:
    assert "give at least one of --enqueuer" in one_line_error(cli("grant"))


def test_grant_to_an_unknown_role_is_a_one_line_error(cli: Run) -> None:
    line = one_line_error(cli("grant", "--worker", "raquel_no_such_role"))
    assert 'role "raquel_no_such_role" does not exist' in line


# --- server ---------------------------------------------------------------------------------------


def test_server_status_of_a_server_never_started(tmp_path: Path) -> None:
    result = subprocess.run(
        [*entry_point(), "server", "status", "--data-dir", str(tmp_path / "pg")],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert (result.returncode, result.stdout) == (1, "not running\n")


@pytest.mark.slow
def test_server_start_status_stop(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "pg")

    def server(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*entry_point(), "server", action, "--data-dir", data_dir, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
        )

    started = server("start")
    assert started.returncode == 0, started.stderr
    dsn = started.stdout.strip()
    try:
        with psycopg.connect(dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        status = json.loads(server("status").stdout)
        assert (status["running"], status["dsn"]) == (True, dsn)
    finally:
        stopped = server("stop")
    assert (stopped.returncode, stopped.stdout) == (0, "stopped\n")
    assert server("status").returncode == 1
