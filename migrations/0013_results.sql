-- 0013_results: results, result waiters, cancelling running jobs, per-job
-- timeouts (issue 25). The rules stay in SQL, usable from psql.
--
-- 1. Results. raquel_jobs.result (jsonb) holds what the handler returned,
--    written by raquel_complete(..., result =>) and raquel_complete_many(...,
--    results =>) in the very UPDATE that records the success: a job is never
--    'success' without its result, nor the other way round.
-- 2. Waiting for a result, by LISTEN/NOTIFY, never a poll loop. A waiter
--    LISTENs on channel raquel_results, registers with
--    raquel_result_watch(job_id) (its own transaction, committed), then reads
--    raquel_result(job_id); when the job is not finished it waits for a
--    notification whose payload is the job's id, and reads again.
--    The statement trigger raquel_jobs_30_notify_results (after UPDATE OF
--    status) sends those notifications, one per watched job that has
--    finished, and deletes the registrations it served. No registration, no
--    notification: when nobody waits, a statement pays one probe of an empty
--    table, and finished jobs nobody watches send nothing.
--    No lost wake-up: a finishing statement whose trigger ran before the
--    registration committed has either committed before raquel_result's
--    read (which then sees the job finished), or is still open or committed
--    after that read's snapshot: then the row's xmax is set and
--    raquel_result waits for that transaction with a FOR SHARE lock and reads
--    the version it left. A row nobody is changing is read without a lock,
--    so a waiter never makes a claim skip a queued job.
-- 3. Cancelling a running job. raquel_cancel(job_id, running => true)
--    cancels a queued or failed job at once, as before; a claimed one gets
--    cancel_claim_id = its current claim_id, and NOTIFY raquel_cancel with
--    the job's id tells its worker. The request belongs to that claim: the
--    worker's raquel_fail, or a rescue of that claim, ends the job
--    'cancelled' (never retried); a success still records success (the work
--    was done). Plain raquel_cancel(job_id) keeps raquel's meaning.
-- 4. Timeouts. raquel_jobs.timeout (ms, NULL = none) is set at enqueue
--    (raquel_enqueue(..., timeout =>), raquel_enqueue_job(..., timeout =>));
--    the worker enforces it (docs/guides/tasks-and-results.md).
--
-- Functions whose signature grows (raquel_enqueue, raquel_enqueue_job,
-- raquel_complete, raquel_complete_many, raquel_cancel) are created anew;
-- the old one's grants are carried over and it is dropped. Every function
-- keeps its settings (raquel_complete_many: enable_seqscan = off and
-- jit = off, see 0006_claim) and gets its COMMENT ON.

-- A one-column rule is a domain (0003_tables: a domain's check is planned once per
-- session, a table's CHECK at every statement that writes).
CREATE DOMAIN raquel_timeout AS bigint CONSTRAINT raquel_timeout_check CHECK (VALUE > 0);
COMMENT ON DOMAIN raquel_timeout IS
    'A job''s time limit per attempt in ms: positive, or NULL for none (the worker''s default).';
REVOKE USAGE ON DOMAIN raquel_timeout FROM PUBLIC;

ALTER TABLE raquel_jobs
    ADD COLUMN result jsonb,
    ADD COLUMN timeout raquel_timeout,
    ADD COLUMN cancel_claim_id uuid;

COMMENT ON COLUMN raquel_jobs.result IS
    'What the handler returned (JSON), stored with the success by raquel_complete / raquel_complete_many; NULL when it returned nothing or the job did not succeed. Read it with raquel_result(job_id).';
COMMENT ON COLUMN raquel_jobs.timeout IS
    'Per-job time limit in ms (NULL: the worker''s default, if any), set at enqueue; a worker cancels an attempt running longer and records it failed ("timed out after N ms").';
COMMENT ON COLUMN raquel_jobs.cancel_claim_id IS
    'The claim whose cancellation was requested (raquel_cancel(job_id, running => true)); while it equals claim_id, a failure or rescue of that claim ends the job cancelled.';

-- Carries the EXECUTE grants of v_old over to v_new, then drops v_old (a new
-- function is executable by PUBLIC; PUBLIC keeps EXECUTE only if it had it).
CREATE FUNCTION pg_temp.raquel_replace_function(p_old regprocedure, p_new regprocedure)
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
        WHERE p.oid = p_old AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', p_new, v_grantee);
    END LOOP;
    EXECUTE format('DROP FUNCTION %s', p_old);
END;
$$;

-- Guarantees: as in 0004_enqueue (one queued job, its id returned, or
-- invalid_parameter_value naming the bad argument and nothing written). New
-- here: timeout (ms) is stored with the job; it must be > 0 and at most
-- 2^62 - 1, else 22023 naming timeout. unique_mode 'replace' rewrites it too.
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
    timeout         bigint  DEFAULT NULL
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
    IF raquel_enqueue.timeout <= 0 OR raquel_enqueue.timeout > v_limit THEN
        PERFORM raquel_invalid('raquel_enqueue', 'timeout',
            format('must be > 0 and at most %s ms, got %s', v_limit, raquel_enqueue.timeout));
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
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout)
            VALUES (
                raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
                raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0),
                coalesce(raquel_enqueue.priority, 0), raquel_enqueue.unique_key, raquel_enqueue.timeout)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO NOTHING
            RETURNING j.id INTO v_id;
        ELSE
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout)
            VALUES (
                raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
                raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0),
                coalesce(raquel_enqueue.priority, 0), raquel_enqueue.unique_key, raquel_enqueue.timeout)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO UPDATE SET
                queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL,
                timeout = excluded.timeout
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

