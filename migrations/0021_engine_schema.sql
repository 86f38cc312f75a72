-- 0021_engine_schema: the queue's objects move into a schema of their own,
-- "raquel", in which only their owner can create anything; the schema they
-- were installed into keeps same-named stand-ins, so that users and clients
-- working from a default search_path see no change.
--
-- Why. Until now every function ran with search_path = <install schema>,
-- pg_temp. When the install schema lets other roles CREATE in it (public on
-- PostgreSQL 14 and older, or any schema granted so), a role could plant an
-- operator, or an overload of a function, that the name resolution of a
-- SECURITY DEFINER function's body prefers to pg_catalog's: an exact match
-- wins wherever it is on the search_path, e.g. public.=(raquel_status,
-- raquel_status), or public.format(text, bigint) against pg_catalog's
-- format(text, VARIADIC "any"). The next raquel_complete by any role then ran
-- the planted function as the owner. No choice of search_path that still
-- contains a schema others can write to is safe.
--
-- Now:
--   schema raquel   the tables, views, domains and every function: all
--                   raquel_* objects of the install schema owned by the
--                   owner of raquel_jobs move here (ALTER ... SET SCHEMA:
--                   rows, indexes, triggers, ACLs and comments go along).
--                   Nobody but its owner may CREATE in it (PUBLIC has USAGE
--                   only: it lets a role name the objects, whose own
--                   privileges still decide). PUBLIC loses USAGE on the
--                   domains, so no role can define an operator or a
--                   function on them anywhere. Every function without a
--                   SQL-standard body (those are bound when created) runs
--                   with search_path = raquel, pg_catalog, pg_temp: only
--                   objects the owner made are ever looked up, and pg_temp
--                   is never searched for functions or operators.
--   install schema  (usually public) raquel_migrations, which the runner
--                   keeps there, and stand-ins made by raquel_expose(): for
--                   each raquel_* function of schema raquel a SECURITY
--                   INVOKER SQL function of the same signature whose body is
--                   one schema-qualified call (inlined by the planner when
--                   it returns one value), and for each raquel_* table or
--                   view a view selecting all its columns (updatable: psql
--                   repairs go through it). Stand-ins carry the engine
--                   object's privileges and comment. Nothing in a stand-in
--                   runs with the owner's rights, so a stand-in hijacked by
--                   objects of the caller's search_path can only act with
--                   the caller's own rights.
--
-- The Python client calls schema raquel directly (raquel.raquel_claim ...).
--
-- Migrations from this one on are run by the runner with search_path =
-- raquel, pg_catalog, pg_temp (raquel_pg/schema.py): their unqualified
-- CREATEs land in schema raquel and SET search_path FROM CURRENT pins the
-- same safe path. After each of them the runner calls raquel_expose(), so
-- a new function or view gets its stand-in without the migration naming it;
-- before each one after this, raquel_unexpose() drops the stand-in views
-- (views are bound to the columns they read, and would block a change of a
-- column) unless a user's own object depends on one.

CREATE SCHEMA IF NOT EXISTS raquel;
COMMENT ON SCHEMA raquel IS
    'raquel_pg''s engine: only its owner may create objects here (docs/security.md).';
REVOKE ALL ON SCHEMA raquel FROM PUBLIC;
GRANT USAGE ON SCHEMA raquel TO PUBLIC;

DO $$
DECLARE
    v_from  oid := (SELECT n.oid FROM pg_namespace n
                    WHERE n.nspname = current_setting('raquel.install_schema'));
    v_to    oid := 'raquel'::regnamespace;
    v_owner oid;
    r       record;
