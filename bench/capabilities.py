"""Which of issue 5's fast paths the installed raquel_pg has.

The benchmark runs on the API of main and on the fast-path branch alike:
scenarios that need a newer API ask here and report "n/a (not available)".
"""

from __future__ import annotations

import inspect
from typing import Any

from raquel_pg import AsyncRaquel, Raquel


def has_enqueue_many() -> bool:
    """True when ``Raquel.enqueue_many(queue, payloads, **options)`` exists."""
    return hasattr(Raquel, "enqueue_many") and hasattr(AsyncRaquel, "enqueue_many")


def has_batch_outcomes() -> bool:
    """True when ``subscribe()`` takes ``batch_outcomes`` (batched success outcomes)."""
    return "batch_outcomes" in inspect.signature(AsyncRaquel.subscribe).parameters


def subscribe_options(batched: bool) -> dict[str, Any]:
    """The extra ``subscribe()`` options of a run: ``batch_outcomes=True`` when ``batched``."""
    return {"batch_outcomes": True} if batched else {}
