"""The commands that serve HTTP for watching the queues: dashboard and metrics."""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import InvalidArgument
from .common import require_extra, resolve_dsn


def cmd_dashboard(args: argparse.Namespace) -> int:
    require_extra("dashboard", "starlette", "uvicorn", "jinja2", "multipart", "prometheus_client")
    from ..dashboard import serve

    token = args.token or os.environ.get("RAQUEL_PG_DASHBOARD_TOKEN") or None
    serve(
        resolve_dsn(args.dsn),
        host=args.host,
        port=args.port,
        read_only=args.read_only,
        token=token,
        log_level=args.log_level,
    )
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    require_extra("metrics", "prometheus_client")
    from prometheus_client import start_http_server

    from ..metrics import queue_registry

    dsn = resolve_dsn(args.dsn)
    if not args.finished_every >= 0:  # NaN too
        raise InvalidArgument("finished_every", f"finished_every: must be >= 0 seconds, got {args.finished_every}")
    registry = queue_registry(dsn, args.finished_every)
    start_http_server(args.port, addr=args.host, registry=registry)  # a daemon thread
    print(f"raquel-pg metrics on http://{args.host}:{args.port}/metrics", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
