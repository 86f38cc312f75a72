-- 0004_enqueue: putting jobs on the queue, one at a time or an array at a
-- time.
--
-- Guarantees. An enqueue inserts queued jobs and returns their ids, or raises
-- invalid_parameter_value (22023) naming the bad argument and writes nothing.
-- NULL for any option means its default. A job is scheduled at
-- coalesce(at, now) + coalesce(delay, 0) (raquel: the delay is added to "at").
-- With a unique_key held by an unfinished job (queued, failed or claimed),
-- unique_mode 'keep' (or NULL) changes nothing and returns that job's id;
-- 'replace' rewrites a waiting (queued or failed) job as if enqueued now with
-- these arguments (same id; attempts and error reset), while a running job is
-- never changed and its id is returned as with 'keep'. The partial unique
-- index raquel_jobs_unique_key_idx enforces it, so concurrent enqueues on one
-- key cannot both insert. A NOTIFY wakes idle workers through the jobs
-- table's triggers (0008_notifications). The functions are not executable by
-- PUBLIC, and all but raquel_enqueue are SECURITY DEFINER: raquel_pg/roles.sql
-- lets a role enqueue through them alone, without any privilege on raquel_jobs.
--
-- One body holds the rules of a single enqueue: raquel_enqueue_row.
-- raquel_enqueue returns its id and raquel_enqueue_job its row as a set; the
-- client's enqueue() calls raquel_enqueue_row itself (raquel_pg/queries.sql)
-- and gets the job from the INSERT's RETURNING in one SECURITY DEFINER call.
-- Why: raquel's API returns the job. Calling raquel_enqueue and reading the row
-- back took two SECURITY DEFINER calls (each switching search_path), a second
-- statement and a SETOF result: 601k server instructions a call against
-- raquel_enqueue's 472k (callgrind, PostgreSQL 15); one call: 510k, and
-- raquel_enqueue 451k. Changing enqueue's arguments later (e.g. a new one):
-- change raquel_enqueue_row's body and signature (and its guard's
-- num_nonnulls), and restate raquel_enqueue and raquel_enqueue_job (their
-- bodies name raquel_enqueue_row's signature, so a new signature needs them
-- dropped and created again, grants carried over); the client's enqueue query
-- names raquel_enqueue_row.

-- Guarantees: returns when trace_context is a trace propagation carrier the
-- engine stores: a JSON object whose members are all strings, at most 2048
-- bytes, whose traceparent member (if any) is W3C trace context
-- (00-<32 hex>-<16 hex>-<2 hex>); otherwise raises invalid_parameter_value
-- (22023) naming trace_context, the message starting with fn (the function
-- the caller knows). NULL passes (no trace). Reads and writes no table, so,
-- as raquel_invalid, it runs with the caller's rights and PUBLIC may call it.
-- Why a function: raquel_enqueue_row and raquel_enqueue_many store the same
-- carrier under the same rule, stated once here. Malformed JSON raises when
-- parsed, so it is parsed in a block of its own (a subtransaction), entered
-- only for a carrier that is given: the callers call this only then.
CREATE FUNCTION raquel_check_trace_context(fn text, trace_context text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_carrier jsonb;
BEGIN
    IF raquel_check_trace_context.trace_context IS NULL THEN
        RETURN;
    END IF;
    IF octet_length(raquel_check_trace_context.trace_context) > 2048 THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('must be at most 2048 bytes, got %s', octet_length(raquel_check_trace_context.trace_context)));
    END IF;
    BEGIN
        v_carrier := raquel_check_trace_context.trace_context::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        v_carrier := NULL;
    END;
    IF v_carrier IS NULL OR jsonb_typeof(v_carrier) <> 'object'
       OR EXISTS (SELECT FROM jsonb_each(v_carrier) AS e WHERE jsonb_typeof(e.value) <> 'string') THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})');
    END IF;
    IF v_carrier ? 'traceparent'
       AND v_carrier->>'traceparent' !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('traceparent must be W3C trace context (00-<32 hex>-<16 hex>-<2 hex>), got %L',
                   left(v_carrier->>'traceparent', 100)));
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_check_trace_context(text, text) IS
    'Returns when trace_context is NULL or a storable trace carrier (a JSON object of strings, at most 2048 bytes, a W3C traceparent if it has one); else 22023 naming trace_context, the message naming fn. Writes nothing. The rule raquel_enqueue_row and raquel_enqueue_many apply.';

