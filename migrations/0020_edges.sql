-- 0020_edges: safe at the edges (issue 18). One range of times for SQL and
-- Python, a clock only trusted roles may move, and a clear error for every
-- input that used to slip through or fail with a stray error.
--
-- 1. The time range. Every time a raquel_* function writes (enqueued_at,
--    scheduled_at, claimed_at, finished_at, lease_expires_at, next_run_at,
--    last_run_at, created_at) lies within
--        [-62135510400000, 253402214399999] ms since the epoch,
--        0001-01-02 00:00:00.000 .. 9999-12-30 23:59:59.999 UTC:
--    what Python's datetime can represent in any time zone (one day inside
--    datetime's own range, so a time shifted to local time still converts).
--    raquel_pg.params mirrors it (TIME_MIN_MS, TIME_MAX_MS). A time argument
--    outside it (at, now, first_run_at, ticks, next_run_ats) is refused with
--    invalid_parameter_value (22023) naming it; a sum that would pass its end
--    (at + delay, now + delay, now + lease, now + every) is refused naming
--    the duration. Durations stay within [0, 2^62 - 1] ms as in 0006 (max_age
--    and every now get the bound too). A time the queue computes from a
--    stored duration (a retry's now + backoff, a reschedule's now +
--    min_retry_delay, an interval schedule's next tick) is capped at the
--    range's end instead: an attempt due after 9999-12-30 is due then.
--    raquel_stats never computes outside bigint, whatever rows hold.
-- 2. The clock. Every function taking "now" accepts a non-NULL now only from
--    a role that may UPDATE raquel_jobs directly (its owner, a superuser,
--    raquel_pg/roles.sql's operator): moving the clock gives such a role
--    nothing it could not do by hand. Any other role (the enqueuer, the
--    worker) passing now gets insufficient_privilege (SQLSTATE 42501) naming
--    "now" in the message and the error's COLUMN field, and nothing changes;
--    NULL (the default, what the Python client sends) reads the database
--    clock. An error rather than a silent switch to the real clock: a caller
--    that believes it moved the clock must learn that it did not. The role
--    is the one the session acts as (SET ROLE, else the session user), read
--    only when now is given, so calls without now pay nothing.
-- 3. Clear errors: raquel_retry_jobs(since => +-infinity) and
--    raquel_purge(older_than => infinite interval) name their argument;
--    raquel_enqueue(_many) blames min_retry_delay when only it was given
--    and exceeds the default max_retry_delay; raquel_renew_leases refuses
--    arrays of different lengths, as raquel_complete_many does.
-- 4. raquel_claim(before => ms): only jobs scheduled at or before "before"
--    (and, as always, at or before now) are claimed. A new parameter changes
--    the signature: grants are carried over as in 0010.
--
-- Every function restated here keeps its settings (SECURITY DEFINER, its
-- pinned search_path, enable_seqscan = off from 0011, no parallel workers
-- from 0014), restated since CREATE OR REPLACE resets them, and gets a
-- COMMENT ON FUNCTION stating its guarantee.

-- Guarantees: returns p_now when the role the session acts as may UPDATE
-- raquel_jobs and p_now lies in the time range. Otherwise raises
-- insufficient_privilege (42501) or invalid_parameter_value (22023), naming
-- "now" and p_function. Called by the queue's functions only when a caller
-- passed now. SECURITY DEFINER like every function the queue's functions
-- call; it reads no table.
CREATE FUNCTION raquel_clock(p_function text, p_now bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_role text := CASE current_setting('role') WHEN 'none' THEN session_user::text
                        ELSE current_setting('role') END;
BEGIN
    IF NOT has_table_privilege(v_role, 'raquel_jobs', 'UPDATE') THEN
        RAISE EXCEPTION '%: argument "now" may be given only by a role that may update raquel_jobs (% may not); leave it NULL to use the database clock',
            p_function, v_role
            USING ERRCODE = 'insufficient_privilege', COLUMN = 'now';
    END IF;
    IF p_now NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid(p_function, 'now',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', p_now));
    END IF;
    RETURN p_now;
END;
$$;
REVOKE EXECUTE ON FUNCTION raquel_clock(text, bigint) FROM PUBLIC;
COMMENT ON FUNCTION raquel_clock(text, bigint) IS
    'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range (0020); else 42501 or 22023 naming "now".';

-- Guarantees: as in 0006 (one queued job, its id returned, or
-- invalid_parameter_value naming the bad argument and nothing written), with
-- 0020's rules: at within the time range, at + delay (now + delay without
-- at) at most its end (blaming delay), now only from a role that may update
-- raquel_jobs, and min_retry_delay blamed when it alone exceeds the default
-- max_retry_delay.
CREATE OR REPLACE FUNCTION raquel_enqueue(
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
    unique_mode     text    DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
-- Parameters are always written qualified (raquel_enqueue.x); a bare name in
-- ON CONFLICT (unique_key) is the column.
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
    v_now       bigint := CASE WHEN raquel_enqueue.now IS NULL THEN raquel_now_ms()
                               ELSE raquel_clock('raquel_enqueue', raquel_enqueue.now) END;
    v_min_delay bigint := coalesce(raquel_enqueue.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue.max_retry_delay, 43200000);
    v_id        uuid;
BEGIN
    IF raquel_enqueue.queue IS NULL OR raquel_enqueue.queue = '' THEN
        PERFORM raquel_invalid('raquel_enqueue', 'queue', 'must be a non-empty string');
    END IF;
    IF octet_length(raquel_enqueue.queue) > 1000 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'queue',
            format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue.queue)));
    END IF;
    IF raquel_enqueue.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_enqueue.at));
    END IF;
    IF raquel_enqueue.delay > v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue.delay));
    END IF;
    IF raquel_enqueue.max_age > v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_age',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue.max_age));
    END IF;
    IF v_max_delay > v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
            format('must be at most %s ms, got %s', v_limit, v_max_delay));
    END IF;
    IF raquel_enqueue.backoff_base > v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue.backoff_base));
    END IF;
    IF raquel_enqueue.delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue.delay));
    END IF;
    IF coalesce(raquel_enqueue.at, v_now) + raquel_enqueue.delay > 253402214399999 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay',
            format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   CASE WHEN raquel_enqueue.at IS NULL THEN 'now' ELSE 'at' END,
                   coalesce(raquel_enqueue.at, v_now), raquel_enqueue.delay));
    END IF;
    IF raquel_enqueue.max_age <= 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_age', format('must be > 0 ms, got %s', raquel_enqueue.max_age));
    END IF;
    IF raquel_enqueue.max_retry_count < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_count',
            format('must be >= 0, got %s', raquel_enqueue.max_retry_count));
    END IF;
    IF v_min_delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay AND raquel_enqueue.max_retry_delay IS NULL THEN
        PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay',
            format('must be <= max_retry_delay (by default %s ms), got %s', v_max_delay, v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
            format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
    END IF;
    IF raquel_enqueue.backoff_base < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
            format('must be >= 0 ms, got %s', raquel_enqueue.backoff_base));
    END IF;
    IF raquel_enqueue.unique_key = '' OR octet_length(raquel_enqueue.unique_key) > 1000 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'unique_key',
            format('must be a non-empty string of at most 1000 bytes, got %s bytes',
                   octet_length(raquel_enqueue.unique_key)));
    END IF;
    IF raquel_enqueue.unique_mode NOT IN ('keep', 'replace') THEN
        PERFORM raquel_invalid('raquel_enqueue', 'unique_mode',
            format('must be ''keep'' or ''replace'', got %L', raquel_enqueue.unique_mode));
    END IF;
    IF raquel_enqueue.unique_mode IS NOT NULL AND raquel_enqueue.unique_key IS NULL THEN
        PERFORM raquel_invalid('raquel_enqueue', 'unique_mode', 'needs a unique_key');
    END IF;

    -- Each pass either inserts, or finds (and for 'replace' rewrites) the job
    -- holding the key. A pass comes back empty only when that job finished
    -- between the INSERT and the SELECT, freeing the key: then try again.
    LOOP
        IF raquel_enqueue.unique_key IS NULL OR coalesce(raquel_enqueue.unique_mode, 'keep') = 'keep' THEN
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key)
            VALUES (
                raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
                raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0),
                coalesce(raquel_enqueue.priority, 0), raquel_enqueue.unique_key)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO NOTHING
            RETURNING j.id INTO v_id;
        ELSE
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key)
            VALUES (
                raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
                raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0),
                coalesce(raquel_enqueue.priority, 0), raquel_enqueue.unique_key)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO UPDATE SET
                queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL
            WHERE j.status IN ('queued', 'failed')
            RETURNING j.id INTO v_id;
            -- The update trigger wakes workers only for a job moved earlier;
            -- a rewritten job may have moved to another queue.
            IF v_id IS NOT NULL AND coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0) <= v_now THEN
                PERFORM pg_notify('raquel_jobs', raquel_enqueue.queue);
            END IF;
        END IF;
        EXIT WHEN v_id IS NOT NULL;
        SELECT j.id INTO v_id FROM raquel_jobs j
        WHERE j.unique_key = raquel_enqueue.unique_key AND j.status IN ('queued', 'failed', 'claimed');
        EXIT WHEN v_id IS NOT NULL;
    END LOOP;
    RETURN v_id;
