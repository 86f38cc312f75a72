"""No role can make a SECURITY DEFINER function run its code (issue 18, docs/security.md).

On a database where every role may CREATE in the install schema (PostgreSQL
14's default for ``public``), each role of roles.sql and a role with no grant
plants operators, function overloads, types and casts in it, on the
engine's domain types and on base types, then the queue's functions run: as
the owner through the Python client's qualified calls, as the planting role
through the install schema's stand-ins, and as every other role. A planted
function that ran would note ``current_user`` in the session (a setting that
outlives the function) and in a table only the owner may write: neither ever
shows the owner. A deliberately unsafe SECURITY DEFINER function (search_path =
the install schema, then pg_temp) proves the planted objects do hijack when they can.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from raquel_pg import Raquel
from raquel_pg.migrate import migrate
from raquel_pg.roles import grant_roles

Conn = psycopg.Connection[tuple[Any, ...]]

#: The marker a planted function leaves: "<current_user>:<what>" appended to a session setting.
MARKER = "hijack.ran"

# A planted function: notes who runs it, then behaves like what it replaces.
_BODY = (
    "BEGIN"
    " PERFORM pg_catalog.set_config('" + MARKER + "', pg_catalog.concat("
    "   pg_catalog.current_setting('" + MARKER + "', true), ' ', current_user, ':', '{what}'), false);"
    " BEGIN INSERT INTO public.hijack_canary VALUES (current_user, '{what}');"
    " EXCEPTION WHEN OTHERS THEN NULL; END;"
    " RETURN {result};"
    " END"
)

#: Operators: (symbol, left type, right type, result type, what the planted one returns).
#: The first group is on the engine's domains, the second on base types.
DOMAIN_OPERATORS = [
    ("=", "raquel.raquel_status", "raquel.raquel_status", "boolean", "a::text OPERATOR(pg_catalog.=) b::text"),
    ("<>", "raquel.raquel_status", "raquel.raquel_status", "boolean", "a::text OPERATOR(pg_catalog.<>) b::text"),
    ("=", "raquel.raquel_status", "text", "boolean", "a::text OPERATOR(pg_catalog.=) b"),
    ("=", "raquel.raquel_name", "raquel.raquel_name", "boolean", "a::text OPERATOR(pg_catalog.=) b::text"),
    ("=", "raquel.raquel_name", "text", "boolean", "a::text OPERATOR(pg_catalog.=) b"),
    (">=", "raquel.raquel_delay", "bigint", "boolean", "a::bigint OPERATOR(pg_catalog.>=) b"),
    ("+", "bigint", "raquel.raquel_max_age", "bigint", "a OPERATOR(pg_catalog.+) b::bigint"),
]
BASE_OPERATORS = [
    ("=", "text", "text", "boolean", "a OPERATOR(pg_catalog.=) b"),
    ("=", "uuid", "uuid", "boolean", "a OPERATOR(pg_catalog.=) b"),
    ("=", "bigint", "bigint", "boolean", "a OPERATOR(pg_catalog.=) b"),
    ("<=", "bigint", "bigint", "boolean", "a OPERATOR(pg_catalog.<=) b"),
    ("<", "bigint", "bigint", "boolean", "a OPERATOR(pg_catalog.<) b"),
    ("+", "bigint", "bigint", "bigint", "a OPERATOR(pg_catalog.+) b"),
    ("-", "bigint", "bigint", "bigint", "a OPERATOR(pg_catalog.-) b"),
    ("+", "bigint", "integer", "bigint", "a OPERATOR(pg_catalog.+) b"),
    ("=", "bigint", "integer", "boolean", "a OPERATOR(pg_catalog.=) b"),
    ("||", "text", "text", "text", "a OPERATOR(pg_catalog.||) b"),
    ("=", "text", "public.hijack_type", "boolean", "false"),
]

#: Functions: (name, argument types, result type, what the planted one returns). Names of
#: built-ins the queue's bodies call, with the engine's domains or exact base types.
FUNCTIONS = [
    ("format", ["text", "bigint"], "text", "pg_catalog.format(a1, a2)"),
    ("format", ["text", "text"], "text", "pg_catalog.format(a1, a2)"),
    ("format", ["text", "integer"], "text", "pg_catalog.format(a1, a2)"),
    ("format", ["text", "raquel.raquel_name"], "text", "pg_catalog.format(a1, a2::text)"),
    ("octet_length", ["text"], "integer", "pg_catalog.octet_length(a1)"),
    ("octet_length", ["raquel.raquel_name"], "integer", "pg_catalog.octet_length(a1::text)"),
    ("pg_notify", ["text", "text"], "void", "pg_catalog.pg_notify(a1, a2)"),
    ("pg_notify", ["text", "raquel.raquel_name"], "void", "pg_catalog.pg_notify(a1, a2::text)"),
    ("gen_random_uuid", [], "uuid", "pg_catalog.gen_random_uuid()"),
    ("clock_timestamp", [], "timestamptz", "pg_catalog.clock_timestamp()"),
    ("now", [], "timestamptz", "pg_catalog.now()"),
    ("cardinality", ["uuid[]"], "integer", "pg_catalog.cardinality(a1)"),
    ("cardinality", ["text[]"], "integer", "pg_catalog.cardinality(a1)"),
    ("array_length", ["uuid[]", "integer"], "integer", "pg_catalog.array_length(a1, a2)"),
    ("floor", ["numeric"], "numeric", "pg_catalog.floor(a1)"),
    ("to_hex", ["bigint"], "text", "pg_catalog.to_hex(a1)"),
    ("lpad", ["text", "integer", "text"], "text", "pg_catalog.lpad(a1, a2, a3)"),
    ("substr", ["text", "integer"], "text", "pg_catalog.substr(a1, a2)"),
    ("pg_advisory_xact_lock", ["bigint"], "void", "pg_catalog.pg_advisory_xact_lock(a1)"),
    ("hashtext", ["text"], "integer", "pg_catalog.hashtext(a1)"),
    ("set_config", ["text", "text", "boolean"], "text", "pg_catalog.set_config(a1, a2, a3)"),
    ("raquel_now_ms", [], "bigint", "0"),  # taken by the stand-in: refused
    ("raquel_new_ids", ["bigint"], "uuid[]", "NULL"),
    ("raquel_retry_delay", ["integer", "raquel.raquel_delay", "raquel.raquel_delay", "bigint"], "bigint", "0"),
]


def plant_statements() -> list[str]:
    """Everything a hostile role tries to create in the install schema, one statement each."""
    statements = [
        # Types named like the engine's (free in the install schema),
        # a type of its own with implicit casts from text and to text.
        "CREATE TYPE public.raquel_status AS ENUM ('queued', 'claimed', 'success')",
        "CREATE DOMAIN public.raquel_name AS text",
        "CREATE TYPE public.hijack_type AS (t text)",
        "CREATE FUNCTION public.hijack_to_type(a text) RETURNS public.hijack_type LANGUAGE plpgsql AS $$"
        + _BODY.format(what="cast text->hijack_type", result="ROW(a)::public.hijack_type")
        + "$$",
        "CREATE CAST (text AS public.hijack_type) WITH FUNCTION public.hijack_to_type(text) AS IMPLICIT",
        "CREATE FUNCTION public.hijack_from_type(a public.hijack_type) RETURNS text LANGUAGE plpgsql AS $$"
        + _BODY.format(what="cast hijack_type->text", result="a.t")
        + "$$",
        "CREATE CAST (public.hijack_type AS text) WITH FUNCTION public.hijack_from_type(public.hijack_type)"
        " AS IMPLICIT",
        "CREATE CAST (public.hijack_type AS raquel.raquel_status) WITH INOUT AS IMPLICIT",
    ]
    for n, (symbol, left, right, result, body) in enumerate(DOMAIN_OPERATORS + BASE_OPERATORS):
        what = f"operator {symbol}({left}, {right})"
        statements.append(
            f"CREATE FUNCTION public.hijack_op_{n}(a {left}, b {right}) RETURNS {result} LANGUAGE plpgsql AS $$"
            + _BODY.format(what=what, result=body)
            + "$$"
        )
        statements.append(
            f"CREATE OPERATOR public.{symbol} (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = public.hijack_op_{n})"
        )
    for name, args, result, body in FUNCTIONS:
        what = f"function {name}({', '.join(args)})"
        params = ", ".join(f"a{i} {t}" for i, t in enumerate(args, start=1))
        returned = body if result != "void" else "NULL"
        statements.append(
            f"CREATE FUNCTION public.{name}({params}) RETURNS {result} LANGUAGE plpgsql AS $$"
            + _BODY.format(what=what, result=returned).replace(
                "RETURN NULL;", "RETURN;" if result == "void" else "RETURN NULL;"
            )
            + "$$"
        )
    # The engine's own schema is closed to them.
    statements.append("CREATE FUNCTION raquel.raquel_hijack() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    statements.append(
        "CREATE OPERATOR raquel.= (LEFTARG = raquel.raquel_status, RIGHTARG = raquel.raquel_status,"
        " FUNCTION = public.hijack_op_0)"
    )
    return statements


def plant(dsn: str) -> dict[str, str]:
    """Runs every plant statement on ``dsn``; returns statement -> error of those refused."""
    refused: dict[str, str] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in plant_statements():
            try:
                conn.execute(statement.encode())
            except psycopg.Error as error:
                refused[statement] = str(error).splitlines()[0]
    return refused


def exercise(conn: Conn, q: str) -> list[str]:
    """Calls every function, view and trigger of the queue on ``conn``, names prefixed with ``q``.

    ``q`` is "raquel." (the Python client's way) or "" (the stand-ins, from the
    default search_path). Returns the errors of the calls that failed (a role
    is refused what it was not granted).
    """
    errors: list[str] = []

    def run(statement: str, *args: Any) -> list[tuple[Any, ...]]:
        try:
            return conn.execute(statement.replace("@", q).encode(), args or None).fetchall()
        except psycopg.Error as error:
            errors.append(f"{statement}: {str(error).splitlines()[0]}")
            return []

    def claim(n: int) -> list[tuple[Any, ...]]:
        return run("SELECT id, claim_id FROM @raquel_claim(ARRAY['hq']::text[], 'w'::text, %s::integer)", n)

    run("SELECT @raquel_enqueue('hq'::text, 'x'::text)")
    run("SELECT id FROM @raquel_enqueue_job('hq'::text, 'w'::text)")
    run("SELECT @raquel_enqueue('hq'::text, 'y'::text, priority => 1::integer, unique_key => 'k'::text)")
    run("SELECT count(*) FROM @raquel_enqueue_many('hq'::text, ARRAY['a', 'b', 'c', 'd', 'e', 'f']::text[])")
    jobs = claim(8)
    if len(jobs) == 8:
        ids = [j for j, _ in jobs]
        claims = [c for _, c in jobs]
        run("SELECT count(*) FROM @raquel_renew_leases(%s::uuid[], %s::uuid[])", ids, claims)
        run("SELECT @raquel_complete(%s::uuid, %s::uuid)", ids[0], claims[0])
        run("SELECT @raquel_fail(%s::uuid, %s::uuid, 'boom'::text)", ids[1], claims[1])
        run("SELECT @raquel_reschedule(%s::uuid, %s::uuid, delay => 0::bigint)", ids[2], claims[2])
        run("SELECT @raquel_reject(%s::uuid, %s::uuid)", ids[3], claims[3])
        run("SELECT @raquel_release(%s::uuid, %s::uuid)", ids[4], claims[4])
        run("SELECT @raquel_cancel(%s::uuid, %s::uuid)", ids[5], claims[5])
        run("SELECT * FROM @raquel_complete_many(%s::uuid[], %s::uuid[])", ids[6:], claims[6:])
        run("SELECT * FROM @raquel_claim_outcome(%s::uuid, %s::uuid)", ids[0], claims[0])
        run("SELECT @raquel_retry(%s::uuid)", ids[1])
        run("SELECT @raquel_set_priority(%s::uuid, 3::integer)", ids[4])
    run("SELECT @raquel_next_due(ARRAY['hq']::text[])")
    run("SELECT @raquel_claimers(ARRAY['hq']::text[], 'w'::text)")
    run(
        "SELECT count(*) FROM @raquel_claim(claim_as => 'w'::text, queue_list => @raquel_queue_list(ARRAY['hq', 'hq2']::text[]))"
    )
    worker = uuid.uuid4()
    run("SELECT @raquel_wait_begin(%s::uuid, ARRAY['hq']::text[], 1000::bigint)", worker)
    run("SELECT @raquel_wait_end(%s::uuid)", worker)
    run("SELECT * FROM @raquel_stats()")
    run("SELECT @raquel_retry_jobs()")
    run("SELECT @raquel_purge('0 seconds'::interval)")
    run("SELECT @raquel_set_schedule('hs'::text, 'hq'::text, every => 1000::bigint, first_run_at => 0::bigint)")
    run("SELECT * FROM @raquel_fire_schedules(ARRAY['hs']::text[], ARRAY[0]::bigint[], ARRAY[9000000000000]::bigint[])")
    run("SELECT @raquel_drop_schedule('hs'::text)")
    run("SELECT @raquel_rescue()")
    run("SELECT @raquel_expire()")
    run("SELECT @raquel_notify_ready(ARRAY['hq']::text[])")
    run(
        "SELECT @raquel_new_ids(2::integer), @raquel_new_id(), @raquel_now_ms(), @raquel_ts(0::bigint),"
        " @raquel_retry_delay(1::integer, 1000::bigint, 1000::bigint, 60000::bigint)"
    )
    run("SELECT count(*) FROM @raquel_queue_stats")
    run("SELECT count(*) FROM @raquel_problem_jobs")
    run("SELECT count(*) FROM @raquel_expired_leases")
    run("SELECT count(*) FROM @raquel_jobs")
    # A row written by hand fires the jobs table's triggers with the writer's rights.
    run("INSERT INTO @raquel_jobs (queue) VALUES ('hq'::text) RETURNING id")
    return errors


def markers(conn: Conn) -> str:
    return conn.execute("SELECT coalesce(current_setting(%s, true), '')", (MARKER,)).fetchone()[0]


@pytest.fixture(scope="module")
def hostile(make_database: Any) -> Iterator[dict[str, str]]:
    """A migrated database whose install schema (public) every role may CREATE in, with the
    three roles of roles.sql, a role with no grant, and a table only the owner may write.

    Yields the owner's DSN (search_path pg_catalog, pg_temp, so that the owner's own
    statements never resolve to a planted object) under "owner", and each role's name.
    """
    dsn: str = make_database()
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"hijack_{kind}_{suffix}" for kind in ("enqueuer", "worker", "operator", "plain")}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL 14's default
        migrate(conn)
        conn.execute("CREATE TABLE public.hijack_canary (who text, what text)")
        for name in names.values():
            conn.execute(f'CREATE ROLE "{name}"'.encode())
        grant_roles(conn, enqueuer=names["enqueuer"], worker=names["worker"], operator=names["operator"])
    try:
        yield {"dsn": dsn, "owner": make_conninfo(dsn, options="-c search_path=pg_catalog,pg_temp"), **names}
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP OWNED BY "{name}" CASCADE'.encode())
                conn.execute(f'DROP ROLE "{name}"'.encode())


def as_role(dsn: str, role: str) -> str:
    """``dsn`` as ``role``, with the default search_path."""
    return make_conninfo(dsn, options=f"-c role={role}")


def canary(owner: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(owner, autocommit=True) as conn:
        return conn.execute("SELECT who, what FROM public.hijack_canary").fetchall()


@pytest.fixture
def planted(hostile: dict[str, str], request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    """The role named by the test's parameter has planted everything it could; removed after."""
    role = hostile[request.param]
    refused = plant(as_role(hostile["dsn"], role))
    try:
        yield role, refused
    finally:
        with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}" CASCADE'.encode())  # its grants too: granted again
            grant_roles(conn, enqueuer=hostile["enqueuer"], worker=hostile["worker"], operator=hostile["operator"])
            conn.execute(
                "TRUNCATE public.hijack_canary, raquel.raquel_jobs, raquel.raquel_waiters, raquel.raquel_schedules"
            )