-- Guarantees: inserts one queued job and returns its row as stored (the row
-- the INSERT wrote), or for a unique_key the row of the job that now stands
-- for this call (see the head of this file); or raises
-- invalid_parameter_value naming the bad argument (errors name
-- raquel_enqueue, the function callers know) and writes nothing. at and now
-- lie within the time range (0002_clock_and_ids), every duration within
-- [0, 2^62 - 1] ms, and at + delay (now + delay without at) at most the
-- range's end (blaming delay); now only from a role that may update
-- raquel_jobs; min_retry_delay is blamed when it alone was given and exceeds
-- the default max_retry_delay. timeout (ms, NULL: none) is stored with the
-- job: > 0 and at most 2^62 - 1, else 22023 naming timeout; unique_mode
-- 'replace' rewrites it too. trace_context (NULL: enqueued outside a trace)
-- is stored with the job, or refused with 22023 naming trace_context and
-- nothing written under raquel_check_trace_context's rule (over 2048 bytes,
-- not a JSON object of strings, or a traceparent member that is not W3C
-- trace context); unique_mode 'replace' rewrites it with the other
-- arguments. It has a guard of its own, after the other rules, so a traced
-- enqueue without other optional arguments does not run the 19 tests.
-- Why one guard before the rules: with every optional argument NULL only the
-- queue's rules can refuse (the delays' defaults pass), so the guard asks just
-- that, and the 19 tests run only when an optional argument is given or the
-- queue is bad. PL/pgSQL prepares each expression it evaluates afresh in
-- every transaction: the tests cost about 50k of a call's ~490k instructions,
-- the guard about 5k (callgrind, PostgreSQL 15). Why RETURNING j.*: the row
-- costs no second read (for a key kept, the SELECT that finds the job holding
-- it is the answer).
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
BEGIN
    -- The rules, behind one guard. With every optional argument NULL only the queue's rules can
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
    -- trace_context: behind a guard of its own, after the other rules, so a
    -- traced enqueue without other optional arguments does not run the 19
    -- tests above.
    IF raquel_enqueue_row.trace_context IS NOT NULL THEN
        PERFORM raquel_check_trace_context('raquel_enqueue', raquel_enqueue_row.trace_context);
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
REVOKE EXECUTE ON FUNCTION raquel_enqueue_row(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text) FROM PUBLIC;


-- Guarantees: enqueues as raquel_enqueue_row (same arguments, trace_context
-- included, rules and errors) and returns the job's id.
-- Why a SQL-standard body without SECURITY DEFINER or SET: it is bound when
-- created (no search_path is read when it runs) and the planner inlines it
-- into the caller's query, so it costs what raquel_enqueue_row costs. Its
-- caller needs EXECUTE on both (roles.sql grants both).
-- From psql: SELECT raquel_enqueue('emails', '{"to": "a@b.c"}');
--            SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000);
--            SELECT raquel_enqueue('reports', 'monthly', priority => 10);
--            SELECT raquel_enqueue('sync', '{"user": 42}', unique_key => 'sync:42');
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
REVOKE EXECUTE ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint, text) FROM PUBLIC;