END;
$$;

-- Guarantees: as in 0016 (one job per payload, ids in the payloads' order;
-- keyed elements as raquel_enqueue with their key; nothing written when an
-- argument is refused), with 0020's rules, as raquel_enqueue: at within the
-- time range, at + delay at most its end (blaming delay), now only from a
-- role that may update raquel_jobs, min_retry_delay blamed when it alone
-- exceeds the default max_retry_delay.
CREATE OR REPLACE FUNCTION raquel_enqueue_many(
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
    unique_mode     text    DEFAULT NULL
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

    -- Jobs without a key: the ids are drawn first (raquel_new_ids, once for
    -- the whole array), then one INSERT ... SELECT over both arrays, and the
    -- answer is the id array itself, in the payloads' order by construction.
    IF raquel_enqueue_many.unique_keys IS NULL THEN
        v_ids := raquel_new_ids(cardinality(raquel_enqueue_many.payloads));
        INSERT INTO raquel_jobs (
            id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
            backoff_base, enqueued_at, scheduled_at, priority)
        SELECT u.id, raquel_enqueue_many.queue, u.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority
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
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k
                FROM rep
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
                DO UPDATE SET
                    queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                    max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                    max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                    enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                    priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                    error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL
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
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k
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
            backoff_base, enqueued_at, scheduled_at, priority)
        SELECT r.id, raquel_enqueue_many.queue, r.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority
        FROM rows r WHERE r.k IS NULL
    )
    SELECT coalesce(r.id, m.id) FROM rows r
    LEFT JOIN unnest(v_keys, v_key_ids) AS m(k, id) ON m.k = r.k
    ORDER BY r.ord;