ATTACKERS = ["enqueuer", "worker", "operator", "plain"]


@pytest.mark.parametrize("planted", ATTACKERS, indirect=True)
def test_planted_objects_never_run_as_the_owner(hostile: dict[str, str], planted: tuple[str, dict[str, str]]) -> None:
    attacker, refused = planted
    # Base-type operators and overloads in the install schema are planted:
    # the test is not vacuous. The engine's schema and its domains are closed.
    assert not any("hijack_op_" in s and "text, b text" in s for s in refused), refused
    assert not any(s.startswith("CREATE FUNCTION public.format(a1 text, a2 bigint)") for s in refused), refused
    assert any(s.startswith("CREATE FUNCTION raquel.raquel_hijack") for s in refused)
    assert any(s.startswith("CREATE OPERATOR raquel.=") for s in refused)
    assert any(s.startswith("CREATE OPERATOR public.= (LEFTARG = raquel.raquel_status") for s in refused)

    with psycopg.connect(hostile["owner"], autocommit=True) as owner:
        owner_name = owner.execute("SELECT current_user").fetchone()[0]
        assert exercise(owner, "raquel.") == []  # every body ran, as the owner
        assert markers(owner) == ""
    with Raquel(hostile["dsn"]) as rq:  # the owner's Python client, default search_path
        rq.enqueue("hq", "z")
        with rq.dequeue("hq") as job:
            assert job is not None
        assert rq.count("hq") >= 1 and rq.stats("hq")
    for kind in ATTACKERS:  # every role, through the stand-ins, from the default search_path
        with psycopg.connect(as_role(hostile["dsn"], hostile[kind]), autocommit=True) as conn:
            refused = exercise(conn, "") + exercise(conn, "raquel.")
            assert owner_name not in markers(conn), (kind, markers(conn))
        # What each role was granted ran (and so did the definer functions behind it).
        assert not [e for e in refused if "raquel_enqueue(" in e and kind != "plain"], refused
        assert not [e for e in refused if "raquel_claim" in e and kind in ("worker", "operator")], refused
        assert not [e for e in refused if kind == "operator"], refused
    assert canary(hostile["owner"]) == []


