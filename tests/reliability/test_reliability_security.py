"""Security (issue 4, item 7): fixed search_path, no dynamic SQL, least-privilege roles."""

from __future__ import annotations

import ast
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import Job, Raquel, embedded
from raquel_pg._acompat import join, spawn
from raquel_pg.roles import grant_roles
from tests.worker.test_notifier import handed_pair

Conn = psycopg.Connection[tuple[Any, ...]]
PACKAGE = Path(__file__).resolve().parents[2] / "raquel_pg"


def test_every_function_has_a_fixed_search_path_or_a_body_bound_when_created(conn: Conn) -> None:
    # A SQL-standard body (RETURN ...) is parsed at CREATE FUNCTION and
    # stores the objects it names: no search_path is consulted when it runs.
    unpinned = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = 'raquel'::regnamespace"
        "   AND p.prosqlbody IS NULL"
        "   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')"
    ).fetchall()
    assert unpinned == []


def test_the_inlined_helpers_ignore_a_callers_search_path(conn: Conn) -> None:
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    evil = f"evil_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE SCHEMA "{evil}"'.encode())
    try:
        conn.execute(
            f"CREATE FUNCTION \"{evil}\".raquel_now_ms() RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'".encode()
        )
        conn.execute(f'SET search_path = "{evil}", "{schema}"'.encode())
        job = conn.execute(
            f"INSERT INTO \"{schema}\".raquel_jobs (queue) VALUES ('q') RETURNING id".encode()
        ).fetchone()[0]
        assert job.int >> 80 > 0  # the id's clock is the real one
    finally:
        conn.execute("RESET search_path")
        conn.execute(f'DROP SCHEMA "{evil}" CASCADE'.encode())


#: The migration runner's own functions (0001_engine_schema): they write the install schema's
#: stand-ins with DDL built from catalog names (format %I), run only as the
#: owner, are not SECURITY DEFINER and not executable by PUBLIC.
OWNER_ONLY = {"raquel_expose", "raquel_unexpose"}


def test_no_function_runs_dynamic_sql(conn: Conn) -> None:
    dynamic = conn.execute(
        "SELECT p.proname FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = 'raquel'::regnamespace"
        "   AND p.prosrc ~* '\\mEXECUTE\\M'"
    ).fetchall()
    assert {name for (name,) in dynamic} <= OWNER_ONLY


#: Functions that touch no raquel table: callable by everyone, with the caller's rights.
PURE_HELPERS = {
    "raquel_now_ms",
    "raquel_ts",
    "raquel_retry_delay",
    "raquel_invalid",
    "raquel_new_ids",
    "raquel_new_id",
    "raquel_check_trace_context",
}
#: SQL-standard bodies the planner inlines, that touch no table and call a
#: SECURITY DEFINER function: the caller's rights, not executable by PUBLIC.
#: raquel_enqueue is raquel_enqueue_row's id (migration enqueue_speed).
INLINED_SHAPES = {"raquel_enqueue"}
#: Parts of a SECURITY DEFINER function, called only from it (so with the owner's
#: rights): not SECURITY DEFINER themselves, not executable by PUBLIC.
INTERNAL_PARTS = {"raquel_claim_listed", "raquel_zero_retention"}


def test_every_function_on_the_queue_is_security_definer_and_not_public(conn: Conn) -> None:
    # One row per raquel_* function (not the triggers): does its body name a
    # raquel table, is it SECURITY DEFINER, may PUBLIC execute it.
    rows = conn.execute(
        "SELECT p.proname, p.prosrc ~ '\\mraquel_(jobs|schedules|migrations|waiters)\\M', p.prosecdef,"
        "       has_function_privilege('public', p.oid, 'EXECUTE')"
        " FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = 'raquel'::regnamespace"
        "   AND p.prorettype <> 'trigger'::regtype"
    ).fetchall()
    assert {name for name, *_ in rows} >= PURE_HELPERS | {
        "raquel_stats",
        "raquel_retry",
        "raquel_retry_jobs",
        "raquel_purge",
        "raquel_set_priority",
        "raquel_set_schedule",
        "raquel_drop_schedule",
        "raquel_fire_schedules",
    }
    for name, touches_tables, definer, public in rows:
        if name in PURE_HELPERS:
            assert not touches_tables and not definer and public, name
        elif name in OWNER_ONLY or name in INTERNAL_PARTS:
            assert not definer and not public, name
        elif name in INLINED_SHAPES:
            assert not touches_tables and not definer and not public, name
        else:
            assert definer and not public, name


