"""OpenTelemetry spans for enqueue and job execution (the optional ``otel`` extra).

With OpenTelemetry in use, ``enqueue()`` makes a PRODUCER span
``raquel enqueue <queue>`` (``enqueue_many()`` one ``raquel enqueue_many
<queue>`` span for the call, with ``messaging.batch.message_count``) and
stores the propagation carrier of its context with the job (each job):
``raquel_jobs.trace_context``, a JSON object of strings, e.g.
``{"traceparent": "00-...-...-01"}``. A worker makes a CONSUMER span
``raquel process <queue>`` per execution of the job, whose parent is that
stored context (and which also links to it, as the messaging semantic
conventions suggest for a message's creation context). A job stored without
a trace context (enqueued from SQL or outside a trace)
runs under a root span. Attributes follow the messaging conventions:
``messaging.system`` (``raquel_pg``), ``messaging.destination.name`` (the
queue), ``messaging.message.id`` (the job id), ``messaging.operation.type``;
the process span adds ``raquel.job.attempt`` and, once recorded,
``raquel.job.status``, and is marked an error (the exception recorded) when
the handler raised.

"In use" means: :func:`use` named a tracer provider, or the application
imported ``opentelemetry.trace`` and set a global tracer provider
(``trace.set_tracer_provider``). Otherwise every hook costs a dictionary
look-up and this module imports nothing: without the extra installed nothing
changes. Spans are made inline on the caller's thread or event loop; nothing
here does I/O besides the tracer provider's own processors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

#: ``messaging.system`` of every span.
SYSTEM = "raquel_pg"
#: The instrumentation scope's name.
SCOPE = "raquel_pg"

#: The provider named by :func:`use`, or None (the global one, if set).
_provider: TracerProvider | None = None


def use(provider: TracerProvider | None) -> TracerProvider | None:
    """Makes raquel_pg trace with ``provider`` (None: the global provider, if one is set).

    Returns the provider it replaces. Without a call, raquel_pg traces with
    the global tracer provider once the application has set one. Needs the
    ``otel`` extra (opentelemetry-api) for a provider to pass.
    """
    global _provider
    previous, _provider = _provider, provider
    return previous


def active() -> bool:
    """True when spans are made: a provider was named by :func:`use`, or a global one is set.

    Imports nothing: if ``opentelemetry.trace`` was never imported, no global
    provider can be set, and the answer is False at the cost of a look-up.
    """
    if _provider is not None:
        return True
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _tracer() -> Tracer:
    from opentelemetry import trace

    from . import __version__

    return trace.get_tracer(SCOPE, __version__, tracer_provider=_provider)


@contextmanager
def enqueue_span(queue: str, *, batch: bool = False) -> Iterator[EnqueueSpan]:
    """The PRODUCER span of one enqueue (``batch``: of one ``enqueue_many``), current for the block.

    Call only when :func:`active`. The block reads :attr:`EnqueueSpan.carrier`
    (the trace context to store with the job, or with each job of the batch)
    and sets :meth:`EnqueueSpan.job_id` (or :meth:`EnqueueSpan.batch_size`).
    An exception leaving the block is recorded on the span (status ERROR) and
    re-raised.
    """
    from opentelemetry import propagate, trace

    operation = "enqueue_many" if batch else "enqueue"
    with _tracer().start_as_current_span(
        f"raquel {operation} {queue}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue,
            "messaging.operation.type": "send",
            "messaging.operation.name": operation,
        },
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield EnqueueSpan(span, json.dumps(carrier, separators=(",", ":")) if carrier else None)


class EnqueueSpan:
    """What the enqueue block of :func:`enqueue_span` reads and sets."""

    def __init__(self, span: Span, carrier: str | None) -> None:
        self._span = span
        #: The trace context to store with the job (JSON text), or None when the span is not sampled in.
        self.carrier = carrier

    def job_id(self, job_id: object) -> None:
        """Records the enqueued job's id as ``messaging.message.id``."""
        self._span.set_attribute("messaging.message.id", str(job_id))

    def batch_size(self, count: int) -> None:
        """Records how many jobs an ``enqueue_many`` enqueued as ``messaging.batch.message_count``."""
        self._span.set_attribute("messaging.batch.message_count", count)


@contextmanager
def process_span(queue: str, job_id: object, attempt: int, trace_context: str | None) -> Iterator[ProcessSpan]:
    """The CONSUMER span of one execution of a job, current for the block; call only when :func:`active`.

    Its parent is the context stored with the job (``trace_context``), also
    linked; a job without one (or with one that does not parse) gets a root
    span. ``attempt`` is the execution's number (1 for the first). The block
    reports the handler's exception with :meth:`ProcessSpan.failed` and the
    recorded status with :meth:`ProcessSpan.finished`; an exception leaving
    the block is recorded too and re-raised.
    """
    from opentelemetry import context, propagate, trace

    parent = context.Context()
    links = []
    carrier = _carrier(trace_context)
    if carrier:
        parent = propagate.extract(carrier, context=context.Context())
        creation = trace.get_current_span(parent).get_span_context()
        if creation.is_valid:
            links.append(trace.Link(creation))
    with _tracer().start_as_current_span(
        f"raquel process {queue}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.destination.name": queue,
            "messaging.message.id": str(job_id),
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "raquel.job.attempt": attempt,
        },
    ) as span:
        yield ProcessSpan(span)


class ProcessSpan:
    """What the execution block of :func:`process_span` reports."""

    def __init__(self, span: Span) -> None:
        self._span = span

    def failed(self, error: BaseException) -> None:
        """The handler raised ``error``: recorded on the span, status ERROR."""
        from opentelemetry.trace import Status, StatusCode

        self._span.record_exception(error)
        self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self._span.set_attribute("error.type", type(error).__qualname__)

    def finished(self, status: str, error: str | None) -> None:
        """The job's status after the execution (``raquel.job.status``; 'claimed' while a
        batched success waits for its flush) and, for a failure, its stored error."""
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("raquel.job.status", status)
        if status in ("failed", "exhausted") and error is not None:
            self._span.set_status(Status(StatusCode.ERROR, error))


def _carrier(trace_context: str | None) -> dict[str, str] | None:
    """The carrier stored with a job, or None (none stored, or not a JSON object of strings)."""
    if not trace_context:
        return None
    try:
        value: Any = json.loads(trace_context)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply (a row written by hand)
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return {str(k): v for k, v in value.items()}
