#!/usr/bin/env python3
"""Generates raquel_pg's sync modules from the hand-written async ones.

    python tools/async_to_sync.py          # rewrite client.py, worker.py, migrate.py, scheduler.py
    python tools/async_to_sync.py --check  # exit 1 if any of them is out of date

The async source is the single source of truth (as in psycopg): this script
drops ``await``, turns ``async def/with/for`` into their plain forms, renames
async names to their sync twins (tables below), keeps the ``else:`` branch
of every ``if True:  # ASYNC`` block, then sorts its imports and formats it with
ruff (``ruff check --select I --fix``, ``ruff format``; the project's settings), so
the generated modules pass ``ruff check`` and ``ruff format --check`` as the
hand-written ones do. Needs ruff (``pip install ruff``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: async source -> generated sync module, relative to the repository root.
MODULES = {
    "raquel_pg/client_async.py": "raquel_pg/client.py",
    "raquel_pg/worker_async.py": "raquel_pg/worker.py",
    "raquel_pg/migrate_async.py": "raquel_pg/migrate.py",
    "raquel_pg/scheduler_async.py": "raquel_pg/scheduler.py",
    "raquel_pg/leases_async.py": "raquel_pg/leases.py",
    "raquel_pg/raquel_calls_async.py": "raquel_pg/raquel_calls.py",
    "raquel_pg/schedules_async.py": "raquel_pg/schedules.py",
    "raquel_pg/controls_async.py": "raquel_pg/controls.py",
    "raquel_pg/subscriptions_async.py": "raquel_pg/subscriptions.py",
    "raquel_pg/importer_async.py": "raquel_pg/importer.py",
    "tests/client/test_client_async.py": "tests/client/test_client.py",
    "tests/worker/test_worker_async.py": "tests/worker/test_worker.py",
    "tests/client/test_controls_async.py": "tests/client/test_controls.py",
    "tests/client/test_raquel_compat_async.py": "tests/client/test_raquel_compat.py",
    "raquel_pg/notifier_async.py": "raquel_pg/notifier.py",
    "raquel_pg/handoffs_async.py": "raquel_pg/handoffs.py",
    "tests/reliability/test_pooler_async.py": "tests/reliability/test_pooler.py",
    "tests/worker/test_notifier_async.py": "tests/worker/test_notifier.py",
    "raquel_pg/results_async.py": "raquel_pg/results.py",
    "raquel_pg/tasks_async.py": "raquel_pg/tasks.py",
    "raquel_pg/job_controls_async.py": "raquel_pg/job_controls.py",
    "tests/client/test_results_async.py": "tests/client/test_results.py",
    "tests/worker/test_tasks_worker_async.py": "tests/worker/test_tasks_worker.py",
    "tests/worker/test_outcome_backlog_async.py": "tests/worker/test_outcome_backlog.py",
    "tests/worker/test_queue_lists_worker_async.py": "tests/worker/test_queue_lists_worker.py",
    "raquel_pg/job_async.py": "raquel_pg/job.py",
    "raquel_pg/producer_async.py": "raquel_pg/producer.py",
    "raquel_pg/executor_async.py": "raquel_pg/executor.py",
    "raquel_pg/completer_async.py": "raquel_pg/completer.py",
}

RENAMES = {
    "AsyncRaquel": "Raquel",
    "AsyncJobCalls": "JobCalls",
    "AsyncJob": "Job",
    "AsyncFetch": "Fetch",
    "AsyncBuffer": "Buffer",
    "AsyncConnect": "Connect",
    "AsyncProducer": "Producer",
    "AsyncSlots": "Slots",
    "AsyncExecutor": "Executor",
    "AsyncCompleter": "Completer",
    "AbstractAsyncContextManager": "AbstractContextManager",
    "AsyncWorker": "Worker",
    "AsyncHandler": "Handler",
    "AsyncLeaseKeeper": "LeaseKeeper",
    "AsyncOutcomeBatcher": "OutcomeBatcher",
    "AsyncOutcome": "Outcome",
    "AsyncScheduler": "Scheduler",
    "AsyncSubscriptions": "Subscriptions",
    "AsyncSubscription": "Subscription",
    "AsyncRaquelCalls": "RaquelCalls",
    "AsyncSchedules": "Schedules",
    "AsyncQueueControlCalls": "QueueControlCalls",
    "AsyncNotifier": "Notifier",
    "AsyncHandoffs": "Handoffs",
    "AsyncResults": "Results",
    "AsyncEnqueuedJob": "EnqueuedJob",
    "AsyncTasks": "Tasks",
    "AsyncTaskCall": "TaskCall",
    "AsyncTaskRunner": "TaskRunner",
    "AsyncTask": "Task",
    "AsyncJobControls": "JobControls",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncConnection": "Connection",
    "AsyncCursor": "Cursor",
    "AsyncIterator": "Iterator",
    "asynccontextmanager": "contextmanager",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "AEvent": "Event",
    "aspawn": "spawn",
    "ajoin": "join",
    "acancel": "cancel",
    "acurrent": "current",
    "araise_if_cancelled": "raise_if_cancelled",
    "asleep": "sleep",
    "acall_later": "call_later",
    "aon_signals": "on_signals",
    "client_async": "client",
    "worker_async": "worker",
    "migrate_async": "migrate",
    "scheduler_async": "scheduler",
    "leases_async": "leases",
    "handoffs_async": "handoffs",
    "raquel_calls_async": "raquel_calls",
    "schedules_async": "schedules",
    "controls_async": "controls",
    "subscriptions_async": "subscriptions",
    "notifier_async": "notifier",
    "importer_async": "importer",
    "results_async": "results",
    "tasks_async": "tasks",
    "job_controls_async": "job_controls",
    "job_async": "job",
    "producer_async": "producer",
    "executor_async": "executor",
    "completer_async": "completer",
    "arq": "rq",  # the tests' client fixtures
}

#: Whole phrases whose sync form is not a rename (awaitables become plain values).
PHRASES = {
    "from collections.abc import Awaitable, Callable": "from collections.abc import Callable",
    "Awaitable[Any]": "Any",
    "Awaitable[None]": "None",
    "Awaitable[Rows]": "Rows",
    "a coroutine function taking the job": "a function taking the job",
    "import asyncio\nimport contextvars\n": "import contextvars\n",  # the executor's: its handlers' timeouts
}

BANNER = (
    "# WARNING: this file is generated from {source} by tools/async_to_sync.py.\n"
    "# DO NOT EDIT: change {source} and run `python tools/async_to_sync.py`.\n\n"
)

_NAMES = re.compile(r"\b(" + "|".join(sorted(RENAMES, key=len, reverse=True)) + r")\b")
_ASYNC_BLOCK = re.compile(r"^(?P<indent>[ ]*)if True:  # ASYNC\n")


def _resolve_async_blocks(lines: list[str]) -> list[str]:
    """Replaces each ``if True:  # ASYNC`` / ``else:`` block by its else branch, dedented."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _ASYNC_BLOCK.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        body_indent = indent + "    "
        i += 1
        while i < len(lines) and (lines[i].startswith(body_indent) or not lines[i].strip()):
            i += 1  # the async branch
        if i >= len(lines) or lines[i] != f"{indent}else:\n":
            raise SystemExit(f"'if True:  # ASYNC' needs an 'else:' at the same indent (line {i + 1})")
        i += 1
        while i < len(lines) and (lines[i].startswith(body_indent) or not lines[i].strip()):
            out.append(lines[i][4:] if lines[i].strip() else lines[i])
            i += 1
    return out


