"""The worker command: loads a handler and runs it on the worker of its kind until a signal."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from ..handlers import is_async_handler
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



def cmd_worker(args: argparse.Namespace) -> int:
    """Runs the handler with the worker of its kind: async for a coroutine function, else sync."""
    handler = load_handler(args.handler)
    if not args.queue and not args.all_queues:
        raise UserError("give the queues to work: -q QUEUE (repeatable), or --all-queues")
    if args.queue and args.all_queues:
        raise UserError("give -q QUEUE or --all-queues, not both")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.metrics_port is not None:
        require_extra("metrics", "prometheus_client")
        from ..metrics import serve_worker_metrics

        serve_worker_metrics(args.metrics_port, args.metrics_host)
        logging.getLogger("raquel_pg.cli").info(
            "worker metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port)
    dsn = resolve_dsn(args.dsn)
    queues = tuple(args.queue or ())
    log = logging.getLogger("raquel_pg.cli")
    if is_async_handler(handler):
        return asyncio.run(_run_async_worker(dsn, handler, queues, args, log))
    from ..client import Raquel

    with Raquel(dsn, **client_options(args)) as rq:
        worker = rq.subscribe(*queues, concurrency=args.concurrency, grace_period=args.grace_period)(handler)
        log.info("worker %s started on %s (concurrency %d)", worker.claim_as,
                 ", ".join(queues) or "all queues", args.concurrency)
        worker.run(handle_signals=True)
    log.info("worker stopped")
    return 0


async def _run_async_worker(dsn: str, handler: Callable[..., Any], queues: tuple[str, ...],
                            args: argparse.Namespace, log: logging.Logger) -> int:
    from ..client_async import AsyncRaquel

    async with AsyncRaquel(dsn, **client_options(args)) as rq:
        worker = rq.subscribe(*queues, concurrency=args.concurrency, grace_period=args.grace_period)(handler)
        log.info("async worker %s started on %s (concurrency %d)", worker.claim_as,
                 ", ".join(queues) or "all queues", args.concurrency)
        await worker.run(handle_signals=True)
    log.info("worker stopped")
    return 0