@pytest.mark.parametrize("planted", ["enqueuer"], indirect=True)
def test_the_planted_objects_hijack_an_unsafe_definer_function(
    hostile: dict[str, str], planted: tuple[str, dict[str, str]]
) -> None:
    # The control: a SECURITY DEFINER function whose search_path holds a
    # schema others can write to (public, pg_temp) runs the enqueuer's planted format() as
    # the owner as soon as it formats a bigint. The canary and the marker see it.
    with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.hijack_unsafe(n bigint) RETURNS text LANGUAGE plpgsql"
            " SECURITY DEFINER SET search_path = public, pg_temp"
            " AS $$ BEGIN RETURN format('%s jobs', n); END $$"
        )
        conn.execute(f'GRANT EXECUTE ON FUNCTION public.hijack_unsafe TO "{hostile["enqueuer"]}"'.encode())
    try:
        with psycopg.connect(as_role(hostile["dsn"], hostile["enqueuer"]), autocommit=True) as conn:
            assert conn.execute("SELECT hijack_unsafe(3)").fetchone() == ("3 jobs",)
            assert "postgres:function format(text, bigint)" in markers(conn) or canary(hostile["owner"])
        assert "function format(text, bigint)" in {what for _, what in canary(hostile["owner"])}
    finally:
        with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
            conn.execute("DROP FUNCTION public.hijack_unsafe")