SELECT pg_temp.raquel_replace_function(
    'raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text)',
    'raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint)');

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text, bigint) IS
'Enqueues one job and returns its id: scheduled at coalesce(at, now) + coalesce(delay, 0); unique_key/unique_mode keep or replace the unfinished job holding the key; timeout (ms) limits each attempt. now only from a role that may update raquel_jobs (else 42501). Bad arguments: 22023 naming the argument, nothing written.';

-- Guarantees: as in 0004_enqueue (raquel_enqueue's job, its row returned in the same
-- call; for unique_mode keep the row of the job holding the key), with
-- timeout passed through.
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
    timeout         bigint  DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
-- Two statements, not one join: a statement sees the rows committed before
-- it started, so the job raquel_enqueue inserts is visible to the next
-- statement only.
DECLARE
    v_id uuid := raquel_enqueue(
        queue => raquel_enqueue_job.queue, payload => raquel_enqueue_job.payload,
        at => raquel_enqueue_job.at, delay => raquel_enqueue_job.delay,
        max_age => raquel_enqueue_job.max_age, max_retry_count => raquel_enqueue_job.max_retry_count,
        min_retry_delay => raquel_enqueue_job.min_retry_delay,
        max_retry_delay => raquel_enqueue_job.max_retry_delay,
        backoff_base => raquel_enqueue_job.backoff_base, priority => raquel_enqueue_job.priority,
        unique_key => raquel_enqueue_job.unique_key, unique_mode => raquel_enqueue_job.unique_mode,
        timeout => raquel_enqueue_job.timeout);
BEGIN
    RETURN QUERY SELECT * FROM raquel_jobs AS j WHERE j.id = v_id;
END
$$;

SELECT pg_temp.raquel_replace_function(
    'raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text)',
    'raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint)');

COMMENT ON FUNCTION raquel_enqueue_job(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, integer, text, text, bigint) IS
'Enqueues a job exactly as raquel_enqueue (same arguments but now, timeout included; same rules and errors) and returns its row in the same call: for unique_mode keep, the row of the job already holding the key.';

-- Guarantees: as in 0007_outcomes (the claimed job becomes 'success', fenced by
-- claim_id; NULL when the claim is no longer current; now only from a role
-- that may update raquel_jobs). New here: result is stored in the same
-- UPDATE.
CREATE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL, result jsonb DEFAULT NULL)
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
        status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

SELECT pg_temp.raquel_replace_function('raquel_complete(uuid, uuid, bigint)',
                                       'raquel_complete(uuid, uuid, bigint, jsonb)');

COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint, jsonb) IS
'Records the success of the claimed job, fenced by claim_id, with result (JSON, NULL for none) stored in the same UPDATE; returns ''success'', or NULL (nothing written) when the claim is no longer current. Called inside a handler''s own transaction it commits or rolls back with the handler''s writes (exactly once for work in the same database). now only from a role that may update raquel_jobs.';

-- Guarantees: as in 0007_outcomes (each current pair recorded as raquel_complete
-- would; one row per pair in input order; a pair repeated is recorded once).
-- New here: results (NULL, or one JSON value or NULL per pair, as long as
-- job_ids, else 22023 naming results) stored in the same UPDATE.
CREATE FUNCTION raquel_complete_many(
    job_ids uuid[], claim_ids uuid[], now bigint DEFAULT NULL, results jsonb[] DEFAULT NULL
) RETURNS TABLE (job_id uuid, recorded boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
SET jit = off
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
    IF coalesce(cardinality(raquel_complete_many.results), cardinality(raquel_complete_many.job_ids), 0)
       <> coalesce(cardinality(raquel_complete_many.job_ids), 0) THEN
        PERFORM raquel_invalid('raquel_complete_many', 'results',
            format('must be NULL or an array as long as job_ids (%s), got %s',
                   cardinality(raquel_complete_many.job_ids), cardinality(raquel_complete_many.results)));
    END IF;
    IF raquel_complete_many.results IS NULL THEN
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
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
                lease_expires_at = NULL, result = NULL
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        )
        SELECT p.job_id, done.ord IS NOT NULL
        FROM pairs p LEFT JOIN done ON done.ord = p.ord
        ORDER BY p.ord;
    ELSE
        RETURN QUERY
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.result, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids,
                        raquel_complete_many.results)
                 WITH ORDINALITY AS p(job_id, claim_id, result, ord)
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id,
                   pairs.result, pairs.ord
            FROM pairs
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), done AS (
            UPDATE raquel_jobs j SET
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
                lease_expires_at = NULL, result = f.result
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        )
        SELECT p.job_id, done.ord IS NOT NULL
        FROM pairs p LEFT JOIN done ON done.ord = p.ord
        ORDER BY p.ord;
    END IF;
