"""Security (issue 4, item 7): fixed search_path, no dynamic SQL, least-privilege roles."""

from __future__ import annotations

import ast
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import Raquel, embedded
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[tuple[Any, ...]]
PACKAGE = Path(__file__).resolve().parent.parent / "raquel_pg"


def test_every_function_has_a_fixed_search_path(conn: Conn) -> None:
    unpinned = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = current_schema()::regnamespace"
        "   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')").fetchall()
    assert unpinned == []


def test_no_function_runs_dynamic_sql(conn: Conn) -> None:
    dynamic = conn.execute(
        "SELECT p.proname FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = current_schema()::regnamespace"
        "   AND p.prosrc ~* '\\mEXECUTE\\M'").fetchall()
    assert dynamic == []


def builds_a_string(node: ast.AST) -> bool:
    """Whether an expression formats or concatenates: an f-string, +, % or .format()."""
    return any(isinstance(n, (ast.JoinedStr, ast.BinOp))
               or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "format")
               for n in ast.walk(node))


def test_python_never_builds_sql_from_strings() -> None:
    # Statements come from queries.sql, the migrations and roles.sql; values
    # travel as query parameters.
    built = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "execute" and node.args and builds_a_string(node.args[0])):
                built.append(f"{path.name}:{node.lineno}")
    assert built == []


def test_user_objects_cannot_hijack_the_functions(conn: Conn) -> None:
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    evil = f"evil_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE SCHEMA "{evil}"'.encode())
    try:
        conn.execute(f'CREATE TABLE "{evil}".raquel_jobs (LIKE raquel_jobs INCLUDING DEFAULTS)'.encode())
        conn.execute(f'CREATE FUNCTION "{evil}".raquel_now_ms() RETURNS bigint LANGUAGE sql'
                     f" AS 'SELECT 0::bigint'".encode())
        conn.execute("CREATE TEMP TABLE raquel_jobs (LIKE raquel_jobs INCLUDING DEFAULTS)")
        conn.execute(f'SET search_path = pg_temp, "{evil}", "{schema}"'.encode())

        conn.execute(f'SELECT "{schema}".raquel_enqueue(\'q\')'.encode())

        assert conn.execute(f'SELECT count(*), min(enqueued_at) > 0 FROM "{schema}".raquel_jobs'.encode()
                            ).fetchone() == (1, True)
        assert conn.execute(f'SELECT count(*) FROM "{evil}".raquel_jobs'.encode()).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_temp.raquel_jobs").fetchone()[0] == 0
    finally:
        conn.execute("RESET search_path")
        conn.execute(f'DROP SCHEMA "{evil}" CASCADE'.encode())


# --- least-privilege roles ------------------------------------------------------


@pytest.fixture
def roles(conn: Conn) -> Iterator[dict[str, str]]:
    """Three fresh roles (enqueuer, worker, operator) and one with no grant; dropped at the end."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"raquel_test_{kind}_{suffix}" for kind in ("enqueuer", "worker", "operator", "nobody")}
    for name in names.values():
        conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    yield names
    for name in names.values():
        conn.execute(f'DROP OWNED BY "{name}"'.encode())
        conn.execute(f'DROP ROLE "{name}"'.encode())


def as_role(dsn: str, role: str) -> str:
    return make_conninfo(dsn, options=f"-c role={role}")


def refused(dsn: str, statement: str, *args: Any) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(statement.encode(), args or None)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


@pytest.fixture
def granted(conn: Conn, roles: dict[str, str]) -> dict[str, str]:
    grant_roles(conn, enqueuer=roles["enqueuer"], worker=roles["worker"], operator=roles["operator"])
    return roles


def test_enqueuer_may_only_enqueue(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    other = conn.execute("SELECT raquel_enqueue('q', 'secret')").fetchone()[0]
    enqueuer = as_role(dsn, granted["enqueuer"])
    with Raquel(enqueuer) as rq:
        rq.enqueue("q", "mine")

    assert refused(enqueuer, "SELECT payload FROM raquel_jobs")
    assert refused(enqueuer, "UPDATE raquel_jobs SET status = 'success'")
    assert refused(enqueuer, "DELETE FROM raquel_jobs")
    assert refused(enqueuer, "INSERT INTO raquel_jobs (queue) VALUES ('q')")
    assert refused(enqueuer, "SELECT * FROM raquel_claim()")
    assert refused(enqueuer, "SELECT raquel_cancel(%s)", other)
    assert refused(enqueuer, "SELECT raquel_rescue()")
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'queued'").fetchone()[0] == 2


def test_worker_works_through_the_functions_only(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    worker = as_role(dsn, granted["worker"])
    with Raquel(worker) as rq:
        rq.enqueue("q")
        with rq.dequeue("q") as job:
            assert job is not None
        assert rq.count("q", "success") == 1

    assert refused(worker, "UPDATE raquel_jobs SET status = 'queued'")
    assert refused(worker, "DELETE FROM raquel_jobs")
    assert refused(worker, "INSERT INTO raquel_jobs (queue) VALUES ('q')")
    assert refused(worker, "SELECT raquel_rescue()")


def test_operator_may_repair_jobs_by_hand(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    conn.execute("SELECT raquel_enqueue('q')")
    operator = as_role(dsn, granted["operator"])

    assert not refused(operator, "UPDATE raquel_jobs SET scheduled_at = 0")
    assert not refused(operator, "SELECT raquel_rescue(), raquel_expire()")
    assert not refused(operator, "SELECT count(*) FROM raquel_migrations")
    assert refused(operator, "DROP TABLE raquel_jobs")


def test_role_without_grants_cannot_call_the_queue(dsn: str, roles: dict[str, str]) -> None:
    assert refused(as_role(dsn, roles["nobody"]), "SELECT raquel_enqueue('q')")


def test_roles_sql_runs_from_psql(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql")
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    subprocess.run(
        [psql, dsn, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(PACKAGE / "roles.sql"),
         "-c", f"SELECT pg_temp.raquel_grant_roles('{schema}', '{roles['enqueuer']}')"],
        check=True, capture_output=True)

    with Raquel(as_role(dsn, roles["enqueuer"])) as rq:
        rq.enqueue("q")
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 1
