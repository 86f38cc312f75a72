-- 0004_unique_jobs: an optional unique key per job.
--
-- While a job holding a key is unfinished (queued, failed or claimed), no
-- other job can hold that key: enqueueing with the key again gives the
-- existing job back ('keep', the default) or rewrites it ('replace'). Once the
-- job finishes (success, cancelled, expired, exhausted) the key is free again.
-- The database enforces it with a partial unique index, so concurrent
-- enqueues on one key cannot both insert. Keys are global, not per queue:
-- put the queue in the key when that is what you mean.

ALTER TABLE raquel_jobs ADD COLUMN unique_key text;

ALTER TABLE raquel_jobs ADD CONSTRAINT raquel_jobs_unique_key_check
    CHECK (unique_key <> '' AND octet_length(unique_key) <= 1000);

COMMENT ON COLUMN raquel_jobs.unique_key IS
    'At most one unfinished (queued, failed, claimed) job per key; see raquel_enqueue(unique_key, unique_mode).';

CREATE UNIQUE INDEX raquel_jobs_unique_key_idx ON raquel_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed');

-- raquel_enqueue gains "unique_key" and "unique_mode"; every earlier
-- parameter keeps its name, position and default.
DROP FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer);

-- Guarantees: returns the id of the job that now stands for this call, or
-- raises invalid_parameter_value naming the bad argument and writes nothing.
-- Without unique_key: inserts one queued job (as before).
-- With unique_key and no unfinished job holding it: inserts one queued job
-- holding the key.
-- With unique_key held by an unfinished job:
--   unique_mode 'keep' (or NULL): changes nothing, returns that job's id;
--   unique_mode 'replace': a waiting job (queued or failed) is rewritten as if
--     enqueued now with these arguments (queue, payload, schedule, priority,
--     options; attempts and error reset, status 'queued'), same id; a running
--     (claimed) job is never changed: its id is returned as with 'keep'.
-- NULL for any option means its default. The job is scheduled at
-- coalesce(at, now) + coalesce(delay, 0) (raquel: the delay is added to "at").
-- From psql: SELECT raquel_enqueue('emails', '{"to": "a@b.c"}');
--            SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000);
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
    unique_mode     text    DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
-- Parameters are always written qualified (raquel_enqueue.x); a bare name in
-- ON CONFLICT (unique_key) is the column.
#variable_conflict use_column
DECLARE
    v_now       bigint := coalesce(raquel_enqueue.now, raquel_now_ms());
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
    IF raquel_enqueue.delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue.delay));
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
