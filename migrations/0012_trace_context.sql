-- 0012_trace_context: the enqueuer's trace context stored with the job
-- (issue 22, OpenTelemetry).
--
-- raquel_jobs.trace_context holds the propagation carrier of the trace that
-- enqueued the job, as text: a JSON object of strings, as an OpenTelemetry
-- propagator injects it, e.g. {"traceparent": "00-<trace id>-<span id>-01",
-- "tracestate": "..."}. A worker extracts it and parents its span for the
-- job's execution on it (raquel_pg/tracing.py, docs/operations.md). NULL: the
-- job was enqueued outside a trace (the default); nothing else reads it.
--
-- Stored as text, not jsonb: the client hands it back to the propagator as
-- it was written, and the engine only checks it. raquel_enqueue_row takes it
-- (a new last argument, trace_context) and refuses, with 22023 naming
-- trace_context and nothing written, a text over 2048 bytes, one that is not
-- a JSON object of strings, or a traceparent member that is not W3C trace
-- context; a domain (raquel_trace_context) bounds the length for a row
-- written by hand.
-- unique_mode 'replace' rewrites it with the other arguments.
--
-- As 0014_enqueue_speed says for a new argument: raquel_enqueue_row's body,
-- signature and guard change, and raquel_enqueue and raquel_enqueue_job are
-- restated with the argument; each new function gets the EXECUTE grants of
-- the one it replaces, which is dropped. raquel_enqueue_many does not take a
-- trace context (yet): its jobs are stored without one.

-- A one-column rule is a domain (0003_tables: a domain's check is planned once per
-- session, a table's CHECK at every statement that writes).
CREATE DOMAIN raquel_trace_context AS text
    CONSTRAINT raquel_trace_context_check CHECK (octet_length(VALUE) <= 2048);
COMMENT ON DOMAIN raquel_trace_context IS
    'A job''s stored trace context (propagation carrier as JSON text): at most 2048 bytes, or NULL for none.';
REVOKE USAGE ON DOMAIN raquel_trace_context FROM PUBLIC;

ALTER TABLE raquel_jobs
    ADD COLUMN trace_context raquel_trace_context;

COMMENT ON COLUMN raquel_jobs.trace_context IS
    'The enqueuer''s trace context (a JSON object of strings, e.g. {"traceparent": "00-...-...-01"}, at most 2048 bytes), set at enqueue (raquel_enqueue(..., trace_context =>)); a worker with OpenTelemetry parents its span for the job on it. NULL: enqueued outside a trace.';

-- Carries the EXECUTE grants of p_old over to p_new, then drops p_old (a new
-- function is executable by PUBLIC; PUBLIC keeps EXECUTE only if it had it).
CREATE FUNCTION pg_temp.raquel_carry_grants(p_old regprocedure, p_new regprocedure)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_grantee text;
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', p_new);
    FOR v_grantee IN
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
        FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) AS a
        WHERE p.oid = p_old AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', p_new, v_grantee);
    END LOOP;
    EXECUTE format('DROP FUNCTION %s', p_old);
END;
$$;

-- === raquel_enqueue_row: the enqueue ========================================