@pytest.mark.parametrize("planted", ["enqueuer"], indirect=True)
def test_domain_operators_never_run_as_the_owner_even_if_the_domains_are_granted(
    hostile: dict[str, str], planted: tuple[str, dict[str, str]]
) -> None:
    # 0003_tables takes USAGE on the engine's domains away from PUBLIC, so no role
    # can define an operator on them. Granted back by mistake, the operators
    # exist, but only in the install schema, which no engine function searches.
    attacker, _ = planted
    with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
        domains = [
            r[0]
            for r in conn.execute(
                "SELECT t.oid::regtype::text FROM pg_type t"
                " WHERE t.typnamespace = 'raquel'::regnamespace AND t.typtype = 'd'"
            ).fetchall()
        ]
        for domain in domains:
            conn.execute(f"GRANT USAGE ON DOMAIN {domain} TO PUBLIC".encode())
    try:
        refused = plant(as_role(hostile["dsn"], attacker))
        assert not any(s.startswith("CREATE OPERATOR public.= (LEFTARG = raquel.raquel_status") for s in refused)
        with psycopg.connect(as_role(hostile["dsn"], hostile["worker"]), autocommit=True) as conn:
            exercise(conn, "")
            exercise(conn, "raquel.")
            worker_marks = markers(conn)
        with psycopg.connect(hostile["owner"], autocommit=True) as owner:
            assert exercise(owner, "raquel.") == []
        assert "postgres:" not in worker_marks
        assert canary(hostile["owner"]) == []
    finally:
        with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
            for domain in domains:
                conn.execute(f"REVOKE USAGE ON DOMAIN {domain} FROM PUBLIC".encode())