END;
$$;

SELECT pg_temp.raquel_replace_function('raquel_complete_many(uuid[], uuid[], bigint)',
                                       'raquel_complete_many(uuid[], uuid[], bigint, jsonb[])');

COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint, jsonb[]) IS
'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';

-- Guarantees: as in 0007_outcomes (the attempt failed: 'exhausted' after attempt
-- max_retry_count + 1, else 'failed' and due again at now + the retry
-- delay, capped at the time range's end; fenced by claim_id). New here:
-- when the cancellation of this claim was requested (cancel_claim_id =
-- claim_id) the job ends 'cancelled' instead, never retried.
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
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.cancel_claim_id = j.claim_id
                              OR (j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count)
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

COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
'Records a failed attempt of the claimed job, fenced by claim_id: exhausted after attempt max_retry_count + 1, else failed and due again at now + the retry delay (at most the time range''s end); cancelled (never retried) when the cancellation of this claim was requested. Returns the new status, or NULL when the claim is no longer current. now only from a role that may update raquel_jobs.';

-- Guarantees: as in 0005_sweeps (every claimed job whose lease ran out counts one
-- failed attempt and becomes 'failed', claimable at once, or 'exhausted';
-- returns how many; locked rows skipped). New here: a job whose running
-- claim was asked to cancel becomes 'cancelled'.
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
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
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

COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
'Every claimed job (of queues, NULL: all) whose lease ran out counts one failed attempt: failed and claimable at once, exhausted after max_retry_count retries, or cancelled when its claim''s cancellation was requested; returns how many. Locked rows are skipped. now only from a role that may update raquel_jobs.';

-- Guarantees: as in 0007_outcomes (with claim_id: the claimed job becomes
-- 'cancelled', fenced; without: only a waiting job is cancelled; returns
-- 'cancelled' or NULL). New here: running => true (without claim_id)
-- also asks a claimed job's worker to stop: the job keeps running until its
-- worker records an outcome, cancel_claim_id is set to its current claim,
-- NOTIFY raquel_cancel carries the job's id, and 'cancel_requested' is
-- returned. running NULL: 22023 naming running.
CREATE FUNCTION raquel_cancel(
    job_id uuid, claim_id uuid DEFAULT NULL, now bigint DEFAULT NULL, running boolean DEFAULT false
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_cancel.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_cancel', raquel_cancel.now) END;
    v_status text;
BEGIN
    IF raquel_cancel.running IS NULL THEN
        PERFORM raquel_invalid('raquel_cancel', 'running', 'must be true or false, got NULL');
    END IF;
    IF raquel_cancel.claim_id IS NULL THEN
        UPDATE raquel_jobs j SET status = 'cancelled', finished_at = v_now
        WHERE j.id = raquel_cancel.job_id AND j.status IN ('queued', 'failed')
        RETURNING j.status INTO v_status;
        IF v_status IS NULL AND raquel_cancel.running THEN
            UPDATE raquel_jobs j SET cancel_claim_id = j.claim_id
            WHERE j.id = raquel_cancel.job_id AND j.status = 'claimed'
            RETURNING 'cancel_requested' INTO v_status;
            IF v_status IS NOT NULL THEN
                PERFORM pg_notify('raquel_cancel', raquel_cancel.job_id::text);
            END IF;
        END IF;
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

SELECT pg_temp.raquel_replace_function('raquel_cancel(uuid, uuid, bigint)',
                                       'raquel_cancel(uuid, uuid, bigint, boolean)');

COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint, boolean) IS
'With claim_id: the claimed job becomes cancelled, fenced. Without: a queued or failed job becomes cancelled (returns ''cancelled''); with running => true a claimed job''s current claim is asked to stop (cancel_claim_id, NOTIFY raquel_cancel with the job id; returns ''cancel_requested''): its worker''s failure or a rescue then ends it cancelled. NULL when nothing was done. now only from a role that may update raquel_jobs.';

-- Result waiters ------------------------------------------------------------

CREATE UNLOGGED TABLE raquel_result_waiters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        uuid   NOT NULL,
    registered_at bigint NOT NULL DEFAULT raquel_now_ms()
);