def convert(source: str, source_name: str) -> str:
    """The sync module for the async module text ``source``."""
    lines = _resolve_async_blocks(source.splitlines(keepends=True))
    text = "".join(lines)
    text = re.sub(r"\bawait ", "", text)
    text = re.sub(r"\basync (def|with|for)\b", r"\1", text)
    for phrase, replacement in PHRASES.items():
        text = text.replace(phrase, replacement)
    text = _NAMES.sub(lambda m: RENAMES[m.group(1)], text)
    text = text.replace("async with", "with")
    return BANNER.format(source=source_name) + text


def formatted(text: str, target_name: str) -> str:
    """``text`` with its imports sorted (``ruff check --select I --fix``) and as ``ruff format`` leaves
    it at ``target_name`` (settings from pyproject.toml)."""
    for command in (["check", "--select", "I", "--fix", "--quiet"], ["format"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", target_name, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"ruff {command[0]} failed on the generated {target_name}: {result.stderr.strip()}")
        text = result.stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is out of date")
    args = parser.parse_args()
    stale = []
    for source_name, target_name in MODULES.items():
        expected = formatted(convert((ROOT / source_name).read_text(), Path(source_name).name), target_name)
        target = ROOT / target_name
        if target.exists() and target.read_text() == expected:
            continue
        if args.check:
            stale.append(target_name)
        else:
            target.write_text(expected)
            print(f"wrote {target_name}")
    if stale:
        print(f"out of date (run python tools/async_to_sync.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
