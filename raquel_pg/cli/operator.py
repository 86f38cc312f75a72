"""The commands an operator uses on jobs: enqueue, stats, jobs, show, retry, cancel, purge.

Each connects, runs the engine's functions through ``queries.sql`` and prints a table, a line or
(``--json``) JSON; a job that could not be retried or cancelled makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg

from .. import params, render
from ..durations import parse_duration, parse_iso, parse_time
from ..errors import InvalidArgument
from ..model import JobRecord
from .common import UserError, client_options, connect, fetch, get_job, parse_job_id, print_json, resolve_dsn

#: Statuses ``purge`` may delete (finished jobs), also its default.
PURGEABLE = ("success", "cancelled", "expired", "exhausted")
#: Statuses ``retry`` may requeue; the first three are its default.
RETRYABLE = ("failed", "exhausted", "expired", "cancelled")


def cmd_enqueue(args: argparse.Namespace) -> int:
    from ..client import Raquel

    at = parse_iso(args.at, "--at") if args.at else None
    delay = parse_duration(args.delay, "--delay") if args.delay else None
    max_age = parse_duration(args.max_age, "--max-age") if args.max_age else None
    with Raquel(resolve_dsn(args.dsn), pool_size=1, **client_options(args)) as rq:
        job = rq.enqueue(
            args.queue, args.payload, at=at, delay=delay, max_age=max_age, max_retry_count=args.max_retry_count
        )
        if args.json:
            print_json(render.job_json(job))
        else:
            print(job.id)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        try:
            while True:
                rows = fetch(conn, "ops_stats")
                now = datetime.now(timezone.utc)
                if args.json and args.watch is not None:
                    print(json.dumps(render.stats_json(rows, now)))  # JSON Lines: one document a refresh
                elif args.json:
                    print_json(render.stats_json(rows, now))
                else:
                    if args.watch is not None:
                        sys.stdout.write("\x1b[H\x1b[2J")  # cursor home, clear screen
                        print(f"raquel-pg stats, every {args.watch:g}s (Ctrl-C to quit)  {render.iso(now)}\n")
                    print(render.stats_table(rows))
                sys.stdout.flush()
                if args.watch is None:
                    return 0
                time.sleep(args.watch)
        except KeyboardInterrupt:
            # Ctrl-C ends --watch, whether it comes during the sleep or the query.
            if args.watch is None:
                raise
            return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UserError(f"--limit: must be >= 1, got {args.limit}")
    with connect(args) as conn:
        rows = fetch(conn, "ops_jobs", {"queue": args.queue, "statuses": args.status or None, "limit": args.limit})
    jobs = [JobRecord.from_row(row) for row in rows]
    if args.json:
        print_json([render.job_json(job) for job in jobs])
    else:
        print(render.jobs_table(jobs))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    job_id = parse_job_id(args.job_id)
    with connect(args) as conn:
        job = get_job(conn, job_id)
    if job is None:
        raise UserError(f"no job {job_id}")
    if args.json:
        print_json(render.job_json(job))
    else:
        print(render.job_details(job))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    filters = args.queue is not None or args.status or args.since is not None
    if args.job_ids and (filters or args.all):
        raise UserError("give job ids or filters (--queue, --status, --since, --all), not both")
    if not args.job_ids and not filters and not args.all:
        raise UserError("give job ids, or filters (--queue, --status, --since), or --all")
    with connect(args) as conn:
        if not args.job_ids:
            since = parse_time(args.since, "--since") if args.since else None
            rows = fetch(conn, "ops_retry_jobs", {"queue": args.queue, "statuses": args.status or None, "since": since})
            count: int = rows[0][0]
            if args.json:
                print_json({"retried": count})
            else:
                print(f"retried {count} job{'s' if count != 1 else ''}")
            return 0
        results = []
        for text in args.job_ids:
            job_id = parse_job_id(text)
            retried: bool = fetch(conn, "ops_retry", {"job_id": job_id})[0][0]
            reason = None if retried else _why_not(conn, job_id, "retried", RETRYABLE)
            results.append({"id": str(job_id), "retried": retried, "reason": reason})
    return _report(results, "retried", args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    """``cancel``: waiting jobs cancelled at once; with ``--running``, a claimed one's worker asked to stop it
    (``raquel_cancel(running => true)``). Status 0 when every job was cancelled or asked to stop, else 1."""
    results = []
    with connect(args) as conn:
        for text in args.job_ids:
            job_id = parse_job_id(text)
            if args.running:
                done = fetch(conn, "cancel_running", {"job_id": job_id})[0][0]
            else:
                done = fetch(conn, "cancel", {"job_id": job_id, "claim_id": None})[0][0]
            allowed = ("queued", "failed", "claimed") if args.running else ("queued", "failed")
            results.append(
                {
                    "id": str(job_id),
                    "cancelled": done == "cancelled",
                    "cancel_requested": done == "cancel_requested",
                    "reason": None if done else _why_not(conn, job_id, "cancelled", allowed),
                }
            )
    if args.json:
        print_json(results)
    else:
        for r in results:
            if r["cancelled"]:
                print(f"cancelled {r['id']}")
            elif r["cancel_requested"]:
                print(f"cancel requested {r['id']} (running: its worker stops it, and it ends cancelled)")
            else:
                print(f"not cancelled {r['id']}: {r['reason']}", file=sys.stderr)
    return 0 if all(r["cancelled"] or r["cancel_requested"] for r in results) else 1


def _why_not(conn: psycopg.Connection[tuple[Any, ...]], job_id: UUID, verb: str, allowed: Sequence[str]) -> str:
    job = get_job(conn, job_id)
    if job is None:
        return "no such job"
    if job.status == params.CLAIMED and job.lease_expires_at and job.lease_expires_at < datetime.now(timezone.utc):
        return (
            f"it is claimed by {job.claimed_by or '(unnamed)'} whose lease expired at "
            f"{render.iso(job.lease_expires_at)}; the next claim on queue {job.queue} rescues it"
        )
    if job.status == params.CLAIMED:
        hint = " (--running asks its worker to stop it)" if verb == "cancelled" else ""
        return (
            f"it is claimed by {job.claimed_by or '(unnamed)'} and running; "
            f"a running job is not {verb} out from under its worker{hint}"
        )
    return f"it is {job.status}; only {', '.join(allowed)} jobs can be {verb}"


def _report(results: list[dict[str, Any]], verb: str, as_json: bool) -> int:
    if as_json:
        print_json(results)
    else:
        for r in results:
            if r[verb]:
                print(f"{verb} {r['id']}")
            else:
                print(f"not {verb} {r['id']}: {r['reason']}", file=sys.stderr)
    return 0 if all(r[verb] for r in results) else 1


def cmd_purge(args: argparse.Namespace) -> int:
    older_than = parse_duration(args.older_than, "--older-than")
    try:  # checked before anything runs: the cutoff must be a time
        datetime.now(timezone.utc) - older_than
    except OverflowError:
        raise InvalidArgument("--older-than", f"--older-than: {args.older_than!r} reaches before year 1") from None
    if args.batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {args.batch_size}")
    statuses = args.status or list(PURGEABLE)
    bar = sys.stderr.isatty() and not args.json
    with connect(args) as conn:
        now = fetch(conn, "ops_now")[0][0]  # one cutoff for the count and every batch
        values = {"older_than": older_than, "statuses": statuses, "now": now, "batch_size": args.batch_size}
        total: int = fetch(conn, "ops_purgeable", values)[0][0]
        purged = 0
        while True:
            deleted: int = fetch(conn, "ops_purge", values)[0][0]
            purged += deleted
            if bar:
                sys.stderr.write("\r" + render.progress_bar(purged, max(total, purged)))
                sys.stderr.flush()
            if deleted == 0:  # not "< batch_size": a batch skips rows another session has locked
                break
    if bar:
        sys.stderr.write("\n")
    cutoff = render.iso(params.clamped_datetime(now - older_than // timedelta(milliseconds=1)))
    if args.json:
        print_json({"purged": purged, "statuses": statuses, "finished_before": cutoff})
    else:
        print(f"purged {purged} job{'s' if purged != 1 else ''} ({', '.join(statuses)}) finished before {cutoff}")
    return 0
