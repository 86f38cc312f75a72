"""Managed PostgreSQL without superuser (issue 19, docs/deploying.md).

The recipe of docs/deploying.md, run as written: an admin role creates the
owner role, grants it CREATE on the database (0001_engine_schema's CREATE SCHEMA IF NOT
EXISTS raquel needs it even when the schema exists) and creates the install
schema it owns; the owner (no superuser) migrates and grants; the worker role
works through the client.
Roles are taken with ``SET ROLE`` at connection start (``options=-c role=``),
so every privilege check is the role's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from raquel_pg import MigrationError, Raquel
from raquel_pg.migrate import migrate, pending_migrations, status, up_to_date
from raquel_pg.roles import grant_roles
from raquel_pg.schema import load_migrations

Conn = psycopg.Connection[tuple[Any, ...]]


def as_role(dsn: str, role: str, search_path: str | None = None) -> str:
    options = f"-c role={role}" + (f" -c search_path={search_path}" if search_path else "")
    return make_conninfo(dsn, options=options)


@pytest.fixture
def fresh(make_database: Any) -> Iterator[tuple[str, dict[str, str]]]:
    """An empty database with an owner and a worker role, neither superuser; dropped roles at the end."""
    dsn: str = make_database()
    suffix = os.urandom(4).hex()
    roles = {"owner": f"raquel_owner_{suffix}", "worker": f"raquel_worker_{suffix}"}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for role in roles.values():
            admin.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(role))
            )
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(admin.info.dbname), sql.Identifier(roles["owner"])
            )
        )
        admin.execute(sql.SQL("CREATE SCHEMA queue AUTHORIZATION {}").format(sql.Identifier(roles["owner"])))
    yield dsn, roles
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("DROP SCHEMA IF EXISTS raquel, queue CASCADE")
        for role in roles.values():
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_owner_without_superuser_migrates_and_grants_and_a_worker_role_works(
    fresh: tuple[str, dict[str, str]],
) -> None:
    dsn, roles = fresh
    with psycopg.connect(as_role(dsn, roles["owner"], "queue"), autocommit=True) as owner:
        assert owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        applied = migrate(owner)
        assert len(applied) == len(load_migrations())
        grant_roles(owner, worker=roles["worker"], schema="queue")
        owned = owner.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'raquel_claim' AND pg_get_userbyid(proowner) = current_user"
        ).fetchone()
        assert owned is not None and owned[0] >= 1
    with Raquel(as_role(dsn, roles["worker"]), prepared_statements=False) as rq:
        job = rq.enqueue("q", "from the worker role")
        with rq.dequeue("q") as claimed:
            assert claimed is not None and claimed.id == job.id
        done = rq.get(job.id)
        assert done is not None and done.status == "success"


def migrated(fresh: tuple[str, dict[str, str]]) -> str:
    """``fresh`` migrated by its owner (install schema queue), its worker role granted; the DSN."""
    dsn, roles = fresh
    with psycopg.connect(as_role(dsn, roles["owner"], "queue"), autocommit=True) as owner:
        migrate(owner)
        grant_roles(owner, worker=roles["worker"], schema="queue")
    return dsn


def test_create_all_of_a_granted_role_is_a_no_op_on_an_up_to_date_database(
    fresh: tuple[str, dict[str, str]],
) -> None:
    # An application calling create_all() at start-up as a role that may not create anything, the
    # install schema not on its search_path (the roles need none: the client qualifies its calls).
    dsn = migrated(fresh)
    with Raquel(as_role(dsn, fresh[1]["worker"]), prepared_statements=False) as rq:
        rq.create_all()
        assert rq.enqueue("q").status == "queued"


def test_a_role_without_the_install_schema_on_its_search_path_reads_the_migrations_applied(
    fresh: tuple[str, dict[str, str]],
) -> None:
    dsn = migrated(fresh)
    with psycopg.connect(as_role(dsn, fresh[1]["worker"]), autocommit=True) as worker:
        assert worker.execute("SELECT current_schema()").fetchone() == ("public",)
        assert up_to_date(worker)
        assert all(state.applied_at is not None for state in status(worker))
        assert pending_migrations(worker) == []


def test_a_pending_migration_off_the_search_path_names_the_install_schema(
    fresh: tuple[str, dict[str, str]],
) -> None:
    dsn, roles = fresh
    with psycopg.connect(as_role(dsn, roles["owner"], "queue"), autocommit=True) as owner:
        migrate(owner, load_migrations()[:-1])
    with psycopg.connect(as_role(dsn, roles["owner"]), autocommit=True) as owner:  # search_path: public
        with pytest.raises(MigrationError, match="installed in schema 'queue'"):
            migrate(owner)
        assert owner.execute("SELECT to_regclass('public.raquel_migrations')").fetchone() == (None,)
