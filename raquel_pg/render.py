"""What the ``raquel-pg`` read commands print: text tables and their stable JSON (no I/O).

The JSON shapes are a documented interface (README "Observability"): keys are
only ever added, never renamed or removed. Times are ISO 8601 UTC strings,
durations are integer ms, ids are strings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .durations import format_ms
from .model import JOB_COLUMNS, JobRecord

#: Columns of ``raquel_stats()`` then the queue's controls (migration 0009_operations), in order; also the keys of
#: each queue in ``stats --json``.
STATS_COLUMNS = (
    "queue",
    "total",
    "queued",
    "claimed",
    "success",
    "failed",
    "cancelled",
    "expired",
    "exhausted",
    "ready",
    "scheduled",
    "lease_expired",
    "oldest_ready_age_ms",
    "paused",
    "max_running",
    "per_second",
)


#: Control characters a terminal acts on (C0, DEL, C1), as escapes: an error message's ANSI
#: sequence could retitle an operator's terminal or rewrite what it shows. Newline and tab are
#: kept where text spans lines (an error trace).
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if code not in (0x09, 0x0A)}
_CONTROLS_IN_A_LINE = {**_CONTROLS, 0x09: "\\t", 0x0A: "\\n"}


def shown(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character a terminal would act on escaped (``\\x1b``); newlines
    and tabs kept with ``lines``, else escaped too."""
    return text.translate(_CONTROLS if lines else _CONTROLS_IN_A_LINE)


def iso(moment: datetime | None) -> str | None:
    """An aware datetime as ``2026-11-23T12:00:00.123Z`` (None stays None)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stats_json(rows: Sequence[Sequence[Any]], generated_at: datetime) -> dict[str, Any]:
    """``stats --json``: ``{"generated_at": ..., "queues": {name: {total, queued, ..., oldest_ready_age_ms}}}``."""
    queues = {row[0]: dict(zip(STATS_COLUMNS[1:], row[1:])) for row in rows}
    return {"generated_at": iso(generated_at), "queues": queues}


def stats_table(rows: Sequence[Sequence[Any]]) -> str:
    """The ``stats`` table: one line per queue, the oldest ready age humanized."""
    headers = [
        "queue",
        "total",
        "queued",
        "claimed",
        "success",
        "failed",
        "cancelled",
        "expired",
        "exhausted",
        "ready",
        "scheduled",
        "lease_expired",
        "oldest_ready",
        "paused",
        "limits",
    ]
    body = [
        [*(str(v) for v in row[:12]), format_ms(row[12]), "paused" if row[13] else "-", limits_text(row[14], row[15])]
        for row in rows
    ]
    if not body:
        return "no jobs"
    return table(headers, body)


def limits_text(max_running: int | None, per_second: float | None) -> str:
    """A queue's limits as ``max 5, 10/s`` (``-`` for none)."""
    parts = ([] if max_running is None else [f"max {max_running}"]) + (
        [] if per_second is None else [f"{per_second:g}/s"]
    )
    return ", ".join(parts) or "-"


def job_json(job: JobRecord) -> dict[str, Any]:
    """One job as JSON: every column of ``raquel_jobs`` (the payload as its stored text).

    A time outside datetime's range (a row written around the raquel
    functions) shows as ``"<ms> ms since epoch (out of range)"``.
    """
    out: dict[str, Any] = {}
    out_of_range = job.out_of_range or {}
    for column in JOB_COLUMNS:
        value = job.raw_payload if column == "payload" else getattr(job, column)
        if column in out_of_range:
            value = f"{out_of_range[column]} ms since epoch (out of range)"
        elif isinstance(value, datetime):
            value = iso(value)
        elif value is not None and column in ("id", "claim_id"):
            value = str(value)
        out[column] = value
    return out


def jobs_table(jobs: Sequence[JobRecord]) -> str:
    """The ``jobs`` table: id, queue, status, attempts, scheduled and finished times, error."""
    if not jobs:
        return "no jobs"
    body = [
        [
            str(j.id),
            j.queue,
            j.status,
            str(j.attempts),
            _time(j, "scheduled_at"),
            _time(j, "finished_at"),
            _clip((j.error or "").replace("\n", " "), 60),
        ]
        for j in jobs
    ]
    return table(["id", "queue", "status", "attempts", "scheduled_at", "finished_at", "error"], body)


def job_details(job: JobRecord) -> str:
    """``show``: one ``column: value`` line per column, the error trace last and in full."""
    data = job_json(job)
    trace = data.pop("error_trace")
    width = max(len(k) for k in data)
    if data.get("result") is not None:  # the handler's value, shown as the JSON it is stored as
        data["result"] = json.dumps(data["result"])
    lines = [f"{key:<{width}}  {'-' if value is None else shown(str(value))}" for key, value in data.items()]
    if trace:
        lines += ["error_trace:", shown(trace.rstrip(), lines=True)]
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns left-aligned, numbers right-aligned; control characters escaped."""
    rows = [[shown(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [all(r[i].isdigit() for r in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``[###########...................] 1200/3000``."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _time(job: JobRecord, column: str) -> str:
    """A time cell of the ``jobs`` table: ISO 8601, ``-`` for none, ``out of range`` when it is."""
    if job.out_of_range and column in job.out_of_range:
        return "out of range"
    return iso(getattr(job, column)) or "-"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
