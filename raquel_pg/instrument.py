"""Instrumentation hooks of the client and the worker: nothing happens until an observer is installed.

The client and the worker call the installed :class:`Observer` at a few
points (an outcome recorded, a claim answered, a notification heard, the
notification connection lost). With none installed (the default), each of
those points costs one global read and a comparison with None. The metrics
exporter (:mod:`raquel_pg.metrics`, ``raquel-pg worker --metrics-port``)
installs one; anything else with these four methods can be installed too
(tracing, tests). Observers are called on the worker's own threads or event
loop, inline: they must be quick and must not raise.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    """What the client and the worker report."""

    def job_finished(self, queue: str, outcome: str, status: str, seconds: float) -> None:
        """An outcome was recorded: ``outcome`` (complete, fail, reschedule, reject, cancel,
        release), the job's new ``status``, ``seconds`` from its claim to the outcome."""

    def claimed(self, jobs: int) -> None:
        """A claim answered with ``jobs`` jobs (0 included)."""

    def notified(self) -> None:
        """The worker's notification connection received a notification."""

    def reconnecting(self) -> None:
        """The worker's notification connection was lost (or could not be opened); it reconnects."""


#: The installed observer, or None.
observer: Observer | None = None


def install(new: Observer | None) -> Observer | None:
    """Makes ``new`` the observer (None: none); returns the one it replaces."""
    global observer
    previous, observer = observer, new
    return previous
