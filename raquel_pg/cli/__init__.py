"""The ``raquel-pg`` command (also ``python -m raquel_pg``).

The database comes from ``--dsn``, else ``RAQUEL_PG_DSN``, else
``DATABASE_URL``; with none, an embedded PostgreSQL is started with its data in
``./.raquel_pg/pgdata`` (the ``raquel-pg[embedded]`` extra). Behind a
transaction pooler, ``--no-prepared-statements`` and (for workers)
``--listen-dsn`` (else ``RAQUEL_PG_LISTEN_DSN``): see docs/deploying.md. A user mistake
(bad DSN, a job id ``show`` does not find, bad duration) prints one line on stderr and exits
with status 2, never a traceback; a command that could not do what was asked
(a job not retried or not cancelled, an unknown id included) exits with status 1. Every read command
takes ``--json``.

The modules: ``arguments`` (the argparse parser), ``dispatch`` (``main``: runs a
command, turns errors into one line), ``common`` (the DSN, the connection, output
helpers), and the commands by kind: ``database`` (migrate, import, grant, the
embedded server, psql, demo), ``operator`` (enqueue, stats, jobs, show, retry,
cancel, purge), ``controls`` (pause, resume, limits, retention, prune, controls), ``worker``
(worker, scheduler) and ``monitor`` (dashboard, metrics).
"""

from __future__ import annotations

from .arguments import parser
from .dispatch import main

__all__ = ["main", "parser"]
