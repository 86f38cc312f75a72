"""OpenTelemetry: a PRODUCER span at enqueue, a CONSUMER span per execution parented on it.

Spans are read from the SDK's in-memory exporter; the trace context is read
from the job's row. Skipped when opentelemetry-sdk is not installed (the
``test`` extra installs it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed (pip install raquel-pg[test])")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from raquel_pg import AsyncJob, AsyncRaquel, Job, Raquel, tracing  # noqa: E402

Conn = psycopg.Connection[Any]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """raquel_pg traces with an SDK provider exporting to memory, for this test only."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    previous = tracing.use(provider)
    try:
        yield spans
    finally:
        tracing.use(previous)
        provider.shutdown()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == kind]


def stored_context(conn: Conn, job_id: object) -> Any:
    row = conn.execute("SELECT trace_context FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return None if row[0] is None else json.loads(row[0])


def run_sync(rq: Raquel, queue: str, handler_body: Callable[[Job], None], done: Callable[[], bool]) -> None:
    """Runs a sync worker on ``queue`` until ``done()``."""

    @rq.subscribe(queue, poll_interval=0.2)
    def handler(job: Job) -> None:
        handler_body(job)

    thread = threading.Thread(target=handler.run)
    thread.start()
    try:
        wait_until(done)
    finally:
        handler.stop()
        thread.join(30)


def check_parented(producer: ReadableSpan, consumer: ReadableSpan, queue: str, job_id: object) -> None:
    assert producer.name == f"raquel enqueue {queue}" and consumer.name == f"raquel process {queue}"
    assert producer.attributes is not None and consumer.attributes is not None
    assert producer.attributes["messaging.system"] == consumer.attributes["messaging.system"] == "raquel_pg"
    assert producer.attributes["messaging.destination.name"] == queue
    assert producer.attributes["messaging.message.id"] == consumer.attributes["messaging.message.id"] == str(job_id)
    assert consumer.attributes["raquel.job.attempt"] == 1
    assert producer.context is not None and consumer.context is not None
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]


def test_a_sync_enqueue_and_execution_make_a_producer_span_and_a_consumer_span_parented_on_it(
    rq: Raquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    job = rq.enqueue("emails", "hi")
    [producer] = by_kind(exporter, SpanKind.PRODUCER)
    assert producer.context is not None
    assert stored_context(conn, job.id)["traceparent"].split("-")[1:3] == [
        f"{producer.context.trace_id:032x}",
        f"{producer.context.span_id:016x}",
    ]
    run_sync(rq, "emails", lambda job: None, lambda: bool(by_kind(exporter, SpanKind.CONSUMER)))
    [consumer] = by_kind(exporter, SpanKind.CONSUMER)
    check_parented(producer, consumer, "emails", job.id)
    assert consumer.status.status_code == StatusCode.UNSET


async def test_an_async_enqueue_and_execution_make_a_producer_span_and_a_consumer_span_parented_on_it(
    arq: AsyncRaquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    job = await arq.enqueue("emails", "hi")
    [producer] = by_kind(exporter, SpanKind.PRODUCER)

    @arq.subscribe("emails", poll_interval=0.2)
    async def handler(job: AsyncJob) -> None:
        pass

    task = asyncio.create_task(handler.run())
    try:
        await until(lambda: bool(by_kind(exporter, SpanKind.CONSUMER)))
    finally:
        handler.stop()
        await task
    [consumer] = by_kind(exporter, SpanKind.CONSUMER)
    check_parented(producer, consumer, "emails", job.id)
    assert stored_context(conn, job.id)["traceparent"].split("-")[1] == f"{consumer.context.trace_id:032x}"


def test_enqueue_many_makes_one_producer_span_that_parents_every_jobs_consumer_span(
    rq: Raquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    ids = rq.enqueue_many("emails", ["a", "b"])
    [producer] = by_kind(exporter, SpanKind.PRODUCER)
    assert producer.name == "raquel enqueue_many emails" and producer.attributes is not None
    assert producer.attributes["messaging.batch.message_count"] == 2
    assert producer.context is not None
    for job_id in ids:
        assert stored_context(conn, job_id)["traceparent"].split("-")[2] == f"{producer.context.span_id:016x}"
    run_sync(rq, "emails", lambda job: None, lambda: len(by_kind(exporter, SpanKind.CONSUMER)) == 2)
    consumers = by_kind(exporter, SpanKind.CONSUMER)
    assert sorted(str(c.attributes["messaging.message.id"]) for c in consumers if c.attributes) == sorted(
        str(i) for i in ids
    )
    assert all(c.parent is not None and c.parent.span_id == producer.context.span_id for c in consumers)


def test_a_job_enqueued_from_sql_without_trace_context_runs_under_a_root_consumer_span(
    rq: Raquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    job_id = conn.execute("SELECT raquel_enqueue('emails', 'from sql')").fetchone()[0]  # type: ignore[index]
    assert stored_context(conn, job_id) is None
    run_sync(rq, "emails", lambda job: None, lambda: bool(by_kind(exporter, SpanKind.CONSUMER)))
    [consumer] = exporter.get_finished_spans()
    assert consumer.kind == SpanKind.CONSUMER and consumer.parent is None and not consumer.links
    assert consumer.attributes is not None and consumer.attributes["messaging.message.id"] == str(job_id)


def test_a_job_enqueued_from_sql_with_a_trace_context_runs_under_a_span_of_that_trace(
    rq: Raquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    carrier = '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    conn.execute("SELECT raquel_enqueue('emails', 'x', trace_context => %s)", (carrier,))
    run_sync(rq, "emails", lambda job: None, lambda: bool(by_kind(exporter, SpanKind.CONSUMER)))
    [consumer] = by_kind(exporter, SpanKind.CONSUMER)
    assert consumer.context is not None and consumer.parent is not None
    assert (consumer.context.trace_id, consumer.parent.span_id) == (
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
    )


def test_a_failing_handler_marks_its_consumer_span_an_error_with_the_exception(
    rq: Raquel, conn: Conn, exporter: InMemorySpanExporter
) -> None:
    rq.enqueue("emails", "bad", max_retry_count=0)

    def fail(job: Job) -> None:
        raise ValueError("bad payload")

    run_sync(rq, "emails", fail, lambda: bool(by_kind(exporter, SpanKind.CONSUMER)))
    [consumer] = by_kind(exporter, SpanKind.CONSUMER)
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.attributes is not None
    assert (consumer.attributes["error.type"], consumer.attributes["raquel.job.status"]) == ("ValueError", "exhausted")
    assert [event.name for event in consumer.events] == ["exception"]
    assert conn.execute("SELECT status FROM raquel_jobs").fetchone() == ("exhausted",)


def test_without_a_tracer_provider_enqueue_stores_no_trace_context(rq: Raquel, conn: Conn) -> None:
    assert not tracing.active()
    job = rq.enqueue("emails", "hi")
    assert stored_context(conn, job.id) is None


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]',
        '{"traceparent": 1}',
        '{"traceparent": "00-xyz-b7ad6b7169203331-01"}',
        '{"tracestate": "' + "a" * 2100 + '"}',
    ],
)
def test_a_bad_trace_context_from_sql_is_refused_naming_it(conn: Conn, bad: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="trace_context"):
        conn.execute("SELECT raquel_enqueue('emails', 'x', trace_context => %s)", (bad,))
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone() == (0,)
