-- raquel_pg least-privilege roles: run by the operator (the owner of the
-- raquel objects or a superuser), never by a migration. It defines, for this
-- session only, pg_temp.raquel_grant_roles(schema_name, enqueuer_role,
-- worker_role, operator_role),
-- which grants to EXISTING roles (create them first; pass NULL to skip one):
--
--   enqueuer  may call raquel_enqueue, raquel_enqueue_row (what
--             raquel_enqueue calls), raquel_enqueue_job and
--             raquel_enqueue_many, and wait for a job's result
--             (raquel_result, raquel_result_watch, raquel_result_unwatch:
--             an application that enqueues a task and waits for its value),
--             and nothing else: it cannot change or delete any job, nor read
--             raquel_jobs, the views or the schedules; it sees only the row
--             raquel_enqueue_row and raquel_enqueue_job answer with (the job
--             it enqueued, or for a unique_key kept, the job holding that
--             key) and the end (status, result, error, attempts,
--             finished_at) of a job whose id it passes (an id it was given:
--             74 of its bits are random), and read raquel_migrations (as
--             every role: create_all() finds the database up to date there).
--   worker    may enqueue, claim, renew leases, record outcomes (fenced by
--             claim_id), learn when the next job is due, read raquel_jobs
--             (get/count/stats/jobs), settle a job by id and attempt number
--             (raquel_attempt_claim), put any claimed job back as raquel's
--             unclaim does (raquel_unclaim), wait for a job's result (as the
--             enqueuer), ask a
--             running job to stop (raquel_cancel(running => true)), run a
--             scheduler: read raquel_schedules and fire due schedules
--             (raquel_fire_schedules), and delete finished jobs past the
--             retention an operator set (raquel_prune, the workers'
--             maintenance). It changes
--             jobs and schedules only through those functions; it cannot
--             retry, purge, reprioritize jobs or declare schedules.
--   operator  may call every raquel_* function (retry, purge, stats,
--             set_priority, set/drop schedules, rescue, expire (raquel's
--             expire(); a worker's claims expire jobs on their own) ...), read the
--             raquel_* views, read, insert, update and delete raquel_jobs and
--             raquel_schedules directly (psql repairs), and read
--             raquel_migrations. It cannot alter the schema.
--
-- The queue's functions are SECURITY DEFINER (the migrations say so per function), so
-- the enqueuer and worker need no privilege on the tables they change. Role
-- and schema names are quoted with format('%I'), never concatenated.
--
-- The objects live in schema raquel and schema_name (the install
-- schema) holds same-named stand-ins (docs/security.md): every grant is made
-- on both, so psql users (through the stand-ins) and the Python client
-- (schema raquel directly) get the same rights. Neither schema's CREATE is
-- ever granted.
--
-- From psql (one session; -f then -c):
--   psql "$DSN" -f raquel_pg/roles.sql \
--        -c "SELECT pg_temp.raquel_grant_roles('public', 'app_enqueue', 'app_worker', 'app_operator')"
-- From Python: raquel_pg.roles.grant_roles(conn, enqueuer=..., worker=..., operator=...);
-- from the shell: raquel-pg grant --enqueuer ... --worker ... --operator ...

-- The GRANT EXECUTE statement giving role_name every function of schema_name
-- named in function_names (regprocedure text is quoted and schema-qualified
-- under this search_path).
CREATE OR REPLACE FUNCTION pg_temp.raquel_grant_execute(
    schema_name text, function_names text[], role_name text
) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I', string_agg(p.oid::regprocedure::text, ', '), role_name)
    FROM pg_proc p
    WHERE p.pronamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = schema_name)
      AND p.proname = ANY (function_names)
$$;

CREATE OR REPLACE FUNCTION pg_temp.raquel_grant_roles(
    schema_name text, enqueuer_role text DEFAULT NULL, worker_role text DEFAULT NULL,
    operator_role text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- What each role may call; a name the schema does not have (yet) is skipped.
    v_enqueuer_functions constant text[] := ARRAY['raquel_enqueue', 'raquel_enqueue_row', 'raquel_enqueue_job',
                                                'raquel_enqueue_many', 'raquel_result',
                                                'raquel_result_watch', 'raquel_result_unwatch'];
    v_worker_functions   constant text[] := v_enqueuer_functions || ARRAY[
        'raquel_claim', 'raquel_claimers', 'raquel_queue_list', 'raquel_next_due', 'raquel_renew_leases',
        'raquel_complete', 'raquel_complete_many', 'raquel_wait_begin', 'raquel_wait_end', 'raquel_fail',
        'raquel_reschedule', 'raquel_reject', 'raquel_release', 'raquel_cancel',
        'raquel_claim_outcome', 'raquel_fire_schedules', 'raquel_attempt_claim', 'raquel_unclaim', 'raquel_take',
        'raquel_prune'];
    -- Where the objects are (raquel; the install schema for an install older than the
    -- engine schema) and every schema to grant in.
    v_engine  text := CASE WHEN to_regnamespace('raquel') IS NOT NULL THEN 'raquel' ELSE schema_name END;
    v_schemas text[] := ARRAY(SELECT DISTINCT unnest(ARRAY[schema_name, v_engine]));
    v_schema  text;
    v_owner   oid;
BEGIN
    IF to_regclass(format('%I.raquel_jobs', schema_name)) IS NULL THEN
        RAISE EXCEPTION 'raquel_grant_roles: no raquel_jobs table in schema %: run the migrations first',
            schema_name USING ERRCODE = 'invalid_parameter_value', COLUMN = 'schema_name';
    END IF;
    -- Only the owner (or a member of it, or a superuser) can grant: anyone
    -- else's GRANT would only warn "no privileges were granted".
    v_owner := (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = v_engine);
    IF NOT pg_has_role(current_user, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'raquel_grant_roles: permission denied: % does not own raquel_pg''s objects (schema % is %''s)',
            current_user, v_engine, pg_get_userbyid(v_owner) USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOREACH v_schema IN ARRAY v_schemas LOOP
        IF enqueuer_role IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, enqueuer_role);
            EXECUTE pg_temp.raquel_grant_execute(v_schema, v_enqueuer_functions, enqueuer_role);
        END IF;
        IF worker_role IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, worker_role);
            EXECUTE format('GRANT SELECT ON %1$I.raquel_jobs, %1$I.raquel_schedules TO %2$I',
                           v_schema, worker_role);
            EXECUTE pg_temp.raquel_grant_execute(v_schema, v_worker_functions, worker_role);
        END IF;
        IF operator_role IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, operator_role);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.raquel_jobs, %1$I.raquel_schedules TO %2$I',
                           v_schema, operator_role);
            -- Every raquel_* view of the engine (raquel_queue_stats,
            -- raquel_problem_jobs, raquel_expired_leases, and any later one).
            EXECUTE (
                SELECT format('GRANT SELECT ON %s TO %I',
                              string_agg(format('%I.%I', v_schema, c.relname), ', '), operator_role)
                FROM pg_class c
                WHERE c.relnamespace = v_engine::regnamespace
                  AND c.relkind = 'v' AND c.relname LIKE 'raquel\_%');
            -- One GRANT naming every raquel_* function of the engine (the
            -- stand-ins have the same names and arguments), not raquel_expose
            -- and raquel_unexpose (0001_engine_schema), which only the owner runs.
            EXECUTE (
                SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I',
                              string_agg(format('%I.%I(%s)', v_schema, p.proname,
                                                pg_get_function_identity_arguments(p.oid)), ', '),
                              operator_role)
                FROM pg_proc p
                WHERE p.pronamespace = v_engine::regnamespace
                  AND p.prokind = 'f' AND p.proname LIKE 'raquel\_%' AND p.prorettype <> 'trigger'::regtype
                  AND p.proname NOT IN ('raquel_expose', 'raquel_unexpose'));
        END IF;
    END LOOP;
    -- Every role reads raquel_migrations: create_all() at an application's
    -- start finds the database up to date there, whatever the role.
    IF num_nonnulls(enqueuer_role, worker_role, operator_role) > 0 THEN
        EXECUTE (
            SELECT format('GRANT SELECT ON %I.raquel_migrations TO %s', schema_name,
                          string_agg(format('%I', r.name), ', '))
            FROM unnest(ARRAY[enqueuer_role, worker_role, operator_role]) AS r(name)
            WHERE r.name IS NOT NULL);
    END IF;
END;
$$;
