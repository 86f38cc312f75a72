"""``python -m bench.controls``: what the queue controls (issue 21) cost, and how exactly they hold.

1. The cost of the checks on an unlimited queue: raquel_claim as the baseline's 0006_claim.sql
   defines it (recreated from that file as ``raquel_claim_before``) against today's, in the same database,
   rounds interleaved (the order alternating), medians reported. Each round enqueues the jobs
   anew into an emptied table and claims them one call at a time, either 50 calls inside each
   statement (the function's own cost, few round trips; not more per statement, since the index
   entries of the jobs a transaction claimed stay in the way of its next claims until it commits)
   or one autocommit call each from the client.
2. The limits' accuracy under load: worker processes (``raquel-pg worker``) on a queue with
   max_running, the claimed jobs sampled as they run; then on a queue with per_second, the
   claims counted over every one-second window of their claimed_at.
3. A claim of all queues (of 10) and ``raquel_next_due(NULL)`` beside a paused queue's backlog,
   enqueued before the other queue's jobs or after them: today's functions against those
   before 0016_claim_walks (0013's raquel_claim and 0015's raquel_next_due,
   recreated from those files as ``raquel_claim_0013`` and ``raquel_next_due_0015``), calls
   interleaved by rounds, medians of the rounds' medians.
4. A queue with max_running = 1 drained by worker processes with their defaults (``raquel-pg
   worker``: successes batched): the drain with 0020_notify_freed's triggers (a job of a queue
   at its max_running that ends wakes the workers waiting for it) and with them disabled in the
   same database (as before 0020), rounds interleaved (the order alternating), medians. The
   queue is paused while the workers start; the drain is timed on the server's clock, from the
   resume to the last success. Then what the triggers cost a statement that ends a job: 2,000
   claimed jobs completed one ``raquel_complete`` each inside a DO block, timed by the server's
   clock, triggers enabled or disabled, with no max_running set or with one on another queue
   (nobody waiting), rounds interleaved, medians.

Run it under the shared lock: ``flock /work/wt/bench.lock python -m bench.controls``. It prints
Markdown to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from .server import server

ROOT = Path(__file__).resolve().parent.parent


def function_sql(migration: str, name: str, renamed: str) -> str:
    """Function ``name`` as migration file ``migration`` creates it, renamed ``renamed``."""
    text = (ROOT / "migrations" / migration).read_text(encoding="utf-8")
    start = re.search(rf"CREATE (OR REPLACE )?FUNCTION {name}\(", text)
    assert start is not None, (migration, name)
    end = text.index("\n$$;\n", start.start()) + len("\n$$;\n")
    return re.sub(rf"\b{name}\b", renamed, text[start.start() : end])


def old_claim_sql() -> str:
    """raquel_claim as 0006_claim.sql creates it (before the queue controls), renamed raquel_claim_before."""
    return function_sql("0006_claim.sql", "raquel_claim", "raquel_claim_before")


def fill(conn: psycopg.Connection[Any], jobs: int) -> None:
    """An emptied jobs table holding ``jobs`` ready jobs of queue q."""
    conn.execute("TRUNCATE raquel.raquel_jobs")
    conn.execute("INSERT INTO raquel.raquel_jobs (queue, payload) SELECT 'q', 'x' FROM generate_series(1, %s)", (jobs,))
    conn.execute("VACUUM ANALYZE raquel.raquel_jobs")


#: Claims per statement in the "in one statement" modes.
CHUNK = 50

#: The claim statements measured, by function name: CHUNK calls inside one statement, or one call each.
IN_ONE = {
    "list": "SELECT count(*) FROM generate_series(1, %s) AS g CROSS JOIN LATERAL "
    "raquel.{fn}(ARRAY['q'], 'w' || g, 1) AS c",
    "all": "SELECT count(*) FROM generate_series(1, %s) AS g CROSS JOIN LATERAL raquel.{fn}(NULL, 'w' || g, 1) AS c",
}
ONE_CALL = "SELECT id FROM raquel.{fn}(ARRAY['q'], 'w', 1, durable => false)"


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the server process ``pid`` has used; None when not readable
    (the server on another machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_claims(conn: psycopg.Connection[Any], fn: str, mode: str, jobs: int) -> tuple[float, float | None]:
    """Claims per second of ``fn`` over ``jobs`` ready jobs, in ``mode``, and the server backend's
    CPU µs per claim (None when it cannot be read)."""
    fill(conn, jobs)
    pid = conn.info.backend_pid
    cpu_before = backend_cpu(pid)
    started = time.perf_counter()
    if mode == "one call each":
        query = ONE_CALL.format(fn=fn).encode()
        for _ in range(jobs):
            conn.execute(query).fetchall()
    else:
        query = IN_ONE[mode].format(fn=fn).encode()
        for start in range(0, jobs, CHUNK):
            size = min(CHUNK, jobs - start)
            claimed = conn.execute(query, (size,)).fetchone()
            assert claimed is not None and claimed[0] == size, claimed
    rate = jobs / (time.perf_counter() - started)
    cpu_after = backend_cpu(pid)
    cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / jobs * 1e6
    return rate, cpu


def claim_cost(dsn: str, rounds: int, jobs: int) -> list[str]:
    """The Markdown table of part 1."""
    out = [
        "| claim | settings table | before: claims/s | with controls: claims/s | rate ratio "
        "| before: server CPU µs/claim | with controls | CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = raquel, pg_catalog, pg_temp")
        conn.execute(old_claim_sql().encode())
        conn.execute("RESET search_path")
        for settings in ("empty", "2 other queues controlled"):
            conn.execute("TRUNCATE raquel.raquel_queue_settings")
            if settings != "empty":
                conn.execute("SELECT raquel.raquel_pause_queue('paused-one')")
                conn.execute(
                    "SELECT raquel.raquel_set_queue_limits('limited-one', max_running => 5, per_second => 100)"
                )
            for mode, label in (
                ("list", f"ARRAY['q'], batch 1, {CHUNK} calls per statement"),
                ("all", f"NULL (all queues), batch 1, {CHUNK} calls per statement"),
                ("one call each", "ARRAY['q'], batch 1, one autocommit call each"),
            ):
                if mode == "all" and settings != "empty":
                    continue  # the other queues' controls would apply: not an unlimited claim
                rates: dict[str, list[float]] = {"raquel_claim_before": [], "raquel_claim": []}
                cpus: dict[str, list[float]] = {"raquel_claim_before": [], "raquel_claim": []}
                for r in range(rounds + 1):
                    order = list(rates) if r % 2 == 0 else list(reversed(rates))
                    for fn in order:
                        rate, cpu = time_claims(conn, fn, mode, jobs)
                        if r == 0:
                            continue  # a warm-up round: each function planned once in this session
                        rates[fn].append(rate)
                        if cpu is not None:
                            cpus[fn].append(cpu)
                old, new = (statistics.median(rates[fn]) for fn in ("raquel_claim_before", "raquel_claim"))
                if cpus["raquel_claim"]:
                    old_cpu, new_cpu = (statistics.median(cpus[fn]) for fn in ("raquel_claim_before", "raquel_claim"))
                    cpu_cells = f"{old_cpu:.1f} | {new_cpu:.1f} | {new_cpu / old_cpu:.3f}"
                else:
                    cpu_cells = "- | - | -"
                out.append(f"| {label} | {settings} | {old:,.0f} | {new:,.0f} | {new / old:.3f} | {cpu_cells} |")
                print(out[-1], file=sys.stderr, flush=True)
    return out


def hold(job: Any) -> None:
    """The accuracy run's handler: holds its slot a while (the job's payload: seconds)."""
    time.sleep(float(job.payload))


def start_workers(dsn: str, queue: str, processes: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raquel_pg",
                "--dsn",
                dsn,
                "worker",
                "bench.controls:hold",
                "-q",
                queue,
                "-c",
                str(concurrency),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        for _ in range(processes)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def wait_done(conn: psycopg.Connection[Any], queue: str, jobs: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        done = conn.execute(
            "SELECT count(*) FROM raquel.raquel_jobs WHERE queue = %s AND status = 'success'", (queue,)
        ).fetchone()
        if done is not None and done[0] == jobs:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{queue}: not every job done in time")


def accuracy(dsn: str, processes: int, concurrency: int) -> list[str]:
    """The Markdown lines of part 2."""
    out: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_queue_settings")
        limit, jobs = 5, 300
        conn.execute("SELECT raquel.raquel_set_queue_limits('bounded', max_running => %s)", (limit,))
        conn.execute("SELECT raquel.raquel_enqueue('bounded', '0.02') FROM generate_series(1, %s)", (jobs,))
        seen: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(dsn, autocommit=True) as own:
                while not stop.is_set():
                    row = own.execute(
                        "SELECT count(*) FROM raquel.raquel_jobs WHERE queue = 'bounded' AND status = 'claimed'"
                    ).fetchone()
                    seen.append(row[0] if row else 0)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        workers = start_workers(dsn, "bounded", processes, concurrency)
        try:
            wait_done(conn, "bounded", jobs, time.monotonic() + 300)
        finally:
            stop.set()
            sampler.join()
            stop_workers(workers)
        took = time.monotonic() - started
        out.append(
            f"- max_running = {limit}, {processes} worker processes x concurrency {concurrency} "
            f"({processes * concurrency} slots), {jobs} jobs of 20 ms: most claimed at once in "
            f"{len(seen):,} samples: **{max(seen)}** (samples at the limit: "
            f"{sum(1 for s in seen if s == limit) / len(seen):.0%}); all done in {took:.1f} s "
            f"(the limit's floor: {jobs * 0.02 / limit:.1f} s)."
        )

        rate, jobs = 50.0, 200
        conn.execute("SELECT raquel.raquel_set_queue_limits('paced', per_second => %s)", (rate,))
        conn.execute("SELECT raquel.raquel_enqueue('paced', '0') FROM generate_series(1, %s)", (jobs,))
        started = time.monotonic()
        workers = start_workers(dsn, "paced", processes, concurrency)
        try:
            wait_done(conn, "paced", jobs, time.monotonic() + 300)
        finally:
            stop_workers(workers)
        took = time.monotonic() - started
        times = sorted(
            row[0] for row in conn.execute("SELECT claimed_at FROM raquel.raquel_jobs WHERE queue = 'paced'").fetchall()
        )
        most = max(sum(1 for t in times[i:] if t < start + 1000) for i, start in enumerate(times))
        span = (times[-1] - times[0]) / 1000
        out.append(
            f"- per_second = {rate:g} (bucket {max(1, rate / 10):g}), the same workers, {jobs} jobs: "
            f"most claims in any one-second window: **{most}** (the bound: {rate:g} + one bucket = "
            f"{rate + max(1, rate / 10):g}); {jobs} claims over {span:.2f} s = "
            f"{(jobs - 1) / span:.1f} claims/s; done in {took:.1f} s."
        )
        for line in out:
            print(line, file=sys.stderr, flush=True)
    return out


#: Part 3: the other queue's jobs, the calls per round and per function, the statements.
OTHER_JOBS = 20_000
HELD_CALLS = 50
HELD_STATEMENTS = {
    "claim of all queues, 10 jobs": "SELECT count(*) FROM raquel.{claim}(NULL, 'w', 10, 60000)",
    "raquel_next_due(NULL)": "SELECT raquel.{next_due}(NULL)",
}


def held_backlog(dsn: str, rounds: int, held_jobs: int) -> list[str]:
    """The Markdown table of part 3."""
    out = [
        "| paused backlog | call | before 0016: ms | today: ms | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    versions = {"before": ("raquel_claim_0013", "raquel_next_due_0015"), "today": ("raquel_claim", "raquel_next_due")}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path = raquel, pg_catalog, pg_temp")
        for migration, name, renamed in (
            ("0013_claim_generic_plans.sql", "raquel_claim", "raquel_claim_0013"),
            ("0015_next_due_running_count.sql", "raquel_next_due", "raquel_next_due_0015"),
        ):
            conn.execute(function_sql(migration, name, renamed).encode())
        conn.execute("RESET search_path")
        for placement in ("enqueued before the others", "enqueued after the others"):
            conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_queue_settings")
            order = [("held", held_jobs), ("other", OTHER_JOBS)]
            for queue, jobs in order if placement.endswith("before the others") else reversed(order):
                conn.execute(
                    "SELECT count(*) FROM raquel.raquel_enqueue_many(%s, array_fill('x'::text, ARRAY[%s]))",
                    (queue, jobs),
                )
            conn.execute("VACUUM ANALYZE raquel.raquel_jobs")
            conn.execute("SELECT raquel.raquel_pause_queue('held')")
            times: dict[tuple[str, str], list[float]] = {(v, s): [] for v in versions for s in HELD_STATEMENTS}
            for r in range(rounds + 1):
                for version in list(versions) if r % 2 == 0 else list(reversed(versions)):
                    claim, next_due = versions[version]
                    for label, statement in HELD_STATEMENTS.items():
                        query = statement.format(claim=claim, next_due=next_due).encode()
                        each = []
                        for _ in range(HELD_CALLS):
                            started = time.perf_counter()
                            conn.execute(query).fetchall()
                            each.append(time.perf_counter() - started)
                        if r > 0:  # round 0 warms up: each function planned once in this session
                            times[(version, label)].append(statistics.median(each) * 1000)
            for label in HELD_STATEMENTS:
                old, new = (statistics.median(times[(v, label)]) for v in versions)
                out.append(f"| {held_jobs:,} jobs {placement} | {label} | {old:.2f} | {new:.2f} | {new / old:.3f} |")
                print(out[-1], file=sys.stderr, flush=True)
    return out


#: Part 4: 0020_notify_freed's triggers, enabled or not.
FREED_TRIGGERS = ("raquel_jobs_40_notify_freed", "raquel_jobs_41_notify_freed_deleted")


def limited_drain(dsn: str, rounds: int, processes: int, concurrency: int, jobs: int) -> list[str]:
    """The Markdown table of part 4."""
    spans: dict[bool, list[float]] = {True: [], False: []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for round_no in range(rounds):
            for woken in (True, False) if round_no % 2 == 0 else (False, True):
                conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_queue_settings")
                for trigger in FREED_TRIGGERS:
                    action = "ENABLE" if woken else "DISABLE"
                    conn.execute(f"ALTER TABLE raquel.raquel_jobs {action} TRIGGER {trigger}".encode())
                conn.execute("SELECT raquel.raquel_set_queue_limits('serial', max_running => 1)")
                conn.execute("SELECT raquel.raquel_pause_queue('serial')")
                conn.execute("SELECT raquel.raquel_enqueue('serial', '0') FROM generate_series(1, %s)", (jobs,))
                workers = start_workers(dsn, "serial", processes, concurrency)
                try:
                    deadline = time.monotonic() + 60
                    while conn.execute("SELECT count(*) FROM raquel.raquel_waiters").fetchone() != (processes,):
                        assert time.monotonic() < deadline, "the workers did not start"
                        time.sleep(0.02)
                    row = conn.execute("SELECT raquel.raquel_now_ms(), raquel.raquel_resume_queue('serial')").fetchone()
                    assert row is not None
                    wait_done(conn, "serial", jobs, time.monotonic() + 600)
                finally:
                    stop_workers(workers)
                last = conn.execute("SELECT max(finished_at) FROM raquel.raquel_jobs WHERE queue = 'serial'").fetchone()
                assert last is not None
                spans[woken].append((last[0] - row[0]) / 1000)
                took = spans[woken][-1]
                print(f"[controls] part 4, round {round_no + 1}, woken={woken}: {took:.2f} s", file=sys.stderr)
        for trigger in FREED_TRIGGERS:
            conn.execute(f"ALTER TABLE raquel.raquel_jobs ENABLE TRIGGER {trigger}".encode())
        costs = freed_trigger_cost(conn, rounds * 2)
    out = [
        f"| max_running = 1, {jobs} no-op jobs, {processes} worker processes x concurrency {concurrency} "
        "(defaults: successes batched) | drain s (median) | per round |",
        "|---|---|---|",
    ]
    for woken, label in ((True, "0020's triggers enabled"), (False, "disabled (as before 0020)")):
        cells = " / ".join(f"{span:.2f}" for span in spans[woken])
        out.append(f"| {label} | {statistics.median(spans[woken]):.2f} | {cells} |")
    out += ["", "| one `raquel_complete` in a DO loop of 2,000 | µs (median) | per round |", "|---|---|---|"]
    for (woken, limited), values in costs.items():
        label = ("triggers enabled" if woken else "triggers disabled") + (
            ", a max_running on another queue" if limited else ", no max_running anywhere"
        )
        cells = " / ".join(f"{value:.1f}" for value in values)
        out.append(f"| {label} | {statistics.median(values):.1f} | {cells} |")
    return out


def freed_trigger_cost(conn: psycopg.Connection[Any], rounds: int) -> dict[tuple[bool, bool], list[float]]:
    """Part 4's second table: µs per raquel_complete call, by (triggers enabled, a limited queue exists)."""
    calls = 2000
    costs: dict[tuple[bool, bool], list[float]] = {}
    notes: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notes.append(diagnostic.message_primary or ""))
    for round_no in range(rounds):
        keys = [(True, False), (False, False), (True, True), (False, True)]
        for woken, limited in keys if round_no % 2 == 0 else keys[::-1]:
            conn.execute("TRUNCATE raquel.raquel_jobs, raquel.raquel_queue_settings")
            if limited:
                conn.execute("SELECT raquel.raquel_set_queue_limits('other', max_running => 5)")
            for trigger in FREED_TRIGGERS:
                action = "ENABLE" if woken else "DISABLE"
                conn.execute(f"ALTER TABLE raquel.raquel_jobs {action} TRIGGER {trigger}".encode())
            conn.execute("SELECT raquel.raquel_enqueue('q', '0') FROM generate_series(1, %s)", (calls,))
            conn.execute("SELECT count(*) FROM raquel.raquel_claim(ARRAY['q'], 'w', %s, 600000)", (calls,))
            conn.execute(
                """DO $$ DECLARE r record; t0 timestamptz := clock_timestamp(); BEGIN
                     FOR r IN SELECT id, claim_id FROM raquel.raquel_jobs WHERE status = 'claimed' LOOP
                       PERFORM raquel.raquel_complete(r.id, r.claim_id);
                     END LOOP;
                     RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0) * 1e6;
                   END $$"""
            )
            costs.setdefault((woken, limited), []).append(float(notes[-1]) / calls)
    for trigger in FREED_TRIGGERS:
        conn.execute(f"ALTER TABLE raquel.raquel_jobs ENABLE TRIGGER {trigger}".encode())
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.controls", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per figure (default 7)")
    parser.add_argument("--jobs", type=int, default=2000, help="claims per round (default 2000)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes for part 2 (default 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrency of each (default 4)")
    parser.add_argument("--skip-cost", action="store_true", help="leave part 1 out")
    parser.add_argument("--skip-accuracy", action="store_true", help="leave part 2 out")
    parser.add_argument("--skip-held", action="store_true", help="leave part 3 out")
    parser.add_argument("--held-jobs", type=int, default=200_000, help="the paused backlog of part 3 (default 200,000)")
    parser.add_argument("--skip-limited", action="store_true", help="leave part 4 out")
    parser.add_argument("--limited-jobs", type=int, default=20, help="the jobs of part 4 (default 20)")
    args = parser.parse_args()
    with server() as srv:
        with srv.database("controls") as dsn:
            lines = [] if args.skip_cost else claim_cost(dsn, args.rounds, args.jobs)
            if not args.skip_accuracy:
                lines += ["", *accuracy(dsn, args.processes, args.concurrency)]
            if not args.skip_held:
                lines += ["", *held_backlog(dsn, args.rounds, args.held_jobs)]
            if not args.skip_limited:
                rounds = min(args.rounds, 3)  # a round without the triggers takes ~2 s a job
                lines += ["", *limited_drain(dsn, rounds, 2, args.concurrency, args.limited_jobs)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