-- Guarantees: as in 0014_enqueue_speed (one queued job, or for a unique_key
-- the job already holding it, kept or rewritten as unique_mode says;
-- invalid_parameter_value naming the bad argument, errors naming
-- raquel_enqueue, and nothing written; the job's row as stored). New here:
-- trace_context is stored with the job, or refused with 22023 naming
-- trace_context (see the header).
CREATE FUNCTION raquel_enqueue_row(
    queue           text    DEFAULT 'default',
    payload         text    DEFAULT NULL,
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    now             bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    unique_key      text    DEFAULT NULL,
    unique_mode     text    DEFAULT NULL,
    timeout         bigint  DEFAULT NULL,
    trace_context   text    DEFAULT NULL
) RETURNS raquel_jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
-- Parameters are always written qualified (raquel_enqueue_row.x); a bare name
-- in ON CONFLICT (unique_key) is the column. Errors name raquel_enqueue, the
-- function callers know.
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
    v_now       bigint := CASE WHEN raquel_enqueue_row.now IS NULL THEN raquel_now_ms()
                               ELSE raquel_clock('raquel_enqueue', raquel_enqueue_row.now) END;
    v_min_delay bigint := coalesce(raquel_enqueue_row.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue_row.max_retry_delay, 43200000);
    v_job       raquel_jobs;
    v_carrier   jsonb;
BEGIN
    -- The rules of 0013_results, unchanged and in their order, behind one
    -- guard. With every optional argument NULL only the queue's rules can
    -- refuse (the delays' defaults pass), so the guard asks just that; the
    -- 19 tests run when an optional argument is given or the queue is bad.
    -- PL/pgSQL prepares each expression it evaluates afresh in every
    -- transaction: the tests cost about 50k of a call's ~490k instructions,
    -- the guard about 5k (callgrind, PostgreSQL 15). An argument added later
    -- belongs in num_nonnulls below if any rule reads it.
    IF num_nonnulls(raquel_enqueue_row.at, raquel_enqueue_row.delay, raquel_enqueue_row.max_age,
                    raquel_enqueue_row.max_retry_count, raquel_enqueue_row.min_retry_delay,
                    raquel_enqueue_row.max_retry_delay, raquel_enqueue_row.backoff_base,
                    raquel_enqueue_row.unique_key, raquel_enqueue_row.unique_mode,
                    raquel_enqueue_row.timeout) > 0
       OR raquel_enqueue_row.queue IS NULL OR raquel_enqueue_row.queue = ''
       OR octet_length(raquel_enqueue_row.queue) > 1000 THEN
        IF raquel_enqueue_row.queue IS NULL OR raquel_enqueue_row.queue = '' THEN
            PERFORM raquel_invalid('raquel_enqueue', 'queue', 'must be a non-empty string');
        END IF;
        IF octet_length(raquel_enqueue_row.queue) > 1000 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'queue',
                format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue_row.queue)));
        END IF;
        IF raquel_enqueue_row.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'at',
                format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                       ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_enqueue_row.at));
        END IF;
        IF raquel_enqueue_row.delay > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.delay));
        END IF;
        IF raquel_enqueue_row.max_age > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_age',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.max_age));
        END IF;
        IF v_max_delay > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
                format('must be at most %s ms, got %s', v_limit, v_max_delay));
        END IF;
        IF raquel_enqueue_row.backoff_base > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.backoff_base));
        END IF;
        IF raquel_enqueue_row.timeout <= 0 OR raquel_enqueue_row.timeout > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'timeout',
                format('must be > 0 and at most %s ms, got %s', v_limit, raquel_enqueue_row.timeout));
        END IF;
        IF raquel_enqueue_row.delay < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue_row.delay));
        END IF;
        IF coalesce(raquel_enqueue_row.at, v_now) + raquel_enqueue_row.delay > 253402214399999 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay',
                format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                       CASE WHEN raquel_enqueue_row.at IS NULL THEN 'now' ELSE 'at' END,
                       coalesce(raquel_enqueue_row.at, v_now), raquel_enqueue_row.delay));
        END IF;
        IF raquel_enqueue_row.max_age <= 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_age', format('must be > 0 ms, got %s', raquel_enqueue_row.max_age));
        END IF;
        IF raquel_enqueue_row.max_retry_count < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_count',
                format('must be >= 0, got %s', raquel_enqueue_row.max_retry_count));
        END IF;
        IF v_min_delay < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
        END IF;
        IF v_max_delay < v_min_delay AND raquel_enqueue_row.max_retry_delay IS NULL THEN
            PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay',
                format('must be <= max_retry_delay (by default %s ms), got %s', v_max_delay, v_min_delay));
        END IF;
        IF v_max_delay < v_min_delay THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
                format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
        END IF;
        IF raquel_enqueue_row.backoff_base < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
                format('must be >= 0 ms, got %s', raquel_enqueue_row.backoff_base));
        END IF;
        IF raquel_enqueue_row.unique_key = '' OR octet_length(raquel_enqueue_row.unique_key) > 1000 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_key',
                format('must be a non-empty string of at most 1000 bytes, got %s bytes',
                       octet_length(raquel_enqueue_row.unique_key)));
        END IF;
        IF raquel_enqueue_row.unique_mode NOT IN ('keep', 'replace') THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_mode',
                format('must be ''keep'' or ''replace'', got %L', raquel_enqueue_row.unique_mode));
        END IF;
        IF raquel_enqueue_row.unique_mode IS NOT NULL AND raquel_enqueue_row.unique_key IS NULL THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_mode', 'needs a unique_key');
        END IF;
    END IF;
    -- trace_context (0012_trace_context): the carrier of the enqueuer's
    -- trace, a JSON object of strings of at most 2048 bytes; a W3C
    -- traceparent in it must be well formed. Behind a guard of its own, after
    -- the other rules: a traced enqueue without other optional arguments
    -- does not run the 19 tests above. Parsing malformed JSON raises, so it
    -- is parsed in a block of its own (a subtransaction), entered only when a
    -- trace_context is given.
    IF raquel_enqueue_row.trace_context IS NOT NULL THEN
        IF octet_length(raquel_enqueue_row.trace_context) > 2048 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'trace_context',
                format('must be at most 2048 bytes, got %s', octet_length(raquel_enqueue_row.trace_context)));
        END IF;
        BEGIN
            v_carrier := raquel_enqueue_row.trace_context::jsonb;
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
            v_carrier := NULL;
        END;
        IF v_carrier IS NULL OR jsonb_typeof(v_carrier) <> 'object'
           OR EXISTS (SELECT FROM jsonb_each(v_carrier) AS e WHERE jsonb_typeof(e.value) <> 'string') THEN
            PERFORM raquel_invalid('raquel_enqueue', 'trace_context',
                'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})');
        END IF;
        IF v_carrier ? 'traceparent'
           AND v_carrier->>'traceparent' !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
            PERFORM raquel_invalid('raquel_enqueue', 'trace_context',
                format('traceparent must be W3C trace context (00-<32 hex>-<16 hex>-<2 hex>), got %L',
                       left(v_carrier->>'traceparent', 100)));
        END IF;
    END IF;

    -- Each pass either inserts, or finds (and for 'replace' rewrites) the job
    -- holding the key. A pass comes back empty only when that job finished
    -- between the INSERT and the SELECT, freeing the key: then try again.
    LOOP
        IF raquel_enqueue_row.unique_key IS NULL OR coalesce(raquel_enqueue_row.unique_mode, 'keep') = 'keep' THEN
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
            VALUES (
                raquel_enqueue_row.queue, raquel_enqueue_row.payload, raquel_enqueue_row.max_age,
                raquel_enqueue_row.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue_row.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0),
                coalesce(raquel_enqueue_row.priority, 0), raquel_enqueue_row.unique_key, raquel_enqueue_row.timeout,
                raquel_enqueue_row.trace_context)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO NOTHING
            RETURNING j.* INTO v_job;
        ELSE
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
            VALUES (
                raquel_enqueue_row.queue, raquel_enqueue_row.payload, raquel_enqueue_row.max_age,
                raquel_enqueue_row.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue_row.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0),
                coalesce(raquel_enqueue_row.priority, 0), raquel_enqueue_row.unique_key, raquel_enqueue_row.timeout,
                raquel_enqueue_row.trace_context)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO UPDATE SET
                queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL,
                timeout = excluded.timeout, trace_context = excluded.trace_context
            WHERE j.status IN ('queued', 'failed')
            RETURNING j.* INTO v_job;
            -- The update trigger wakes workers only for a job moved earlier;
            -- a rewritten job may have moved to another queue.
            IF v_job.id IS NOT NULL AND coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0) <= v_now THEN
                PERFORM pg_notify('raquel_jobs', raquel_enqueue_row.queue);
            END IF;
        END IF;
        EXIT WHEN v_job.id IS NOT NULL;
        SELECT j.* INTO v_job FROM raquel_jobs j
        WHERE j.unique_key = raquel_enqueue_row.unique_key AND j.status IN ('queued', 'failed', 'claimed');
        EXIT WHEN v_job.id IS NOT NULL;
    END LOOP;
    RETURN v_job;