def test_no_trigger_function_may_be_executed_by_public(conn: Conn) -> None:
    # A trigger function another role could execute, it could attach to a table of its own and
    # feed rows of its making (SECURITY DEFINER ones then act as the owner: 0025).
    triggers = conn.execute(
        "SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') FROM pg_proc p"
        " WHERE p.proname LIKE 'raquel\\_%' AND p.pronamespace = 'raquel'::regnamespace"
        "   AND p.prorettype = 'trigger'::regtype"
    ).fetchall()
    assert {name for name, _ in triggers} >= {"raquel_tg_jobs__notify_insert", "raquel_tg_waiters__hand_off"}
    assert [name for name, public in triggers if public] == []


def builds_a_string(node: ast.AST) -> bool:
    """Whether an expression formats or concatenates: an f-string, +, % or .format()."""
    return any(
        isinstance(n, (ast.JoinedStr, ast.BinOp))
        or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "format")
        for n in ast.walk(node)
    )


def test_python_never_builds_sql_from_strings() -> None:
    # Statements come from queries.sql, the migrations and roles.sql; values
    # travel as query parameters.
    built = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "execute"
                and node.args
                and builds_a_string(node.args[0])
            ):
                built.append(f"{path.name}:{node.lineno}")
    assert built == []


def test_user_objects_cannot_hijack_the_functions(conn: Conn) -> None:
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    evil = f"evil_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE SCHEMA "{evil}"'.encode())
    try:
        conn.execute(f'CREATE TABLE "{evil}".raquel_jobs (LIKE raquel_jobs INCLUDING DEFAULTS)'.encode())
        conn.execute(
            f"CREATE FUNCTION \"{evil}\".raquel_now_ms() RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'".encode()
        )
        conn.execute("CREATE TEMP TABLE raquel_jobs (LIKE raquel_jobs INCLUDING DEFAULTS)")
        conn.execute(f'SET search_path = pg_temp, "{evil}", "{schema}"'.encode())

        conn.execute(f"SELECT \"{schema}\".raquel_enqueue('q')".encode())

        assert conn.execute(
            f'SELECT count(*), min(enqueued_at) > 0 FROM "{schema}".raquel_jobs'.encode()
        ).fetchone() == (1, True)
        assert conn.execute(f'SELECT count(*) FROM "{evil}".raquel_jobs'.encode()).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_temp.raquel_jobs").fetchone()[0] == 0
    finally:
        conn.execute("RESET search_path")
        conn.execute(f'DROP SCHEMA "{evil}" CASCADE'.encode())


