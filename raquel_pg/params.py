"""Pure argument handling shared by the sync and async clients (no I/O).

The clients convert Python values (datetimes, timedeltas, payload objects) to
what the SQL functions take (ms since epoch, ms, text). Range checks (negative
delay, empty queue, ...) are the SQL functions' job, so that psql users get the
same rules; this module only refuses what cannot be converted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import InvalidArgument
from .textarray import TextArray

QUEUED = "queued"
CLAIMED = "claimed"
SUCCESS = "success"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"
EXHAUSTED = "exhausted"
STATUSES = (QUEUED, CLAIMED, SUCCESS, FAILED, CANCELLED, EXPIRED, EXHAUSTED)

DEFAULT_QUEUE = "default"

#: Range of SQL bigint (times and durations in ms) and integer (counts).
BIGINT_RANGE = range(-(2**63), 2**63)
INTEGER_RANGE = range(-(2**31), 2**31)

#: NOTIFY channel the jobs table's triggers send on, with the queue as payload.
CHANNEL = "raquel_jobs"


def timestamp_ms(value: datetime | int | None, argument: str) -> int | None:
    """A point in time as ms since the Unix epoch.

    ``datetime``: a naive one is taken as UTC (as raquel does); ``int``: already
    ms since epoch. Raises :class:`InvalidArgument` for anything else and for
    an int outside bigint's range (the SQL function checks the finer bounds).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return delta // timedelta(milliseconds=1)
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, BIGINT_RANGE, argument)
    raise InvalidArgument(argument, f"{argument}: expected a datetime or ms since epoch (int), got {value!r}")


def duration_ms(value: timedelta | int | None, argument: str) -> int | None:
    """A duration in ms: a ``timedelta`` or an ``int`` of ms within bigint's range.

    Raises :class:`InvalidArgument` otherwise.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value // timedelta(milliseconds=1)
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, BIGINT_RANGE, argument)
    raise InvalidArgument(argument, f"{argument}: expected a timedelta or ms (int), got {value!r}")


def count(value: int | None, argument: str) -> int | None:
    """An integer count within SQL integer's range, or None. Raises :class:`InvalidArgument` otherwise."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, INTEGER_RANGE, argument)
    raise InvalidArgument(argument, f"{argument}: expected an int, got {value!r}")


def _in_range(value: int, allowed: range, argument: str) -> int:
    """``value`` if its SQL type can hold it; else :class:`InvalidArgument`."""
    if value not in allowed:
        raise InvalidArgument(
            argument, f"{argument}: {value} does not fit in [{allowed.start}, {allowed.stop - 1}]")
    return value


def encode_payload(payload: Any) -> str | None:
    """The stored text of a payload: a ``str`` as is, ``None`` as NULL, anything else as JSON.

    Raises :class:`InvalidArgument` when the payload cannot be stored: not
    JSON-serializable, NaN/infinity, or text holding a NUL character (which
    PostgreSQL text cannot store).
    """
    if payload is None:
        return None
    if isinstance(payload, str):
        text = payload
    else:
        try:
            text = json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidArgument("payload", f"payload: not JSON-serializable: {error}") from error
    if "\x00" in text:
        raise InvalidArgument("payload", "payload: PostgreSQL text cannot hold NUL (\\x00) characters")
    return text


#: The first characters a JSON text may start with, as Python's json reads it (NaN, Infinity and
#: whitespace included).
_JSON_STARTS = frozenset('{["-0123456789tfnNI \t\n\r')


def decode_payload(text: str | None) -> Any:
    """A payload as raquel returns it: parsed JSON when the text is JSON, else the text itself.

    NULL and the empty string give ``None``. A text whose first character no
    JSON text starts with is returned without parsing (a raised and caught
    JSONDecodeError per job was the costliest step of reading a plain-text job).
    """
    if not text:
        return None
    if text[0] not in _JSON_STARTS:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def queue_name(queue: str, argument: str = "queue") -> str:
    """Checks a queue name's type (and NUL, which cannot be sent); the SQL function checks the rest."""
    if not isinstance(queue, str):
        raise InvalidArgument(argument, f"{argument}: expected a str, got {queue!r}")
    if "\x00" in queue:
        raise InvalidArgument(argument, f"{argument}: PostgreSQL text cannot hold NUL (\\x00) characters")
    return queue