END;
$$;
COMMENT ON FUNCTION raquel_enqueue_row(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text) IS
    'Enqueues a job with raquel_enqueue''s arguments, rules and errors (errors name raquel_enqueue) and returns its row as stored: the new job, or for unique_mode keep the job already holding the key. trace_context: the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes, else 22023). What raquel_enqueue and raquel_enqueue_job call.';

-- === raquel_enqueue: the id ==================================================

-- Guarantees: as in 0014_enqueue_speed (one queued job, its id returned, or
-- invalid_parameter_value naming the bad argument and nothing written; a
-- SQL-standard body the planner inlines), with trace_context passed on.
CREATE FUNCTION raquel_enqueue(
    queue           text    DEFAULT 'default',
    payload         text    DEFAULT NULL,
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    now             bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    unique_key      text    DEFAULT NULL,
    unique_mode     text    DEFAULT NULL,
    timeout         bigint  DEFAULT NULL,
    trace_context   text    DEFAULT NULL
) RETURNS uuid
LANGUAGE sql VOLATILE
RETURN (raquel_enqueue_row(
    queue => raquel_enqueue.queue, payload => raquel_enqueue.payload, at => raquel_enqueue.at,
    delay => raquel_enqueue.delay, max_age => raquel_enqueue.max_age,
    max_retry_count => raquel_enqueue.max_retry_count, min_retry_delay => raquel_enqueue.min_retry_delay,
    max_retry_delay => raquel_enqueue.max_retry_delay, backoff_base => raquel_enqueue.backoff_base,
    now => raquel_enqueue.now, priority => raquel_enqueue.priority,
    unique_key => raquel_enqueue.unique_key, unique_mode => raquel_enqueue.unique_mode,
    timeout => raquel_enqueue.timeout, trace_context => raquel_enqueue.trace_context)).id;

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text) IS
'Enqueues one job and returns its id: scheduled at coalesce(at, now) + coalesce(delay, 0); unique_key/unique_mode keep or replace the unfinished job holding the key; timeout (ms) limits each attempt; trace_context stores the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes) for the worker''s span. now only from a role that may update raquel_jobs (else 42501). Bad arguments: 22023 naming the argument, nothing written. The id of raquel_enqueue_row: callers need EXECUTE on both.';

