"""raquel_pg's web dashboard: ``raquel-pg dashboard`` (the ``raquel-pg[dashboard]`` extra).

:func:`create_app` builds the ASGI app; :func:`serve` runs it with uvicorn.
Importing this package without the extra's libraries (starlette, uvicorn,
jinja2, python-multipart, prometheus_client) raises ImportError.
"""

from __future__ import annotations

from ..errors import InvalidArgument
from .app import create_app
from .security import is_loopback

__all__ = ["create_app", "serve"]


def serve(
    dsn: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    read_only: bool = False,
    token: str | None = None,
    log_level: str = "info",
) -> None:
    """Serves the dashboard of ``dsn`` on ``host:port`` until interrupted (blocks).

    Bound to an address other than loopback, it needs ``token`` (every
    request must then carry it): InvalidArgument otherwise. Connects once
    first, so that a DSN it cannot reach raises ``psycopg.OperationalError``
    before anything is served.
    """
    import psycopg
    import uvicorn

    if not is_loopback(host) and not token:
        raise InvalidArgument(
            "token",
            f"token: required when the dashboard listens on {host} (anything but 127.0.0.1, ::1 or localhost; "
            "raquel-pg dashboard takes it as --token or RAQUEL_PG_DASHBOARD_TOKEN)",
        )
    with psycopg.connect(dsn, connect_timeout=10):
        pass
    uvicorn.run(create_app(dsn, read_only=read_only, token=token), host=host, port=port, log_level=log_level)
