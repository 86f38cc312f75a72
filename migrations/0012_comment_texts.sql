-- 0012_comment_texts: comments no longer cite migration numbers.
--
-- Guarantees: comments only, no behaviour changes. Twenty functions' COMMENT ON
-- (what \df+ shows and what docs/reference/sql.md is generated from) named the
-- development delta that gave them a rule, e.g. "now only from a role that may
-- update raquel_jobs (0020)", or "after each migration from 0021 on". Those
-- deltas were folded into the baseline (0001_engine_schema .. 0011_dashboard)
-- and no longer exist; each text keeps its rule and drops the number. Four
-- functions are restated only for a comment line inside their body that did
-- the same (their settings restated with them, as CREATE OR REPLACE resets
-- them; grants and catalog comments stay).

COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint) IS
    'Cancels a waiting job, or (with claim_id) the claimed job of that claim; returns cancelled or NULL. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms. now only from a role that may update raquel_jobs (else 42501); now + lease within the time range.';

COMMENT ON FUNCTION raquel_clock(text, bigint) IS
    'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range; else 42501 or 22023 naming "now".';

COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint) IS
    'Outcome success, fenced by claim_id; NULL when the claim is no longer current. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) IS
    'raquel_complete for each pair, one statement; one row per pair in input order. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text) IS
    'Inserts one queued job and returns its id, or raises 22023 naming the bad argument and writes nothing. Times within 0001-01-02 .. 9999-12-30 UTC; now only from a role that may update raquel_jobs (else 42501).';

COMMENT ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text) IS
    'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue.';

COMMENT ON FUNCTION raquel_expire(text[], bigint) IS
    'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration, as the owner): makes the install schema''s stand-ins match schema raquel, an SQL function with the same signature whose body is the schema-qualified call for every raquel_* function, a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';

COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
    'Outcome failed (or exhausted), fenced by claim_id; the next attempt is due at now + the retry delay, at 9999-12-30 UTC at the latest.';

COMMENT ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) IS
    'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_purge(interval, text[], integer, bigint) IS
    'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it).';

COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';

COMMENT ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) IS
    'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay.';

COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
    'Every claimed job whose lease ran out counts a failed attempt (failed or exhausted); returns how many. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_retry(uuid, bigint) IS
    'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_retry_jobs(text, text[], timestamp with time zone, bigint) IS
    'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since).';

COMMENT ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) IS
    'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument).';

COMMENT ON FUNCTION raquel_stats(bigint) IS
    'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold.';

COMMENT ON FUNCTION raquel_unexpose(text) IS
    'For the migration runner (before each migration but the first, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';

-- Bodies ---------------------------------------------------------------------

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

CREATE OR REPLACE FUNCTION raquel_unexpose(install_schema text) RETURNS void
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

CREATE OR REPLACE FUNCTION raquel_fire_schedules(
    names text[], ticks bigint[], next_run_ats bigint[], now bigint DEFAULT NULL
) RETURNS TABLE (name text, job_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_fire_schedules.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_fire_schedules', raquel_fire_schedules.now) END;
BEGIN
    IF cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.ticks)
       OR cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.next_run_ats) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'names', 'names, ticks and next_run_ats must have the same length');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.ticks) AS d(tick)
               WHERE d.tick NOT BETWEEN -62135510400000 AND 253402214399999) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'ticks',
            'each must be a time within [-62135510400000, 253402214399999] ms since the epoch'
            ' (0001-01-02 .. 9999-12-30 UTC)');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.next_run_ats) AS d(next)
               WHERE d.next NOT BETWEEN -62135510400000 AND 253402214399999) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'next_run_ats',
            'each must be a time within [-62135510400000, 253402214399999] ms since the epoch'
            ' (0001-01-02 .. 9999-12-30 UTC)');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.ticks, raquel_fire_schedules.next_run_ats) AS d(tick, next)
               WHERE d.tick > v_now OR d.next <= v_now) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'next_run_ats',
            'each tick must be <= now and each next_run_at after now');
    END IF;

    -- Lock the rows first, in name order, so that schedulers firing
    -- overlapping sets cannot deadlock. A row another scheduler holds is
    -- waited for (it holds it for one statement), not skipped: skipping
    -- would let a scheduler that read a stale tick delay the firing of the
    -- current one past its time, and the missed-tick rule would drop ticks.
    PERFORM FROM raquel_schedules s
    WHERE s.name = ANY (raquel_fire_schedules.names)
    ORDER BY s.name
    FOR UPDATE;

    -- An interval schedule's next tick, capped at the range's end: computed
    -- so that no step can overflow bigint (every <= 2^62 - 1; the CASEs
    -- also keep a larger every, written by hand, from overflowing).
    RETURN QUERY
    WITH advanced AS (
        UPDATE raquel_schedules s SET
            next_run_at = coalesce(d.next, CASE
                WHEN d.tick IS NULL THEN v_now + least(s.every, 253402214399999 - v_now)
                WHEN s.every > 253402214399999 - d.tick THEN 253402214399999
                ELSE least(d.tick + s.every * ((v_now - d.tick) / s.every + 1), 253402214399999) END),
            last_run_at = coalesce(d.tick, s.last_run_at),
            last_job_id = CASE WHEN d.tick IS NULL THEN s.last_job_id ELSE (raquel_new_ids(1))[1] END
        FROM unnest(raquel_fire_schedules.names, raquel_fire_schedules.ticks,
                    raquel_fire_schedules.next_run_ats) AS d(name, tick, next)
        WHERE s.name = d.name AND s.next_run_at IS NOT DISTINCT FROM d.tick
          AND (d.next IS NOT NULL OR s.every IS NOT NULL)
        RETURNING s.name AS schedule, d.tick, s.last_job_id AS job_id, s.queue, s.payload, s.priority,
                  s.max_age, s.max_retry_count
    ), enqueued AS (
        INSERT INTO raquel_jobs (id, queue, payload, priority, max_age, max_retry_count,
                                 enqueued_at, scheduled_at)
        SELECT a.job_id, a.queue, a.payload, a.priority, a.max_age, a.max_retry_count, v_now, a.tick
        FROM advanced a WHERE a.tick IS NOT NULL
        RETURNING raquel_jobs.id
    )
    SELECT a.schedule, e.id FROM advanced a JOIN enqueued e ON e.id = a.job_id;
END;
$$;

CREATE OR REPLACE FUNCTION raquel_queue_overview(now bigint DEFAULT NULL)
RETURNS TABLE (
    queue               text,
    queued              bigint,
    failed              bigint,
    ready               bigint,
    scheduled           bigint,
    running             bigint,
    lease_expired       bigint,
    oldest_ready_age_ms bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_queue_overview.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_queue_overview', raquel_queue_overview.now) END;
BEGIN
    RETURN QUERY
    WITH waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.status = 'queued') AS queued,
               count(*) FILTER (WHERE j.status = 'failed') AS failed,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(j.scheduled_at) FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), claimed AS (
        SELECT j.queue, count(*) AS running,
               count(*) FILTER (WHERE j.lease_expires_at <= v_now) AS lease_expired
        FROM raquel_jobs j
        -- lease_expires_at IS NOT NULL: reads raquel_jobs_lease_idx (0003_tables), which holds claimed jobs.
        WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed' GROUP BY j.queue
    )
    SELECT coalesce(w.queue, c.queue)::text, coalesce(w.queued, 0), coalesce(w.failed, 0),
           coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(c.running, 0),
           coalesce(c.lease_expired, 0), w.oldest_ready_age_ms
    FROM waiting w FULL JOIN claimed c ON c.queue = w.queue
    ORDER BY 1;
END;
$$;