BEGIN
    IF v_from IS NULL THEN
        RAISE EXCEPTION '0021: install schema % not found', current_setting('raquel.install_schema');
    END IF;
    IF v_from <> v_to THEN
        v_owner := (SELECT c.relowner FROM pg_class c
                    WHERE c.relnamespace = v_from AND c.relname = 'raquel_jobs');
        IF v_owner IS NULL THEN
            RAISE EXCEPTION '0021: no raquel_jobs in schema %', v_from::regnamespace;
        END IF;
        IF EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = v_to AND c.relname = 'raquel_jobs') THEN
            RAISE EXCEPTION 'schema raquel already holds a raquel_jobs table: raquel_pg can be installed once per database'
                USING HINT = 'Install into the database once, or drop the other installation.';
        END IF;
        -- Tables and views (a table's own sequences, indexes and triggers
        -- follow it), then types, then functions.
        FOR r IN
            SELECT c.oid::regclass AS name,
                   CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
            FROM pg_class c
            WHERE c.relnamespace = v_from AND c.relowner = v_owner AND c.relname LIKE 'raquel\_%'
              AND c.relname <> 'raquel_migrations' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND NOT EXISTS (SELECT FROM pg_depend d
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                AND d.deptype IN ('a', 'i'))
        LOOP
            EXECUTE format('ALTER %s %s SET SCHEMA raquel', r.kind, r.name);
        END LOOP;
        FOR r IN
            SELECT t.oid::regtype AS name, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind
            FROM pg_type t
            WHERE t.typnamespace = v_from AND t.typowner = v_owner AND t.typname LIKE 'raquel\_%'
              AND t.typtype IN ('d', 'e', 'r')
        LOOP
            EXECUTE format('ALTER %s %s SET SCHEMA raquel', r.kind, r.name);
        END LOOP;
        FOR r IN
            SELECT p.oid::regprocedure AS name FROM pg_proc p
            WHERE p.pronamespace = v_from AND p.proowner = v_owner AND p.proname LIKE 'raquel\_%'
        LOOP
            EXECUTE format('ALTER ROUTINE %s SET SCHEMA raquel', r.name);
        END LOOP;
    END IF;
    -- No other role may use the engine's domains in an object of its own
    -- (an operator or a function on raquel_status, say): reading and
    -- writing their columns needs no such privilege.
    FOR r IN
        SELECT t.oid::regtype AS name FROM pg_type t
        WHERE t.typnamespace = v_to AND t.typtype = 'd' AND t.typname LIKE 'raquel\_%'
    LOOP
        EXECUTE format('REVOKE USAGE ON DOMAIN %s FROM PUBLIC', r.name);
    END LOOP;
    -- Every function whose body is looked up when it runs gets the safe path.
    FOR r IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        WHERE p.pronamespace = v_to AND p.prosqlbody IS NULL
          AND p.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
    LOOP
        EXECUTE format('ALTER ROUTINE %s SET search_path = raquel, pg_catalog, pg_temp', r.name);
    END LOOP;
END;
$$;

