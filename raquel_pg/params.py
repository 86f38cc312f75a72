"""Pure argument handling shared by the sync and async clients (no I/O).

The clients convert Python values (datetimes, timedeltas, payload objects) to
what the SQL functions take (ms since epoch, ms, text). Range checks (negative
delay, empty queue, ...) are the SQL functions' job, so that psql users get the
same rules; this module only refuses what cannot be converted.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

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

#: The times the queue stores, in ms since the epoch, in SQL (migration 0002_clock_and_ids) and here alike:
#: 0001-01-02 00:00:00.000 to 9999-12-30 23:59:59.999 UTC, what ``datetime`` can represent in any
#: time zone (a day inside its own range), so that every stored time reads back as a datetime.
TIME_MIN_MS = -62135510400000
TIME_MAX_MS = 253402214399999
TIME_RANGE = range(TIME_MIN_MS, TIME_MAX_MS + 1)
#: A queue's retention meaning "kept forever" (0022_retention_forever): 10,000 years, longer than
#: :data:`TIME_RANGE`, so no finished job is ever past it. NULL is "the default's".
RETENTION_FOREVER_MS = 315_576_000_000_000
#: Durations in ms: at most 2**62 - 1 either way (the SQL functions take no longer one
#: and refuse negative ones with their own message).
DURATION_RANGE = range(-(2**62 - 1), 2**62)
#: Range of SQL integer (counts).
INTEGER_RANGE = range(-(2**31), 2**31)

#: The Unix epoch, as an aware UTC datetime.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: NOTIFY channel the jobs table's triggers send on, with the queue as payload.
CHANNEL = "raquel_jobs"


def timestamp_ms(value: datetime | int | None, argument: str) -> int | None:
    """A point in time as ms since the Unix epoch, within :data:`TIME_RANGE`.

    ``datetime``: a naive one is local time, as ``datetime.timestamp()`` and
    raquel read it (``datetime.now() + timedelta(hours=1)`` is an hour from now
    on any host); ``int``: already ms since epoch. Raises
    :class:`InvalidArgument` for anything else and for a time outside
    :data:`TIME_RANGE` (0001-01-02 to 9999-12-30 UTC), before any SQL runs:
    the SQL functions refuse the same times.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            try:
                value = value.astimezone()
            except (OverflowError, ValueError, OSError):  # local time past datetime's range
                raise InvalidArgument(
                    argument, f"{argument}: {value!r} is not a time within datetime's range"
                ) from None
        ms = (value - EPOCH) // timedelta(milliseconds=1)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise InvalidArgument(argument, f"{argument}: expected a datetime or ms since epoch (int), got {value!r}")
    if ms not in TIME_RANGE:
        raise InvalidArgument(
            argument,
            (
                f"{argument}: {value!r} is not a time within [{TIME_MIN_MS}, {TIME_MAX_MS}] ms since the epoch"
                " (0001-01-02 .. 9999-12-30 UTC)"
            ),
        )
    return ms


def duration_ms(value: timedelta | int | None, argument: str) -> int | None:
    """A duration in ms: a ``timedelta`` or an ``int`` of ms, within :data:`DURATION_RANGE`.

    Raises :class:`InvalidArgument` otherwise (the SQL functions check the
    finer bounds: >= 0, and a time plus the duration within the time range).
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        return _in_range(value // timedelta(milliseconds=1), DURATION_RANGE, argument)
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, DURATION_RANGE, argument)
    raise InvalidArgument(argument, f"{argument}: expected a timedelta or ms (int), got {value!r}")


def count(value: int | None, argument: str) -> int | None:
    """An integer count within SQL integer's range, or None. Raises :class:`InvalidArgument` otherwise."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, INTEGER_RANGE, argument)
    raise InvalidArgument(argument, f"{argument}: expected an int, got {value!r}")


