-- 0006_reliability: bounds on enqueue's times, a way to learn how a claim
-- ended, and least-privilege execution.
--
-- 1. raquel_enqueue refuses times and durations whose sums could overflow
--    bigint later (at + delay, enqueued_at + max_age, now + retry delay),
--    naming the argument, instead of failing with "bigint out of range".
-- 2. raquel_claim_outcome tells a worker whose outcome call lost its reply
--    (the connection broke after the commit) what that call recorded.
-- 3. The queue's functions become SECURITY DEFINER and lose PUBLIC's EXECUTE
--    privilege, so that an operator can let a role enqueue (or work) through
--    the functions alone, without any privilege on raquel_jobs: see
--    raquel_pg/roles.sql. Their search_path stays fixed (SET search_path FROM
--    CURRENT), which is what makes SECURITY DEFINER safe.

-- Guarantees: inserts one queued job and returns its id, or raises
-- invalid_parameter_value naming the bad argument and writes nothing.
-- As in 0004, plus: at and now must lie within +-(2^62 - 1) ms of the epoch
-- and every duration within [0, 2^62 - 1] ms (about 146 million years), so
-- that no sum the queue computes from them can overflow bigint.
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
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
-- Parameters are always written qualified (raquel_enqueue.x); a bare name in
-- ON CONFLICT (unique_key) is the column.
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
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
    IF v_now NOT BETWEEN -v_limit AND v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'now', format('must be within +-%s ms, got %s', v_limit, v_now));
    END IF;
    IF raquel_enqueue.at NOT BETWEEN -v_limit AND v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'at',
            format('must be within +-%s ms of the epoch, got %s', v_limit, raquel_enqueue.at));
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

-- Guarantees: when the claim claim_id of job job_id has ended (the job is no
-- longer 'claimed' under it), returns the job's status and error as that
-- claim's outcome (or the rescue that ended it) left them; no row while the
-- claim still runs or when claim_id is not the job's last claim. Read-only.
-- A worker calls it after an outcome call whose reply was lost returned NULL
-- on retry, to learn whether the lost call had committed.
CREATE FUNCTION raquel_claim_outcome(job_id uuid, claim_id uuid)
RETURNS TABLE (status text, error text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT j.status, j.error FROM raquel_jobs j
    WHERE j.id = raquel_claim_outcome.job_id AND j.claim_id = raquel_claim_outcome.claim_id
      AND j.status <> 'claimed'
$$;

-- Least privilege. Functions run with their owner's rights, so a role needs
-- EXECUTE on them and nothing on raquel_jobs; PUBLIC loses EXECUTE so that
-- only roles granted by the operator (raquel_pg/roles.sql) can call them.
-- raquel_now_ms (column defaults), raquel_retry_delay (pure arithmetic) and
-- raquel_invalid (raises an error) stay callable by everyone and keep running
-- with the caller's rights.
-- Names without argument lists: each function has one signature.
ALTER FUNCTION raquel_enqueue SECURITY DEFINER;
ALTER FUNCTION raquel_expire SECURITY DEFINER;
ALTER FUNCTION raquel_rescue SECURITY DEFINER;
ALTER FUNCTION raquel_claim SECURITY DEFINER;
ALTER FUNCTION raquel_next_due SECURITY DEFINER;
ALTER FUNCTION raquel_renew_leases SECURITY DEFINER;
ALTER FUNCTION raquel_complete SECURITY DEFINER;
ALTER FUNCTION raquel_fail SECURITY DEFINER;
ALTER FUNCTION raquel_reschedule SECURITY DEFINER;
ALTER FUNCTION raquel_reject SECURITY DEFINER;
ALTER FUNCTION raquel_release SECURITY DEFINER;
ALTER FUNCTION raquel_cancel SECURITY DEFINER;
ALTER FUNCTION raquel_claim_outcome SECURITY DEFINER;

REVOKE EXECUTE ON FUNCTION
    raquel_enqueue, raquel_expire, raquel_rescue, raquel_claim, raquel_next_due,
    raquel_renew_leases, raquel_complete, raquel_fail, raquel_reschedule, raquel_reject,
    raquel_release, raquel_cancel, raquel_claim_outcome
FROM PUBLIC;
