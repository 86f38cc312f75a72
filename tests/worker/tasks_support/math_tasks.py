"""Tasks for `raquel-pg worker --tasks tasks_support.math_tasks` (two worker processes share them).

The client's DSN is read from RAQUEL_PG_TASKS_DSN; the worker runs these
functions on its own client (the command's --dsn).
"""

from __future__ import annotations

import os

from raquel_pg import Raquel

rq = Raquel(os.environ.get("RAQUEL_PG_TASKS_DSN", "postgresql:///unused"))


@rq.task(queue="squares", name="square")
def square(x: int) -> dict[str, int]:
    """The square of x, and the process that computed it."""
    return {"square": x * x, "pid": os.getpid()}
