"""A ``uuid[]`` query parameter in PostgreSQL's binary format, built in one pass.

A worker sends two of these with every batch of successes
(``raquel_complete_many``: the jobs' ids and their claim ids) and with every
lease renewal. psycopg's list dumper finds and calls an element dumper for
each element (a Python function per UUID); here every element is a
:class:`uuid.UUID` (or None), so one loop writes each length and its 16 bytes.
Issue 23: 0.17 -> 0.10 us per UUID for arrays of 255 (timeit, PostgreSQL's
binary form compared byte for byte).
"""

from __future__ import annotations

import struct
from uuid import UUID

import psycopg
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

_UUID_OID = 2950
_UUID_ARRAY_OID = 2951
_HEADER = struct.Struct("!iiIii")  # dimensions, has nulls, element type, length, lower bound
_EMPTY = struct.pack("!iiI", 0, 0, _UUID_OID)  # no dimensions: '{}'
_LENGTH = struct.pack("!i", 16)
_NULL = struct.pack("!i", -1)


class UUIDArray(list[UUID | None]):
    """A list of :class:`uuid.UUID` (or None) that psycopg sends as a binary ``uuid[]`` (``%b``)."""


class UUIDArrayBinaryDumper(Dumper):
    """Dumps a :class:`UUIDArray`: header, then each element's length and 16 bytes."""

    format = Format.BINARY
    oid = _UUID_ARRAY_OID

    def dump(self, obj: UUIDArray) -> Buffer:
        """The array's binary form."""
        if not obj:
            return _EMPTY
        try:  # no None (the worker's arrays): no test per element
            body = b"".join([b"\x00\x00\x00\x10" + item.int.to_bytes(16, "big") for item in obj])  # type: ignore[union-attr]
            return _HEADER.pack(1, 0, _UUID_OID, len(obj), 1) + body
        except AttributeError:  # a None
            parts = [_NULL if item is None else _LENGTH + item.int.to_bytes(16, "big") for item in obj]
            return _HEADER.pack(1, 1, _UUID_OID, len(obj), 1) + b"".join(parts)


psycopg.adapters.register_dumper(UUIDArray, UUIDArrayBinaryDumper)
