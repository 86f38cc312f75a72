"""Durations and times as people type them on the command line (no I/O).

A duration is one or more ``<number><unit>`` parts, units ``ms``, ``s``,
``m``, ``h``, ``d``, ``w``: ``7d``, ``90s``, ``1h30m``, ``500ms``, ``1.5h``;
``0`` needs no unit. A
time is ISO 8601 (``2026-11-23T12:00:00Z``; naive means UTC) or a duration
meaning that long ago where that makes sense (``--since 1h``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .errors import InvalidArgument

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_ZERO = re.compile(r"0+(?:\.0+)?")


def parse_duration(text: str, argument: str = "duration") -> timedelta:
    """``"7d"`` -> ``timedelta(days=7)``.

    Raises :class:`InvalidArgument` naming ``argument`` for a text that is not
    a duration, and for one longer than a timedelta holds (999,999,999 days).
    """
    compact = text.strip().replace(" ", "")
    if _ZERO.fullmatch(compact):  # "retention 0": zero in any unit
        return timedelta()
    position, total = 0, timedelta()
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        try:
            total += float(match.group(1)) * _UNITS[match.group(2)]
        except OverflowError:
            raise InvalidArgument(argument, f"{argument}: {text!r} is too long (at most 999999999d)") from None
        position = match.end()
    if not compact or position != len(compact):
        raise InvalidArgument(
            argument, f"{argument}: {text!r} is not a duration (examples: 7d, 12h, 30m, 90s, 500ms, 1h30m)"
        )
    return total


def parse_iso(text: str, argument: str) -> datetime:
    """An aware datetime from ISO 8601 (naive = UTC). Raises :class:`InvalidArgument` naming ``argument``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument(
            argument, f"{argument}: {text!r} is not an ISO 8601 time (2026-11-23T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_time(text: str, argument: str, *, now: datetime | None = None) -> datetime:
    """An aware datetime from ISO 8601 (naive = UTC), or from a duration meaning that long before ``now``.

    Raises :class:`InvalidArgument` naming ``argument`` when it is neither, or
    when the duration reaches before year 1.
    """
    try:
        return parse_iso(text, argument)
    except InvalidArgument:
        pass
    try:
        ago = parse_duration(text, argument)
    except InvalidArgument:
        raise InvalidArgument(
            argument, f"{argument}: {text!r} is neither an ISO 8601 time (2026-11-23T12:00:00Z) nor a duration (1h, 7d)"
        ) from None
    try:
        return (now or datetime.now(timezone.utc)) - ago
    except OverflowError:
        raise InvalidArgument(argument, f"{argument}: {text!r} ago is before year 1") from None


def format_ms(ms: int | None) -> str:
    """A duration in ms for a table cell: ``"-"``, ``"850ms"``, ``"42s"``, ``"3m20s"``, ``"2h05m"``, ``"3d04h"``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