END;
$$;

-- Guarantees: as in 0008 (every waiting job past its max_age becomes
-- 'expired', finished_at = now; returns how many; locked rows skipped), with
-- now only from a role that may update raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_expire(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_expire.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_expire', raquel_expire.now) END;
    v_count integer;
BEGIN
    IF NOT EXISTS (
        SELECT FROM raquel_jobs j
        WHERE j.status IN ('queued', 'failed') AND j.max_age IS NOT NULL
          AND j.enqueued_at + j.max_age <= v_now
          AND (raquel_expire.queues IS NULL OR j.queue = ANY (raquel_expire.queues))
    ) THEN
        RETURN 0;
    END IF;
    WITH due AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('queued', 'failed') AND j.max_age IS NOT NULL
          AND j.enqueued_at + j.max_age <= v_now
          AND (raquel_expire.queues IS NULL OR j.queue = ANY (raquel_expire.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET status = 'expired', finished_at = v_now
    FROM due WHERE j.id = due.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: as in 0001 (every claimed job whose lease ran out counts one
-- failed attempt and becomes 'failed', claimable at once, or 'exhausted';
-- returns how many; locked rows skipped), with now only from a role that
-- may update raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_rescue(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_rescue.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_rescue', raquel_rescue.now) END;
    v_count integer;
BEGIN
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        attempts = j.attempts + 1,
        status = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        error = format('lease expired at %s: worker %s stopped renewing its claim',
                       j.lease_expires_at, coalesce(j.claimed_by, '(unnamed)')),
        error_trace = NULL,
        scheduled_at = v_now,
        finished_at = v_now,
        lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: as in 0017 (up to "batch" ready jobs of the given queues,
-- highest priority first then oldest scheduled_at, each claimed by this call
-- alone under one new claim_id, never one past its max_age; rescue and
-- expiry as before; durable as in 0010). New in 0020: before => ms claims
-- only jobs scheduled at or before it; now only from a role that may update
-- raquel_jobs; lease refused (naming it) when now + lease would pass the
-- time range's end.
CREATE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL,
    durable  boolean DEFAULT true,
    before   bigint  DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_claim.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_claim', raquel_claim.now) END;
    v_upto  bigint;
    v_until bigint;
    v_left  integer := raquel_claim.batch;
    v_level integer;
    v_count integer;
    v_claim uuid := gen_random_uuid();
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch < 1 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch', format('must be >= 1, got %s', raquel_claim.batch));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease', format('must be > 0 ms, got %s', raquel_claim.lease));
    END IF;
    IF raquel_claim.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_claim', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_claim.lease));
    END IF;
    IF raquel_claim.durable IS NULL THEN
        PERFORM raquel_invalid('raquel_claim', 'durable', 'must be true or false, got NULL');
    END IF;
    IF NOT raquel_claim.durable THEN
        -- Only a transaction that has written nothing yet: its earlier writes
        -- (an enqueue, say) would lose their durability with the claim's.
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'durable',
                'false needs a transaction of its own (this one has already written)');
        END IF;
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;

    -- Rescue only when the oldest lease has run out: min() over
    -- raquel_jobs_lease_idx, a plan the planner keeps whatever its
    -- statistics say (an EXISTS probe let it pick a sequential scan on a
    -- table never analyzed). status is read from the row, so this is a plain
    -- index scan, which marks the entries of finished claims dead as it
    -- passes them.
    -- The sweeps get the caller's own now (NULL: they read the clock), so
    -- that they check it as the claim did; after a rescue on the real clock,
    -- the claim reads the clock again, so the jobs just rescued (scheduled
    -- at the rescue's now) are claimable by this call.
    IF (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed') <= v_now THEN
        PERFORM raquel_rescue(raquel_claim.queues, raquel_claim.now);
        IF raquel_claim.now IS NULL THEN
            v_now := raquel_now_ms();
        END IF;
    END IF;
    -- The lease's end never passes the last time of the range (a clock read
    -- again above may be a few ms past the one the lease was checked at).
    v_until := v_now + least(raquel_claim.lease, 253402214399999 - v_now);
    -- before: only jobs scheduled at or before it (raquel's dequeue(before=)).
    v_upto := CASE WHEN raquel_claim.before < v_now THEN raquel_claim.before ELSE v_now END;

    IF raquel_claim.queues IS NULL THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            FROM picked WHERE j.ctid = picked.ctid
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            FROM picked WHERE j.ctid = picked.ctid
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                          AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSE
        -- One probe per queue: the highest level among them.
        v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                    CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                        WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                        ORDER BY j.priority DESC LIMIT 1) AS top);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            FROM picked WHERE j.ctid = picked.ctid
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                        CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                              AND j.priority < v_level
                                            ORDER BY j.priority DESC LIMIT 1) AS top);
        END LOOP;
    END IF;

    -- Expiry. The claim above never hands out a job past its max_age; marking
    -- such jobs 'expired' is done here: always when this claim came back
    -- short (the queues look drained, so the call is cheap and an operator
    -- or dequeue() sees expired jobs at once), else at most once a second
    -- per connection (raquel.expired_at, a session setting), so that claims
    -- under a backlog do not pay for it each time.
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        PERFORM raquel_expire(raquel_claim.queues, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;

-- The old claim's grants, onto the new one, then the old one goes (as in
-- 0010). A new function is executable by PUBLIC; the old one was not (0006),
-- so PUBLIC keeps EXECUTE only if it had it.
DO $$
DECLARE
    v_old regprocedure := 'raquel_claim(text[], text, integer, bigint, bigint, boolean)'::regprocedure;
    v_new regprocedure := 'raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint)'::regprocedure;
    v_grantee text;
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_new);
    FOR v_grantee IN
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
        FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) AS a
        WHERE p.oid = v_old AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_new, v_grantee);
    END LOOP;
    EXECUTE format('DROP FUNCTION %s', v_old);
