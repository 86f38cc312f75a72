"""bench/worker_path.py at a tiny size: every job drained through fake database calls, and a tree
compared with another in processes of their own (no server needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import worker_path


def test_the_worker_path_drains_every_job_and_gives_its_cpu() -> None:
    # 3,000 jobs: past the first refills of the prefetch of 500, where the producer reads how many
    # other workers claim (0028_claimers); a fake fetch that did not answer it ended the worker
    # with a TypeError and the drain waited forever.
    drained = asyncio.run(asyncio.wait_for(worker_path.drain(3000, 10, False), timeout=60))
    assert 0 < drained < 0.01


def test_a_run_imports_raquel_pg_from_the_tree_it_names() -> None:
    assert worker_path.run_once(Path(worker_path.ROOT), 300, 10) > 0