def job_id(value: UUID | str, argument: str = "job_id") -> UUID:
    """A job id: a UUID, or its text in any form ``uuid.UUID`` reads. Raises :class:`InvalidArgument` otherwise
    (None, another type, text that is not a UUID), before anything is sent."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidArgument(argument, f"{argument}: expected a UUID or its text, got {value!r}")


def _in_range(value: int, allowed: range, argument: str) -> int:
    """``value`` if its SQL type can hold it; else :class:`InvalidArgument`."""
    if value not in allowed:
        raise InvalidArgument(argument, f"{argument}: {value} does not fit in [{allowed.start}, {allowed.stop - 1}]")
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
        except RecursionError:
            raise InvalidArgument("payload", "payload: nested too deeply to be serialized as JSON") from None
    if "\x00" in text:
        raise InvalidArgument("payload", "payload: PostgreSQL text cannot hold NUL (\\x00) characters")
    return text


#: The first characters a JSON text may start with, as Python's json reads it (NaN, Infinity and
#: whitespace included).
_JSON_STARTS = frozenset('{["-0123456789tfnNI \t\n\r')
#: The whitespace ``json.loads`` skips around a value.
_JSON_SPACE = frozenset(" \t\n\r")
#: The scanner ``json.loads`` runs, called directly (see :func:`decode_payload`). typeshed does
#: not declare the attribute ``JSONDecoder.__init__`` sets.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_payload(text: str | None) -> Any:
    """A payload as raquel returns it: parsed JSON when the text is JSON, else the text itself.

    NULL and the empty string give ``None``. A text whose first character no
    JSON text starts with is returned without parsing (a raised and caught
    JSONDecodeError per job was the costliest step of reading a plain-text job).
    A text with no whitespace around it is read by the scanner ``json.loads``
    runs, called directly: ``json.loads`` adds two regular-expression matches
    for that whitespace and a method call or two, 1.4-2 us of the 2.0-2.5 it
    took for ``1`` or a small object (issue 23: every claimed job's payload is
    read). Raises RecursionError for JSON nested deeper than the interpreter's
    recursion limit, as ``json.loads`` does, and ValueError for JSON holding an
    integer of more digits than Python converts (``sys.get_int_max_str_digits()``,
    4,300 by default): valid JSON that Python cannot read is not text to hand
    a handler in its place.
    """
    if not text:
        return None
    if text[0] not in _JSON_STARTS:
        return text
    if text[0] in _JSON_SPACE or text[-1] in _JSON_SPACE:
        try:
            return json.loads(text)
        except ValueError as error:
            return _not_json(text, error)
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # no JSON value at the start
        return text
    except ValueError as error:  # a malformed value, or one Python cannot read
        return _not_json(text, error)
    return value if end == len(text) else text  # text after the value: not JSON


def _not_json(text: str, error: ValueError) -> str:
    """``text``, which ``error`` (raised reading it as JSON) says is not JSON; raises ``error`` again
    when the text is JSON all the same, with an integer longer than Python converts."""
    if not isinstance(error, json.JSONDecodeError):
        try:
            json.loads(text, parse_int=str)  # the integers left as their digits
        except ValueError:
            return text
        raise error
    return text


def queue_name(queue: str, argument: str = "queue") -> str:
    """Checks a queue name's type (and NUL or a lone surrogate, which cannot be sent); the SQL function checks the rest."""
    if not isinstance(queue, str):
        raise InvalidArgument(argument, f"{argument}: expected a str, got {queue!r}")
    return _sendable(queue, argument)


def _sendable(text: str, argument: str) -> str:
    """``text``, if PostgreSQL text can hold it; else :class:`InvalidArgument` naming ``argument``."""
    if "\x00" in text:
        raise InvalidArgument(argument, f"{argument}: PostgreSQL text cannot hold NUL (\\x00) characters")
    if not text.isascii() and not _encodes(text):
        raise InvalidArgument(
            argument, f"{argument}: text holding a lone surrogate cannot be stored (PostgreSQL text is UTF-8)"
        )
    return text


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
    timeout: timedelta | int | None = None,
) -> dict[str, Any]:
    """The arguments of ``raquel_enqueue`` for one job, converted; None keeps a default.

    ``trace_context`` is None here: :meth:`~raquel_pg.AsyncRaquel.enqueue` stores the
    enqueuer's span there when tracing is on.
    """
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
        "timeout": duration_ms(timeout, "timeout"),
        "trace_context": None,  # set by enqueue() when a tracer is active (raquel_pg.tracing)
    }