COMMENT ON TABLE raquel_result_waiters IS
    'raquel_pg clients waiting on LISTEN raquel_results for a job to finish (UNLOGGED): one row per registration (raquel_result_watch), deleted by the notification it causes (trigger raquel_jobs_30_notify_results) or by raquel_result_unwatch.';

-- Guarantees: registers a wait for job_id's end and returns the
-- registration's id; after it commits, any statement that finishes the job
-- (or finds it finished or gone) sends NOTIFY raquel_results with the job's
-- id and deletes the registration. 22023 naming job_id when NULL.
CREATE FUNCTION raquel_result_watch(job_id uuid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF raquel_result_watch.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result_watch', 'job_id', 'must not be NULL');
    END IF;
    INSERT INTO raquel_result_waiters (job_id) VALUES (raquel_result_watch.job_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION raquel_result_watch(uuid) IS
'Registers a wait for the job''s end (LISTEN raquel_results first, commit this, then read raquel_result): the statement that finishes the job sends NOTIFY raquel_results with the job id and deletes the registration. Returns the registration id for raquel_result_unwatch. 22023 naming job_id when NULL.';

REVOKE EXECUTE ON FUNCTION raquel_result_watch(uuid) FROM PUBLIC;

-- Guarantees: deletes the registration watch_id; true if it was there.
CREATE FUNCTION raquel_result_unwatch(watch_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    DELETE FROM raquel_result_waiters w WHERE w.id = raquel_result_unwatch.watch_id
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;

COMMENT ON FUNCTION raquel_result_unwatch(bigint) IS
'Deletes the result-wait registration watch_id (a waiter that gave up); true if it was there, false if it was already served or never existed.';

REVOKE EXECUTE ON FUNCTION raquel_result_unwatch(bigint) FROM PUBLIC;

-- Guarantees: one row (status, result, error, attempts, finished_at) of the
-- job, or no row when there is no such job. finished is true for success,
-- exhausted, expired and cancelled. When a transaction is changing the row
-- right now (or committed a change after this read's snapshot was taken),
-- waits for it to end and returns what it left, so a waiter registered
-- before this call never misses the job's end (see the header).
CREATE FUNCTION raquel_result(job_id uuid)
RETURNS TABLE (status text, finished boolean, result jsonb, error text, attempts integer,
               finished_at bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_xmax text;
BEGIN
    IF raquel_result.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result', 'job_id', 'must not be NULL');
    END IF;
    SELECT j.xmax::text INTO v_xmax FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    IF v_xmax IS NULL THEN
        RETURN;
    END IF;
    IF v_xmax <> '0' THEN
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id
        FOR SHARE;
    ELSE
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel_result(uuid) IS
'The job''s status, whether it is finished (success, exhausted, expired, cancelled), its result (JSON stored with the success), error, attempts and finished_at; no row when there is no such job. Waits for a transaction changing the job at that moment, so that with raquel_result_watch no end is missed. 22023 naming job_id when NULL.';

REVOKE EXECUTE ON FUNCTION raquel_result(uuid) FROM PUBLIC;

-- Guarantees: after any UPDATE of raquel_jobs.status, each registered
-- waiter whose job is finished (or gone) gets NOTIFY raquel_results with the
-- job id, once per job per statement, and its registration is deleted;
-- registrations another transaction is deleting are skipped (it notifies).
-- With no registration at all it only probes the empty table.
CREATE FUNCTION raquel_tg_jobs__notify_results()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM raquel_result_waiters) THEN
        RETURN NULL;
    END IF;
    WITH served AS (
        DELETE FROM raquel_result_waiters w
        WHERE w.id IN (SELECT w2.id FROM raquel_result_waiters w2
                       LEFT JOIN raquel_jobs j ON j.id = w2.job_id
                       WHERE j.id IS NULL OR j.status IN ('success', 'exhausted', 'expired', 'cancelled')
                       FOR UPDATE OF w2 SKIP LOCKED)
        RETURNING w.job_id
    )
    SELECT count(pg_notify('raquel_results', s.job_id::text))
    INTO v_count
    FROM (SELECT DISTINCT served.job_id FROM served) AS s;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION raquel_tg_jobs__notify_results() IS
'Statement trigger after UPDATE OF status on raquel_jobs: NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table.';

REVOKE EXECUTE ON FUNCTION raquel_tg_jobs__notify_results() FROM PUBLIC;

CREATE TRIGGER raquel_jobs_30_notify_results
    AFTER UPDATE OF status ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_results();