-- === raquel_enqueue_job: the row as a set ====================================

-- Guarantees: as in 0014_enqueue_speed (raquel_enqueue's arguments but now,
-- rules and errors; the job's row in the same call): raquel_enqueue_row's
-- row, as a set of one, with trace_context passed on. SECURITY DEFINER, so
-- its grants alone suffice.
CREATE FUNCTION raquel_enqueue_job(
    queue           text    DEFAULT 'default',
    payload         text    DEFAULT NULL,
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    unique_key      text    DEFAULT NULL,
    unique_mode     text    DEFAULT NULL,
    timeout         bigint  DEFAULT NULL,
    trace_context   text    DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN NEXT raquel_enqueue_row(
        queue => raquel_enqueue_job.queue, payload => raquel_enqueue_job.payload,
        at => raquel_enqueue_job.at, delay => raquel_enqueue_job.delay,
        max_age => raquel_enqueue_job.max_age, max_retry_count => raquel_enqueue_job.max_retry_count,
        min_retry_delay => raquel_enqueue_job.min_retry_delay,
        max_retry_delay => raquel_enqueue_job.max_retry_delay,
        backoff_base => raquel_enqueue_job.backoff_base, priority => raquel_enqueue_job.priority,
        unique_key => raquel_enqueue_job.unique_key, unique_mode => raquel_enqueue_job.unique_mode,
        timeout => raquel_enqueue_job.timeout, trace_context => raquel_enqueue_job.trace_context);
END
$$;

COMMENT ON FUNCTION raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint, text) IS
'Enqueues a job exactly as raquel_enqueue (same arguments but now, timeout and trace_context included; same rules and errors) and returns its row in the same call: for unique_mode keep, the row of the job already holding the key. raquel_enqueue_row''s row as a set.';

-- The new functions take the old ones' grants; the old ones go (raquel_enqueue
-- first: its body names the old raquel_enqueue_row).
SELECT pg_temp.raquel_carry_grants('raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint)'::regprocedure,
                                   'raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text)'::regprocedure);
SELECT pg_temp.raquel_carry_grants('raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint)'::regprocedure,
                                   'raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint, text)'::regprocedure);
SELECT pg_temp.raquel_carry_grants('raquel_enqueue_row(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint)'::regprocedure,
                                   'raquel_enqueue_row(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text)'::regprocedure);
DROP FUNCTION pg_temp.raquel_carry_grants(regprocedure, regprocedure);
