"""Prometheus metrics: the queues' state, read from the database at each scrape, and a worker's own.

Needs ``prometheus_client`` (the ``raquel-pg[metrics]`` or
``raquel-pg[dashboard]`` extra); importing this module without it raises
ImportError.

:class:`QueueCollector` answers each scrape by reading
``raquel_queue_overview()`` (0011_dashboard: waiting and running jobs, read
from the partial indexes) and ``raquel_queue_controls()``, and counts the
finished jobs with ``raquel_stats()`` (one pass over the jobs table, about
250 ms beside 1M finished jobs) at most once every :data:`FINISHED_EVERY`
seconds; a role that may not call ``raquel_stats()`` gets the waiting and
running jobs only. It serves ``raquel-pg metrics`` and the
dashboard's ``/metrics``. :class:`WorkerMetrics` is an
:class:`~raquel_pg.instrument.Observer` counting what one worker process does
(``raquel-pg worker --metrics-port``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import instrument, params
from .queries import QUERIES

#: Buckets of the job duration histogram, in seconds (claim to outcome).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Buckets of the claim batch size histogram, in jobs.
BATCH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


#: Seconds between two counts of the finished jobs (:class:`QueueCollector`): each is a pass over
#: the whole table (about 250 ms beside 1M jobs), where the waiting and running jobs are read
#: from partial indexes at every scrape.
FINISHED_EVERY = 60.0
#: The statuses a job ends in, counted every ``finished_every`` seconds.
FINISHED = ("success", "cancelled", "expired", "exhausted")


class QueueCollector(Collector):
    """Gauges of every queue, read from ``dsn`` at each scrape (a short-lived connection).

    ``raquel_queue_jobs{queue,status}`` and the ready, scheduled, running,
    lease-expired, oldest-ready-age and paused gauges (see docs/dashboard.md). A
    database that cannot be reached yields ``raquel_up 0`` and nothing else,
    instead of failing the scrape.

    The waiting and running jobs are counted at every scrape
    (``raquel_queue_overview()``: partial indexes). The finished statuses
    (success, cancelled, expired, exhausted) take ``raquel_stats()``, one pass
    over the whole table: it runs at the first scrape and then at most once
    every ``finished_every`` seconds, and the scrapes in between report the
    finished counts as last counted. A role that may not call
    ``raquel_stats()`` gets the waiting and running statuses only.
    """

    def __init__(self, dsn: str, finished_every: float = FINISHED_EVERY) -> None:
        self.dsn = dsn
        self.finished_every = finished_every
        # The finished counts of each queue and when they were counted (time.monotonic()); the
        # lock keeps two scrapes at once (threads of the HTTP server) from both counting.
        self._finished: dict[str, dict[str, int]] = {}
        self._counted_at: float | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("raquel_up", "1 when the queue's database answered this scrape, else 0")
        try:
            rows, full = self._read()
        except psycopg.Error:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("raquel_queue_jobs", "Jobs of each queue by status", labels=["queue", "status"])
        families = {
            "ready": GaugeMetricFamily("raquel_queue_ready_jobs", "Waiting jobs claimable now", labels=["queue"]),
            "scheduled": GaugeMetricFamily("raquel_queue_scheduled_jobs", "Waiting jobs due later", labels=["queue"]),
            "running": GaugeMetricFamily("raquel_queue_running_jobs", "Claimed jobs (running)", labels=["queue"]),
            "lease_expired": GaugeMetricFamily(
                "raquel_queue_lease_expired_jobs",
                "Claimed jobs whose lease ran out (dead or hung worker)",
                labels=["queue"],
            ),
        }
        age = GaugeMetricFamily(
            "raquel_queue_oldest_ready_age_seconds",
            "How long the oldest ready job has been claimable (0 when none is)",
            labels=["queue"],
        )
        paused = GaugeMetricFamily("raquel_queue_paused", "1 while the queue is paused, else 0", labels=["queue"])
        for row in rows:
            paused.add_metric([row["queue"]], 1 if row.get("paused") else 0)
            queue = row["queue"]
            statuses = params.STATUSES if full else ("queued", "failed", "claimed")
            for status in statuses:
                jobs.add_metric([queue, status], row[status])
            for key, family in families.items():
                family.add_metric([queue], row[key])
            age.add_metric([queue], (row["oldest_ready_age_ms"] or 0) / 1000)
        yield jobs
        yield from families.values()
        yield age
        if full:  # raquel-pg stats' query reads the controls; the overview does not
            yield paused

    def _read(self) -> tuple[list[dict[str, Any]], bool]:
        """The queues' rows and whether they count every status (else waiting and running ones only)."""
        with self._lock, psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            now = time.monotonic()
            if self._counted_at is not None and now - self._counted_at < self.finished_every:
                rows = _rows(conn, "dash_overview")
                controls = {row["queue"]: row for row in _rows(conn, "dash_controls")}
                for queue in sorted((set(self._finished) | set(controls)) - {row["queue"] for row in rows}):
                    rows.append(dict.fromkeys(_LIVE, 0) | {"queue": queue, "oldest_ready_age_ms": None})
                for row in rows:
                    row["claimed"] = row["running"]
                    row["paused"] = controls.get(row["queue"], {}).get("paused", False)
                    row.update(self._finished.get(row["queue"], dict.fromkeys(FINISHED, 0)))
                return rows, True
            try:
                rows = _rows(conn, "ops_stats")
            except psycopg.errors.InsufficientPrivilege:
                pass
            else:
                for row in rows:
                    row["running"] = row["claimed"]
                self._finished = {row["queue"]: {status: row[status] for status in FINISHED} for row in rows}
                self._counted_at = now
                return rows, True
            rows = _rows(conn, "dash_overview")
            for row in rows:
                row["claimed"] = row["running"]
            return rows, False


