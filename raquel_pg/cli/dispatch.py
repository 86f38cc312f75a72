"""``main``: runs the command the arguments name, and turns its errors into one line on stderr.

A user mistake or a database error exits with status 2, a closed stdout with 141, Ctrl-C with
130; otherwise the command's own status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import psycopg

from ..errors import InvalidArgument, RaquelError
from . import controls, database, monitor, operator, worker
from .arguments import parser

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": database.cmd_migrate,
    "demo": database.cmd_demo,
    "import-raquel": database.cmd_import_raquel,
    "worker": worker.cmd_worker,
    "scheduler": worker.cmd_scheduler,
    "enqueue": operator.cmd_enqueue,
    "stats": operator.cmd_stats,
    "jobs": operator.cmd_jobs,
    "show": operator.cmd_show,
    "retry": operator.cmd_retry,
    "cancel": operator.cmd_cancel,
    "purge": operator.cmd_purge,
    "pause": controls.cmd_pause,
    "resume": controls.cmd_resume,
    "limits": controls.cmd_limits,
    "retention": controls.cmd_retention,
    "prune": controls.cmd_prune,
    "controls": controls.cmd_controls,
    "grant": database.cmd_grant,
    "server": database.cmd_server,
    "psql": database.cmd_psql,
    "dashboard": monitor.cmd_dashboard,
    "metrics": monitor.cmd_metrics,
}


#: The commands only the owner of raquel_pg's objects may run (docs/operations/roles.md).
OWNER_COMMANDS = frozenset({"migrate", "grant"})


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``raquel-pg`` with ``argv`` (default: sys.argv); returns the exit status."""
    words = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser().parse_known_args(words)
    if args.command == "psql":  # everything after it is psql's, options included (-c ...)
        args.psql_args = words[words.index("psql") + 1 :]
    elif unknown:
        parser().parse_args(words)  # argparse's own message and exit status 2
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return status
    except BrokenPipeError:
        # The reader went away (`stats --json | head -1`): end quietly, as a
        # command killed by SIGPIPE would; stdout is pointed at /dev/null so
        # that the flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except (
        psycopg.errors.UndefinedFunction,
        psycopg.errors.UndefinedTable,
        psycopg.errors.InvalidSchemaName,
    ) as error:  # schema raquel (0001_engine_schema) missing
        _fail(args, f"{_first_line(error)} (is the database migrated? run: raquel-pg migrate)")
    except psycopg.errors.InsufficientPrivilege as error:  # a role granted less (roles.sql)
        if args.command in OWNER_COMMANDS:
            hint = "migrate and grant run as the owner of raquel_pg's objects: give the owner's --dsn"
        else:
            hint = (
                "this role was not granted it: the operator role may run every command but migrate and grant; "
                "as the owner, run: raquel-pg grant --operator ROLE"
            )
        _fail(args, f"{_first_line(error)} ({hint})")
    except InvalidArgument as error:
        _fail(args, _naming_the_flag(words, error))
    except (RaquelError, psycopg.Error, ValueError) as error:
        _fail(args, _first_line(error))
    except KeyboardInterrupt:
        return 130
    return 2


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _naming_the_flag(words: Sequence[str], error: InvalidArgument) -> str:
    """The error's first line, led by the option the user typed for the refused argument.

    An argument the engine refuses is named as its SQL parameter (``max_retry_count``); the
    user typed ``--max-retry-count``.
    """
    flag = "--" + error.argument.replace("_", "-")
    text = _first_line(error)
    if any(word == flag or word.startswith(flag + "=") for word in words):
        for named in (f"{flag}: ", f"{error.argument}: "):  # the message's own name for it, once is enough
            text = text.removeprefix(named)
        return f"{flag}: {text}"
    return text


def _fail(args: argparse.Namespace, message: str) -> None:
    print(f"raquel-pg {args.command}: {message}", file=sys.stderr)