def test_user_objects_cannot_hijack_the_operations_and_schedule_functions(conn: Conn) -> None:
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    conn.execute("TRUNCATE raquel.raquel_schedules")
    failed = conn.execute("SELECT raquel_enqueue('q', now => 0, max_retry_count => 0)").fetchone()[0]
    claim = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['q'], 'w', now => 0)").fetchone()[0]
    conn.execute("SELECT raquel_fail(%s, %s, 'boom', NULL, 0)", (failed, claim))  # exhausted
    done = conn.execute("SELECT raquel_enqueue('old', now => 0)").fetchone()[0]
    claim = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['old'], 'w', now => 0)").fetchone()[0]
    conn.execute("SELECT raquel_complete(%s, %s, 0)", (done, claim))
    waiting = conn.execute("SELECT raquel_enqueue('waiting')").fetchone()[0]

    evil = f"evil_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE SCHEMA "{evil}"'.encode())
    try:
        # Decoys: copies of the tables (the jobs with their rows) in the
        # caller's schema and in pg_temp, and functions that return NULL.
        for table in ("raquel_jobs", "raquel_schedules"):
            real = f'"{schema}".{table}'
            for copy in (f'"{evil}".{table}', f"pg_temp.{table}"):
                conn.execute(f"CREATE TABLE {copy} (LIKE {real} INCLUDING DEFAULTS)".encode())
                conn.execute(f"INSERT INTO {copy} SELECT * FROM {real}".encode())
        for function in ("raquel_now_ms()", "raquel_ts(ms bigint)"):
            returns = "bigint" if "now" in function else "timestamptz"
            conn.execute(
                f'CREATE FUNCTION "{evil}".{function} RETURNS {returns} LANGUAGE sql'
                f" AS 'SELECT NULL::{returns}'".encode()
            )
        conn.execute(f'SET search_path = pg_temp, "{evil}", "{schema}"'.encode())

        def call(statement: str, *args: Any) -> Any:
            sql = statement.replace("raquel_", f'"{schema}".raquel_')
            return conn.execute(sql.encode(), args or None).fetchone()

        assert call("SELECT sum(total) FROM raquel_stats()")[0] == 3
        assert call("SELECT count(*) FROM raquel_problem_jobs")[0] == 1
        assert call("SELECT raquel_set_priority(%s, 7)", waiting)[0] is True
        assert call("SELECT raquel_retry(%s)", failed)[0] is True
        assert call("SELECT raquel_purge('1 second')")[0] == 1
        assert call("SELECT raquel_set_schedule('tick', 'sched', every => 1000, first_run_at => 0)")[0] == 0
        fired = call("SELECT job_id FROM raquel_fire_schedules(ARRAY['tick'], ARRAY[0::bigint], ARRAY[NULL::bigint])")[
            0
        ]
        assert call("SELECT raquel_drop_schedule('tick')")[0] is True
        assert call("SELECT raquel_retry_jobs(queue => 'none')")[0] == 0

        real = f'"{schema}".raquel_jobs'
        assert conn.execute(f"SELECT priority FROM {real} WHERE id = %s".encode(), (waiting,)).fetchone()[0] == 7
        assert conn.execute(f"SELECT status FROM {real} WHERE id = %s".encode(), (failed,)).fetchone()[0] == "queued"
        assert conn.execute(f"SELECT count(*) FROM {real} WHERE id = %s".encode(), (done,)).fetchone()[0] == 0
        assert conn.execute(f"SELECT queue FROM {real} WHERE id = %s".encode(), (fired,)).fetchone()[0] == "sched"
        for copy in (f'"{evil}".raquel_jobs', "pg_temp.raquel_jobs"):  # the decoys are untouched
            assert conn.execute(f"SELECT count(*), max(priority), min(status) FROM {copy}".encode()).fetchone() == (
                3,
                0,
                "exhausted",
            )
        for copy in (f'"{evil}".raquel_schedules', "pg_temp.raquel_schedules"):
            assert conn.execute(f"SELECT count(*) FROM {copy}".encode()).fetchone()[0] == 0
    finally:
        conn.execute("RESET search_path")
        conn.execute(f'DROP SCHEMA "{evil}" CASCADE'.encode())
        conn.execute("DROP TABLE IF EXISTS pg_temp.raquel_jobs, pg_temp.raquel_schedules")
        conn.execute("TRUNCATE raquel.raquel_schedules")


# --- least-privilege roles ------------------------------------------------------


