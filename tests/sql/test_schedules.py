"""Periodic jobs (migration 0005): exactly one job per tick, state in raquel_schedules."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncRaquel, InvalidArgument, Raquel

T = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC, a fixed "now" in ms


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def fired(conn: psycopg.Connection[Any], queue: str = "q") -> list[int]:
    """scheduled_at of the jobs enqueued on ``queue``, in order."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT scheduled_at FROM raquel_jobs WHERE queue = %s ORDER BY scheduled_at", (queue,)
        ).fetchall()
    ]


def state(conn: psycopg.Connection[Any], name: str) -> tuple[Any, ...]:
    """(next_run_at, last_run_at) of the schedule ``name``."""
    row = conn.execute("SELECT next_run_at, last_run_at FROM raquel_schedules WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return tuple(row)


def test_interval_schedule_fires_once_per_tick(rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str) -> None:
    rq.schedule("tick", "q", {"n": 1}, every=timedelta(seconds=1), first_run_at=T, priority=2)
    assert rq.run_schedules(now=T - 1) == []
    [job_id] = rq.run_schedules(now=T)
    assert rq.run_schedules(now=T) == []
    assert state(conn, "tick") == (T + 1000, T)
    record = rq.get(job_id)
    assert record is not None and record.payload == {"n": 1} and record.queue == "q"
    assert conn.execute("SELECT priority FROM raquel_jobs").fetchone() == (2,)
    rq.run_schedules(now=T + 1000)
    assert fired(conn) == [T, T + 1000]


def test_missed_ticks_give_one_job_then_the_next_future_tick(
    rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str
) -> None:
    rq.schedule("tick", "q", every=1000, first_run_at=T)
    assert len(rq.run_schedules(now=T + 5500)) == 1  # ticks T .. T+5000 were missed
    assert fired(conn) == [T]
    assert state(conn, "tick") == (T + 6000, T)
    assert rq.run_schedules(now=T + 5999) == []


def test_cron_schedule_follows_croniter(rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str) -> None:
    first = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
    assert rq.schedule("nightly", "q", cron="0 3 * * *", first_run_at=first) == first
    rq.run_schedules(now=ms(first) + 10)
    assert state(conn, "nightly") == (ms(first + timedelta(days=1)), ms(first))
    rq.run_schedules(now=ms(first + timedelta(days=3, hours=1)))  # two nights missed
    assert fired(conn) == [ms(first), ms(first + timedelta(days=1))]
    assert state(conn, "nightly")[0] == ms(first + timedelta(days=4))


def test_cron_first_run_defaults_to_the_next_tick(rq: Raquel, no_schedules: str) -> None:
    before = datetime.now(timezone.utc)
    next_run = rq.schedule("hourly", "q", cron="@hourly")
    assert next_run is not None and next_run > before
    assert next_run - before <= timedelta(hours=1)
    assert (next_run.minute, next_run.second, next_run.microsecond) == (0, 0, 0)


def test_cron_schedule_set_from_sql_gets_its_first_tick_from_a_scheduler(
    rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str
) -> None:
    # The README's psql example, verbatim.
    conn.execute(
        "SELECT raquel_set_schedule('nightly-report', 'reports', '{\"kind\": \"daily\"}', cron => '0 3 * * *')"
    )
    assert state(conn, "nightly-report") == (None, None)
    now = ms(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc))
    assert rq.run_schedules(now=now) == []  # sets the first tick, enqueues nothing
    assert state(conn, "nightly-report") == (ms(datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)), None)


def test_readme_sql(conn: psycopg.Connection[Any], no_schedules: str) -> None:
    conn.execute(
        """SELECT raquel_set_schedule('nightly-report', 'reports', '{"kind": "daily"}', cron => '0 3 * * *');"""
    )
    conn.execute("SELECT raquel_set_schedule('cleanup', 'maintenance', every => 3600000, priority => -1);")
    listed = conn.execute(
        "SELECT name, to_timestamp(next_run_at / 1000.0) AS next_run FROM raquel_schedules ORDER BY next_run_at;"
    ).fetchall()
    assert [name for name, _ in listed] == ["cleanup", "nightly-report"]
    assert conn.execute("SELECT raquel_drop_schedule('cleanup');").fetchone() == (True,)


