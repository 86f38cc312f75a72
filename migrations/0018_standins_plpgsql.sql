-- 0018_standins_plpgsql: the install schema's stand-ins of the volatile
-- functions that return a set are PL/pgSQL.
--
-- Guarantees: 0001_engine_schema's raquel_expose, unchanged (which stand-ins
-- it makes, their signatures, results, volatility, strictness, privileges
-- and comments, the refusal of engine objects bound outside raquel and
-- pg_catalog), but for the language of the stand-ins of volatile functions
-- that return a set (raquel_claim, raquel_complete_many, raquel_enqueue_many,
-- ...): PL/pgSQL, whose body is RETURN QUERY SELECT * FROM raquel.<name>($1,
-- ...). The others stay SQL, which the planner inlines (a function returning
-- one value; a STABLE one returning a set, such as raquel_stats). Either way a
-- stand-in is SECURITY INVOKER and names nothing but its engine function,
-- qualified.
--
-- Measured reason (PostgreSQL 15; issue 23). PostgreSQL does not inline an
-- SQL function that returns a set unless it is STABLE or IMMUTABLE, and
-- before 18 it parses and plans such a function's body at every call, so an
-- SQL caller (another language's worker, psql) paid for it at every claim:
-- a one-job raquel_claim through public.raquel_claim took 468 us from call to
-- reply (335 us of server CPU) against 401 us (282) naming
-- raquel.raquel_claim, and 402 us (288) through a PL/pgSQL stand-in (6
-- alternating rounds of 300 calls, durable => false, medians; a second run
-- 389 / 346 / 335 us). On PostgreSQL 18, which keeps an SQL function's plan,
-- the two stand-ins measured alike (247 / 254 and 287 / 295 us). The runner
-- calls raquel_expose after this migration, which replaces the stand-ins.

CREATE OR REPLACE FUNCTION raquel_expose(install_schema text) RETURNS void
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
    -- body binds what its names meant when it was created: one created
    -- with a search_path holding a schema others could write to could
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
        -- A volatile function returning a set: PL/pgSQL, which plans its call
        -- once per session (such an SQL function is not inlined, and
        -- PostgreSQL before 18 planned its body anew at every call:
        -- 0018_standins_plpgsql). Any other: SQL, which the planner inlines.
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE %s %s %s PARALLEL %s %s AS %L',
            raquel_expose.install_schema, r.proname, r.args, r.result,
            CASE WHEN r.proretset AND r.volatility = 'VOLATILE' THEN 'plpgsql' ELSE 'sql' END,
            r.volatility, r.strictness,
            r.parallel, r.rows,
            format(E'-- raquel_pg stand-in: calls raquel.%I (docs/security.md)\n%s',
                   r.proname,
                   CASE WHEN r.proretset AND r.volatility = 'VOLATILE'
                        THEN format('BEGIN RETURN QUERY SELECT * FROM raquel.%I(%s); END', r.proname, coalesce(v_args, ''))
                        WHEN r.proretset THEN format('SELECT * FROM raquel.%I(%s)', r.proname, coalesce(v_args, ''))
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
COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration, as the owner): makes the install schema''s stand-ins match schema raquel, a function with the same signature whose body is the schema-qualified call for every raquel_* function (PL/pgSQL for a volatile function returning a set, else SQL), a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';
