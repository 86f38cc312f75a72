"""The clients' runtime SQL, loaded once from ``queries.sql``.

Only this module reads that file; callers use ``QUERIES["name"]``. A query is
the text from its ``-- name: <name>`` line to the next one, less the blank and
comment-only lines at its end: those introduce the next section of the file
and are not sent with the query (the server would show them as part of it in
``pg_stat_activity``).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, LiteralString, cast

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def _statement(body: str) -> LiteralString:
    """``body`` (text of the package's own file) without its trailing blank and comment-only lines."""
    lines = body.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    statement: Any = "\n".join(lines)  # the package's own SQL, never user input
    return cast(LiteralString, statement)


def _load() -> dict[str, LiteralString]:
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        queries[name] = _statement(body)
    return queries


QUERIES: dict[str, LiteralString] = _load()
