"""The dashboard's web app (Starlette): server-rendered pages, a live queues table, a chart, actions.

Pages: ``/`` (queues, live, with pause/resume; throughput chart; purge), ``/jobs`` (filtered,
keyset-paged list), ``/jobs/{id}`` (everything about one job; retry,
cancel). ``/api/throughput`` feeds the chart, ``/fragments/queues`` the live
table, ``/metrics`` Prometheus. Actions are POSTs with the CSRF token,
refused (403) in read-only mode or when the connected role may not call the
engine function behind them; the page hides what is refused. See
docs/dashboard.md.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import params
from ..durations import parse_duration
from ..errors import InvalidArgument, NotMigrated, translate
from ..metrics import queue_registry
from . import data
from .data import NO_PRIVILEGES, WINDOWS, Privileges, Store
from .security import Csrf, LoopbackHostGuard, TokenGuard

HERE = Path(__file__).parent
#: Jobs per page of the jobs list.
PAGE_SIZE = 50
#: Statuses purge may delete.
PURGEABLE = ("success", "cancelled", "expired", "exhausted")


def _age(ms: int | None) -> str:
    """``93_000`` -> ``"1m 33s"``, ``5`` -> ``"5 ms"``; None -> ``"–"``."""
    if ms is None:
        return "–"
    seconds = ms / 1000
    if ms < 1000:
        return f"{ms} ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours < 48 else f"{hours // 24}d {hours % 24}h"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if moment else "–"


def _between(start: datetime | None, end: datetime | None) -> str:
    """The time from ``start`` to ``end``; "–" when either is unknown or ``end`` comes first (a job
    failed and scheduled again after its last claim)."""
    if start is None or end is None or end < start:
        return "–"
    return _age(int((end - start) / timedelta(milliseconds=1)))


class Dashboard:
    """The app's state: its store, its guards and whether it may act."""

    def __init__(self, dsn: str, *, read_only: bool = False) -> None:
        self.store = Store(dsn)
        self.dsn = dsn
        self.read_only = read_only
        self.csrf = Csrf()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters.update(age=_age, when=_when)
        self.templates.env.globals.update(between=_between, statuses=params.STATUSES, purgeable=PURGEABLE)
        self.metrics = queue_registry(dsn)

    async def allowed(self) -> Privileges:
        """What this dashboard may do: nothing in read-only mode, else what the role may call."""
        return NO_PRIVILEGES if self.read_only else await self.store.privileges()

    def page(self, request: Request, template: str, allowed: Privileges, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf": self.csrf.token,
                "allowed": allowed,
                "read_only": self.read_only,
                "notice": self.csrf.signed(request.query_params.get("notice"), request.query_params.get("sig")),
                **context,
            },
        )

    # --- pages ---------------------------------------------------------------

    async def queues_page(self, request: Request) -> Response:
        allowed = await self.allowed()
        return self.page(request, "queues.html", allowed, queues=await self.store.queues(), window=_window(request))

    async def queues_fragment(self, request: Request) -> Response:
        return self.page(request, "_queues_table.html", await self.allowed(), queues=await self.store.queues())

    async def throughput(self, request: Request) -> Response:
        queue = request.query_params.get("queue") or None
        return JSONResponse(await self.store.throughput(_window(request), queue))

    async def jobs_page(self, request: Request) -> Response:
        """The jobs list: ``queue``, ``status`` (repeatable: any of them), ``error`` (text in the error)
        and ``finished_within`` (a duration: finished that long ago or since; the queues table links
        its counts of the last hour here) filter it; ``before`` pages it."""
        q = request.query_params
        queue = q.get("queue") or None
        statuses = tuple(s for s in q.getlist("status") if s)
        error = q.get("error") or None
        within = q.get("finished_within") or None
        for status in statuses:
            if status not in params.STATUSES:
                raise HTTPException(400, f"status: must be one of {', '.join(params.STATUSES)}")
        finished_after = None
        if within is not None:
            try:
                span = parse_duration(within, "finished_within") / timedelta(milliseconds=1)
                finished_after = await self.store.now_ms() - int(span)
            except InvalidArgument as refused:
                raise HTTPException(400, str(refused)) from None
        before_text = q.get("before")
        before = _uuid(before_text) if before_text else None
        given = (("queue", [queue]), ("status", statuses), ("error", [error]), ("finished_within", [within]))
        query = [(name, value) for name, values in given for value in values if value]
        filters = data.JobFilters(queue, statuses, finished_after)
        searched: int | None = None
        if error is None:
            jobs = await self.store.jobs(filters, before=before, limit=PAGE_SIZE + 1)
            resume = jobs[PAGE_SIZE - 1].id if len(jobs) > PAGE_SIZE else None
        else:
            found = await self.store.search_errors(error, filters, before=before, limit=PAGE_SIZE + 1)
            jobs, searched = found.jobs, found.scanned
            resume = jobs[PAGE_SIZE - 1].id if len(jobs) > PAGE_SIZE else found.resume
        jobs = jobs[:PAGE_SIZE]
        older = f"/jobs?{urlencode([*query, ('before', str(resume))])}" if resume else None
        return self.page(
            request,
            "jobs.html",
            await self.allowed(),
            jobs=jobs,
            filters={"queue": queue, "status": statuses, "error": error, "finished_within": within},
            older=older,
            searched=searched,
            page_size=PAGE_SIZE,
            error_scan=data.ERROR_SCAN,
            first=f"/jobs?{urlencode(query)}" if before else None,
        )

    async def job_page(self, request: Request) -> Response:
        job = await self.store.job(_uuid(request.path_params["job_id"]))
        if job is None:
            raise HTTPException(404, f"no job {request.path_params['job_id']}")
        return self.page(
            request,
            "job.html",
            await self.allowed(),
            job=job,
            result=None if job.result is None else json.dumps(job.result, indent=2),
            has_result=True,
        )

    async def metrics_page(self, request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # --- actions -------------------------------------------------------------

    async def _form(self, request: Request, privilege: str) -> dict[str, str]:
        """The action's form, once the CSRF check and the privilege pass (else 403)."""
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        why = self.csrf.check(request, values.get("csrf"))
        if why is not None:
            raise HTTPException(403, why)
        if self.read_only:
            raise HTTPException(403, "this dashboard is read-only (--read-only)")
        allowed = await self.store.privileges()
        if not getattr(allowed, privilege):
            raise HTTPException(
                403, f"the role {allowed.role} may not {privilege} {'queues' if privilege == 'pause' else 'jobs'}"
            )
        return values

    async def retry(self, request: Request) -> Response:
        await self._form(request, "retry")
        job_id = _uuid(request.path_params["job_id"])
        if await self.store.retry(job_id):
            return self._back(f"/jobs/{job_id}", "retried: queued to run now")
        why = await self._why_not(job_id)
        return self._back(
            f"/jobs/{job_id}", f"not retried: {why}; only failed, exhausted, expired or cancelled jobs can be"
        )

    async def cancel(self, request: Request) -> Response:
        await self._form(request, "cancel")
        job_id = _uuid(request.path_params["job_id"])
        if await self.store.cancel(job_id):
            return self._back(f"/jobs/{job_id}", "cancelled")
        why = await self._why_not(job_id)
        return self._back(f"/jobs/{job_id}", f"not cancelled: {why}; only waiting (queued or failed) jobs can be")

    def _back(self, path: str, notice: str) -> Response:
        """The redirect after an action to ``path``, whose page shows ``notice`` (signed: see .security)."""
        return RedirectResponse(f"{path}?{urlencode({'notice': notice, 'sig': self.csrf.sign(notice)})}", 303)

    async def _why_not(self, job_id: UUID) -> str:
        """Why an action on the job changed nothing: its status now (a worker may have claimed it
        meanwhile), or that there is no such job."""
        job = await self.store.job(job_id)
        if job is None:
            return "there is no such job"
        return "a worker is running it (claimed)" if job.status == "claimed" else f"it is {job.status}"

    async def pause(self, request: Request) -> Response:
        queue = _queue(await self._form(request, "pause"))
        done = await self.store.pause(queue)
        return self._back(
            "/", f"paused {queue}: claims skip it, running jobs finish" if done else f"{queue} was paused already"
        )

    async def resume(self, request: Request) -> Response:
        queue = _queue(await self._form(request, "pause"))
        done = await self.store.resume(queue)
        return self._back(
            "/", f"resumed {queue}: its waiting workers were woken" if done else f"{queue} was not paused"
        )

    async def purge(self, request: Request) -> Response:
        form = await self._form(request, "purge")
        older_than = parse_duration(form.get("older_than", ""), "older_than")
        status = form.get("status") or ""
        statuses = [status] if status else list(PURGEABLE)
        if not set(statuses) <= set(PURGEABLE):
            raise InvalidArgument("status", f"status: must be one of {', '.join(PURGEABLE)}")
        purged, finished = await self.store.purge(older_than, statuses)
        more = "" if finished else " (more remain: purge again)"
        return self._back(
            "/", f"purged {purged} {'/'.join(statuses)} jobs finished over {form.get('older_than')} ago{more}"
        )


def _window(request: Request) -> str:
    window = request.query_params.get("window", "hour")
    if window not in WINDOWS:
        raise HTTPException(400, f"window: must be one of {', '.join(WINDOWS)}")
    return window


def _queue(form: dict[str, str]) -> str:
    """The queue an action's form names (a field, not the path: any name, ``/`` and ``..`` included,
    reaches the server as written)."""
    queue = form.get("queue")
    if not queue:
        raise HTTPException(400, "queue: the form names no queue")
    return queue


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise HTTPException(400, f"{text!r} is not a job id (a UUID)") from None


async def _bad_request(request: Request, error: Exception) -> Response:
    return PlainTextResponse(f"400: {error}\n", 400)


def _first_line(error: Exception) -> str:
    """The error's message, its first line (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


async def _unavailable(request: Request, error: Exception) -> Response:
    first = _first_line(error)
    return PlainTextResponse(f"503: the database did not answer: {first}\n", 503)


async def _missing(request: Request, error: Exception) -> Response:
    """A raquel_pg table, function or schema that is not there: the database is not migrated (503)."""
    assert isinstance(error, psycopg.Error)
    answer = translate(error)
    if isinstance(answer, NotMigrated):
        return PlainTextResponse(f"503: {answer}\n", 503)
    first = _first_line(error)
    return PlainTextResponse(f"500: {first}\n", 500)


async def _forbidden(request: Request, error: Exception) -> Response:
    first = _first_line(error)
    return PlainTextResponse(
        f"403: the dashboard's database role may not read this: {first}\n(a read-only dashboard role "
        "needs SELECT on raquel.raquel_jobs and EXECUTE on raquel.raquel_queue_overview, "
        "raquel.raquel_queue_controls and raquel.raquel_throughput: "
        "see docs/dashboard.md, Roles)\n",
        403,
    )


def create_app(dsn: str, *, read_only: bool = False, token: str | None = None) -> Starlette:
    """The dashboard of the queue in ``dsn``, as an ASGI app (serve it with uvicorn).

    ``read_only``: no actions at all. ``token``: every request must carry it
    (see :mod:`.security`); without one, only requests addressed to a loopback
    name (``Host``: localhost, 127.0.0.1, ::1) are answered. The connection pool
    opens when the app starts.
    """
    board = Dashboard(dsn, read_only=read_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await board.store.open()
        try:
            yield
        finally:
            await board.store.close()

    routes = [
        Route("/", board.queues_page),
        Route("/fragments/queues", board.queues_fragment),
        Route("/api/throughput", board.throughput),
        Route("/jobs", board.jobs_page),
        Route("/jobs/{job_id}", board.job_page),
        Route("/jobs/{job_id}/retry", board.retry, methods=["POST"]),
        Route("/jobs/{job_id}/cancel", board.cancel, methods=["POST"]),
        Route("/queues/pause", board.pause, methods=["POST"]),
        Route("/queues/resume", board.resume, methods=["POST"]),
        Route("/purge", board.purge, methods=["POST"]),
        Route("/metrics", board.metrics_page),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            InvalidArgument: _bad_request,
            psycopg.DataError: _bad_request,  # a value PostgreSQL cannot take (a NUL byte)
            psycopg.OperationalError: _unavailable,
            psycopg.errors.InsufficientPrivilege: _forbidden,
            psycopg.errors.UndefinedFunction: _missing,
            psycopg.errors.UndefinedTable: _missing,
            psycopg.errors.InvalidSchemaName: _missing,
        },
    )
    app.state.dashboard = board
    if token:
        app.add_middleware(TokenGuard, token=token)
    else:
        app.add_middleware(LoopbackHostGuard)
    return app