#: The overview's counts of a queue, 0 for a queue it does not list.
_LIVE = ("queued", "failed", "ready", "scheduled", "running", "lease_expired")


def _rows(conn: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
    """The rows of one query of ``queries.sql``, as dicts by column name."""
    cursor = conn.execute(QUERIES[query])
    names = [c.name for c in cursor.description or ()]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def queue_registry(dsn: str, finished_every: float = FINISHED_EVERY) -> CollectorRegistry:
    """A registry holding only a :class:`QueueCollector` of ``dsn``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(dsn, finished_every))
    return registry


class WorkerMetrics:
    """Counts one worker process's work in ``registry`` (an :class:`~raquel_pg.instrument.Observer`).

    ``raquel_worker_jobs_total{queue,outcome,status}``,
    ``raquel_worker_job_duration_seconds{queue}`` (claim to outcome),
    ``raquel_worker_claim_batch_size`` (jobs per claim),
    ``raquel_worker_notifications_total`` and
    ``raquel_worker_reconnects_total`` (notification connection lost).
    The labelled children are kept by label, so a job costs two dictionary
    look-ups, a counter increment and a histogram observation.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._jobs = Counter(
            "raquel_worker_jobs", "Outcomes recorded by this worker", ["queue", "outcome", "status"], registry=registry
        )
        self._duration = Histogram(
            "raquel_worker_job_duration_seconds",
            "Seconds from a job's claim to its recorded outcome",
            ["queue"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._batch = Histogram(
            "raquel_worker_claim_batch_size", "Jobs returned by each claim", buckets=BATCH_BUCKETS, registry=registry
        )
        self._notifications = Counter("raquel_worker_notifications", "Notifications received", registry=registry)
        self._reconnects = Counter(
            "raquel_worker_reconnects", "Times the notification connection was lost and reopened", registry=registry
        )
        self._job_children: dict[tuple[str, str, str], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def job_finished(self, queue: str, outcome: str, status: str, seconds: float) -> None:
        key = (queue, outcome, status)
        counter = self._job_children.get(key)
        if counter is None:
            counter = self._job_children.setdefault(key, self._jobs.labels(*key))
        counter.inc()
        histogram = self._duration_children.get(queue)
        if histogram is None:
            histogram = self._duration_children.setdefault(queue, self._duration.labels(queue))
        histogram.observe(seconds)

    def claimed(self, jobs: int) -> None:
        self._batch.observe(jobs)

    def notified(self) -> None:
        self._notifications.inc()

    def reconnecting(self) -> None:
        self._reconnects.inc()


def serve_worker_metrics(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> WorkerMetrics:
    """Installs a :class:`WorkerMetrics` observer and serves it on ``host:port`` (a daemon thread).

    ``registry`` defaults to prometheus_client's global one (which also has
    the process and Python collectors).
    """
    from prometheus_client import REGISTRY

    chosen = REGISTRY if registry is None else registry
    observer = WorkerMetrics(chosen)
    start_http_server(port, addr=host, registry=chosen)
    instrument.install(observer)
    return observer