def encode_result(value: Any) -> str | None:
    """The JSON text stored as a job's result (jsonb), or None for ``None``.

    Unlike a payload, a str is stored as a JSON string (the column is jsonb).
    Raises :class:`InvalidArgument` naming ``result`` when the value is not
    JSON-serializable (NaN and infinity included) or holds a NUL character.
    """
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgument("result", f"result: not JSON-serializable: {error}") from error
    except RecursionError:
        raise InvalidArgument("result", "result: nested too deeply to be serialized as JSON") from None
    if "\\u0000" in text:
        raise InvalidArgument("result", "result: PostgreSQL jsonb cannot hold NUL (\\u0000) characters")
    if "\\ud" in text and _lone_surrogate(text):
        raise InvalidArgument(
            "result", "result: text holding a lone surrogate cannot be stored (PostgreSQL jsonb is UTF-8)"
        )
    return text


#: An escape of JSON text: \uXXXX, or a backslash and the character it escapes.
_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def _lone_surrogate(text: str) -> bool:
    """Whether JSON ``text`` escapes a UTF-16 surrogate that is not half of an adjacent pair (which
    ``json.dumps`` writes for a str holding one, ``os.fsdecode``'s for a name that is not UTF-8,
    say, and jsonb refuses)."""
    high_end = -1  # where the escape of a high surrogate waiting for its low half ends
    for escape in _JSON_ESCAPE.finditer(text):
        code = escape.group(1)
        unit = int(code[1:], 16) if len(code) == 5 else -1
        if high_end >= 0:
            if escape.start() != high_end or not 0xDC00 <= unit <= 0xDFFF:
                return True
            high_end = -1
        elif 0xD800 <= unit <= 0xDBFF:
            high_end = escape.end()
        elif 0xDC00 <= unit <= 0xDFFF:
            return True
    return high_end >= 0


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
    timeout: timedelta | int | None = None,
) -> dict[str, Any]:
    """The arguments of ``raquel_enqueue_many``, converted; None keeps a default.

    ``trace_context`` is None here, as in :func:`enqueue_args`.

    Raises :class:`InvalidArgument` naming ``payloads`` or ``unique_keys`` when
    one is a str (a str is iterable, but surely not meant as one job per
    character) or not iterable, or an element cannot be sent.
    """
    args = enqueue_args(
        queue,
        None,
        at,
        delay,
        max_age,
        max_retry_count,
        min_retry_delay,
        max_retry_delay,
        backoff_base,
        priority,
        None,
        unique_mode,
        timeout,
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
    return _sendable(value, argument)


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
    """A duration in seconds, for worker settings (a number or a timedelta).

    Raises :class:`InvalidArgument` for another type, NaN, a negative value,
    and a value longer than a thread can wait (``threading.TIMEOUT_MAX``,
    infinity included): a worker would die at its first wait on it.
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:  # an int too large for a float
            result = math.inf
    else:
        raise InvalidArgument(argument, f"{argument}: expected seconds (a number) or a timedelta, got {value!r}")
    if math.isnan(result) or not 0 <= result <= threading.TIMEOUT_MAX:
        raise InvalidArgument(
            argument, f"{argument}: must be a number of seconds in [0, {threading.TIMEOUT_MAX:.0f}], got {value!r}"
        )
    return result


def unencodable(args: dict[str, Any], encoding: str = "utf-8") -> InvalidArgument | None:
    """The error naming the argument of ``args`` that holds text ``encoding`` cannot encode, if one does.

    ``encoding``: the connection's client encoding (``conn.info.encoding``).
    A lone surrogate (``"\\ud800"``, e.g. from ``os.fsdecode``) is a valid
    Python str that no PostgreSQL text can hold; a database in another
    encoding than UTF-8 (LATIN1, say) cannot hold the characters outside it.
    The clients call this only after psycopg refused to send ``args`` (it
    costs nothing on the way in).
    """
    for argument, value in args.items():
        values = value if isinstance(value, list) else [value]
        for text in values:
            if isinstance(text, str) and not _encodes(text, "utf-8"):
                return InvalidArgument(
                    argument,
                    f"{argument}: text holding a lone surrogate ({text.encode('utf-8', 'backslashreplace')[:40]!r}) "
                    "cannot be stored (PostgreSQL text is UTF-8)",
                )
            if isinstance(text, str) and not _encodes(text, encoding):
                return InvalidArgument(
                    argument,
                    f"{argument}: {text[:40]!r} holds characters this database's encoding ({encoding}) cannot store",
                )
    return None


def _encodes(text: str, encoding: str = "utf-8") -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


#: The arguments whose text is stored escaped (``\\U0001f389``) when the database's encoding cannot
#: hold it, instead of refused: a failure's message and trace, so that a failure is recorded
#: whatever its exception says.
ESCAPED_WHEN_UNENCODABLE = ("error", "error_trace")


def escaped(args: dict[str, Any], encoding: str) -> dict[str, Any]:
    """``args`` with the texts of :data:`ESCAPED_WHEN_UNENCODABLE` made storable in ``encoding``
    (each character it cannot hold as a backslash escape)."""
    return {
        name: value.encode(encoding, "backslashreplace").decode(encoding)
        if name in ESCAPED_WHEN_UNENCODABLE and isinstance(value, str)
        else value
        for name, value in args.items()
    }


def storable_text(text: str | None) -> str | None:
    """``text`` made storable in PostgreSQL text: NUL as ``\\x00``, a lone surrogate as ``\\udXXX``."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    text = text.replace("\x00", "\\x00")
    return text if _encodes(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def failure(error: str | BaseException | None, error_trace: str | None) -> tuple[str | None, str | None]:
    """The ``error`` and ``error_trace`` stored for a failed attempt.

    ``error`` is a message (str) or an exception: then its message is stored
    (as raquel does: ``"Won't do"``, not ``"ValueError: Won't do"``; its type
    name when the message is empty) and, unless ``error_trace`` is given, its
    traceback, which names the type. Both are made storable (NUL and lone
    surrogates escaped). Raises :class:`InvalidArgument` for another type.
    """
    if isinstance(error, BaseException):
        exception = error
        try:
            error = str(exception) or type(exception).__name__
        except Exception:  # a broken __str__ must not cost the failure its record
            error = type(exception).__name__
        if error_trace is None:
            error_trace = "".join(traceback.format_exception(exception))
    elif error is not None and not isinstance(error, str):
        raise InvalidArgument("error", f"error: expected a str or an exception, got {error!r}")
    if error_trace is not None and not isinstance(error_trace, str):
        raise InvalidArgument("error_trace", f"error_trace: expected a str, got {error_trace!r}")
    return storable_text(error), storable_text(error_trace)


@functools.lru_cache(maxsize=4096)
def to_datetime(ms: int | None) -> datetime | None:
    """ms since epoch to an aware UTC datetime.

    Cached: the jobs of one claim share their claimed_at and lease_expires_at
    (and, when enqueued together, enqueued_at and scheduled_at), and a cache
    hit costs a tenth of building the datetime (datetimes are immutable).
    """
    if ms is None:
        return None
    # Positional microseconds: exact for every int, and 0.59 against 0.84 us
    # for timedelta(milliseconds=ms) (one enqueue() converts two new times).
    return EPOCH + timedelta(0, 0, ms * 1000)


#: The ends of datetime's range (years 1 and 9999), aware UTC.
DATETIME_MIN = datetime.min.replace(tzinfo=timezone.utc)
DATETIME_MAX = datetime.max.replace(tzinfo=timezone.utc)


def clamped_datetime(ms: int | None) -> datetime | None:
    """:func:`to_datetime`, but a time outside datetime's range (years 1-9999) gives its nearest end.

    For reading rows written around the client (SQL, psql): a reader shows
    what it can instead of raising ``OverflowError``.
    """
    try:
        return to_datetime(ms)
    except OverflowError:
        return DATETIME_MIN if ms is not None and ms < 0 else DATETIME_MAX


def now_ms() -> int:
    """The local clock in ms since epoch (used only to compute how long to sleep)."""
    return timestamp_ms(datetime.now(timezone.utc), "now") or 0
