"""A real PgBouncer in front of a PostgreSQL server, for the tests and the benchmark.

``running(server_dsn)`` writes a configuration to a temporary directory,
starts Debian's ``pgbouncer`` on a free port of 127.0.0.1 in front of the
server of ``server_dsn`` (TCP host and port, or a Unix socket directory), with
every database passed through (``* =``), trust authentication for the DSN's
user and ``pool_mode = transaction``, and stops it when the block ends.
PgBouncer refuses to run as root: as root it runs (``runuser``) as the
owner of the server's Unix socket directory when it reaches the server by
socket (the embedded server's user: only it may enter that directory), else
as user ``postgres``; the temporary directory is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Where Debian installs the binary (not on a non-root PATH).
DEBIAN_BINARY = "/usr/sbin/pgbouncer"

#: The user PgBouncer runs as when this process is root and the server is reached by TCP.
RUN_AS = "postgres"


def binary() -> str | None:
    """The pgbouncer program: on PATH, else Debian's; None when neither exists."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def missing() -> str | None:
    """Why PgBouncer cannot be started here (for a test's skip reason), or None when it can."""
    if binary() is None:
        return "pgbouncer not found (apt-get install -y pgbouncer; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and there is no user {RUN_AS!r} to run pgbouncer as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _host(server_dsn: str) -> str:
    return str(conninfo_to_dict(server_dsn).get("host") or "/var/run/postgresql")


def _account(server_dsn: str) -> pwd.struct_passwd:
    """Whom PgBouncer runs as when this process is root (see the module docstring)."""
    host = _host(server_dsn)
    if host.startswith("/") and os.path.isdir(host):
        owner = pwd.getpwuid(os.stat(host).st_uid)
        if owner.pw_uid != 0:
            return owner
    return pwd.getpwnam(RUN_AS)


def _config(directory: Path, port: int, server_dsn: str, pool_mode: str, pool_size: int) -> str:
    server = conninfo_to_dict(server_dsn)
    host = _host(server_dsn)
    target = f"host={host} port={server.get('port') or 5432}"
    user = str(server.get("user") or RUN_AS)
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    return f"""\
[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 2000
max_db_connections = 0
ignore_startup_parameters = extra_float_digits,options
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""


@contextmanager
def running(
    server_dsn: str, *, pool_mode: str = "transaction", pool_size: int = 20, timeout: float = 10.0
) -> Iterator[str]:
    """Runs PgBouncer in front of ``server_dsn``'s server; yields ``server_dsn`` rewritten to go through it.

    Any database of that server can be reached through the pooler: rewrite a
    DSN with :func:`through`. Raises RuntimeError (with PgBouncer's log) when
    it does not accept connections within ``timeout`` seconds; call
    :func:`missing` first to skip where it cannot run.
    """
    program = binary()
    if program is None:
        raise RuntimeError(missing())
    with tempfile.TemporaryDirectory(prefix="raquel_pg_pgbouncer_") as tmp:
        directory = Path(tmp)
        port = _free_port()
        ini = directory / "pgbouncer.ini"
        ini.write_text(_config(directory, port, server_dsn, pool_mode, pool_size))
        # -q: nothing on stderr once running (the log file has it all); an unread
        # stderr pipe filled up after ~400 connections and froze PgBouncer.
        command = [program, "-q", str(ini)]
        if os.geteuid() == 0:
            account = _account(server_dsn)
            for path in (directory, *directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
            command = ["runuser", "-u", account.pw_name, "--", *command]
        with open(directory / "stderr.log", "w") as stderr:  # errors before the log file opens
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_accepting(port, process, directory, timeout)
            pooled = through(server_dsn, port)
            _check(pooled, directory)
            yield pooled
        finally:
            _stop(process, directory)


def through(dsn: str, port: int) -> str:
    """``dsn`` (any database of the server) rewritten to go through the PgBouncer on ``port``."""
    return make_conninfo(dsn, host="127.0.0.1", port=port)


def port_of(pooled_dsn: str) -> int:
    """The PgBouncer port of a DSN :func:`running` yielded."""
    return int(str(conninfo_to_dict(pooled_dsn)["port"]))


def _log(directory: Path) -> str:
    path = directory / "pgbouncer.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def _wait_accepting(port: int, process: subprocess.Popen[bytes], directory: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            stderr = (directory / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"pgbouncer exited with status {process.returncode}: {stderr}{_log(directory)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer did not listen on port {port} in {timeout:.0f}s: {_log(directory)}"
                ) from None
            time.sleep(0.02)


def _check(pooled: str, directory: Path) -> None:
    """Raises RuntimeError (with PgBouncer's log) unless a query goes through to the server."""
    try:
        with psycopg.connect(pooled, connect_timeout=5, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        raise RuntimeError(f"pgbouncer does not reach the server ({error}): {_log(directory)}") from None


def _stop(process: subprocess.Popen[bytes], directory: Path) -> None:
    """SIGTERM to PgBouncer itself (its pid file; runuser does not pass it on), then waits."""
    pidfile = directory / "pgbouncer.pid"
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
