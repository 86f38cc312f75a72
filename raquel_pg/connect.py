"""What the clients accept as a database: the conninfo of a DSN, a SQLAlchemy URL or engine.

raquel's ``Raquel(engine_or_url)`` takes a SQLAlchemy URL string
(``postgresql+psycopg2://…``, ``postgresql+psycopg://…``,
``postgresql+asyncpg://…``), a ``sqlalchemy.engine.URL`` or an ``Engine`` /
``AsyncEngine``. raquel_pg talks to PostgreSQL with psycopg 3 whatever the
driver named, so each becomes a libpq connection string: the driver part of
the scheme is dropped and an engine contributes its URL (its own pool and
options are not used). SQLAlchemy is never imported here: an URL or engine
object can only exist if the caller has imported it already.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .errors import InvalidArgument

#: ``postgresql+driver://`` / ``postgres+driver://`` (any driver), case-insensitive.
_SQLALCHEMY_SCHEME = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", re.IGNORECASE)
#: Other SQLAlchemy dialects, which raquel_pg cannot use.
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9_]*(\+[a-z0-9_]+)?://", re.IGNORECASE)


def conninfo(database: Any, argument: str = "dsn") -> str | None:
    """The libpq conninfo for ``database``, or None when it is not a DSN, URL or engine (a pool).

    A plain DSN (``postgresql://…``, ``host=… dbname=…``) is returned as is;
    ``postgresql+<driver>://…`` loses its ``+<driver>``. Raises
    :class:`~raquel_pg.InvalidArgument` for another database (``sqlite://``,
    ``mysql+pymysql://``…): raquel_pg needs PostgreSQL.
    """
    if isinstance(database, str):
        return _from_string(database, argument)
    url = _sqlalchemy_url(database)
    if url is None:
        return None
    if url.get_backend_name() != "postgresql":
        raise InvalidArgument(
            argument, f"{argument}: raquel_pg needs PostgreSQL, got a {url.get_backend_name()!r} SQLAlchemy URL"
        )
    rendered: str = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return rendered


def _from_string(dsn: str, argument: str) -> str:
    match = _SQLALCHEMY_SCHEME.match(dsn)
    if match:
        return "postgresql://" + dsn[match.end() :]
    other = _OTHER_SCHEME.match(dsn)
    if other and not dsn.lower().startswith(("postgresql://", "postgres://")):
        scheme = dsn.split("://", 1)[0]
        raise InvalidArgument(argument, f"{argument}: raquel_pg needs PostgreSQL, got a {scheme!r} URL")
    return dsn


def _sqlalchemy_url(database: Any) -> Any:
    """The SQLAlchemy URL of ``database`` (an URL, Engine or AsyncEngine), else None."""
    engine_module = sys.modules.get("sqlalchemy.engine")
    if engine_module is None:
        return None
    if isinstance(database, engine_module.URL):
        return database
    if isinstance(database, engine_module.Engine):
        return database.url
    asyncio_module = sys.modules.get("sqlalchemy.ext.asyncio")
    if asyncio_module is not None and isinstance(database, asyncio_module.AsyncEngine):
        return database.url
    return None
