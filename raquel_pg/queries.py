"""The clients' runtime SQL, loaded once from ``queries.sql``.

Only this module reads that file; callers use ``QUERIES["name"]``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import LiteralString, cast

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def _load() -> dict[str, LiteralString]:
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        queries[name] = cast(LiteralString, body.strip())
    return queries


QUERIES: dict[str, LiteralString] = _load()