END;
$$;

-- Guarantees: as in 0001 (extends the lease of each (job_id, claim_id) pair
-- still held by that claim to now + lease and returns the ids renewed). New
-- in 0020: arrays of different lengths (or NULL) are refused naming
-- claim_ids, as raquel_complete_many refuses them, and nothing is renewed;
-- lease refused (naming it) when now + lease would pass the time range's
-- end; now only from a role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_renew_leases(
    job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_renew_leases.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_renew_leases', raquel_renew_leases.now) END;
BEGIN
    IF raquel_renew_leases.job_ids IS NULL OR raquel_renew_leases.claim_ids IS NULL
       OR coalesce(cardinality(raquel_renew_leases.job_ids), 0)
          <> coalesce(cardinality(raquel_renew_leases.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_renew_leases.job_ids), cardinality(raquel_renew_leases.claim_ids)));
    END IF;
    IF raquel_renew_leases.lease IS NULL OR raquel_renew_leases.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('must be > 0 ms, got %s', raquel_renew_leases.lease));
    END IF;
    IF raquel_renew_leases.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_renew_leases.lease));
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET lease_expires_at = v_now + raquel_renew_leases.lease
    FROM unnest(raquel_renew_leases.job_ids, raquel_renew_leases.claim_ids) AS held(id, claim_id)
    WHERE j.id = held.id AND j.claim_id = held.claim_id AND j.status = 'claimed'
    RETURNING j.id;
