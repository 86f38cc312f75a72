"""raquel_pg's migrations as a Django migration operation.

    # yourapp/migrations/0002_raquel_pg.py
    from django.db import migrations
    from raquel_pg.integrations.django import ApplyRaquelMigrations

    class Migration(migrations.Migration):
        dependencies = [("yourapp", "0001_initial")]
        operations = [ApplyRaquelMigrations()]

``manage.py migrate`` then applies the pending raquel_pg migrations on
Django's connection inside the migration's transaction and records them in
``raquel_migrations`` (see :mod:`raquel_pg.integrations.inline`);
``manage.py sqlmigrate`` prints the SQL it would run on that database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.migrations.operations.base import Operation

from ..errors import MigrationError
from ..schema import LOCK_SQL
from .inline import apply_pending, pending_migrations, statements


class ApplyRaquelMigrations(Operation):
    """Applies raquel_pg's pending migrations (forwards only; no model state changes).

    Needs PostgreSQL and an atomic migration (Django's default there).
    Raises :class:`~raquel_pg.MigrationError` otherwise or when an applied
    raquel_pg migration changed; a failing migration raises the database's
    error and Django rolls the migration back. Not reversible: raquel_pg's
    migrations are forward-only.
    """

    reversible = False
    reduces_to_sql = True

    def state_forwards(self, app_label: str, state: Any) -> None:
        """No Django model changes."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            raise MigrationError(f"raquel_pg needs PostgreSQL, not {connection.vendor}")
        with connection.cursor() as cursor:

            def query(statement: str) -> Sequence[Sequence[Any]]:
                cursor.execute(statement)
                rows: Sequence[Sequence[Any]] = cursor.fetchall()
                return rows

            if schema_editor.collect_sql:  # sqlmigrate: print, run nothing
                schema_editor.collected_sql.extend(
                    f"{s.rstrip().rstrip(';')};" for s in [LOCK_SQL, *statements(pending_migrations(query))]
                )
                return
            if not connection.in_atomic_block:
                raise MigrationError("raquel_pg migrations must run in an atomic Django migration")

            def execute(statement: str) -> None:
                cursor.execute(statement)  # no params: Django passes the text through as is

            apply_pending(query, execute)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        raise MigrationError("raquel_pg migrations are forward-only and cannot be unapplied")

    def describe(self) -> str:
        return "Apply raquel_pg's pending migrations"
