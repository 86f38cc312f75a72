"""The worker and scheduler commands: run a handler on the worker of its kind, or fire the periodic
jobs' ticks, until SIGTERM/SIGINT.

Schedulers are safe on any number of hosts at once: each tick is fired by exactly one call
(``raquel_fire_schedules``). ``worker --with-scheduler`` runs one beside the worker, stopped
when the worker stops.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._acompat import on_signals
from ..durations import parse_duration
from ..handlers import is_async_handler
from ..worker import STOP_SIGNALS
from .common import UserError, client_options, require_extra, resolve_dsn


def load_handler(target: str) -> Callable[..., Any]:
    """The callable named by ``package.module:function`` (the working directory is importable)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UserError(f"handler {target!r}: expected package.module:function")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"handler {target!r}: cannot import {module_name}: {error}") from None
    handler: Any = module
    for part in attribute.split("."):
        if not hasattr(handler, part):
            raise UserError(f"handler {target!r}: {module_name} has no attribute {attribute!r}")
        handler = getattr(handler, part)
    if not callable(handler):
        raise UserError(f"handler {target!r} is not callable")
    loaded: Callable[..., Any] = handler
    return loaded


def load_tasks(module_names: list[str]) -> list[Any]:
    """The tasks (``Task`` or ``AsyncTask`` objects) defined at the top level of these modules.

    Refuses (UserError) a module that cannot be imported, modules holding no
    task, and a mix of sync and async tasks (one worker runs one kind).
    """
    from ..tasks import Task
    from ..tasks_async import AsyncTask

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    found: dict[str, Any] = {}
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise UserError(f"--tasks {name}: cannot import it: {error}") from None
        for value in vars(module).values():
            if isinstance(value, (Task, AsyncTask)):
                found[value.name] = value
    if not found:
        raise UserError(f"--tasks {', '.join(module_names)}: no task there (decorate functions with @rq.task)")
    if len({type(task) for task in found.values()}) > 1:
        raise UserError("--tasks: the modules mix Raquel and AsyncRaquel tasks; run one worker for each kind")
    return list(found.values())


def cmd_worker(args: argparse.Namespace) -> int:
    """Runs the handler with the worker of its kind: async for a coroutine function, else sync."""
    if (args.handler is None) == (not args.tasks):
        raise UserError("give a handler (package.module:function) or --tasks MODULE, one of the two")
    tasks = load_tasks(args.tasks) if args.tasks else None
    handler = load_handler(args.handler) if args.handler is not None else None
    if not args.queue and not args.all_queues and tasks is None:
        raise UserError("give the queues to work: -q QUEUE (repeatable), or --all-queues")
    if args.queue and args.all_queues:
        raise UserError("give -q QUEUE or --all-queues, not both")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.metrics_port is not None:
        require_extra("metrics", "prometheus_client")
        from ..metrics import serve_worker_metrics

        serve_worker_metrics(args.metrics_port, args.metrics_host)
        logging.getLogger("raquel_pg.cli").info(
            "worker metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port
        )
    dsn = resolve_dsn(args.dsn)
    queues = tuple(args.queue or ())
    if tasks is not None and not queues and not args.all_queues:
        queues = tuple(sorted({task.queue for task in tasks}))
    log = logging.getLogger("raquel_pg.cli")
    options = worker_options(args)
    from ..tasks_async import AsyncTask

    if (tasks is not None and isinstance(tasks[0], AsyncTask)) or (handler is not None and is_async_handler(handler)):
        return asyncio.run(_run_async_worker(dsn, handler, tasks, queues, args, options, log))
    from ..client import Raquel

    with Raquel(dsn, **client_options(args)) as rq:
        if handler is None:
            worker = rq.worker(*queues, tasks=tasks, **options)
        else:
            worker = rq.subscribe(*queues, **options)(handler)
        log.info(
            "worker %s started on %s (concurrency %d)",
            worker.claim_as,
            ", ".join(queues) or "all queues",
            args.concurrency,
        )
        scheduler = rq.scheduler() if args.with_scheduler else None
        beside = None
        if scheduler is not None:
            beside = threading.Thread(target=scheduler.run, name="raquel-scheduler")
            beside.start()
            log.info("scheduler started beside the worker")
        try:
            worker.run(handle_signals=True)
        finally:
            if scheduler is not None and beside is not None:
                scheduler.stop()
                beside.join()
    log.info("worker stopped")
    return 0


def worker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The worker's options from the command line (concurrency, prefetch, durable claims, grace period, timeout)."""
    options: dict[str, Any] = {
        "concurrency": args.concurrency,
        "prefetch": args.prefetch,
        "durable_claims": args.durable_claims,
        "grace_period": args.grace_period,
    }
    if args.timeout:
        options["timeout"] = parse_duration(args.timeout, "--timeout")
    return options


async def _run_async_worker(
    dsn: str,
    handler: Callable[..., Any] | None,
    tasks: list[Any] | None,
    queues: tuple[str, ...],
    args: argparse.Namespace,
    options: dict[str, Any],
    log: logging.Logger,
) -> int:
    from ..client_async import AsyncRaquel

    async with AsyncRaquel(dsn, **client_options(args)) as rq:
        if handler is None:
            worker = rq.worker(*queues, tasks=tasks, **options)
        else:
            worker = rq.subscribe(*queues, **options)(handler)
        log.info(
            "async worker %s started on %s (concurrency %d)",
            worker.claim_as,
            ", ".join(queues) or "all queues",
            args.concurrency,
        )
        scheduler = rq.scheduler() if args.with_scheduler else None
        beside = None
        if scheduler is not None:
            beside = asyncio.create_task(scheduler.run(), name="raquel-scheduler")
            log.info("scheduler started beside the worker")
        try:
            await worker.run(handle_signals=True)
        finally:
            if scheduler is not None and beside is not None:
                scheduler.stop()
                await beside
    log.info("worker stopped")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Fires the periodic jobs' due ticks until SIGTERM/SIGINT (then returns at once)."""
    from ..client import Raquel

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("raquel_pg.cli")
    with Raquel(resolve_dsn(args.dsn), pool_size=1, **client_options(args)) as rq:
        scheduler = rq.scheduler(poll_interval=args.poll_interval)
        restore = on_signals(STOP_SIGNALS, scheduler.stop)
        log.info("scheduler started (polling at least every %gs)", args.poll_interval)
        try:
            scheduler.run()
        finally:
            restore()
    log.info("scheduler stopped")
    return 0