END;
$$;

-- Guarantees: as in 0001 (the claimed job becomes 'success', fenced by
-- claim_id; NULL when the claim is no longer current), with now only from a
-- role that may update raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_complete.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_complete', raquel_complete.now) END;
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: as in 0015 (each current pair recorded as raquel_complete
-- would; one row per pair in input order; a pair repeated is recorded once),
-- with now only from a role that may update raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint DEFAULT NULL)
RETURNS TABLE (job_id uuid, recorded boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := CASE WHEN raquel_complete_many.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_complete_many', raquel_complete_many.now) END;
BEGIN
    IF raquel_complete_many.job_ids IS NULL OR raquel_complete_many.claim_ids IS NULL
       OR coalesce(cardinality(raquel_complete_many.job_ids), 0)
          <> coalesce(cardinality(raquel_complete_many.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_complete_many', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_complete_many.job_ids), cardinality(raquel_complete_many.claim_ids)));
    END IF;
    RETURN QUERY
    WITH pairs AS (
        SELECT p.job_id, p.claim_id, p.ord
        FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
             WITH ORDINALITY AS p(job_id, claim_id, ord)
    ), firsts AS (
        SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id, pairs.ord
        FROM pairs
        ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
    ), done AS (
        UPDATE raquel_jobs j SET
            status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL
        FROM firsts f
        WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
        RETURNING f.ord
    )
    SELECT p.job_id, done.ord IS NOT NULL
    FROM pairs p LEFT JOIN done ON done.ord = p.ord
    ORDER BY p.ord;
END;
$$;

-- Guarantees: as in 0001 (the attempt failed: 'exhausted' after attempt
-- max_retry_count + 1, else 'failed' and due again at now + the retry
-- delay; fenced by claim_id). New in 0020: the next attempt is due at the
-- time range's end at the latest, whatever the retry delay; now only from a
-- role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_fail(
    job_id uuid, claim_id uuid, error text DEFAULT NULL, error_trace text DEFAULT NULL,
    now bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_fail.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_fail', raquel_fail.now) END;
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        attempts = j.attempts + 1,
        status = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                            THEN j.scheduled_at
                            ELSE v_now + least(raquel_retry_delay(j.attempts + 1, j.backoff_base,
                                                                  j.min_retry_delay, j.max_retry_delay),
                                               253402214399999 - v_now) END,
        error = raquel_fail.error,
        error_trace = raquel_fail.error_trace,
        finished_at = v_now,
        lease_expires_at = NULL
    WHERE j.id = raquel_fail.job_id AND j.claim_id = raquel_fail.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: as in 0001 (run the job again later: 'queued', scheduled at
-- coalesce(at, now) + coalesce(delay, 0), or now + min_retry_delay when
-- neither is given; fenced by claim_id). New in 0020: at must lie in the
-- time range, delay within [0, 2^62 - 1] ms and at + delay (now + delay) at
-- most the range's end, else invalid_parameter_value naming at or delay and
-- nothing changes; now + min_retry_delay is capped at the range's end; now
-- only from a role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_reschedule(
    job_id uuid, claim_id uuid, at bigint DEFAULT NULL, delay bigint DEFAULT NULL,
    now bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_reschedule.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_reschedule', raquel_reschedule.now) END;
    v_status text;
BEGIN
    IF raquel_reschedule.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_reschedule.at));
    END IF;
    IF raquel_reschedule.delay < 0 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('must be >= 0 ms, got %s', raquel_reschedule.delay));
    END IF;
    IF raquel_reschedule.delay > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('must be at most 4611686018427387903 ms, got %s', raquel_reschedule.delay));
    END IF;
    IF coalesce(raquel_reschedule.at, v_now) + raquel_reschedule.delay > 253402214399999 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   CASE WHEN raquel_reschedule.at IS NULL THEN 'now' ELSE 'at' END,
                   coalesce(raquel_reschedule.at, v_now), raquel_reschedule.delay));
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued',
        attempts = j.attempts + 1,
        scheduled_at = CASE WHEN raquel_reschedule.at IS NULL AND raquel_reschedule.delay IS NULL
                            THEN v_now + least(j.min_retry_delay, 253402214399999 - v_now)
                            ELSE coalesce(raquel_reschedule.at, v_now) + coalesce(raquel_reschedule.delay, 0) END,
        finished_at = NULL,
        lease_expires_at = NULL
    WHERE j.id = raquel_reschedule.job_id AND j.claim_id = raquel_reschedule.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: as in 0001 (with claim_id: the claimed job becomes
-- 'cancelled', fenced; without: only a waiting job is cancelled; returns
-- 'cancelled' or NULL), with now only from a role that may update
-- raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_cancel(job_id uuid, claim_id uuid DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_cancel.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_cancel', raquel_cancel.now) END;
    v_status text;
BEGIN
    IF raquel_cancel.claim_id IS NULL THEN
        UPDATE raquel_jobs j SET status = 'cancelled', finished_at = v_now
        WHERE j.id = raquel_cancel.job_id AND j.status IN ('queued', 'failed')
        RETURNING j.status INTO v_status;
    ELSE
        UPDATE raquel_jobs j SET
            status = 'cancelled', attempts = j.attempts + 1, finished_at = v_now,
            lease_expires_at = NULL
        WHERE j.id = raquel_cancel.job_id AND j.claim_id = raquel_cancel.claim_id
          AND j.status = 'claimed'
        RETURNING j.status INTO v_status;
    END IF;
    RETURN v_status;
END;
$$;

-- Guarantees: as in 0018 (one row per queue: counts by status, ready,
-- scheduled, lease_expired, oldest_ready_age_ms). New in 0020: never fails
-- on the times rows hold: a scheduled_at before the time range counts as
-- its start, so oldest_ready_age_ms stays within the range's width (and
-- raquel_queue_stats's interval within its type); now only from a role that
-- may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_stats(now bigint DEFAULT NULL)
RETURNS TABLE (
    queue               text,
    total               bigint,
    queued              bigint,
    claimed             bigint,
    success             bigint,
    failed              bigint,
    cancelled           bigint,
    expired             bigint,
    exhausted           bigint,
    ready               bigint,
    scheduled           bigint,
    lease_expired       bigint,
    oldest_ready_age_ms bigint
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_stats.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_stats', raquel_stats.now) END;
BEGIN
    RETURN QUERY
    WITH by_status AS (
        SELECT j.queue, j.status, count(*) AS n FROM raquel_jobs j GROUP BY j.queue, j.status
    ), counts AS (
        SELECT b.queue,
               sum(b.n)::bigint AS total,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'queued'), 0)::bigint AS queued,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'claimed'), 0)::bigint AS claimed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'success'), 0)::bigint AS success,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'failed'), 0)::bigint AS failed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'expired'), 0)::bigint AS expired,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'exhausted'), 0)::bigint AS exhausted
        FROM by_status b GROUP BY b.queue
    ), waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(greatest(j.scheduled_at, -62135510400000))
                       FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), lost AS (
        SELECT j.queue, count(*) AS lease_expired FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now GROUP BY j.queue
    )
    SELECT c.queue::text, c.total, c.queued, c.claimed, c.success, c.failed, c.cancelled, c.expired,
           c.exhausted, coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(l.lease_expired, 0),
           w.oldest_ready_age_ms
    FROM counts c
    LEFT JOIN waiting w ON w.queue = c.queue
    LEFT JOIN lost l ON l.queue = c.queue
    ORDER BY c.queue;
