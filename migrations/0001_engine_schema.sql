-- 0001_engine_schema: the schema that holds the queue's engine, and the stand-ins
-- that let users keep working from their own schema.
--
-- Guarantees. Every table, view, domain and function of raquel_pg lives in
-- schema "raquel", in which nobody but its owner may create anything (PUBLIC
-- has USAGE only: it lets a role name the objects, whose own privileges still
-- decide). Every function without a SQL-standard body runs with search_path =
-- raquel, pg_catalog, pg_temp, so only objects the owner made are ever looked
-- up, and pg_temp is never searched for functions or operators. The schema
-- raquel_pg is installed into (usually public) keeps raquel_migrations, which
-- the runner writes there, and stand-ins made by raquel_expose(): a caller's-
-- rights SQL function for each engine function and a view for each engine
-- table or view, so users and clients on a default search_path see the same
-- names. The Python client calls schema raquel directly (raquel.raquel_claim).
--
-- Why so. With the install schema on a SECURITY DEFINER function's
-- search_path, a role allowed to CREATE there (public on PostgreSQL 14 and
-- older, or any schema granted so) could plant an operator or an overload
-- that name resolution prefers to pg_catalog's: an exact match wins wherever
-- it is on the path, e.g. public.=(raquel_status, raquel_status), or
-- public.format(text, bigint) against pg_catalog's format(text, VARIADIC
-- "any"). The next raquel_complete by any role would then run it as the owner.
-- No search_path that still holds a schema others can write to is safe; a
-- stand-in runs nothing with the owner's rights, so a hijacked stand-in can
-- only act with the caller's own.
--
-- The runner (raquel_pg/schema.py) runs every migration with search_path =
-- raquel, pg_catalog, pg_temp, so unqualified CREATEs land in schema raquel
-- and SET search_path FROM CURRENT pins that path; it records the install
-- schema in the setting raquel.install_schema. Before each migration after
-- this one it calls raquel_unexpose() (stand-in views are bound to the
-- columns they read and would block a change of a column), after each one
-- raquel_expose(), so a new function or view gets its stand-in without the
-- migration naming it.

CREATE SCHEMA IF NOT EXISTS raquel;
COMMENT ON SCHEMA raquel IS
    'raquel_pg''s engine: only its owner may create objects here (docs/security.md).';
REVOKE ALL ON SCHEMA raquel FROM PUBLIC;
GRANT USAGE ON SCHEMA raquel TO PUBLIC;

-- raquel_pg can be installed once per database: schema raquel is shared by
-- every install schema.
DO $$
BEGIN
    IF to_regclass('raquel.raquel_jobs') IS NOT NULL THEN
        RAISE EXCEPTION 'schema raquel already holds a raquel_jobs table: raquel_pg can be installed once per database'
            USING HINT = 'Install into the database once, or drop the other installation.';
    END IF;
END;
$$;

-- raquel_migrations stays in the install schema, which is not on this
-- migration's search_path: the runner names it in raquel.install_schema.
DO $$
BEGIN
    EXECUTE format('COMMENT ON TABLE %I.raquel_migrations IS %L',
        current_setting('raquel.install_schema'),
        'raquel_pg migrations applied to this schema: version, name, SHA-256 checksum of the file and when it was applied. Written by raquel-pg migrate; an applied migration whose file changed is refused.');
END
$$;

-- Guarantees: first refuses (raises) when any object of schema raquel is
-- bound to a function or operator outside schemas raquel and pg_catalog (a
-- view, default, index, constraint, trigger or SQL-standard body binds what
-- its names meant when it was created). Then makes the install schema's
-- stand-ins match schema raquel: for every raquel_* function of raquel (not
-- the triggers, not these two) an SQL function of the same name, arguments,
-- defaults, result, volatility, strictness and parallel safety, whose body is
-- the schema-qualified call (inlined by the planner when it returns one
-- value); for every raquel_* table or view, a view of all its columns
-- (updatable: psql repairs go through it). Each stand-in gets the engine
-- object's privileges (PUBLIC's included) and comment; a stand-in whose engine
-- object is gone is dropped. Does nothing when the install schema is raquel
-- itself. Called by the migration runner after each migration, as the owner;
-- not executable by PUBLIC. Its own search_path holds no raquel: it names
-- every engine object qualified.
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
COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration, as the owner): makes the install schema''s stand-ins match schema raquel, an SQL function with the same signature whose body is the schema-qualified call for every raquel_* function, a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';
REVOKE EXECUTE ON FUNCTION raquel_expose(text) FROM PUBLIC;

-- Guarantees: drops the install schema's stand-in views (not the functions:
-- their bodies are text, bound to nothing), each one unless another object
-- depends on it (a user's view that reads a stand-in keeps it, and a change
-- of the columns it reads then fails), so that the next migration may change
-- the engine tables' columns; raquel_expose() makes them again. Called by the
-- migration runner before each migration after this one, as the owner; not
-- executable by PUBLIC.
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
            NULL;  -- a user's view reads it: kept (a change of the columns it reads then fails)
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION raquel_unexpose(text) IS
    'For the migration runner (before each migration but the first, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';
REVOKE EXECUTE ON FUNCTION raquel_unexpose(text) FROM PUBLIC;