def test_only_the_owner_may_create_in_the_engine_schema(hostile: dict[str, str]) -> None:
    with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
        for kind in ATTACKERS:
            assert conn.execute("SELECT has_schema_privilege(%s, 'raquel', 'CREATE')", (hostile[kind],)).fetchone() == (
                False,
            )
        # Nobody but the owner holds CREATE on it, whatever roles.sql granted.
        holders = conn.execute(
            "SELECT a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a"
            " WHERE n.nspname = 'raquel' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner"
        ).fetchall()
        assert holders == []


def test_every_definer_function_searches_only_the_engine_and_the_catalog(hostile: dict[str, str]) -> None:
    with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
        paths = conn.execute(
            "SELECT DISTINCT c FROM pg_proc p, unnest(p.proconfig) c"
            " WHERE p.pronamespace = 'raquel'::regnamespace AND p.prosecdef AND c LIKE 'search\\_path=%'"
        ).fetchall()
        assert paths == [("search_path=raquel, pg_catalog, pg_temp",)]
        unpinned = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = 'raquel'::regnamespace AND p.prosqlbody IS NULL"
            "   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c"
            "                   WHERE c IN ('search_path=raquel, pg_catalog, pg_temp',"
            "                               'search_path=pg_catalog, pg_temp'))"
        ).fetchall()
        assert unpinned == []