-- Guarantees: inserts one queued job per element of payloads (a NULL element
-- is a NULL payload) with the options given, all applying to every job, and
-- returns the jobs' ids in the order of payloads; or raises
-- invalid_parameter_value naming the bad argument and writes nothing. The
-- options, their defaults, their checks and their messages are
-- raquel_enqueue's: timeout (ms, NULL: none) is stored with every job, > 0
-- and at most 2^62 - 1, else 22023 naming timeout; trace_context (NULL:
-- none) is stored with every job under raquel_check_trace_context's rule
-- (22023 naming trace_context); payloads must not be NULL (an empty array
-- inserts nothing and returns no row). unique_keys (NULL: no key for any job)
-- gives a key per payload, so it must have as many elements as payloads; a
-- NULL element means no key for that job. Each keyed element behaves as
-- raquel_enqueue(unique_key, unique_mode) would, and the call as those calls
-- made one after the other in array order:
-- - 'keep' (or NULL): a key already held by an unfinished job gives that job's
--   id back unchanged; a key repeated within the call makes one job, from its
--   first element, and every element with that key returns its id.
-- - 'replace': a waiting job holding the key is rewritten, timeout and
--   trace_context too (running ones are kept); a key repeated within the
--   call makes or rewrites one job, which ends up with the arguments of the
--   key's last element, and every element with that key returns its id.
-- Why so: one statement for the whole array (one round trip, one plan, one
-- NOTIFY per statement), the ids drawn by one raquel_new_ids call. Without
-- unique_keys the ids stay in a variable, the insert reads unnest(ids,
-- payloads) and the answer is the id array: no materialized CTE of (id,
-- payload, position), no second pass over it, no sort by position (44.2k ->
-- 40.4k instructions per job, callgrind, PostgreSQL 18). Why timeout and
-- trace_context: code moving from a loop of enqueue() to enqueue_many()
-- must keep its jobs' time limit and the enqueuer's trace
-- (enqueue_many(timeout=...) and its PRODUCER span in the client).
-- From psql: SELECT raquel_enqueue_many('emails', ARRAY['{"to": "a@b.c"}', '{"to": "d@e.f"}']);
--            SELECT raquel_enqueue_many('emails', ARRAY['{"to": "a@b.c"}'], timeout => 30000);
CREATE FUNCTION raquel_enqueue_many(
    queue           text,
    payloads        text[],
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    now             bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    unique_keys     text[]  DEFAULT NULL,
    unique_mode     text    DEFAULT NULL,
    timeout         bigint  DEFAULT NULL,
    trace_context   text    DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
    v_fn        constant text := 'raquel_enqueue_many';
    v_now       bigint := CASE WHEN raquel_enqueue_many.now IS NULL THEN raquel_now_ms()
                               ELSE raquel_clock('raquel_enqueue_many', raquel_enqueue_many.now) END;
    v_min_delay bigint := coalesce(raquel_enqueue_many.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue_many.max_retry_delay, 43200000);
    v_backoff   bigint := coalesce(raquel_enqueue_many.backoff_base, 1000);
    v_priority  integer := coalesce(raquel_enqueue_many.priority, 0);
    v_replace   boolean := raquel_enqueue_many.unique_mode = 'replace';
    v_bad_key   text;
    v_pending   text[];     -- keys not yet resolved to a job
    v_keys      text[] := '{}';
    v_key_ids   uuid[] := '{}';
    v_got_keys  text[];
    v_got_ids   uuid[];
    v_touched   integer;
    v_ids       uuid[];
BEGIN
    IF raquel_enqueue_many.queue IS NULL OR raquel_enqueue_many.queue = '' THEN
        PERFORM raquel_invalid(v_fn, 'queue', 'must be a non-empty string');
    END IF;
    IF octet_length(raquel_enqueue_many.queue) > 1000 THEN
        PERFORM raquel_invalid(v_fn, 'queue',
            format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue_many.queue)));
    END IF;
    IF raquel_enqueue_many.payloads IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'payloads', 'must be an array, not NULL');
    END IF;
    IF raquel_enqueue_many.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid(v_fn, 'at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_enqueue_many.at));
    END IF;
    IF raquel_enqueue_many.delay > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'delay',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.delay));
    END IF;
    IF raquel_enqueue_many.max_age > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'max_age',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.max_age));
    END IF;
    IF v_max_delay > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_delay',
            format('must be at most %s ms, got %s', v_limit, v_max_delay));
    END IF;
    IF raquel_enqueue_many.backoff_base > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'backoff_base',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.backoff_base));
    END IF;
    IF raquel_enqueue_many.delay < 0 THEN
        PERFORM raquel_invalid(v_fn, 'delay', format('must be >= 0 ms, got %s', raquel_enqueue_many.delay));
    END IF;
    IF coalesce(raquel_enqueue_many.at, v_now) + raquel_enqueue_many.delay > 253402214399999 THEN
        PERFORM raquel_invalid(v_fn, 'delay',
            format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   CASE WHEN raquel_enqueue_many.at IS NULL THEN 'now' ELSE 'at' END,
                   coalesce(raquel_enqueue_many.at, v_now), raquel_enqueue_many.delay));
    END IF;
    IF raquel_enqueue_many.max_age <= 0 THEN
        PERFORM raquel_invalid(v_fn, 'max_age', format('must be > 0 ms, got %s', raquel_enqueue_many.max_age));
    END IF;
    IF raquel_enqueue_many.max_retry_count < 0 THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_count',
            format('must be >= 0, got %s', raquel_enqueue_many.max_retry_count));
    END IF;
    IF v_min_delay < 0 THEN
        PERFORM raquel_invalid(v_fn, 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay AND raquel_enqueue_many.max_retry_delay IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'min_retry_delay',
            format('must be <= max_retry_delay (by default %s ms), got %s', v_max_delay, v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_delay',
            format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
    END IF;
    IF raquel_enqueue_many.backoff_base < 0 THEN
        PERFORM raquel_invalid(v_fn, 'backoff_base',
            format('must be >= 0 ms, got %s', raquel_enqueue_many.backoff_base));
    END IF;
    IF raquel_enqueue_many.unique_keys IS NOT NULL THEN
        IF coalesce(cardinality(raquel_enqueue_many.unique_keys), 0)
           <> coalesce(cardinality(raquel_enqueue_many.payloads), 0) THEN
            PERFORM raquel_invalid(v_fn, 'unique_keys',
                format('must have as many elements as payloads (%s), got %s',
                       coalesce(cardinality(raquel_enqueue_many.payloads), 0),
                       coalesce(cardinality(raquel_enqueue_many.unique_keys), 0)));
        END IF;
        SELECT k INTO v_bad_key FROM unnest(raquel_enqueue_many.unique_keys) AS u(k)
        WHERE k = '' OR octet_length(k) > 1000 LIMIT 1;
        IF FOUND THEN
            PERFORM raquel_invalid(v_fn, 'unique_keys',
                format('must be a non-empty string of at most 1000 bytes, got %s bytes',
                       octet_length(v_bad_key)));
        END IF;
    END IF;
    IF raquel_enqueue_many.unique_mode NOT IN ('keep', 'replace') THEN
        PERFORM raquel_invalid(v_fn, 'unique_mode',
            format('must be ''keep'' or ''replace'', got %L', raquel_enqueue_many.unique_mode));
    END IF;
    IF raquel_enqueue_many.unique_mode IS NOT NULL AND raquel_enqueue_many.unique_keys IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'unique_mode', 'needs unique_keys');
    END IF;
    IF raquel_enqueue_many.timeout <= 0 OR raquel_enqueue_many.timeout > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'timeout',
            format('must be > 0 and at most %s ms, got %s', v_limit, raquel_enqueue_many.timeout));
    END IF;
    IF raquel_enqueue_many.trace_context IS NOT NULL THEN
        PERFORM raquel_check_trace_context(v_fn, raquel_enqueue_many.trace_context);
    END IF;

    -- Jobs without a key: the ids are drawn first (raquel_new_ids, once for
    -- the whole array), then one INSERT ... SELECT over both arrays, and the
    -- answer is the id array itself, in the payloads' order by construction.
    IF raquel_enqueue_many.unique_keys IS NULL THEN
        v_ids := raquel_new_ids(cardinality(raquel_enqueue_many.payloads));
        INSERT INTO raquel_jobs (
            id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
            backoff_base, enqueued_at, scheduled_at, priority, timeout, trace_context)
        SELECT u.id, raquel_enqueue_many.queue, u.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
        FROM unnest(v_ids, raquel_enqueue_many.payloads) AS u(id, payload);
        RETURN QUERY SELECT unnest(v_ids);
        RETURN;
    END IF;

    -- With keys: unkeyed elements as above, then each distinct key once
    -- (first element for 'keep', last for 'replace'). Each pass inserts (or
    -- for 'replace' rewrites) the key's job, or finds the job holding it; a
    -- key stays pending only when its job finished between the INSERT and the
    -- SELECT (as in raquel_enqueue), and the next pass tries it again.
    SELECT array_agg(DISTINCT k) INTO v_pending
    FROM unnest(raquel_enqueue_many.unique_keys) AS u(k) WHERE k IS NOT NULL;
    WHILE cardinality(v_pending) > 0 LOOP
        IF v_replace THEN
            WITH rep AS (
                SELECT DISTINCT ON (u.k) u.k, u.payload
                FROM unnest(raquel_enqueue_many.payloads, raquel_enqueue_many.unique_keys)
                     WITH ORDINALITY AS u(payload, k, ord)
                WHERE u.k = ANY (v_pending)
                ORDER BY u.k, u.ord DESC
            ), written AS (
                INSERT INTO raquel_jobs AS j (
                    queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
                FROM rep
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
                RETURNING j.unique_key, j.id
            )
            SELECT array_agg(w.unique_key), array_agg(w.id), count(*) INTO v_got_keys, v_got_ids, v_touched
            FROM written w;
            -- As in raquel_enqueue: the update trigger wakes workers only for
            -- a job moved earlier, and a rewritten job may have changed queue.
            IF v_touched > 0
               AND coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0) <= v_now THEN
                PERFORM raquel_notify_ready(ARRAY[raquel_enqueue_many.queue]);
            END IF;
        ELSE
            WITH rep AS (
                SELECT DISTINCT ON (u.k) u.k, u.payload
                FROM unnest(raquel_enqueue_many.payloads, raquel_enqueue_many.unique_keys)
                     WITH ORDINALITY AS u(payload, k, ord)
                WHERE u.k = ANY (v_pending)
                ORDER BY u.k, u.ord
            ), written AS (
                INSERT INTO raquel_jobs AS j (
                    queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
                FROM rep
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
                DO NOTHING
                RETURNING j.unique_key, j.id
            )
            SELECT array_agg(w.unique_key), array_agg(w.id) INTO v_got_keys, v_got_ids FROM written w;
        END IF;
        v_keys := v_keys || coalesce(v_got_keys, '{}');
        v_key_ids := v_key_ids || coalesce(v_got_ids, '{}');
        SELECT array_agg(j.unique_key), array_agg(j.id) INTO v_got_keys, v_got_ids
        FROM raquel_jobs j
        WHERE j.unique_key = ANY (v_pending) AND NOT j.unique_key = ANY (v_keys)
          AND j.status IN ('queued', 'failed', 'claimed');
        v_keys := v_keys || coalesce(v_got_keys, '{}');
        v_key_ids := v_key_ids || coalesce(v_got_ids, '{}');
        v_pending := ARRAY(SELECT p.k FROM unnest(v_pending) AS p(k) WHERE NOT p.k = ANY (v_keys));
    END LOOP;

    RETURN QUERY
    WITH rows AS MATERIALIZED (
        SELECT CASE WHEN u.k IS NULL THEN u.id END AS id, u.payload, u.k, u.ord
        FROM unnest(raquel_new_ids(cardinality(raquel_enqueue_many.payloads)), raquel_enqueue_many.payloads,
                    raquel_enqueue_many.unique_keys)
             WITH ORDINALITY AS u(id, payload, k, ord)
    ), inserted AS (
        INSERT INTO raquel_jobs (
            id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
            backoff_base, enqueued_at, scheduled_at, priority, timeout, trace_context)
        SELECT r.id, raquel_enqueue_many.queue, r.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
        FROM rows r WHERE r.k IS NULL
    )
    SELECT coalesce(r.id, m.id) FROM rows r
    LEFT JOIN unnest(v_keys, v_key_ids) AS m(k, id) ON m.k = r.k
    ORDER BY r.ord;
END;
$$;
COMMENT ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text, bigint, text) IS
    'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue; timeout (ms) and trace_context are stored with every job.';
REVOKE EXECUTE ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text, bigint, text) FROM PUBLIC;

-- Guarantees: enqueues as raquel_enqueue (same arguments but now, timeout and
-- trace_context included, same rules, same errors) and returns the job's row,
-- raquel_enqueue_row's, as a set of one: for unique_mode 'keep', the job
-- already holding the key, as it is (the row is the truth, not the
-- arguments). SECURITY DEFINER, so its grant alone suffices.
-- Why: raquel's enqueue() returns the Job, and code written for raquel reads
-- it (rq.enqueue(...).id); an enqueuer role may not read raquel_jobs at all
-- (roles.sql grants it EXECUTE only), so the row comes back from the same
-- call. No `now` argument: moving the clock is for the owner, who calls
-- raquel_enqueue_row or raquel_enqueue.
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
REVOKE EXECUTE ON FUNCTION raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint, text) FROM PUBLIC;