def enqueue_args(
    queue: str,
    payload: Any,
    at: datetime | int | None,
    delay: timedelta | int | None,
    max_age: timedelta | int | None,
    max_retry_count: int | None,
    min_retry_delay: timedelta | int | None,
    max_retry_delay: timedelta | int | None,
    backoff_base: timedelta | int | None,
    priority: int | None = None,
    unique_key: str | None = None,
    unique_mode: str | None = None,
) -> dict[str, Any]:
    """The arguments of ``raquel_enqueue`` for one job, converted; None keeps a default."""
    return {
        "queue": queue_name(queue),
        "payload": encode_payload(payload),
        "at": timestamp_ms(at, "at"),
        "delay": duration_ms(delay, "delay"),
        "max_age": duration_ms(max_age, "max_age"),
        "max_retry_count": count(max_retry_count, "max_retry_count"),
        "min_retry_delay": duration_ms(min_retry_delay, "min_retry_delay"),
        "max_retry_delay": duration_ms(max_retry_delay, "max_retry_delay"),
        "backoff_base": duration_ms(backoff_base, "backoff_base"),
        "priority": count(priority, "priority"),
        "unique_key": optional_text(unique_key, "unique_key"),
        "unique_mode": optional_text(unique_mode, "unique_mode"),
    }


def enqueue_many_args(
    queue: str,
    payloads: Iterable[Any],
    at: datetime | int | None,
    delay: timedelta | int | None,
    max_age: timedelta | int | None,
    max_retry_count: int | None,
    min_retry_delay: timedelta | int | None,
    max_retry_delay: timedelta | int | None,
    backoff_base: timedelta | int | None,
    priority: int | None,
    unique_keys: Iterable[str | None] | None,
    unique_mode: str | None,
) -> dict[str, Any]:
    """The arguments of ``raquel_enqueue_many``, converted; None keeps a default.

    Raises :class:`InvalidArgument` naming ``payloads`` or ``unique_keys`` when
    one is a str (a str is iterable, but surely not meant as one job per
    character) or not iterable, or an element cannot be sent.
    """
    args = enqueue_args(
        queue, None, at, delay, max_age, max_retry_count, min_retry_delay, max_retry_delay,
        backoff_base, priority, None, unique_mode,
    )
    del args["payload"], args["unique_key"]
    if isinstance(payloads, (str, bytes)) or not isinstance(payloads, Iterable):
        raise InvalidArgument("payloads", f"payloads: expected an iterable of payloads, got {payloads!r}")
    args["payloads"] = TextArray(encode_payload(p) for p in payloads)
    if unique_keys is None:
        args["unique_keys"] = None
    elif isinstance(unique_keys, (str, bytes)) or not isinstance(unique_keys, Iterable):
        raise InvalidArgument("unique_keys", f"unique_keys: expected an iterable of str or None, got {unique_keys!r}")
    else:
        args["unique_keys"] = [optional_text(k, "unique_keys") for k in unique_keys]
    return args


def optional_text(value: str | None, argument: str) -> str | None:
    """A str argument or None. Raises :class:`InvalidArgument` for another type or a NUL character."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"{argument}: expected a str, got {value!r}")
    if "\x00" in value:
        raise InvalidArgument(argument, f"{argument}: PostgreSQL text cannot hold NUL (\\x00) characters")
    return value


def queue_list(queues: tuple[str, ...]) -> list[str] | None:
    """The ``queues`` argument of the SQL functions: None (every queue) or a list of names."""
    if not queues:
        return None
    return [queue_name(q, "queues") for q in queues]


def status_list(status: str | Iterable[str] | None) -> list[str] | None:
    """One status or several, checked against the seven raquel statuses."""
    if status is None:
        return None
    statuses = [status] if isinstance(status, str) else list(status)
    for s in statuses:
        if s not in STATUSES:
            raise InvalidArgument("status", f"status: {s!r} is not one of {', '.join(STATUSES)}")
    return statuses


def seconds(value: float | timedelta, argument: str) -> float:
    """A duration in seconds, for worker settings. Raises :class:`InvalidArgument` when negative."""
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if result < 0:
        raise InvalidArgument(argument, f"{argument}: must be >= 0, got {value!r}")
    return result


#: The Unix epoch, as an aware UTC datetime.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=4096)
def to_datetime(ms: int | None) -> datetime | None:
    """ms since epoch to an aware UTC datetime.

    Cached: the jobs of one claim share their claimed_at and lease_expires_at
    (and, when enqueued together, enqueued_at and scheduled_at), and a cache
    hit costs a tenth of building the datetime (datetimes are immutable).
    """
    if ms is None:
        return None
    return EPOCH + timedelta(milliseconds=ms)


def now_ms() -> int:
    """The local clock in ms since epoch (used only to compute how long to sleep)."""
    return timestamp_ms(datetime.now(timezone.utc), "now") or 0
