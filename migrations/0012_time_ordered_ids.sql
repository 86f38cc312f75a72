-- 0012_time_ordered_ids: job ids that sort by creation time, drawn in bulk;
-- one claim_id per claim.
--
-- 1. Job ids follow the UUIDv7 layout (RFC 9562): the first 48 bits are the
--    time of the insert in ms, so a new job's primary-key entry lands beside
--    the newest ones, in the few index pages already in memory, instead of
--    at a random place of an index that grows with the history. Each random
--    entry also dirtied a page of its own (written whole to the WAL after a
--    checkpoint), and so did each claim and outcome, whose new row version
--    gets an index entry beside the job's. enqueue_many of 10,000 jobs beside
--    1,000,000 finished ones: 83,140 jobs/s before, 142,693 after
--    (PostgreSQL 18; README "Fast paths" has the other figures).
-- 2. Drawn in bulk: gen_random_uuid() reads the operating system's random
--    source once per id, 4.1 us per call on a server built without
--    OpenSSL (the embedded one) and 1.7 us with it. raquel_new_ids draws
--    once per call and numbers the ids of a batch from there.
-- 3. raquel_claim draws one claim_id per call, shared by the jobs it claims
--    together, instead of one per job. A claim_id still fences exactly as
--    before: every outcome function matches the pair (job id, claim_id), and
--    each claim of a job gives it a new claim_id.
--
-- Existing jobs keep their ids; ids of both kinds mix freely. Every function
-- redefined here keeps its signature, grants and settings (SECURITY DEFINER
-- since 0006/0008, enable_seqscan = off since 0011, stated again below since
-- CREATE OR REPLACE resets them).

-- Guarantees: an array of n distinct new job ids (none for n < 1 or NULL),
-- each a UUID with the version 7 layout of RFC 9562: the current time in ms
-- since the Unix epoch (raquel_now_ms) in the first 48 bits, then the
-- version (7), 12 random bits, the variant (binary 10) and 62 bits that are
-- random for the first id and counted up from it for the others. The random
-- bits come from one gen_random_uuid() per call. Two calls in the same ms
-- collide only if their 74 random bits fall within n of each other (odds
-- below 1 in 10^17 for n = 10,000); the primary key refuses a collision, so
-- it can fail a call, never merge two jobs. Touches no table.
-- From psql: SELECT raquel_new_ids(3);
CREATE FUNCTION raquel_new_ids(n integer) RETURNS uuid[]
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT ARRAY(
        SELECT (lpad(to_hex((s.ms << 16) | 28672 | s.rand_a), 16, '0')
                || to_hex(((s.rand_b + g) & 4611686018427387903) | (-9223372036854775807 - 1)))::uuid
        FROM generate_series(0, raquel_new_ids.n - 1) AS g)
    FROM (SELECT raquel_now_ms() & 281474976710655 AS ms,
                 ('x' || substr(r.hex, 14, 3))::bit(12)::bigint AS rand_a,
                 ('x' || substr(r.hex, 17, 16))::bit(64)::bigint & 4611686018427387903 AS rand_b
          FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS hex) AS r) AS s
$$;

-- Every job inserted without an id, by raquel_enqueue, by a keyed
-- raquel_enqueue_many element or by hand, gets one of raquel_new_ids.
ALTER TABLE raquel_jobs ALTER COLUMN id SET DEFAULT (raquel_new_ids(1))[1];

-- Guarantees: as in 0008. New: the jobs' ids come from raquel_new_ids, one
-- call for the whole array.
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
    v_now       bigint := coalesce(raquel_enqueue_many.now, raquel_now_ms());
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
    IF v_now NOT BETWEEN -v_limit AND v_limit THEN
        PERFORM raquel_invalid(v_fn, 'now', format('must be within +-%s ms, got %s', v_limit, v_now));
    END IF;
    IF raquel_enqueue_many.at NOT BETWEEN -v_limit AND v_limit THEN
        PERFORM raquel_invalid(v_fn, 'at',
            format('must be within +-%s ms of the epoch, got %s', v_limit, raquel_enqueue_many.at));
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

    -- Jobs without a key: one INSERT ... SELECT over the array. Ids are drawn
    -- before the insert (raquel_new_ids, once for the whole array), so the
    -- result's order is the array's by construction, not by the order
    -- RETURNING happens to produce.
    IF raquel_enqueue_many.unique_keys IS NULL THEN
        RETURN QUERY
        WITH rows AS MATERIALIZED (
            SELECT p.id, p.payload, p.ord
            FROM unnest(raquel_new_ids(cardinality(raquel_enqueue_many.payloads)), raquel_enqueue_many.payloads)
                 WITH ORDINALITY AS p(id, payload, ord)
        ), inserted AS (
            INSERT INTO raquel_jobs (
                id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority)
            SELECT r.id, raquel_enqueue_many.queue, r.payload, raquel_enqueue_many.max_age,
                   raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                   coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                   v_priority
            FROM rows r
        )
        SELECT r.id FROM rows r ORDER BY r.ord;
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

-- Guarantees: as in 0005. New: the job of each tick gets its id from
-- raquel_new_ids.
CREATE OR REPLACE FUNCTION raquel_fire_schedules(
    names text[], ticks bigint[], next_run_ats bigint[], now bigint DEFAULT NULL
) RETURNS TABLE (name text, job_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_fire_schedules.now, raquel_now_ms());
BEGIN
    IF cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.ticks)
       OR cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.next_run_ats) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'names', 'names, ticks and next_run_ats must have the same length');
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

    RETURN QUERY
    WITH advanced AS (
        UPDATE raquel_schedules s SET
            next_run_at = coalesce(d.next, CASE WHEN d.tick IS NULL THEN v_now + s.every
                                                ELSE d.tick + s.every * ((v_now - d.tick) / s.every + 1) END),
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

-- Guarantees: as in 0010. New: the jobs claimed by one call share one new
-- claim_id, drawn once per call.
CREATE OR REPLACE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL,
    durable  boolean DEFAULT true
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
DECLARE
    v_now   bigint := coalesce(raquel_claim.now, raquel_now_ms());
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
    IF (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed') <= v_now THEN
        PERFORM raquel_rescue(raquel_claim.queues, v_now);
    END IF;

    IF raquel_claim.queues IS NULL THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = v_claim
            FROM picked WHERE j.id = picked.id
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
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = v_claim
            FROM picked WHERE j.id = picked.id
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
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = v_claim
            FROM picked WHERE j.id = picked.id
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
        PERFORM raquel_expire(raquel_claim.queues, v_now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;
