"""raquel_pg's migrations applied from other tools' migration runs.

* :mod:`raquel_pg.integrations.alembic`: ``upgrade(op)`` in an Alembic revision;
* :mod:`raquel_pg.integrations.django`: ``ApplyRaquelMigrations()`` in a Django
  migration's ``operations``.

Both apply the pending migrations on the tool's own connection, inside its
transaction, and record them in ``raquel_migrations`` as ``raquel-pg
migrate`` does (:mod:`raquel_pg.integrations.inline`).
"""