END;
$$;

-- Guarantees: as in 0002 (one ended or cancelled job back to 'queued',
-- claimable at once; true, or false when the job is in another status),
-- with now only from a role that may update raquel_jobs (0020).
CREATE OR REPLACE FUNCTION raquel_retry(job_id uuid, now bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_retry.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_retry', raquel_retry.now) END;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    WHERE j.id = raquel_retry.job_id
      AND j.status IN ('failed', 'exhausted', 'expired', 'cancelled');
    RETURN FOUND;
END;
$$;

-- Guarantees: as in 0002 (raquel_retry for every job matching all the
-- filters; returns how many). New in 0020: since must be a finite time
-- ('infinity' and '-infinity' are refused naming since, nothing retried);
-- now only from a role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_retry_jobs(
    queue    text        DEFAULT NULL,
    statuses text[]      DEFAULT NULL,
    since    timestamptz DEFAULT NULL,
    now      bigint      DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_retry_jobs.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_retry_jobs', raquel_retry_jobs.now) END;
    v_statuses text[] := coalesce(raquel_retry_jobs.statuses, ARRAY['failed', 'exhausted', 'expired']);
    v_since    bigint;
    v_count    integer;
BEGIN
    IF NOT isfinite(raquel_retry_jobs.since) THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'since',
            format('must be a finite time, got %s', raquel_retry_jobs.since));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['failed', 'exhausted', 'expired', 'cancelled'] THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'statuses',
            format('must be some of failed, exhausted, expired, cancelled, got %s', v_statuses));
    END IF;
    v_since := floor(extract(epoch FROM raquel_retry_jobs.since) * 1000)::bigint;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = ANY (v_statuses)
          AND (raquel_retry_jobs.queue IS NULL OR j.queue = raquel_retry_jobs.queue)
          AND (v_since IS NULL OR j.finished_at >= v_since)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    FROM picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: as in 0002 (deletes at most batch_size finished jobs whose
-- finished_at is older than now - older_than, oldest first; returns how
-- many). New in 0020: older_than must be finite (an infinite interval,
-- PostgreSQL 17+, is refused naming older_than, nothing deleted), and a
-- cutoff before the time range's start is its start (no bigint overflow,
-- whatever the interval); now only from a role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_purge(
    older_than interval,
    statuses   text[]  DEFAULT NULL,
    batch_size integer DEFAULT 1000,
    now        bigint  DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_purge.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_purge', raquel_purge.now) END;
    v_statuses text[] := coalesce(raquel_purge.statuses, ARRAY['success', 'cancelled', 'expired', 'exhausted']);
    v_cutoff   bigint;
    v_count    integer;
BEGIN
    IF raquel_purge.older_than IS NULL OR raquel_purge.older_than < interval '0'
       OR NOT isfinite(raquel_purge.older_than) THEN
        PERFORM raquel_invalid('raquel_purge', 'older_than',
            format('must be a finite interval >= 0, got %s', coalesce(raquel_purge.older_than::text, 'NULL')));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['success', 'cancelled', 'expired', 'exhausted'] THEN
        PERFORM raquel_invalid('raquel_purge', 'statuses',
            format('must be some of success, cancelled, expired, exhausted, got %s', v_statuses));
    END IF;
    IF raquel_purge.batch_size IS NULL OR raquel_purge.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_purge', 'batch_size',
            format('must be >= 1, got %s', raquel_purge.batch_size));
    END IF;
    v_cutoff := greatest(v_now - floor(extract(epoch FROM raquel_purge.older_than) * 1000),
                         -62135510400000)::bigint;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.status = ANY (v_statuses)
          AND j.finished_at < v_cutoff
        ORDER BY j.finished_at
        LIMIT raquel_purge.batch_size
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: as in 0005 (creates or updates the schedule "name" and returns
-- its next_run_at; re-declaring it unchanged keeps its next tick). New in
-- 0020: first_run_at must lie in the time range; every and max_age at most
-- 2^62 - 1 ms; without first_run_at, now + every at most the range's end
-- (blaming every); each refused naming the argument, nothing written; now
-- only from a role that may update raquel_jobs.
CREATE OR REPLACE FUNCTION raquel_set_schedule(
    name            text,
    queue           text,
    payload         text    DEFAULT NULL,
    cron            text    DEFAULT NULL,
    every           bigint  DEFAULT NULL,
    first_run_at    bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    now             bigint  DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_now   bigint := CASE WHEN raquel_set_schedule.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_set_schedule', raquel_set_schedule.now) END;
    v_first bigint;
    v_next  bigint;
BEGIN
    IF raquel_set_schedule.name IS NULL OR raquel_set_schedule.name = ''
       OR octet_length(raquel_set_schedule.name) > 1000 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'name', 'must be a non-empty string of at most 1000 bytes');
    END IF;
    IF raquel_set_schedule.queue IS NULL OR raquel_set_schedule.queue = ''
       OR octet_length(raquel_set_schedule.queue) > 1000 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'queue', 'must be a non-empty string of at most 1000 bytes');
    END IF;
    IF (raquel_set_schedule.cron IS NULL) = (raquel_set_schedule.every IS NULL) THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'cron', 'give exactly one of cron and every');
    END IF;
    IF raquel_set_schedule.cron = '' THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'cron', 'must be a cron expression, got an empty string');
    END IF;
    IF raquel_set_schedule.every <= 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('must be > 0 ms, got %s', raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.every > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('must be at most 4611686018427387903 ms, got %s', raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.first_run_at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'first_run_at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_set_schedule.first_run_at));
    END IF;
    IF raquel_set_schedule.first_run_at IS NULL AND raquel_set_schedule.every > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('now + every must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.max_age <= 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_age',
            format('must be > 0 ms, got %s', raquel_set_schedule.max_age));
    END IF;
    IF raquel_set_schedule.max_age > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_age',
            format('must be at most 4611686018427387903 ms, got %s', raquel_set_schedule.max_age));
    END IF;
    IF raquel_set_schedule.max_retry_count < 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_retry_count',
            format('must be >= 0, got %s', raquel_set_schedule.max_retry_count));
    END IF;
    v_first := coalesce(raquel_set_schedule.first_run_at, v_now + raquel_set_schedule.every);

    INSERT INTO raquel_schedules AS s (
        name, queue, payload, cron, every, priority, max_age, max_retry_count, next_run_at, created_at)
    VALUES (
        raquel_set_schedule.name, raquel_set_schedule.queue, raquel_set_schedule.payload,
        raquel_set_schedule.cron, raquel_set_schedule.every, coalesce(raquel_set_schedule.priority, 0),
        raquel_set_schedule.max_age, raquel_set_schedule.max_retry_count, v_first, v_now)
    ON CONFLICT (name) DO UPDATE SET
        queue = excluded.queue, payload = excluded.payload, priority = excluded.priority,
        max_age = excluded.max_age, max_retry_count = excluded.max_retry_count,
        cron = excluded.cron, every = excluded.every,
        next_run_at = CASE WHEN s.cron IS NOT DISTINCT FROM excluded.cron
                            AND s.every IS NOT DISTINCT FROM excluded.every
                           THEN s.next_run_at ELSE excluded.next_run_at END
    RETURNING s.next_run_at INTO v_next;
    RETURN v_next;
