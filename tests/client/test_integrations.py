"""raquel_pg's migrations applied from a real Alembic revision and a real Django migration (issue 24).

Each test runs the tool itself on a fresh database: Alembic through
``alembic.command.upgrade`` with a throwaway script directory, Django through
``call_command`` with an app whose migration holds ``ApplyRaquelMigrations``.
Both must leave the database as ``raquel-pg migrate`` would, recorded so that
the runner and ``raquel-pg migrate --status`` agree.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from raquel_pg import MigrationError, Raquel, embedded
from raquel_pg.cli import main
from raquel_pg.migrate import migrate, status
from raquel_pg.schema import LOCK_SQL, load_migrations

Conn = psycopg.Connection[Any]

ALEMBIC_ENV = """
from alembic import context
from sqlalchemy import create_engine
import psycopg

config = context.config
dsn = config.attributes["dsn"]
if context.is_offline_mode():
    context.configure(url="postgresql+psycopg://", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
"""

ALEMBIC_REVISION = '''
"""The application's revision that brings raquel_pg's schema along."""
import sqlalchemy as sa
from alembic import op

from raquel_pg.integrations.alembic import upgrade as raquel_pg_upgrade

revision = "a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True))
    raquel_pg_upgrade(op)
    op.execute("CREATE TABLE search_path_after AS SELECT current_setting('search_path') AS value")


def downgrade() -> None:
    pass
'''

#: Alembic's "async" template (alembic init -t async): the engine is an AsyncEngine.
ALEMBIC_ASYNC_ENV = """
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def run_migrations(connection):
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(config.attributes["url"])
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


asyncio.run(main())
"""

FAILING_REVISION = """
from alembic import op

revision = "a2"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1 / 0")


def downgrade() -> None:
    pass
"""


def every_migration() -> list[tuple[Any, ...]]:
    return [(m.version, m.name, m.checksum) for m in load_migrations()]


def recorded(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT version, name, checksum FROM raquel_migrations ORDER BY version").fetchall()


def works(dsn: str) -> None:
    """A job goes through raquel_pg on this database."""
    with Raquel(dsn, pool_size=1) as rq:
        rq.enqueue("q", "hello")
        with rq.dequeue("q") as job:
            assert job is not None and job.payload == "hello"


# --- Alembic -------------------------------------------------------------------


@pytest.fixture
def alembic_config(tmp_path: Path, make_database: Any) -> Any:
    """An Alembic config with a throwaway script directory (one revision calling upgrade(op)) and a fresh database."""
    from alembic.config import Config

    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ALEMBIC_ENV)
    (tmp_path / "versions" / "a1_raquel_pg.py").write_text(ALEMBIC_REVISION)
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.attributes["dsn"] = make_database()
    return config


def test_an_alembic_revision_applies_every_raquel_pg_migration_and_records_it(alembic_config: Any) -> None:
    from alembic import command

    command.upgrade(alembic_config, "head")
    dsn = alembic_config.attributes["dsn"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert recorded(conn) == every_migration()
        assert all(state.applied_at is not None for state in status(conn))
        assert migrate(conn) == []  # the runner agrees: nothing left to do
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("a1",)
        assert conn.execute("SELECT to_regclass('accounts') IS NOT NULL").fetchone() == (True,)
        # The revision's own statements after the call see its search_path as it was.
        assert conn.execute("SELECT value FROM search_path_after").fetchone() == ('"$user", public',)
    works(dsn)


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg_async"])
def test_an_alembic_revision_under_the_async_template_applies_them_too(
    alembic_config: Any, tmp_path: Path, driver: str
) -> None:
    pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio extension needs greenlet")
    if driver == "asyncpg":
        pytest.importorskip("asyncpg")
    from alembic import command
    from sqlalchemy import URL

    dsn = alembic_config.attributes["dsn"]
    params = conninfo_to_dict(dsn)
    host = str(params.get("host", ""))
    alembic_config.attributes["url"] = URL.create(
        f"postgresql+{driver}",
        username=params.get("user"),
        password=params.get("password"),
        host=None if host.startswith("/") else host or None,
        port=int(params.get("port") or 5432),
        database=params.get("dbname"),
        query={"host": host} if host.startswith("/") else {},
    )
    (tmp_path / "env.py").write_text(ALEMBIC_ASYNC_ENV)
    command.upgrade(alembic_config, "head")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert recorded(conn) == every_migration()
        assert migrate(conn) == []
    works(dsn)


def test_an_alembic_revision_applies_only_the_pending_migrations(alembic_config: Any) -> None:
    from alembic import command

    dsn = alembic_config.attributes["dsn"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        half = len(load_migrations()) // 2
        migrate(conn, load_migrations()[:half])
        first_half = recorded(conn)
    command.upgrade(alembic_config, "head")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert recorded(conn) == every_migration()
        assert recorded(conn)[:half] == first_half
        applied_at = conn.execute(
            "SELECT count(DISTINCT applied_at) FROM raquel_migrations WHERE version > %s", (half,)
        ).fetchone()
        assert applied_at == (1,)  # all in Alembic's one transaction
    works(dsn)


def test_an_alembic_revision_waits_for_a_concurrent_deploy_holding_the_migration_lock(alembic_config: Any) -> None:
    from alembic import command

    dsn = alembic_config.attributes["dsn"]
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            command.upgrade(alembic_config, "head")
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watcher:
        holder.execute(LOCK_SQL)  # a deploy in progress, transaction open
        thread = threading.Thread(target=upgrade)
        thread.start()
        deadline = time.monotonic() + 30
        while watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone() != (1,):
            assert time.monotonic() < deadline, "the revision never waited for the lock"
            time.sleep(0.02)
        assert watcher.execute("SELECT to_regclass('raquel_jobs')").fetchone() == (None,)
        holder.commit()
        thread.join(timeout=60)
    assert not thread.is_alive() and errors == []
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert recorded(conn) == every_migration()


def test_the_documented_include_name_keeps_raquel_pg_out_of_autogenerate(alembic_config: Any) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData, create_engine

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name is not None and name.startswith("raquel_"))

    command.upgrade(alembic_config, "head")
    dsn = alembic_config.attributes["dsn"]
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    with engine.connect() as connection:
        application = MetaData()
        application.reflect(connection, only=["accounts", "search_path_after"])
        unfiltered = compare_metadata(MigrationContext.configure(connection), application)
        filtered = compare_metadata(
            MigrationContext.configure(connection, opts={"include_name": include_name}), application
        )
    engine.dispose()
    # raquel_migrations is a table of the install schema (raquel_jobs there is a stand-in view).
    assert any(diff[0] == "remove_table" and diff[1].name == "raquel_migrations" for diff in unfiltered)
    assert filtered == []


def test_a_failing_later_revision_rolls_raquel_pg_back_with_it(alembic_config: Any, tmp_path: Path) -> None:
    from alembic import command

    (tmp_path / "versions" / "a2_fails.py").write_text(FAILING_REVISION)
    with pytest.raises(Exception, match="division by zero"):
        command.upgrade(alembic_config, "head")
    with psycopg.connect(alembic_config.attributes["dsn"], autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regclass('raquel_migrations'), to_regclass('raquel_jobs'), to_regclass('accounts')"
        ).fetchone() == (None, None, None)


def test_alembic_offline_mode_points_to_migrate_sql(alembic_config: Any) -> None:
    from alembic import command

    with pytest.raises(MigrationError, match="raquel-pg migrate --sql"):
        command.upgrade(alembic_config, "head", sql=True)


# --- Django --------------------------------------------------------------------

DJANGO_MIGRATION = """
from django.db import migrations, models

from raquel_pg.integrations.django import ApplyRaquelMigrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Account", [("id", models.AutoField(primary_key=True))]),
        ApplyRaquelMigrations(),
    ]
