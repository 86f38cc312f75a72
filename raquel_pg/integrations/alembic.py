"""raquel_pg's migrations from an Alembic revision.

    # versions/xxxx_raquel_pg.py
    from raquel_pg.integrations.alembic import upgrade as raquel_pg_upgrade

    def upgrade() -> None:
        raquel_pg_upgrade(op)

Each time the revision runs (and again in a later revision when raquel_pg is
upgraded: call it from a new revision), the pending raquel_pg migrations are
applied on Alembic's connection inside Alembic's transaction and recorded in
``raquel_migrations`` (see :mod:`raquel_pg.integrations.inline`). Sync
engines (``postgresql+psycopg``, ``postgresql+psycopg2``) and Alembic's async
template (``postgresql+asyncpg``, ``postgresql+psycopg_async``) both work. Offline
mode (``alembic upgrade --sql``) cannot know which migrations the target
database lacks: use ``raquel-pg migrate --sql`` against it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import MigrationError
from ..schema import Migration
from .inline import apply_pending

if TYPE_CHECKING:
    from alembic.operations import Operations


def upgrade(op: Operations) -> list[Migration]:
    """Applies raquel_pg's pending migrations in the running Alembic migration; returns them.

    Needs online mode, a PostgreSQL connection and a transaction (Alembic's
    default on PostgreSQL). Blocks while a concurrent ``raquel-pg migrate``
    holds the migration lock. Raises :class:`~raquel_pg.MigrationError` in
    offline mode, outside a transaction, or when an applied raquel_pg
    migration changed; a failing migration raises the database's error and
    Alembic rolls everything back.
    """
    if op.get_context().as_sql:
        raise MigrationError(
            "raquel_pg migrations cannot be planned in Alembic's offline (--sql) mode: it does not "
            "know which the database lacks; print them with `raquel-pg migrate --sql` instead"
        )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        raise MigrationError(f"raquel_pg needs PostgreSQL, not {bind.dialect.name}")
    if not bind.in_transaction():
        raise MigrationError("raquel_pg migrations must run inside Alembic's transaction")

    def query(statement: str) -> Sequence[Sequence[Any]]:
        return bind.exec_driver_sql(statement).fetchall()

    def execute(statement: str) -> None:
        if bind.dialect.driver == "asyncpg":
            # SQLAlchemy's asyncpg adapter prepares every statement, and a
            # prepared statement holds one command: run the script on the
            # driver's connection itself (same session, same transaction).
            from sqlalchemy.util import await_only

            driver_connection = bind.connection.driver_connection
            assert driver_connection is not None  # an open connection in a transaction
            await_only(driver_connection.execute(statement))
        else:
            bind.exec_driver_sql(statement, execution_options={"no_parameters": True})

    return apply_pending(query, execute)
