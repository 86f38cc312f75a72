"""Reading json and jsonb values that Python's ``json`` cannot decode, without failing the fetch.

PostgreSQL stores JSON that Python refuses to read: nested deeper than the
interpreter's recursion limit (about 1,000 levels; jsonb takes thousands), or
an integer of more than 4,300 digits (Python's limit on converting text to
int). psycopg decodes a row's json and jsonb values as it fetches them, so one
such value failed the whole fetch: ``get()`` of the job, a listing of its
queue, the CLI's ``show``, the dashboard's job page. On raquel_pg's cursors
such a value reads as :class:`UnreadableJSON`, its stored text, instead.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg.abc import AdaptContext
from psycopg.types.json import set_json_loads


class UnreadableJSON(str):
    """A stored JSON value Python's ``json`` cannot decode, as its text; :attr:`reason` says why."""

    reason: str

    def __new__(cls, text: str, reason: str) -> UnreadableJSON:
        value = super().__new__(cls, text)
        value.reason = reason
        return value


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """``json.loads``, but JSON it cannot decode gives :class:`UnreadableJSON` instead of raising."""
    try:
        return json.loads(data if isinstance(data, (str, bytes, bytearray)) else bytes(data))
    except RecursionError:
        reason = "nested deeper than Python's json module reads (the interpreter's recursion limit)"
    except ValueError as error:  # PostgreSQL's JSON is valid JSON: a limit of Python's, such as int digits
        reason = str(error)
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    return UnreadableJSON(text, reason)


def read_unreadable_as_text(context: AdaptContext) -> None:
    """Makes the json and jsonb values ``context`` (a connection or cursor) fetches decode with
    :func:`loads`. Never blocks."""
    set_json_loads(loads, context)