@pytest.fixture
def roles(conn: Conn) -> Iterator[dict[str, str]]:
    """Three fresh roles (enqueuer, worker, operator) and one with no grant; dropped at the end."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"raquel_test_{kind}_{suffix}" for kind in ("enqueuer", "worker", "operator", "nobody")}
    for name in names.values():
        conn.execute(f'CREATE ROLE "{name}" NOLOGIN'.encode())
    yield names
    for name in names.values():
        conn.execute(f'DROP OWNED BY "{name}"'.encode())
        conn.execute(f'DROP ROLE "{name}"'.encode())


def as_role(dsn: str, role: str) -> str:
    return make_conninfo(dsn, options=f"-c role={role}")


def refused(dsn: str, statement: str, *args: Any) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(statement.encode(), args or None)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


@pytest.fixture
def granted(conn: Conn, roles: dict[str, str]) -> dict[str, str]:
    grant_roles(conn, enqueuer=roles["enqueuer"], worker=roles["worker"], operator=roles["operator"])
    return roles


#: What only the operator may do (each refused to the enqueuer and the worker).
OPERATOR_ONLY = (
    "SELECT * FROM raquel_queue_stats",
    "SELECT * FROM raquel_problem_jobs",
    "SELECT * FROM raquel_expired_leases",
    "SELECT * FROM raquel_stats()",
    "SELECT raquel_retry(gen_random_uuid())",
    "SELECT raquel_retry_jobs()",
    "SELECT raquel_purge('1 day')",
    "SELECT raquel_set_priority(gen_random_uuid(), 1)",
    "SELECT raquel_set_schedule('s', 'q', every => 1000)",
    "SELECT raquel_drop_schedule('s')",
    "SELECT raquel_rescue()",
    "SELECT raquel_expire()",
    "UPDATE raquel_jobs SET status = 'success'",
    "DELETE FROM raquel_jobs",
    "INSERT INTO raquel_jobs (queue) VALUES ('q')",
    "UPDATE raquel_schedules SET next_run_at = 0",
    "DELETE FROM raquel_schedules",
)


def test_enqueuer_may_only_enqueue(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    other = conn.execute("SELECT raquel_enqueue('q', 'secret')").fetchone()[0]
    enqueuer = as_role(dsn, granted["enqueuer"])
    with Raquel(enqueuer) as rq:
        rq.enqueue("q", "mine")

    assert refused(enqueuer, "SELECT payload FROM raquel_jobs")
    assert refused(enqueuer, "SELECT * FROM raquel_schedules")
    assert refused(enqueuer, "SELECT * FROM raquel_claim()")
    assert refused(enqueuer, "SELECT raquel_cancel(%s)", other)
    assert refused(enqueuer, "SELECT raquel_fire_schedules('{}', '{}', '{}')")
    for statement in OPERATOR_ONLY:
        assert refused(enqueuer, statement), statement
    assert conn.execute("SELECT count(*) FROM raquel_jobs WHERE status = 'queued'").fetchone()[0] == 2


def test_every_role_may_read_the_migrations_applied_and_create_all_is_a_no_op_for_it(
    dsn: str, granted: dict[str, str]
) -> None:
    # An application calls create_all() at start-up with its own role: on an up-to-date database
    # it only reads raquel_migrations.
    for role in (granted["enqueuer"], granted["worker"], granted["operator"]):
        assert not refused(as_role(dsn, role), "SELECT count(*) FROM raquel_migrations"), role
        with Raquel(as_role(dsn, role)) as rq:
            rq.create_all()


def test_enqueuer_may_wait_for_the_result_of_a_job_it_enqueued(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    # An application that enqueues a task and waits for its value needs no more than the enqueuer
    # role: raquel_result_watch registers the wait, the success NOTIFYs it, raquel_result reads it.
    def run_once_watched() -> None:
        with psycopg.connect(dsn, autocommit=True) as owner:
            deadline = time.monotonic() + 30
            while owner.execute("SELECT count(*) FROM raquel_result_waiters").fetchone() == (0,):
                assert time.monotonic() < deadline, "the enqueuer never registered its wait"
                time.sleep(0.01)
            claimed = owner.execute("SELECT id, claim_id FROM raquel_claim(ARRAY['q'])").fetchone()
            owner.execute("SELECT raquel_complete(%s, %s, result => '42'::jsonb)", claimed)

    with Raquel(as_role(dsn, granted["enqueuer"])) as rq:
        job = rq.enqueue("q", "x")
        worker = threading.Thread(target=run_once_watched)
        worker.start()
        try:
            assert rq.result(job.id, timeout=30) == 42
        finally:
            worker.join(30)
    assert conn.execute("SELECT status, result FROM raquel_jobs WHERE id = %s", (job.id,)).fetchone() == (
        "success",
        42,
    )
    assert conn.execute("SELECT count(*) FROM raquel_result_waiters").fetchone() == (0,)


def test_worker_works_through_the_functions_only(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    worker = as_role(dsn, granted["worker"])
    with Raquel(worker) as rq:
        rq.enqueue("q")
        with rq.dequeue("q") as job:
            assert job is not None
        assert rq.count("q", "success") == 1

    for statement in OPERATOR_ONLY:
        assert refused(worker, statement), statement


def run_one_job_as(worker_dsn: str, owner: Conn, caplog: pytest.LogCaptureFixture, *, handed: bool) -> Any:
    """Runs a sync worker of queue q as ``worker_dsn`` until the job the owner enqueues once it
    waits has run; returns that job's waiter registration's listener_pid (None: no hand-off).

    ``handed``: wait for a registration that takes hand-offs (one made once the worker's LISTEN
    connection is up; a worker registers before that too, with none), else for any."""
    caplog.set_level(logging.WARNING, logger="raquel_pg.worker")
    with Raquel(worker_dsn) as rq:

        @rq.subscribe("q", poll_interval=60)
        def handler(job: Job) -> None:
            pass

        run = spawn(handler.run, name="worker")
        deadline = time.monotonic() + 30
        waiting = "SELECT listener_pid FROM raquel_waiters" + (" WHERE listener_pid IS NOT NULL" if handed else "")
        while (registered := owner.execute(waiting.encode()).fetchall()) == []:
            assert time.monotonic() < deadline, "the worker never registered as waiting"
            time.sleep(0.01)
        job_id = owner.execute("SELECT raquel_enqueue('q')").fetchone()[0]
        while owner.execute("SELECT status FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() != ("success",):
            assert time.monotonic() < deadline, "the job did not run"
            time.sleep(0.01)
        handler.stop()
        join([run], 30)
    return registered[0][0]


def test_a_worker_role_is_handed_jobs(
    dsn: str, conn: Conn, granted: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert run_one_job_as(as_role(dsn, granted["worker"]), conn, caplog, handed=True) is not None
    assert "hand-offs" not in caplog.text


def revoke_reading_the_jobs(conn: Conn, role: str) -> None:
    """Leaves ``role`` the functions but not `raquel-pg grant --worker`'s SELECT on raquel_jobs: its
    worker cannot read a handed job to start it before taking it (the handed query)."""
    for schema in ("raquel", conn.execute("SELECT current_schema()").fetchone()[0]):
        conn.execute(f'REVOKE SELECT ON "{schema}".raquel_jobs FROM "{role}"'.encode())


def test_a_worker_role_that_may_not_read_the_jobs_takes_each_handed_job_before_starting_it(
    dsn: str, conn: Conn, granted: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    revoke_reading_the_jobs(conn, granted["worker"])
    assert run_one_job_as(as_role(dsn, granted["worker"]), conn, caplog, handed=True) is not None
    assert caplog.text.count("takes each job handed to it before starting it") == 1


@pytest.mark.parametrize(("claim_as", "queues"), [("w2", ["q"]), ("w1", ["other"])])
def test_a_worker_role_that_may_not_read_the_jobs_takes_no_job_handed_to_another_worker(
    dsn: str, conn: Conn, granted: dict[str, str], claim_as: str, queues: list[str]
) -> None:
    # A notification sent by hand naming a genuine hand-off to worker w1 of queue q: the worker that
    # takes first (raquel_take given its claim_as and queues, 0033_take_checks) takes nothing.
    revoke_reading_the_jobs(conn, granted["worker"])
    with psycopg.connect(dsn, autocommit=True) as listening, Raquel(as_role(dsn, granted["worker"])) as rq:
        job_id, claim_id = handed_pair(conn, listening)
        assert rq.job_calls.handoffs.take([(job_id, claim_id)], claim_as=claim_as, queues=queues) == []
    assert conn.execute("SELECT status, claimed_at FROM raquel_jobs WHERE id = %s", (job_id,)).fetchone() == (
        "claimed",
        None,
    )


def test_a_worker_role_granted_before_the_hand_off_claims_as_before(
    dsn: str, conn: Conn, granted: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # What `raquel-pg grant --worker` gave before 0019_handoff: neither raquel_take nor the new
    # raquel_wait_begin form, in the engine schema or the install schema.
    for schema in ("raquel", conn.execute("SELECT current_schema()").fetchone()[0]):
        conn.execute(
            f'REVOKE EXECUTE ON FUNCTION "{schema}".raquel_take(uuid, uuid, bigint, text, text[]),'
            f' "{schema}".raquel_wait_begin(uuid, text[], bigint, text, bigint, integer)'
            f' FROM "{granted["worker"]}"'.encode()
        )
    assert run_one_job_as(as_role(dsn, granted["worker"]), conn, caplog, handed=False) is None
    assert caplog.text.count("takes no hand-offs") == 1


def test_worker_may_run_a_scheduler_but_not_declare_schedules(
    dsn: str, no_schedules: str, conn: Conn, granted: dict[str, str]
) -> None:
    conn.execute("SELECT raquel_set_schedule('tick', 'ticks', every => 60000, first_run_at => 0)")
    worker = as_role(dsn, granted["worker"])
    with Raquel(worker) as rq:
        fired = rq.run_schedules()
        assert [s.name for s in rq.schedules()] == ["tick"]
        assert rq._next_schedule_in() is not None  # the scheduler's sleep, read as the worker
    assert len(fired) == 1
    assert conn.execute("SELECT queue FROM raquel_jobs WHERE id = %s", (fired[0],)).fetchone()[0] == "ticks"
    assert refused(worker, "SELECT raquel_set_schedule('tick', 'other', every => 1000)")
    assert refused(worker, "SELECT raquel_drop_schedule('tick')")


def test_operator_may_repair_jobs_by_hand(dsn: str, conn: Conn, granted: dict[str, str]) -> None:
    conn.execute("SELECT raquel_enqueue('q')")
    operator = as_role(dsn, granted["operator"])

    assert not refused(operator, "UPDATE raquel_jobs SET scheduled_at = 0")
    assert not refused(operator, "SELECT raquel_rescue(), raquel_expire()")
    assert not refused(operator, "SELECT count(*) FROM raquel_migrations")
    assert refused(operator, "DROP TABLE raquel.raquel_jobs")
    assert refused(operator, "DROP VIEW raquel_jobs")


def test_operator_may_use_the_views_functions_and_schedules(
    dsn: str, no_schedules: str, conn: Conn, granted: dict[str, str]
) -> None:
    job = conn.execute("SELECT raquel_enqueue('q', max_retry_count => 0)").fetchone()[0]
    claim = conn.execute("SELECT claim_id FROM raquel_claim(ARRAY['q'], 'w')").fetchone()[0]
    conn.execute("SELECT raquel_fail(%s, %s, 'boom', NULL)", (job, claim))
    operator = as_role(dsn, granted["operator"])
    with psycopg.connect(operator, autocommit=True) as op:
        assert op.execute("SELECT queue, exhausted FROM raquel_queue_stats").fetchall() == [("q", 1)]
        assert op.execute("SELECT id FROM raquel_problem_jobs").fetchall() == [(job,)]
        assert op.execute("SELECT count(*) FROM raquel_expired_leases").fetchone() == (0,)
        assert op.execute("SELECT raquel_retry(%s)", (job,)).fetchone() == (True,)
        assert op.execute("SELECT raquel_set_priority(%s, 5)", (job,)).fetchone() == (True,)
        assert op.execute("SELECT raquel_retry_jobs(), raquel_purge('1 day')").fetchone() == (0, 0)
        op.execute("SELECT raquel_set_schedule('s', 'q', every => 1000)")
        op.execute("UPDATE raquel_schedules SET priority = 2")
        assert op.execute("SELECT raquel_drop_schedule('s')").fetchone() == (True,)
        op.execute("SELECT raquel_set_schedule('s', 'q', every => 1000)")
        assert op.execute("DELETE FROM raquel_schedules").rowcount == 1
    assert refused(operator, "ALTER TABLE raquel_schedules ADD COLUMN x int")
    assert refused(operator, "DROP VIEW raquel_queue_stats")


def test_role_without_grants_cannot_call_the_queue(dsn: str, roles: dict[str, str]) -> None:
    assert refused(as_role(dsn, roles["nobody"]), "SELECT raquel_enqueue('q')")


@pytest.mark.parametrize("function", ["raquel_tg_waiters__hand_off", "raquel_tg_jobs__notify_insert"])
def test_no_role_may_attach_an_engine_trigger_function_to_a_table_of_its_own(
    dsn: str, conn: Conn, granted: dict[str, str], function: str
) -> None:
    # The security probe's attack: a temporary table shaped like the engine's, whose rows the
    # SECURITY DEFINER trigger function would then act on as the owner.
    for role in granted.values():
        with psycopg.connect(as_role(dsn, role), autocommit=True) as attacker:
            attacker.execute("CREATE TEMP TABLE fake (id uuid)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                attacker.execute(
                    f"CREATE TRIGGER t AFTER UPDATE ON fake FOR EACH ROW EXECUTE FUNCTION raquel.{function}()".encode()
                )


def test_roles_sql_runs_from_psql(dsn: str, conn: Conn, roles: dict[str, str]) -> None:
    psql = embedded.bin_path("psql")
    if psql is None:
        pytest.skip("no psql")
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    subprocess.run(
        [
            psql,
            dsn,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-f",
            str(PACKAGE / "roles.sql"),
            "-c",
            f"SELECT pg_temp.raquel_grant_roles('{schema}', '{roles['enqueuer']}')",
        ],
        check=True,
        capture_output=True,
    )

    with Raquel(as_role(dsn, roles["enqueuer"])) as rq:
        rq.enqueue("q")
    assert conn.execute("SELECT count(*) FROM raquel_jobs").fetchone()[0] == 1