-- Guarantees: first refuses (raises) when any object of schema raquel is
-- bound to a function or operator outside schemas raquel and pg_catalog.
-- Then makes the install schema's stand-ins match schema raquel: for
-- every raquel_* function of raquel (not the triggers, not these two) an SQL
-- function of the same name, arguments, defaults, result, volatility,
-- strictness and parallel safety, whose body is the schema-qualified call;
-- for every raquel_* table or view, a view of all its columns. Each stand-in
-- gets the engine object's privileges (PUBLIC's included) and comment; a
-- stand-in whose engine object is gone is dropped. Does nothing when the
-- install schema is raquel itself. Called by the migration runner after each
-- migration from 0021 on, as the owner; not executable by PUBLIC.
CREATE FUNCTION raquel_expose(install_schema text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_into oid := (SELECT n.oid FROM pg_namespace n WHERE n.nspname = raquel_expose.install_schema);
    v_args text;
    r      record;
    g      record;
BEGIN
    IF v_into IS NULL THEN
        RAISE EXCEPTION 'raquel_expose: no schema %', raquel_expose.install_schema
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'install_schema';
    END IF;
    -- No engine object may be bound to a function or operator of another
    -- schema (a view, default, index, constraint, trigger or SQL-standard
    -- body binds what its names meant when it was created: one created by
    -- a migration before 0021, in a schema others could write to, could
    -- have bound another role's operator for good).
    v_args := (
        SELECT string_agg(format('%s uses %s', pg_describe_object(d.classid, d.objid, d.objsubid),
                                 pg_describe_object(d.refclassid, d.refobjid, 0)), '; ')
        FROM pg_depend d
        WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
          AND CASE d.refclassid
                  WHEN 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = d.refobjid)
                  ELSE (SELECT o.oprnamespace FROM pg_operator o WHERE o.oid = d.refobjid)
              END NOT IN ('pg_catalog'::regnamespace, 'raquel'::regnamespace)
          AND CASE d.classid
                  WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite w
                                                    JOIN pg_class c ON c.oid = w.ev_class WHERE w.oid = d.objid)
                  WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a
                                                    JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
                  WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
                                                    JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
                  WHEN 'pg_constraint'::regclass THEN (SELECT n.connamespace FROM pg_constraint n WHERE n.oid = d.objid)
                  WHEN 'pg_class'::regclass THEN (SELECT c.relnamespace FROM pg_class c WHERE c.oid = d.objid)
                  WHEN 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = d.objid)
                  WHEN 'pg_type'::regclass THEN (SELECT t.typnamespace FROM pg_type t WHERE t.oid = d.objid)
              END = 'raquel'::regnamespace);
    IF v_args IS NOT NULL THEN
        RAISE EXCEPTION 'raquel_expose: engine objects are bound to objects outside schemas raquel and pg_catalog: %',
            v_args USING HINT = 'Another role may have planted them (docs/security.md): drop them, then recreate the engine objects.';
    END IF;
    IF v_into = 'raquel'::regnamespace THEN
        RETURN;
    END IF;
    -- Stand-in functions whose engine function is gone (e.g. its signature changed).
    FOR r IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        WHERE p.pronamespace = v_into AND p.proname LIKE 'raquel\_%' AND p.prosrc LIKE '-- raquel_pg stand-in%'
          AND NOT EXISTS (SELECT FROM pg_proc e WHERE e.pronamespace = 'raquel'::regnamespace
                          AND e.proname = p.proname AND e.proargtypes = p.proargtypes)
    LOOP
        EXECUTE format('DROP FUNCTION %s', r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid, p.proname, p.proargtypes, p.proretset, p.pronargs, p.proacl, p.proowner,
               pg_get_function_arguments(p.oid) AS args,
               pg_get_function_identity_arguments(p.oid) AS identity,
               pg_get_function_result(p.oid) AS result,
               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END AS volatility,
               CASE p.proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END AS parallel,
               CASE WHEN p.proisstrict THEN 'STRICT' ELSE 'CALLED ON NULL INPUT' END AS strictness,
               CASE WHEN p.proretset THEN format('ROWS %s', p.prorows) ELSE '' END AS rows,
               obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p
        WHERE p.pronamespace = 'raquel'::regnamespace AND p.proname LIKE 'raquel\_%' AND p.prokind = 'f'
          AND p.prorettype <> 'trigger'::regtype AND p.proname NOT IN ('raquel_expose', 'raquel_unexpose')
    LOOP
        v_args := (SELECT string_agg('$' || i, ', ' ORDER BY i) FROM generate_series(1, r.pronargs) i);
        -- A stand-in whose result changed cannot be replaced in place.
        IF EXISTS (SELECT FROM pg_proc s
                   WHERE s.pronamespace = v_into AND s.proname = r.proname AND s.proargtypes = r.proargtypes
                     AND pg_get_function_result(s.oid) <> r.result) THEN
            EXECUTE format('DROP FUNCTION %I.%I(%s)', raquel_expose.install_schema, r.proname, r.identity);
        END IF;
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql %s %s PARALLEL %s %s AS %L',
            raquel_expose.install_schema, r.proname, r.args, r.result, r.volatility, r.strictness,
            r.parallel, r.rows,
            format(E'-- raquel_pg stand-in: calls raquel.%I (docs/security.md)\n%s',
                   r.proname,
                   CASE WHEN r.proretset THEN format('SELECT * FROM raquel.%I(%s)', r.proname, coalesce(v_args, ''))
                        ELSE format('SELECT raquel.%I(%s)', r.proname, coalesce(v_args, '')) END));
        EXECUTE format('COMMENT ON FUNCTION %I.%I(%s) IS %L',
                       raquel_expose.install_schema, r.proname, r.identity, r.comment);
        -- The engine function's privileges: PUBLIC's default, or exactly its grants.
        IF r.proacl IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC',
                           raquel_expose.install_schema, r.proname, r.identity);
            FOR g IN SELECT a.grantee, a.is_grantable FROM aclexplode(r.proacl) a
                     WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> r.proowner LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO %s%s',
                               raquel_expose.install_schema, r.proname, r.identity,
                               CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                               CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END IF;
    END LOOP;
    -- Stand-in views.
    FOR r IN
        SELECT c.relname, c.relacl, c.relowner, obj_description(c.oid, 'pg_class') AS comment
        FROM pg_class c
        WHERE c.relnamespace = 'raquel'::regnamespace AND c.relname LIKE 'raquel\_%' AND c.relkind IN ('r', 'p', 'v')
    LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I.%I AS SELECT * FROM raquel.%I',
                       raquel_expose.install_schema, r.relname, r.relname);
        EXECUTE format('COMMENT ON VIEW %I.%I IS %L', raquel_expose.install_schema, r.relname,
                       coalesce(r.comment || E'\n', '')
                       || format('raquel_pg stand-in: the columns of raquel.%I (docs/security.md).', r.relname));
        EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', raquel_expose.install_schema, r.relname);
        FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(r.relacl) a
                 WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') AND a.grantee <> r.relowner LOOP
            EXECUTE format('GRANT %s ON %I.%I TO %s%s', g.privilege_type, raquel_expose.install_schema, r.relname,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                           CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
END;
$$;

-- Guarantees: drops the install schema's stand-in views (not the functions:
-- their bodies are text, bound to nothing), each one unless another object
-- depends on it, so that the next migration may change the engine tables'
-- columns; raquel_expose() makes them again. Called by the migration runner
-- before each migration after 0021, as the owner; not executable by PUBLIC.
CREATE FUNCTION raquel_unexpose(install_schema text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF raquel_unexpose.install_schema = 'raquel' THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = raquel_unexpose.install_schema AND c.relkind = 'v' AND c.relname LIKE 'raquel\_%'
          AND obj_description(c.oid, 'pg_class') LIKE '%raquel_pg stand-in: %'
    LOOP
        BEGIN
            EXECUTE format('DROP VIEW %s', r.name);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            NULL;  -- a user's view reads it: kept (a change of the columns it reads then fails, as before 0021)
        END;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION raquel_expose(text), raquel_unexpose(text) FROM PUBLIC;
