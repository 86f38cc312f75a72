"""Scenario 8: wake-up latency, commit -> handler start, of raquel_pg beside its Node peers.

An idle worker in a process of its own; jobs enqueued one at a time from another process,
each once the previous one ran (as scenario 3). Each system in a database of its own; the
systems take turns in rounds (3, each a third of the samples, in a rotated order) and the
percentiles are over all of a system's samples.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from . import node_peers
from .measure import Section, Sizes, percentiles
from .scenarios import wake_samples
from .server import Server

#: (system, settings, samples per full run ÷ this, latencies(dsn, samples), needs node)
Waker = tuple[str, str, int, Callable[[str, int], list[float]], bool]

WAKERS: list[Waker] = [
    (
        "raquel_pg",
        "AsyncWorker, subscribe() with no options (one slot)",
        1,
        lambda dsn, n: wake_samples(dsn, "async", n),
        False,
    ),
    (
        "graphile-worker",
        "run(), its defaults (concurrentJobs=1); add_job() from another connection",
        1,
        lambda dsn, n: node_peers.wake_graphile(dsn, "default", n),
        True,
    ),
    (
        "graphile-worker",
        "run() with its perfTest's settings (concurrentJobs=24, localQueue 500, batched "
        "completions), as its latencyTest",
        1,
        lambda dsn, n: node_peers.wake_graphile(dsn, "perftest", n),
        True,
    ),
    (
        "pg-boss",
        "work(), its defaults (no LISTEN: it polls every 2 s); send() from another process",
        25,
        lambda dsn, n: node_peers.wake_pgboss(dsn, "default", n),
        True,
    ),
    (
        "pg-boss",
        "work() on a queue with notify: true, useListenNotify: true (its low-latency setting); "
        "send() from another process",
        1,
        lambda dsn, n: node_peers.wake_pgboss(dsn, "notify", n),
        True,
    ),
]


def scenario_peer_wake(server: Server, sizes: Sizes) -> Section:
    """Scenario 8: wake-up latency of raquel_pg, graphile-worker and pg-boss, rounds interleaved."""
    rounds = 1 if sizes.name == "tiny" else 3
    section = Section(
        "8. Wake-up latency beside the peers",
        "An idle worker (its own process) and jobs enqueued one at a time from another process, each after "
        "the previous job ran (15 ms pause). Latency = handler start (wall clock in the worker) - the moment "
        "the enqueue's commit was acknowledged to the producer (raquel_pg and graphile-worker: `SELECT "
        "raquel_enqueue(...)` / `SELECT graphile_worker.add_job(...)` from Python, as scenario 3; pg-boss: "
        "its `send()` in a Node producer, since pg-boss sends its NOTIFY from its own insert statement). "
        f"{rounds} rounds, the systems taking turns in a rotated order; percentiles over all samples. "
        "pg-boss with its defaults polls, so it gets 1/25 of the samples.",
        ["system", "settings", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    )
    missing = node_peers.unavailable()
    wakers = [waker for waker in WAKERS if not (waker[4] and missing)]
    latencies: dict[int, list[float]] = {index: [] for index in range(len(wakers))}
    with ExitStack() as stack:
        dsns = {
            index: stack.enter_context(server.database("wake", migrated=waker[0] == "raquel_pg"))
            for index, waker in enumerate(wakers)
        }
        order = list(range(len(wakers)))
        for round_ in range(rounds):
            shift = round_ * len(order) // rounds
            for index in order[shift:] + order[:shift]:
                samples = max(3, sizes.wake_samples // wakers[index][2] // rounds)
                latencies[index] += wakers[index][3](dsns[index], samples)
    for index, (system, settings, _, _, _) in enumerate(wakers):
        p50, p95, p99 = percentiles(latencies[index])
        section.add(system, settings, len(latencies[index]), p50, p95, p99, max(latencies[index]))
        section.figures[f"wake {system} {settings} p50"] = p50
        section.figures[f"wake {system} {settings} p99"] = p99
    for system, settings, _, _, node in WAKERS:
        if node and missing:
            section.add(system, settings, "", f"n/a ({missing})", "", "", "")
    return section
