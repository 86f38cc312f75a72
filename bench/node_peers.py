"""The benchmark's Node.js peers: graphile-worker and pg-boss, run by ``node bench/node/peer.mjs``.

Their packages are pinned in ``bench/node/package.json`` and ``package-lock.json`` and
installed by ``npm ci`` into ``bench/node/node_modules`` (gitignored) the first time a run needs
them. Without ``node`` and ``npm`` on PATH, or when the install fails, :func:`unavailable` says
why and their rows say "n/a" with that reason.

Measured as the other systems are: jobs / (last durable success - first claim).
pg-boss keeps its jobs, so both are read from its table (``started_on``, ``completed_on``).
graphile-worker deletes a job's row when it completes: its runs use its own ``runOnce()``
(as its perfTest does), and each process reports when its first handler started (one round
trip after the first claim) and when ``runOnce()`` returned, every completion committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from functools import cache
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .measure import Span, read_span, wait_until
from .workers import ROOT, await_ready, stop

#: Where the Node peers live and are installed.
NODE_DIR = ROOT / "bench" / "node"
SCRIPT = NODE_DIR / "peer.mjs"

PGBOSS_SPAN = """
SELECT extract(epoch FROM completed_on),
       (SELECT extract(epoch FROM min(started_on)) FROM pgboss.job WHERE name = 'noop')
FROM pgboss.job WHERE name = 'noop' AND state = 'completed'"""

#: Whether a pg-boss job is left (1) or not (0): stops at the first one, through its index of
#: live jobs (job_i14), as raquel_pg's poll does (scenarios.RAQUEL_LEFT).
PGBOSS_LEFT = "SELECT EXISTS (SELECT FROM pgboss.job WHERE name = 'noop' AND state < 'completed')::int"


@cache
def unavailable() -> str | None:
    """Why the Node peers cannot run (no node or npm, a failed ``npm ci``), or None when they can.

    Installs the pinned packages with ``npm ci`` (blocking, up to 5 minutes) when they are not
    installed yet.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "no `node`/`npm` on PATH"
    if (
        not (NODE_DIR / "node_modules" / "graphile-worker").is_dir()
        or not (NODE_DIR / "node_modules" / "pg-boss").is_dir()
    ):
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`npm ci` in bench/node failed: {error}"
        if done.returncode != 0:
            return f"`npm ci` in bench/node failed: {done.stderr.strip()[-300:]}"
    return None


