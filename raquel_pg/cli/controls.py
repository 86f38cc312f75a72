"""The commands that steer whole queues (migration 0009_operations): pause, resume, limits, retention,
prune, and controls (what is set).

Each is one call of the engine's function, so it holds for every worker on every host; a bad
value is refused by that function (one line, exit status 2) and nothing is written.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from .. import params, render
from ..durations import format_ms, parse_duration
from .common import connect, fetch, print_json


def cmd_pause(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        paused: bool = fetch(conn, "pause_queue", {"queue": args.queue})[0][0]
    if args.json:
        print_json({"queue": args.queue, "paused": True, "changed": paused})
    else:
        print(f"paused {args.queue}" if paused else f"{args.queue} was paused already")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        resumed: bool = fetch(conn, "resume_queue", {"queue": args.queue})[0][0]
    if args.json:
        print_json({"queue": args.queue, "paused": False, "changed": resumed})
    else:
        print(f"resumed {args.queue} (waiting workers notified)" if resumed else f"{args.queue} was not paused")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        fetch(
            conn,
            "set_queue_limits",
            {"queue": args.queue, "max_running": args.max_running, "per_second": args.per_second},
        )
    if args.json:
        print_json({"queue": args.queue, "max_running": args.max_running, "per_second": args.per_second})
    else:
        text = render.limits_text(args.max_running, args.per_second)
        print(f"{args.queue}: {'no limits' if text == '-' else text}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    keep: timedelta | None = None if args.keep == "forever" else parse_duration(args.keep, "KEEP")
    keep_ms = None if keep is None else keep // timedelta(milliseconds=1)
    with connect(args) as conn:
        fetch(conn, "set_retention", {"queue": args.queue, "keep_ms": keep_ms})
    who = args.queue if args.queue is not None else "every queue without its own retention"
    if args.json:
        print_json({"queue": args.queue, "retention_ms": keep_ms})
    else:
        print(f"{who}: finished jobs kept {'forever' if keep_ms is None else 'for ' + format_ms(keep_ms)}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    total = 0
    busy = False
    with connect(args) as conn:
        while True:
            deleted: int | None = fetch(conn, "prune", {"batch_size": args.batch_size})[0][0]
            if deleted is None:
                busy = total == 0
                break
            total += deleted
            if deleted < args.batch_size:
                break
    if args.json:
        print_json({"pruned": total, "another_sweep_running": busy})
    elif busy:
        print("another session is pruning (one sweep at a time); nothing done")
    else:
        print(f"pruned {total} finished job{'s' if total != 1 else ''} past their retention")
    return 0


def _controls_json(row: tuple[Any, ...]) -> dict[str, Any]:
    queue, paused, max_running, per_second, retention_ms, pruned = row
    return {
        "queue": queue,
        "paused": paused,
        "max_running": max_running,
        "per_second": per_second,
        "retention_ms": retention_ms,
        "pruned": pruned,
    }


def cmd_controls(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = fetch(conn, "queue_controls")
    if args.json:
        print_json([_controls_json(row) for row in rows])
        return 0
    if not rows:
        print("no queue controls set (no queue paused or limited; finished jobs kept forever)")
        return 0
    body = [
        [
            queue if queue is not None else "(default)",
            "paused" if paused else "-",
            render.limits_text(max_running, per_second),
            "default"
            if retention_ms is None and queue is not None
            else "forever"
            if retention_ms is None or retention_ms >= params.RETENTION_FOREVER_MS
            else format_ms(retention_ms),
            "-" if pruned is None else str(pruned),
        ]
        for queue, paused, max_running, per_second, retention_ms, pruned in rows
    ]
    print(render.table(["queue", "paused", "limits", "retention", "pruned"], body))
    return 0
