"""Cancelling the tasks that run workers ends them (issue 23's CI found one that did not).

Async only: a sync worker's thread is not cancelled (``stop()`` ends it).
"""

from __future__ import annotations

import time
from typing import Any

from raquel_pg import AsyncJob, AsyncRaquel
from raquel_pg._acompat import ajoin, asleep, aspawn


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asleep(0.005)


async def noop(job: AsyncJob) -> None:
    return None


async def test_cancelling_the_tasks_of_many_workers_sharing_a_pool_ends_them_all(arq: AsyncRaquel) -> None:
    # Twenty workers, ten pooled connections: cancelled together, some wait for
    # a connection as another's comes back. On Python 3.11 asyncio.wait_for
    # (psycopg_pool's wait) then lost the cancellation of 1 to 3 of them, which
    # went on waiting for work (poll_interval=60) and held the event loop's
    # shutdown (_acompat.araise_if_cancelled).
    workers = [arq.subscribe(f"q{n}", poll_interval=60)(noop) for n in range(20)]
    runs = [aspawn(worker.run, name=f"worker {n}") for n, worker in enumerate(workers)]
    await wait_until(lambda: all(worker.listening for worker in workers))
    for run in runs:
        run.cancel()
    assert await ajoin(runs, 10) == 0
    assert all(run.cancelled() for run in runs)