"""


@pytest.fixture(scope="module")
def django_app(tmp_path_factory: pytest.TempPathFactory, server_dsn: str) -> Iterator[None]:
    """Django configured once for this process, with an app ``raquel_djapp`` whose migration applies raquel_pg's."""
    import django
    from django.conf import settings

    root = tmp_path_factory.mktemp("django")
    (root / "raquel_djapp" / "migrations").mkdir(parents=True)
    (root / "raquel_djapp" / "__init__.py").write_text("")
    (root / "raquel_djapp" / "migrations" / "__init__.py").write_text("")
    (root / "raquel_djapp" / "migrations" / "0001_initial.py").write_text(DJANGO_MIGRATION)
    sys.path.insert(0, str(root))
    params = conninfo_to_dict(server_dsn)
    settings.configure(
        INSTALLED_APPS=["raquel_djapp"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": params.get("dbname", "postgres"),
                "USER": params.get("user", ""),
                "PASSWORD": params.get("password", ""),
                "HOST": params.get("host", ""),
                "PORT": params.get("port", ""),
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    yield
    sys.path.remove(str(root))


@pytest.fixture
def django_db(django_app: None, make_database: Any) -> str:
    """A fresh database, made Django's default (its DSN returned)."""
    from django.db import connections

    dsn: str = make_database()
    connections.close_all()
    connections["default"].settings_dict["NAME"] = conninfo_to_dict(dsn)["dbname"]
    return dsn


def test_a_django_migration_applies_every_raquel_pg_migration_and_records_it(django_db: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "raquel_djapp", verbosity=0)
    connections.close_all()
    with psycopg.connect(django_db, autocommit=True) as conn:
        assert recorded(conn) == every_migration()
        assert migrate(conn) == []
        assert conn.execute("SELECT app, name FROM django_migrations").fetchall() == [("raquel_djapp", "0001_initial")]
        assert conn.execute("SELECT to_regclass('raquel_djapp_account') IS NOT NULL").fetchone() == (True,)
    works(django_db)


def test_django_sqlmigrate_prints_the_pending_sql_and_runs_nothing(django_db: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    with psycopg.connect(django_db, autocommit=True) as conn:
        migrate(conn, load_migrations()[:-1])
    out = StringIO()
    call_command("sqlmigrate", "raquel_djapp", "0001", stdout=out)
    connections.close_all()
    text = out.getvalue()
    last = load_migrations()[-1]
    assert f"INSERT INTO raquel_migrations (version, name, checksum) VALUES ({last.version}, " in text
    assert f"VALUES ({last.version - 1}, " not in text  # applied already: not printed
    with psycopg.connect(django_db, autocommit=True) as conn:
        assert len(recorded(conn)) == last.version - 1


def test_the_django_operation_refuses_a_non_atomic_migration(django_db: str) -> None:
    from django.db import connection, connections

    from raquel_pg.integrations.django import ApplyRaquelMigrations

    with pytest.raises(MigrationError, match="atomic"):
        with connection.schema_editor(atomic=False) as editor:
            ApplyRaquelMigrations().database_forwards("raquel_djapp", editor, None, None)
    connections.close_all()
    with psycopg.connect(django_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('raquel_migrations')").fetchone() == (None,)


# --- raquel-pg migrate --sql ---------------------------------------------------


def test_migrate_sql_prints_the_pending_migrations_with_their_records(
    make_database: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql on this machine")
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, load_migrations()[: len(load_migrations()) // 2])
    assert main(["--dsn", dsn, "migrate", "--sql"]) == 0
    script = capsys.readouterr().out
    pending = load_migrations()[len(load_migrations()) // 2 :]
    assert [line for line in script.splitlines() if line.startswith("-- 00") and line.endswith(".sql")] == [
        f"-- {m.filename}" for m in pending
    ]
    assert script.count("INSERT INTO raquel_migrations") == len(pending)
    subprocess.run([psql, dsn, "-X", "-q"], input=script, text=True, check=True, capture_output=True)
    assert main(["--dsn", dsn, "migrate", "--status"]) == 0
    assert "pending" not in capsys.readouterr().out
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert migrate(conn) == []


def test_the_integrations_refuse_a_changed_migration(alembic_config: Any) -> None:
    from alembic import command

    dsn = alembic_config.attributes["dsn"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, load_migrations()[:2])
        conn.execute("UPDATE raquel_migrations SET checksum = 'x' WHERE version = 2")
    with pytest.raises(MigrationError, match=f"{load_migrations()[1].filename} was changed after it was applied"):
        command.upgrade(alembic_config, "head")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert len(recorded(conn)) == 2
