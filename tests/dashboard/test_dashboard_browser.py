"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Playwright's own browser download is never used: it launches the system's
Chromium (``RAQUEL_PG_CHROMIUM``, else ``chromium`` or ``chromium-browser``
on the PATH). Without Playwright or a Chromium these tests skip, saying
which is missing. ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

pytest.importorskip("starlette", reason="the dashboard extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from dashboard_support import finished, running_dashboard  # noqa: E402

Conn = psycopg.Connection[tuple[Any, ...]]

#: Chromium's flags for a headless run as root in a container, with no calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The system's Chromium, or None."""
    chosen = os.environ.get("RAQUEL_PG_CHROMIUM")
    if chosen:
        return chosen if os.path.exists(chosen) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set RAQUEL_PG_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(autouse=True)
def no_kept_minutes(conn: Conn) -> None:
    """Forget the minutes raquel_throughput kept: these tests date outcomes in the past."""
    conn.execute("TRUNCATE raquel.raquel_throughput_minutes")
    conn.execute("UPDATE raquel.raquel_throughput_state SET kept_until = 0")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page whose console errors and page errors are collected in ``page.problems``."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.problems = problems
    yield opened
    context.close()


def busy_queue(conn: Conn) -> Any:
    """Jobs in several states on two queues; returns a failed (exhausted) job's id."""
    now = conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index]
    for minutes_ago in range(0, 50, 3):
        for _ in range(1 + minutes_ago % 4):
            finished(conn, "emails", "complete", now - minutes_ago * 60_000)
    for minutes_ago in (4, 17, 31):
        finished(conn, "reports", "complete", now - minutes_ago * 60_000)
    failing = finished(
        conn,
        "emails",
        "fail",
        now - 120_000,
        error="SMTPRecipientsRefused: eve@example",
        payload='{"to": "eve@example"}',
    )
    conn.execute("SELECT raquel_enqueue_many('emails', array_fill('{\"to\": \"a@b.c\"}'::text, ARRAY[12]))")
    conn.execute("SELECT raquel_enqueue('reports', 'monthly', delay => 3600000)")
    conn.execute("SELECT raquel_claim(ARRAY['emails'], 'web-1:4242', batch => 2)")
    return failing


def test_main_page_loads_without_console_errors_and_shows_the_queues(dsn: str, conn: Conn, page: Any) -> None:
    busy_queue(conn)
    with running_dashboard(dsn) as base:
        page.goto(base + "/")
        page.wait_for_selector("canvas[data-rendered=true]", timeout=15000)
        assert page.locator('tr[data-queue="emails"]').count() == 1
        assert page.locator('tr[data-queue="reports"]').count() == 1
        running = page.locator('tr[data-queue="emails"] td').nth(4).inner_text()
        assert running == "2"
        assert page.problems == []


def test_the_chart_draws_the_finished_jobs(dsn: str, conn: Conn, page: Any) -> None:
    busy_queue(conn)
    with running_dashboard(dsn) as base:
        page.goto(base + "/")
        page.wait_for_selector("canvas[data-rendered=true]", timeout=15000)
        drawn = page.evaluate("""() => {
            const chart = Chart.getChart(document.getElementById('throughput'));
            const sum = (i) => chart.data.datasets[i].data.reduce((a, b) => a + b, 0);
            return {bars: chart.data.labels.length, success: sum(0), failure: sum(1),
                    painted: chart.getDatasetMeta(0).data.filter((bar) => bar.height > 0).length};
        }""")
        expected = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'success'), "
            "count(*) FILTER (WHERE status = 'exhausted') FROM raquel_jobs"
        ).fetchone()
        assert (drawn["success"], drawn["failure"]) == tuple(expected)  # type: ignore[arg-type]
        assert drawn["bars"] == 60 and drawn["painted"] > 0
        assert page.problems == []


def test_the_queues_table_refreshes_by_itself(dsn: str, conn: Conn, page: Any) -> None:
    conn.execute("SELECT raquel_enqueue('emails', 'x')")
    with running_dashboard(dsn) as base:
        page.goto(base + "/")
        cell = page.locator('tr[data-queue="emails"] td').nth(1)
        assert cell.inner_text() == "1"
        conn.execute("SELECT raquel_enqueue('emails', 'y')")
        page.wait_for_function(
            "() => document.querySelector('tr[data-queue=\"emails\"] td:nth-child(2)').innerText === '2'", timeout=15000
        )
        assert page.problems == []


def test_a_failing_jobs_trace_is_one_click_from_the_list(dsn: str, conn: Conn, page: Any) -> None:
    failing = busy_queue(conn)
    with running_dashboard(dsn) as base:
        page.goto(base + "/jobs?status=exhausted")
        page.click(f'a[href="/jobs/{failing}"]')
        page.wait_for_selector("#trace")
        assert "SMTPRecipientsRefused: eve@example" in page.inner_text("#error")
        assert page.inner_text("#trace").startswith("Traceback (most recent call last):")
        assert '"to": "eve@example"' in page.inner_text("pre.payload")
        assert page.problems == []


def test_the_retry_button_requeues_the_job_in_the_database(dsn: str, conn: Conn, page: Any) -> None:
    failing = busy_queue(conn)
    with running_dashboard(dsn) as base:
        page.goto(f"{base}/jobs/{failing}")
        page.click("#retry")
        page.wait_for_selector(".notice")
        assert "retried" in page.inner_text(".notice")
        assert page.inner_text("#status") == "queued"
        row = conn.execute("SELECT status, attempts FROM raquel_jobs WHERE id = %s", (failing,)).fetchone()
        assert row == ("queued", 1)
        assert page.problems == []


def test_the_pause_and_resume_buttons_change_the_queue_in_the_database(dsn: str, conn: Conn, page: Any) -> None:
    busy_queue(conn)
    with running_dashboard(dsn) as base:
        page.goto(base + "/")
        page.click('tr[data-queue="reports"] button.pause')
        page.wait_for_selector(".notice")
        assert "paused reports" in page.inner_text(".notice")
        assert page.inner_text('tr[data-queue="reports"] span.paused') == "paused"
        assert conn.execute("SELECT paused FROM raquel_queue_controls() WHERE queue = 'reports'").fetchone() == (True,)
        page.click('tr[data-queue="reports"] button.resume')
        page.wait_for_selector(".notice")
        assert "resumed reports" in page.inner_text(".notice")
        assert conn.execute("SELECT paused FROM raquel_queue_controls() WHERE queue = 'reports'").fetchone() == (False,)
        assert page.problems == []


def test_screenshots_of_the_main_page_and_a_failed_job(dsn: str, conn: Conn, page: Any, tmp_path: Any) -> None:
    # RAQUEL_PG_SCREENSHOTS=docs/img refreshes the docs' pictures.
    failing = busy_queue(conn)
    folder = os.environ.get("RAQUEL_PG_SCREENSHOTS") or str(tmp_path)
    with running_dashboard(dsn) as base:
        page.goto(base + "/")
        page.wait_for_selector("canvas[data-rendered=true]", timeout=15000)
        page.screenshot(path=os.path.join(folder, "dashboard.png"), full_page=True)
        page.goto(f"{base}/jobs/{failing}")
        page.screenshot(path=os.path.join(folder, "dashboard-job.png"), full_page=True)
    for name in ("dashboard.png", "dashboard-job.png"):
        with open(os.path.join(folder, name), "rb") as picture:
            assert picture.read(8) == b"\x89PNG\r\n\x1a\n"
