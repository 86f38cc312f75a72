"""The migration runner: ordered, idempotent, locked, checksummed, and its psql script."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import InvalidArgument, MigrationError, Raquel, embedded
from raquel_pg._acompat import join, spawn
from raquel_pg.migrate import check_install_schema, migrate, pending_migrations, schema_warning, status
from raquel_pg.roles import grant_roles
from raquel_pg.schema import LOCK_HOLDERS_SQL, Migration, load_migrations, script

Conn = psycopg.Connection[Any]


@pytest.fixture
def fresh(make_database: Any) -> Any:
    """An autocommit connection to a new, empty database."""
    with psycopg.connect(make_database(), autocommit=True) as conn:
        yield conn


def recorded(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT version, name, checksum FROM raquel_migrations ORDER BY version").fetchall()


def functions(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1, 2"
    ).fetchall()


def test_migrate_applies_every_migration_once_and_records_it(fresh: Conn) -> None:
    applied = migrate(fresh)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert recorded(fresh) == [(m.version, m.name, m.checksum) for m in load_migrations()]
    assert migrate(fresh) == []
    assert all(state.applied_at is not None for state in status(fresh))


def test_status_lists_pending_migrations(fresh: Conn) -> None:
    assert [s.applied_at for s in status(fresh)] == [None] * len(load_migrations())


def test_a_changed_migration_file_is_refused_by_name(fresh: Conn) -> None:
    migrate(fresh)
    fresh.execute("UPDATE raquel_migrations SET checksum = 'edited' WHERE version = 1")
    first = load_migrations()[0].filename
    with pytest.raises(MigrationError, match=f"{first} was changed after it was applied"):
        migrate(fresh)


def test_a_database_newer_than_the_package_is_refused(fresh: Conn) -> None:
    migrate(fresh)
    fresh.execute("INSERT INTO raquel_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
    with pytest.raises(MigrationError, match="0999_future which this raquel_pg does not know"):
        pending_migrations(fresh)


@contextmanager
def scratch_role(conn: Conn, kind: str) -> Iterator[str]:
    """A new NOLOGIN role, dropped with its grants when the block ends."""
    role = f"raquel_test_{kind}_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    try:
        yield role
    finally:
        conn.execute(f'DROP OWNED BY "{role}"'.encode())
        conn.execute(f'DROP ROLE "{role}"'.encode())


#: A later delta as the next migration's author writes it: a column the stand-in views read
#: changes type, and a function is replaced (same signature), with unqualified names.
LATER = """
ALTER TABLE raquel_jobs ALTER COLUMN error_trace TYPE varchar(100000);
CREATE OR REPLACE FUNCTION raquel_set_priority(job_id uuid, priority integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    UPDATE raquel_jobs j SET priority = raquel_set_priority.priority
    WHERE j.id = raquel_set_priority.job_id AND j.status IN ('queued', 'failed', 'claimed');
    RETURN FOUND;
END;
$$;
"""


def test_an_enqueuer_may_enqueue_through_each_enqueue_function(fresh: Conn) -> None:
    # raquel_enqueue is raquel_enqueue_row's inlined id (0004_enqueue): its callers need
    # EXECUTE on raquel_enqueue_row too, which roles.sql grants the enqueuer, and nobody else.
    migrate(fresh)
    with scratch_role(fresh, "enqueuer") as enqueuer, scratch_role(fresh, "other") as other:
        grant_roles(fresh, enqueuer=enqueuer)
        found = fresh.execute("SELECT 'raquel.raquel_enqueue_row'::regproc::oid").fetchone()  # its one signature
        assert found is not None
        row = found[0]
        assert fresh.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE'), has_function_privilege(%s, %s, 'EXECUTE'),"
            " has_function_privilege('public', %s, 'EXECUTE')",
            (enqueuer, row, other, row, row),
        ).fetchone() == (True, False, False)
        fresh.execute(f'SET ROLE "{enqueuer}"'.encode())
        try:
            ids = [
                fresh.execute("SELECT raquel_enqueue('q', 'a')").fetchone()[0],
                fresh.execute("SELECT raquel.raquel_enqueue('q', 'b')").fetchone()[0],
                fresh.execute("SELECT id FROM raquel_enqueue_job('q', 'c')").fetchone()[0],
            ]
        finally:
            fresh.execute("RESET ROLE")
        assert fresh.execute("SELECT id, payload FROM raquel_jobs ORDER BY payload").fetchall() == list(zip(ids, "abc"))


def test_an_enqueuer_may_call_enqueue_many_with_timeout_and_trace_context(fresh: Conn) -> None:
    # raquel_enqueue_many has one signature (0004_enqueue), timeout and trace_context included:
    # roles.sql grants it to the enqueuer, and PUBLIC has no EXECUTE on it.
    migrate(fresh)
    signature = (
        "raquel.raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint,"
        " bigint, integer, text[], text, bigint, text)"
    )
    assert fresh.execute(
        "SELECT array_agg(p.oid) = ARRAY[%s::regprocedure::oid] FROM pg_proc p"
        " WHERE p.proname = 'raquel_enqueue_many' AND p.pronamespace = 'raquel'::regnamespace",
        (signature,),
    ).fetchone() == (True,)
    carrier = '{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    with scratch_role(fresh, "enqueuer") as enqueuer:
        grant_roles(fresh, enqueuer=enqueuer)
        fresh.execute(f'SET ROLE "{enqueuer}"'.encode())
        try:
            fresh.execute(
                "SELECT raquel_enqueue_many('q', ARRAY['a', 'b'], timeout => 5000, trace_context => %s)", (carrier,)
            ).fetchall()
        finally:
            fresh.execute("RESET ROLE")
        assert fresh.execute("SELECT has_function_privilege('public', %s, 'EXECUTE')", (signature,)).fetchone() == (
            False,
        )
    assert fresh.execute("SELECT payload, timeout, trace_context FROM raquel_jobs ORDER BY payload").fetchall() == [
        ("a", 5000, carrier),
        ("b", 5000, carrier),
    ]


def test_a_later_migration_keeps_the_jobs_and_the_roles_grants(fresh: Conn) -> None:
    # Roles are granted (roles.sql) after the install; a later migration changes a column the
    # stand-in views read and replaces a function: the runner drops the stand-in views before
    # it and makes them again after it, with the engine objects' grants, and the jobs stay.
    migrate(fresh)
    later = [*load_migrations(), Migration(len(load_migrations()) + 1, "later", LATER)]
    with scratch_role(fresh, "operator") as operator, scratch_role(fresh, "worker") as worker:
        grant_roles(fresh, operator=operator, worker=worker)
        job = fresh.execute("SELECT raquel_enqueue('q', 'x', max_age => 5000, max_retry_count => 2)").fetchone()
        assert [m.version for m in migrate(fresh, later)] == [len(later)]
        assert fresh.execute(
            "SELECT has_table_privilege(%s, 'public.raquel_problem_jobs', 'SELECT'),"
            " has_table_privilege(%s, 'public.raquel_expired_leases', 'SELECT'),"
            " has_function_privilege(%s, 'public.raquel_set_priority(uuid, integer)', 'EXECUTE'),"
            " has_function_privilege(%s, 'raquel.raquel_set_priority(uuid, integer)', 'EXECUTE'),"
            " has_function_privilege('public', 'raquel.raquel_set_priority(uuid, integer)', 'EXECUTE')",
            (operator, operator, operator, operator),
        ).fetchone() == (True, True, True, True, False)
        assert fresh.execute(
            "SELECT id, queue, payload, status, max_age, max_retry_count FROM raquel_jobs"
        ).fetchall() == [(job[0], "q", "x", "queued", 5000, 2)]
        claimed = fresh.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()
        assert claimed is not None and claimed[0] == job[0]
        assert fresh.execute("SELECT raquel_fail(%s, %s, 'boom')", claimed).fetchone() == ("failed",)
        assert fresh.execute("SELECT id, status FROM raquel_problem_jobs").fetchall() == [(job[0], "failed")]


def test_a_second_install_schema_in_one_database_is_refused(fresh: Conn) -> None:
    # Schema raquel is shared by every install schema of a database: the runner refuses to
    # install it again, naming the install schema, and creates nothing in the other schema.
    migrate(fresh)
    fresh.execute("CREATE SCHEMA other")
    fresh.execute("SET search_path = other")
    with pytest.raises(MigrationError, match="installed in schema 'public'.* a database holds one install"):
        migrate(fresh)
    fresh.execute("RESET search_path")
    assert fresh.execute("SELECT to_regclass('other.raquel_migrations')").fetchone() == (None,)
    assert [r[0] for r in recorded(fresh)] == [m.version for m in load_migrations()]


def test_a_search_path_that_finds_the_install_after_another_schema_is_refused_and_nothing_created(
    fresh: Conn,
) -> None:
    # migrate records and installs into the current schema (the search_path's first): with the
    # install schema later on the path it would create a second, empty raquel_migrations there.
    migrate(fresh)
    fresh.execute("CREATE SCHEMA other")
    fresh.execute("SET search_path = other, public")
    with pytest.raises(MigrationError, match="installed in schema 'public', not in this session's current schema"):
        migrate(fresh)
    with pytest.raises(MigrationError, match="installed in schema 'public', not in this session's current schema"):
        check_install_schema(fresh)
    fresh.execute("RESET search_path")
    assert fresh.execute("SELECT to_regclass('other.raquel_migrations')").fetchone() == (None,)


def test_a_lock_timeout_past_postgresqls_limit_is_refused_naming_it(fresh: Conn) -> None:
    with pytest.raises(InvalidArgument, match="lock_timeout: at most 2147483647 ms") as refused:
        migrate(fresh, lock_timeout=timedelta(days=30))
    assert refused.value.argument == "lock_timeout"
    assert fresh.execute("SELECT to_regclass('raquel_migrations')").fetchone() == (None,)


def test_the_sessions_holding_the_queue_are_named_to_a_role_that_may_not_see_their_details(fresh: Conn) -> None:
    # A managed database's owner is no superuser: pg_stat_activity hides other roles' state,
    # start and query from it, and pg_locks still names the session in its way.
    migrate(fresh)
    role = f"raquel_test_owner_{uuid.uuid4().hex[:8]}"
    fresh.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
    try:
        with open_enqueue(fresh.info.dsn) as (_, blocker_pid):
            with psycopg.connect(fresh.info.dsn, autocommit=True, options=f"-c role={role}") as owner:
                rows = owner.execute(LOCK_HOLDERS_SQL, (3600,)).fetchall()
        assert [(pid, state) for pid, _, state, _, _ in rows] == [(blocker_pid, None)]
    finally:
        fresh.execute(f'DROP ROLE "{role}"'.encode())


def test_schema_warning_says_when_the_database_is_behind_or_ahead(fresh: Conn) -> None:
    assert schema_warning(fresh) is None  # not installed: the calls say so
    migrate(fresh)
    assert schema_warning(fresh) is None
    last = load_migrations()[-1]
    fresh.execute("DELETE FROM raquel_migrations WHERE version = %s", (last.version,))
    assert schema_warning(fresh) == (
        f"the database is behind this raquel_pg: 1 migration(s) pending, from {last.filename}; "
        "run raquel-pg migrate (docs/deploying.md: migrate first, then roll the code)"
    )
    fresh.execute("INSERT INTO raquel_migrations (version, name, checksum) VALUES (%s, 'later', 'x')", (999,))
    assert "which this raquel_pg does not know" in (schema_warning(fresh) or "")


def test_a_worker_on_a_database_behind_warns_at_start(fresh: Conn, caplog: pytest.LogCaptureFixture) -> None:
    migrate(fresh)
    fresh.execute("DELETE FROM raquel_migrations WHERE version = %s", (load_migrations()[-1].version,))
    with Raquel(fresh.info.dsn) as rq:
        worker = rq.subscribe("q")(lambda job: None)
        worker.stop()  # run() returns at once, after its start
        worker.run()
    assert [r.getMessage() for r in caplog.records if "is behind this raquel_pg" in r.getMessage()]


def test_a_worker_on_a_database_behind_0033_that_takes_handed_jobs_first_stays_up_and_runs_them(
    make_database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A new worker before `raquel-pg migrate` (docs/deploying.md: migrate first), its role without
    # SELECT on raquel_jobs: it takes each handed job first, with 0033's raquel_take, missing here.
    # It says so and stays up; the job goes back when its lease runs out and is claimed and run.
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")
    dsn = make_database()
    role = f"raquel_test_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, [m for m in load_migrations() if m.version < 33])
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN'.encode())
        try:
            grant_roles(conn, worker=role)
            for schema in ("raquel", conn.execute("SELECT current_schema()").fetchone()[0]):
                conn.execute(f'REVOKE SELECT ON "{schema}".raquel_jobs FROM "{role}"'.encode())
            with Raquel(make_conninfo(dsn, options=f"-c role={role}"), lease=timedelta(seconds=1)) as rq:
                worker = rq.subscribe("q", poll_interval=0.2)(lambda job: None)
                run = spawn(worker.run, name="worker")
                deadline = time.monotonic() + 30
                while not conn.execute("SELECT FROM raquel_waiters WHERE listener_pid IS NOT NULL").fetchall():
                    assert time.monotonic() < deadline, "the worker never registered for hand-offs"
                    time.sleep(0.01)
                job_id = conn.execute("SELECT raquel_enqueue('q')").fetchone()[0]
                while conn.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() != (
                    "success",
                ):
                    assert time.monotonic() < deadline, "the handed job never ran"
                    time.sleep(0.01)
                worker.stop()
                join([run], 30)
        finally:
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
            conn.execute(f'DROP ROLE "{role}"'.encode())
    assert any("could not take 1 job(s) handed to this worker" in r.getMessage() for r in caplog.records)


def test_a_worker_started_with_its_database_down_waits_at_most_a_second_for_the_schema_check() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with Raquel(f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=2") as rq:
        worker = rq.subscribe("q")(lambda job: None)
        worker.stop()  # run() returns once started: its schema check waits for no connection long
        worker.run()
    assert time.monotonic() - started < 10  # the pool's own wait is 30 s


def test_the_engine_refuses_a_second_install_whatever_runs_the_migration(fresh: Conn) -> None:
    # The same refusal by 0001_engine_schema itself (a script run by psql, another runner).
    migrate(fresh)
    fresh.execute("CREATE SCHEMA other")
    fresh.execute("SET search_path = other")
    with pytest.raises(psycopg.errors.RaiseException, match="can be installed once per database"):
        fresh.execute(load_migrations()[0].sql.encode())


def test_a_failing_migration_is_rolled_back_whole(fresh: Conn) -> None:
    broken = [
        *load_migrations(),
        Migration(len(load_migrations()) + 1, "broken", "CREATE TABLE half_done (x int);\nSELECT 1/0;\n"),
    ]
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(fresh, broken)
    assert fresh.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    assert [r[0] for r in recorded(fresh)] == [m.version for m in load_migrations()]


def test_concurrent_deploys_apply_each_migration_once(make_database: Any) -> None:
    dsn = make_database()
    results: list[Any] = []

    def deploy() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            results.append(migrate(conn))

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = sorted(m.version for r in results for m in r)
    assert applied == [m.version for m in load_migrations()]  # each once, whoever applied it


def test_the_psql_script_builds_the_same_schema_as_the_runner(fresh: Conn, make_database: Any) -> None:
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql on this machine")
    other = make_database()
    subprocess.run(
        [psql, other, "-X", "-q"], input=script(load_migrations()), text=True, check=True, capture_output=True
    )
    migrate(fresh)
    with psycopg.connect(other, autocommit=True) as conn:
        assert functions(conn) == functions(fresh)
        assert recorded(conn) == recorded(fresh)
        assert migrate(conn) == []


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "migration 0002 is missing"),
        (["0001_a.sql", "0001_b.sql"], "two migrations are numbered 0001"),
        (["1_a.sql"], "is not named NNNN_snake_name.sql"),
    ],
)
def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


#: A later migration that needs a lock on raquel_jobs which an open enqueue's transaction holds.
INDEXED = "CREATE INDEX raquel_jobs_probe_idx ON raquel_jobs (claimed_by)"


@contextmanager
def open_enqueue(dsn: str) -> Iterator[tuple[Conn, int]]:
    """A transaction that enqueued and stays open (the application's long transaction), and its pid."""
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT raquel_enqueue('q', 'x')")
        pid = blocker.execute("SELECT pg_backend_pid()").fetchone()
        assert pid is not None
        yield blocker, pid[0]
        blocker.rollback()


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def lock_waits(conn: Conn, pid: int) -> bool:
    row = conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return bool(row and row[0])


def test_a_migration_blocked_by_a_long_transaction_gives_up_and_names_it(
    fresh: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a migration waits for a table lock, every claim and enqueue waits behind it: so it
    # waits at most lock_timeout per attempt, and names the transaction in its way.
    import raquel_pg.migrate

    monkeypatch.setattr(raquel_pg.migrate, "LOCK_PAUSES", (0.0, 0.0, 0.0, 0.0))
    migrate(fresh)
    later = [*load_migrations(), Migration(len(load_migrations()) + 1, "indexed", INDEXED)]
    dsn = fresh.info.dsn
    with open_enqueue(dsn) as (_, blocker_pid):
        with pytest.raises(MigrationError, match=rf"\d{{4}}_indexed.sql: not applied: .* pid {blocker_pid} "):
            migrate(fresh, later, lock_timeout=timedelta(milliseconds=50))
    assert [r[0] for r in recorded(fresh)] == [m.version for m in load_migrations()]
    assert fresh.execute("SELECT to_regclass('raquel.raquel_jobs_probe_idx')").fetchone() == (None,)


def test_a_migration_tries_again_once_the_long_transaction_ends(fresh: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    import raquel_pg.migrate

    monkeypatch.setattr(raquel_pg.migrate, "LOCK_PAUSES", (0.5, 0.5, 0.5, 0.5))
    migrate(fresh)
    later = [*load_migrations(), Migration(len(load_migrations()) + 1, "indexed", INDEXED)]
    results: list[Any] = []
    with open_enqueue(fresh.info.dsn) as (blocker, _), psycopg.connect(fresh.info.dsn, autocommit=True) as deployer:
        deploy_pid = deployer.info.backend_pid
        deploy = threading.Thread(
            target=lambda: results.append(migrate(deployer, later, lock_timeout=timedelta(milliseconds=100)))
        )
        deploy.start()
        wait_for(lambda: lock_waits(fresh, deploy_pid))  # the first attempt waits for the lock ...
        wait_for(lambda: not lock_waits(fresh, deploy_pid))  # ... gives up, and pauses
        blocker.commit()
        deploy.join(timeout=30)
    assert [m.name for m in results[0]] == ["indexed"]
    assert fresh.execute("SELECT to_regclass('raquel.raquel_jobs_probe_idx')").fetchone() is not None


def test_a_migration_without_a_lock_timeout_waits_for_the_long_transaction(fresh: Conn) -> None:
    migrate(fresh)
    later = [*load_migrations(), Migration(len(load_migrations()) + 1, "indexed", INDEXED)]
    results: list[Any] = []
    with open_enqueue(fresh.info.dsn) as (blocker, _), psycopg.connect(fresh.info.dsn, autocommit=True) as deployer:
        deployer.execute("SET lock_timeout = '50ms'")  # a role's or database's own: no limit overrides it
        deploy_pid = deployer.info.backend_pid
        deploy = threading.Thread(target=lambda: results.append(migrate(deployer, later, lock_timeout=None)))
        deploy.start()
        wait_for(lambda: lock_waits(fresh, deploy_pid))
        blocker.commit()
        deploy.join(timeout=30)
    assert [m.name for m in results[0]] == ["indexed"]


def test_the_psql_script_gives_up_on_a_table_lock_after_its_lock_timeout(make_database: Any) -> None:
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql on this machine")
    dsn = make_database()
    indexed = Migration(len(load_migrations()) + 1, "indexed", INDEXED + ";")
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        with open_enqueue(dsn):
            done = subprocess.run(
                [psql, dsn, "-X", "-q"], input=script([indexed], lock_timeout_ms=50), text=True, capture_output=True
            )
        assert done.returncode != 0
        assert "canceling statement due to lock timeout" in done.stderr
        assert [r[0] for r in recorded(conn)] == [m.version for m in load_migrations()]  # nothing of it applied
        assert conn.execute("SELECT to_regclass('raquel.raquel_jobs_probe_idx')").fetchone() == (None,)


def test_the_psql_script_without_a_lock_timeout_sets_none_over_the_roles_own() -> None:
    unlimited = script(load_migrations(), lock_timeout_ms=None)
    assert unlimited.count("set_config('lock_timeout', '0', true)") == len(load_migrations())
    assert script(load_migrations()).count("set_config('lock_timeout', '1000ms', true)") == len(load_migrations())