END;
$$;

-- Guarantees: as in 0012 (for each i, if schedule names[i] still has
-- next_run_at = ticks[i], moves it to next_run_ats[i] and enqueues one job
-- for that tick, in one statement: a tick is fired at most once). New in
-- 0020: each tick and each next_run_at must lie in the time range (refused
-- naming ticks or next_run_ats, nothing written); a next tick computed here
-- for an interval schedule is capped at the range's end; now only from a
-- role that may update raquel_jobs (a worker running a scheduler fires on
-- the database clock).
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
    -- so that no step can overflow bigint (every <= 2^62 - 1 since 0020;
    -- the CASEs also keep an older, larger every from overflowing).
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

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text) IS
    'Inserts one queued job and returns its id, or raises 22023 naming the bad argument and writes nothing. Times within 0001-01-02 .. 9999-12-30 UTC (0020); now only from a role that may update raquel_jobs (else 42501).';
COMMENT ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text) IS
    'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue (0020).';
COMMENT ON FUNCTION raquel_expire(text[], bigint) IS
    'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
    'Every claimed job whose lease ran out counts a failed attempt (failed or exhausted); returns how many. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms. now only from a role that may update raquel_jobs (else 42501); now + lease within the time range (0020).';
COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids (0020).';
COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint) IS
    'Outcome success, fenced by claim_id; NULL when the claim is no longer current. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) IS
    'raquel_complete for each pair, one statement; one row per pair in input order. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
    'Outcome failed (or exhausted), fenced by claim_id; the next attempt is due at now + the retry delay, at 9999-12-30 UTC at the latest (0020).';
COMMENT ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) IS
    'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay (0020).';
COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint) IS
    'Cancels a waiting job, or (with claim_id) the claimed job of that claim; returns cancelled or NULL. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_stats(bigint) IS
    'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold (0020).';
COMMENT ON FUNCTION raquel_retry(uuid, bigint) IS
    'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs (0020).';
COMMENT ON FUNCTION raquel_retry_jobs(text, text[], timestamptz, bigint) IS
    'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since, 0020).';
COMMENT ON FUNCTION raquel_purge(interval, text[], integer, bigint) IS
    'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it, 0020).';
COMMENT ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) IS
    'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument, 0020).';
COMMENT ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) IS
    'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs (0020).';