def test_readme_python(rq: Raquel, no_schedules: str) -> None:
    rq.schedule("nightly-report", "reports", {"kind": "daily"}, cron="0 3 * * *")
    rq.schedule("cleanup", "maintenance", every=timedelta(hours=1), priority=-1)

    scheduler = rq.scheduler()  # AsyncRaquel.scheduler() for asyncio
    thread = threading.Thread(target=scheduler.run, daemon=True)  # beside your workers
    thread.start()
    scheduler.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert [(s.name, s.priority) for s in rq.schedules()] == [("cleanup", -1), ("nightly-report", 0)]


def test_redeclaring_keeps_the_state_and_changing_the_timing_restarts(
    rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str
) -> None:
    rq.schedule("tick", "q", "a", every=1000, first_run_at=T)
    rq.run_schedules(now=T + 2500)
    assert state(conn, "tick") == (T + 3000, T)
    rq.schedule("tick", "q", "b", every=1000, first_run_at=T + 100_000)  # a restart: same timing
    assert state(conn, "tick") == (T + 3000, T)
    assert conn.execute("SELECT payload FROM raquel_schedules").fetchone() == ("b",)
    rq.schedule("tick", "q", "b", every=2000, first_run_at=T + 100_000)  # new timing
    assert state(conn, "tick") == (T + 100_000, T)


