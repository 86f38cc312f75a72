"""The dashboard tests' real server: uvicorn in a thread on a free port, and a plain HTTP client.

Requests go through http.client, which follows no redirect and keeps no
cookie by itself, so each test sees exactly what the server answered.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import psycopg
import uvicorn

from raquel_pg.dashboard import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_dashboard(dsn: str, **options: Any) -> Iterator[str]:
    """Serves ``create_app(dsn, **options)`` on 127.0.0.1 until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(dsn, **options), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


def request(
    base: str, method: str, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """One request to the dashboard at ``base``; ``form`` is sent url-encoded."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = urlencode(form) if form is not None else None
    sent = dict(headers or {})
    if body is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
    finally:
        conn.close()


def csrf_of(page: str) -> str:
    """The CSRF token of a page (its forms carry it; every page has it in a meta tag)."""
    marker = '<meta name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def finished(
    conn: psycopg.Connection[Any],
    queue: str,
    outcome: str,
    now: int,
    error: str = "ValueError: bad address",
    payload: str = '{"to": "a@b.c"}',
) -> Any:
    """Enqueues a job on ``queue``, claims it and records ``outcome`` (complete or fail) at ``now`` (ms)."""
    conn.execute("SELECT raquel_enqueue(%s, %s, max_retry_count => 0, now => %s)", (queue, payload, now - 10))
    row = conn.execute(
        "SELECT id, claim_id FROM raquel_claim(ARRAY[%s], 'test-worker', now => %s)", (queue, now - 5)
    ).fetchone()
    assert row is not None
    job_id = row[0]
    if outcome == "fail":
        conn.execute(
            "SELECT raquel_fail(%s, %s, %s, %s, %s)",
            (row[0], row[1], error, f"Traceback (most recent call last):\n  ...\n{error}", now),
        )
    else:
        conn.execute("SELECT raquel_complete(%s, %s, %s)", (row[0], row[1], now))
    return job_id