def versions() -> dict[str, str]:
    """node, graphile-worker, pg-boss and pg versions, or {} when the Node peers are unavailable."""
    if unavailable() is not None:
        return {}
    done = subprocess.run(["node", str(SCRIPT), "versions"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {}
    return {
        f"{name} (Node)" if name in ("node", "pg") else name: str(version)
        for name, version in json.loads(done.stdout).items()
    }


def url(dsn: str) -> str:
    """``dsn`` (a libpq DSN, keywords or URL) as the postgresql:// URL Node's ``pg`` takes; a
    Unix-socket host, and any other parameter, goes in the query string."""
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    dbname = quote(params.pop("dbname", ""), safe="")
    netloc = ""
    if not params.get("host", "/").startswith("/"):
        user, password = params.pop("user", ""), params.pop("password", "")
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        port = params.pop("port", "")
        netloc = (f"{auth}@" if auth else "") + params.pop("host") + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{dbname}" + (f"?{urlencode(params)}" if params else "")


def _node(*args: str, timeout: float = 900) -> str:
    """Runs ``node peer.mjs *args`` to its end; its stdout. RuntimeError when it fails."""
    done = subprocess.run(["node", str(SCRIPT), *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"node peer.mjs {args[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def _spawn(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """Starts ``node peer.mjs *args`` and waits for its 'ready' line."""
    process = subprocess.Popen(
        ["node", str(SCRIPT), *args],
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else None,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        process.wait()
        raise RuntimeError(f"node peer.mjs {args[0]} did not start: {line!r}")
    return process


def prepare(system: str, dsn: str, jobs: int) -> None:
    """Installs ``system`` ('graphile' or 'pgboss') in a fresh database, bulk-enqueues ``jobs``
    no-op jobs with its own calls, then ANALYZEs the database (as autovacuum would, in time)."""
    _node("prepare", system, url(dsn), str(jobs))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


def drain_graphile(dsn: str, jobs: int, concurrency: int, mode: str, processes: int = 1) -> Span:
    """``jobs`` no-op jobs drained by ``processes`` graphile-worker ``runOnce()`` processes of
    ``concurrency`` jobs each; ``mode``: 'default' or 'perftest' (its perfTest's settings).

    The processes load, say 'ready', and are then told to start together (a line on stdin), as
    raquel_pg's worker processes start on a resumed queue: started as they loaded, the first began
    0.12-0.28 s before the last, and four processes drained 50,000 jobs at 37,646 jobs/s against
    51,334 for 200,000 (bench/RESULTS.md, "graphile-worker's processes started together")."""
    prepare("graphile", dsn, jobs)
    started = [
        subprocess.Popen(
            ["node", str(SCRIPT), "drain-graphile", url(dsn), str(concurrency), mode],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    await_ready(started, "graphile-worker drain")
    for process in started:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = []
    for process in started:
        out, _ = process.communicate(timeout=900)
        if process.returncode != 0:
            raise RuntimeError(f"graphile-worker drain failed ({process.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    firsts = [report["first"] for report in reports if report["first"] is not None]
    return Span(
        min(firsts) if firsts else None,
        [],
        done=sum(int(report["jobs"]) for report in reports),
        last_success=max(float(report["end"]) for report in reports),
    )


def drain_pgboss(dsn: str, jobs: int, local_concurrency: int, mode: str, batch: int = 1) -> Span:
    """``jobs`` no-op jobs drained by one pg-boss ``work()`` with ``local_concurrency`` workers;
    ``mode``: 'default', or 'fast' (``batchSize=batch``, ``burstWhenBatchFull``)."""
    prepare("pgboss", dsn, jobs)
    worker = _spawn("work-pgboss", url(dsn), str(local_concurrency), mode, str(batch))
    try:
        wait_until(dsn, PGBOSS_LEFT, (), lambda left: left == 0, timeout=900)
    finally:
        stop(worker)
    return read_span(dsn, PGBOSS_SPAN)


def wake_graphile(dsn: str, mode: str, samples: int, warmup: int = 5) -> list[float]:
    """Latencies (ms) from an ``add_job`` commit (from Python, as scenario 3's enqueues) to the
    handler's start in an idle graphile-worker process; ``mode``: 'default' or 'perftest'."""
    prepare("graphile", dsn, 0)
    worker = _spawn("wake-graphile", url(dsn), mode)
    assert worker.stdout is not None
    latencies = []
    try:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
            for i in range(samples + warmup):
                conn.execute("SELECT graphile_worker.add_job('noop', json_build_object('p', %s::text))", [str(i)])
                committed = time.time()
                payload, started = worker.stdout.readline().split()
                assert payload == str(i), f"unexpected job {payload} (expected {i})"
                if i >= warmup:
                    latencies.append((float(started) - committed) * 1000)
                time.sleep(0.015)
    finally:
        stop(worker)
    return latencies


def wake_pgboss(dsn: str, mode: str, samples: int, warmup: int = 1) -> list[float]:
    """Latencies (ms) from a pg-boss ``send()`` resolving in a producer process to the handler's
    start in an idle worker process; ``mode``: 'default' (it polls) or 'notify' (a queue with
    ``notify: true``, the instance ``useListenNotify``). pg-boss sends its NOTIFY from its own
    insert statement, so the producer is pg-boss's client."""
    prepare("pgboss", dsn, 0)
    worker = _spawn("wake-pgboss", url(dsn), mode)
    producer = _spawn("produce-pgboss", url(dsn), mode, stdin=True)
    assert worker.stdout is not None and producer.stdout is not None and producer.stdin is not None
    latencies = []
    try:
        for i in range(samples + warmup):
            producer.stdin.write(f"{i}\n")
            producer.stdin.flush()
            sent, committed = producer.stdout.readline().split()
            payload, started = worker.stdout.readline().split()
            assert payload == sent == str(i), f"unexpected job {payload}/{sent} (expected {i})"
            if i >= warmup:
                latencies.append((float(started) - float(committed)) * 1000)
            time.sleep(0.015)
    finally:
        producer.stdin.close()
        stop(producer)
        stop(worker)
    return latencies