def test_schedules_lists_and_unschedule_deletes(rq: Raquel, no_schedules: str) -> None:
    rq.schedule("b", "q", {"x": 1}, every=timedelta(minutes=5), first_run_at=T)
    rq.schedule("a", "q", cron="*/10 * * * *")
    listed = rq.schedules()
    assert [s.name for s in listed] == ["a", "b"]
    assert listed[1].every == 300_000 and listed[1].payload == {"x": 1}
    assert listed[1].next_run_at == datetime.fromtimestamp(T / 1000, timezone.utc)
    assert rq.unschedule("a") is True
    assert rq.unschedule("a") is False
    assert [s.name for s in rq.schedules()] == ["b"]


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({}, "cron"),
        ({"cron": "* * * * *", "every": 1000}, "cron"),
        ({"every": 0}, "every"),
        ({"every": 1.5}, "every"),
        ({"every": 1000, "max_age": -1}, "max_age"),
    ],
)
def test_bad_schedules_are_refused(rq: Raquel, no_schedules: str, options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        rq.schedule("bad", "q", **options)
    assert error.value.argument == argument
    assert rq.schedules() == []


def test_an_invalid_cron_set_from_sql_is_skipped(
    rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn.execute("SELECT raquel_set_schedule('broken', 'q', cron => 'not cron', first_run_at => %s)", (T,))
    rq.schedule("fine", "q", every=1000, first_run_at=T)
    assert len(rq.run_schedules(now=T)) == 1
    assert "schedule broken" in caplog.text
    assert state(conn, "broken") == (T, None)


def test_an_invalid_cron_is_warned_about_once_until_it_changes(
    rq: Raquel, conn: psycopg.Connection[Any], no_schedules: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A scheduler runs the schedules at every poll: the broken one used to be warned about each time.
    conn.execute("SELECT raquel_set_schedule('broken', 'q', cron => 'not cron', first_run_at => %s)", (T,))
    for step in range(3):
        rq.run_schedules(now=T + step * 1000)
    assert caplog.text.count("schedule broken") == 1
    conn.execute("UPDATE raquel_schedules SET cron = 'still not cron' WHERE name = 'broken'")
    rq.run_schedules(now=T + 4000)
    assert caplog.text.count("schedule broken") == 2 and "'still not cron'" in caplog.text


async def test_async_run_schedules(arq: AsyncRaquel, conn: psycopg.Connection[Any], no_schedules: str) -> None:
    await arq.schedule("tick", "q", every=1000, first_run_at=T)
    assert len(await arq.run_schedules(now=T)) == 1
    assert fired(conn) == [T]


def test_concurrent_schedulers_fire_each_tick_once(no_schedules: str, conn: psycopg.Connection[Any]) -> None:
    """8 schedulers, each with its own client, walk the same 20 s of clock in 100 ms steps."""
    clients = [Raquel(no_schedules, pool_size=1) for _ in range(8)]
    clients[0].schedule("one", "q", every=1000, first_run_at=T)
    clients[0].schedule("cron", "c", cron="* * * * * */5", first_run_at=T)  # every 5 s (croniter: seconds last)
    for i in range(5):  # more schedules due together, fired in overlapping sets
        clients[0].schedule(f"m{i}", f"m{i}", every=300 + 100 * i, first_run_at=T)
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def walk(rq: Raquel) -> None:
        barrier.wait()
        try:
            for step in range(0, 20_001, 100):
                rq.run_schedules(now=T + step)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=walk, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert not errors, errors
    assert fired(conn, "q") == [T + i * 1000 for i in range(21)]
    assert fired(conn, "c") == [T + i * 5000 for i in range(5)]
    for i in range(5):
        every = 300 + 100 * i
        assert fired(conn, f"m{i}") == list(range(T, T + 20_001, every))


WALKER = """
import sys
from raquel_pg import Raquel
dsn, start = sys.argv[1], int(sys.argv[2])
with Raquel(dsn, pool_size=1) as rq:
    for step in range(0, 10_001, 100):
        rq.run_schedules(now=start + step)
"""


@pytest.mark.slow
def test_scheduler_processes_fire_each_tick_once(no_schedules: str, conn: psycopg.Connection[Any]) -> None:
    """4 processes walk the same 10 s of clock in 100 ms steps."""
    with Raquel(no_schedules) as rq:
        rq.schedule("one", "q", every=500, first_run_at=T)
    walkers = [subprocess.Popen([sys.executable, "-c", WALKER, no_schedules, str(T)]) for _ in range(4)]
    assert [w.wait(timeout=120) for w in walkers] == [0, 0, 0, 0]
    assert fired(conn) == [T + i * 500 for i in range(21)]


@pytest.mark.slow
def test_scheduler_loops_on_the_real_clock_fire_no_tick_twice(no_schedules: str, conn: psycopg.Connection[Any]) -> None:
    """4 Scheduler loops (threads, own clients) on a 100 ms interval, until 20 ticks fired."""
    clients = [Raquel(no_schedules, pool_size=2) for _ in range(4)]
    clients[0].schedule("fast", "q", every=100)
    schedulers = [c.scheduler(poll_interval=0.05) for c in clients]
    threads = [threading.Thread(target=s.run) for s in schedulers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(fired(conn)) < 20:
        assert time.monotonic() < deadline, "fewer than 20 ticks fired in 30 s"
        time.sleep(0.05)
    for s in schedulers:
        s.stop()
    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads)
    for c in clients:
        c.close()
    ticks = fired(conn)
    assert len(ticks) >= 10
    # Each tick at most once, all on the schedule's grid. (A tick may be
    # skipped if every loop was starved for over 100 ms: the missed-tick rule.)
    assert ticks == sorted(set(ticks))
    assert all((t - ticks[0]) % 100 == 0 for t in ticks)


def test_a_scheduler_goes_on_after_a_refused_run(
    no_schedules: str, conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Its database refuses the write (a read-only session here): the error is
    # logged and retried, the scheduler keeps running until it is stopped.
    conn.execute("SELECT raquel_set_schedule('tick', 'q', every => 1000, first_run_at => 0)")
    read_only = psycopg.conninfo.make_conninfo(no_schedules, options="-c default_transaction_read_only=on")
    with Raquel(read_only) as rq:
        scheduler = rq.scheduler(poll_interval=0.05)
        thread = threading.Thread(target=scheduler.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while sum("running schedules failed" in r.getMessage() for r in caplog.records) < 2:
            assert thread.is_alive(), "the scheduler stopped on the refused run"
            assert time.monotonic() < deadline, "no refused run was logged"
            time.sleep(0.02)
        scheduler.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert fired(conn) == []