def test_stand_ins_run_with_the_callers_rights_and_one_qualified_call(hostile: dict[str, str]) -> None:
    with psycopg.connect(hostile["dsn"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.proname, p.prosecdef, p.proconfig, p.prosrc FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'raquel\\_%'"
        ).fetchall()
        engine = {
            name
            for (name,) in conn.execute(
                "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace"
                " AND p.prorettype <> 'trigger'::regtype"
                " AND p.proname NOT IN ('raquel_expose', 'raquel_unexpose')"
            ).fetchall()
        }
    assert {name for name, *_ in rows} == engine
    for name, definer, config, source in rows:
        assert not definer and config is None, name
        assert f"raquel.{name}(" in source.splitlines()[-1], name


def test_enqueue_works_from_the_default_search_path_as_the_enqueuer(hostile: dict[str, str]) -> None:
    with psycopg.connect(as_role(hostile["dsn"], hostile["enqueuer"]), autocommit=True) as conn:
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        job = conn.execute("SELECT raquel_enqueue('q','x')").fetchone()[0]
        ids = conn.execute("SELECT raquel_enqueue_many('q', ARRAY['a', 'b'])").fetchall()
    with psycopg.connect(hostile["owner"], autocommit=True) as owner:
        assert owner.execute("SELECT queue, payload FROM raquel.raquel_jobs WHERE id = %s", (job,)).fetchone() == (
            "q",
            "x",
        )
        assert owner.execute(
            "SELECT count(*) FROM raquel.raquel_jobs WHERE id = ANY(%s)", ([i for (i,) in ids],)
        ).fetchone() == (2,)
        owner.execute("TRUNCATE raquel.raquel_jobs")


#: A later migration as its authors write it: unqualified names, SET search_path FROM CURRENT.
LATER = """
CREATE FUNCTION raquel_hello(who text DEFAULT 'world') RETURNS text
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
AS $$ BEGIN RETURN format('hello %s, %s jobs', raquel_hello.who, (SELECT count(*) FROM raquel_jobs)); END $$;
REVOKE EXECUTE ON FUNCTION raquel_hello FROM PUBLIC;
ALTER TABLE raquel_jobs ADD COLUMN note text;
ALTER TABLE raquel_jobs ALTER COLUMN note TYPE varchar(100);
CREATE VIEW raquel_notes AS SELECT id, note FROM raquel_jobs;
"""


@pytest.mark.parametrize("via", ["runner", "psql script"])
def test_a_later_migration_lands_in_the_engine_and_is_exposed(make_database: Any, via: str) -> None:
    # The convention for every migration (docs/security.md): the runner creates
    # the migration's objects in schema raquel, pinned to its safe path, and
    # exposes them in the install schema; the stand-in views step aside while
    # it changes a column they read.
    import subprocess

    from raquel_pg import embedded
    from raquel_pg.schema import Migration, load_migrations, script

    migrations = [*load_migrations(), Migration(len(load_migrations()) + 1, "later", LATER)]
    dsn: str = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if via == "runner":
            migrate(conn, migrations)
        else:
            psql = embedded.bin_path("psql")
            if psql is None:
                pytest.skip("no psql")
            subprocess.run([psql, dsn, "-q"], input=script(migrations), text=True, check=True, capture_output=True)
        assert conn.execute(
            "SELECT pronamespace::regnamespace::text, proconfig FROM pg_proc p"
            " WHERE proname = 'raquel_hello' AND pronamespace = 'raquel'::regnamespace"
        ).fetchone() == ("raquel", ["search_path=raquel, pg_catalog, pg_temp"])
        conn.execute("SELECT raquel_enqueue('q')")
        assert conn.execute("SELECT raquel_hello()").fetchone() == ("hello world, 1 jobs",)
        assert conn.execute(
            "SELECT has_function_privilege('public', 'public.raquel_hello(text)', 'EXECUTE')"
        ).fetchone() == (False,)
        assert conn.execute("SELECT count(note) FROM raquel_jobs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM raquel_notes").fetchone() == (1,)
        assert conn.execute("SELECT to_regclass('raquel.raquel_notes') IS NOT NULL").fetchone() == (True,)


def test_an_engine_object_bound_to_a_planted_operator_stops_the_next_migration(make_database: Any) -> None:
    # A view created in schema raquel by hand, with a search_path holding a schema others
    # can write to, binds the operator a role planted there for good: the next migration
    # refuses to finish (raquel_expose) instead of leaving it for the owner to run.
    from raquel_pg.schema import Migration, load_migrations

    dsn: str = make_database()
    planter = f"hijack_planter_{uuid.uuid4().hex[:8]}"
    baseline = load_migrations()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        migrate(conn, baseline)
        conn.execute(f'CREATE ROLE "{planter}"'.encode())
    try:
        with psycopg.connect(as_role(dsn, planter), autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION public.hijack_eq(a text, b text) RETURNS boolean"
                " LANGUAGE sql AS 'SELECT a OPERATOR(pg_catalog.=) b'"
            )
            conn.execute("CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hijack_eq)")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET search_path = public, pg_catalog")
            conn.execute(
                "CREATE VIEW raquel.raquel_bound AS SELECT j.id FROM raquel.raquel_jobs j WHERE j.claimed_by = 'w'"
            )
            conn.execute("RESET search_path")
            later = [*baseline, Migration(len(baseline) + 1, "later", "SELECT 1;\n")]
            with pytest.raises(psycopg.errors.RaiseException, match="bound to objects outside") as raised:
                migrate(conn, later)
            message = raised.value.diag.message_primary or ""
            assert "view raquel.raquel_bound uses operator public.=(" in message, message
            assert conn.execute("SELECT max(version) FROM raquel_migrations").fetchone() == (len(baseline),)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{planter}" CASCADE'.encode())
            conn.execute(f'DROP ROLE "{planter}"'.encode())
