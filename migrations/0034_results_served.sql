-- 0034_results_served: a statement that records outcomes looks up the result
-- waiters of its own jobs only.
--
-- 0008_notifications' raquel_tg_jobs__notify_results, a statement trigger,
-- serves every registered result waiter whose job is finished or gone after
-- each statement that ends jobs: it cannot know which rows its statement
-- changed (transition tables are not allowed beside UPDATE OF finished_at,
-- and without that column list every claim would pay for them), so it
-- probed the job of every registration. With W clients blocked in
-- rq.result(), every batch of successes paid ~0.5 us a waiter:
-- raquel_complete_many of 100 jobs 2.19 ms with none, 2.54 with 1,000, 7.03
-- with 10,000 (bench/RESULTS.md, 2026-12-07, eighth pass).
--
-- Now raquel_complete, raquel_complete_many and raquel_fail, the calls that
-- record what a worker ran (the hot path), serve the waiters of the jobs
-- they were given, found by an index on raquel_result_waiters.job_id
-- (raquel_serve_results), and the trigger leaves their statements alone
-- (the transaction-local setting raquel.results_served, 'on' only while one
-- of them runs). Every other statement that ends or deletes jobs (cancel,
-- expire, rescue, prune, an UPDATE from psql) is served by the trigger as
-- before. No lost wake-up, by 0008's argument: the function serves after
-- its own statement, later than the trigger did. A registration made after
-- its job ended is read finished by its client, which deletes it
-- (raquel_result_unwatch); one an older client leaves so is served by the
-- next statement the trigger serves. A session that sets
-- raquel.results_served itself only delays the wake-ups its own statements
-- made by hand would cause, until the next statement the trigger serves.

CREATE INDEX raquel_result_waiters_job_id_idx ON raquel_result_waiters (job_id);

-- Guarantees: sends NOTIFY raquel_results once per job among job_ids that is
-- finished (success, exhausted, expired, cancelled) or gone and has a
-- registered waiter, and deletes those registrations (those another
-- transaction is deleting are skipped: it notifies), found by the index on
-- job_id. Returns how many jobs it notified. The outcome calls clear
-- raquel.results_served first (the trigger then serves the transaction's
-- next statements again) and call it only when a waiter is registered.
CREATE FUNCTION raquel_serve_results(job_ids uuid[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count integer;
BEGIN
    WITH served AS (
        DELETE FROM raquel_result_waiters w
        WHERE w.id IN (SELECT w2.id FROM raquel_result_waiters w2
                       LEFT JOIN raquel_jobs j ON j.id = w2.job_id
                       WHERE w2.job_id = ANY (raquel_serve_results.job_ids)
                         AND (j.id IS NULL OR j.status IN ('success', 'exhausted', 'expired', 'cancelled'))
                       FOR UPDATE OF w2 SKIP LOCKED)
        RETURNING w.job_id
    )
    SELECT count(pg_notify('raquel_results', s.job_id::text))
    INTO v_count
    FROM (SELECT DISTINCT served.job_id FROM served) AS s;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION raquel_serve_results(uuid[]) IS
    'Internal (raquel_complete, raquel_complete_many, raquel_fail, and the trigger raquel_jobs_30_notify_results for every registered job): NOTIFY raquel_results once per job among job_ids that is finished or gone and has registered result waiters, deleting those registrations (by the index on raquel_result_waiters.job_id). Returns the jobs notified.';
REVOKE EXECUTE ON FUNCTION raquel_serve_results(uuid[]) FROM PUBLIC;

-- Guarantees: as 0008_notifications' raquel_tg_jobs__notify_results (every
-- registered job looked up, through raquel_serve_results), but for the
-- statements of raquel_complete, raquel_complete_many and raquel_fail
-- (raquel.results_served 'on'), which serve their own jobs' waiters.
CREATE OR REPLACE FUNCTION raquel_tg_jobs__notify_results()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF current_setting('raquel.results_served', true) = 'on' THEN
        RETURN NULL;  -- raquel_complete, raquel_complete_many or raquel_fail: it serves its own jobs' waiters
    END IF;
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY(SELECT DISTINCT w.job_id FROM raquel_result_waiters w));
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_results() IS
'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE (a success deleted at once, a prune): NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table. Skips the statements of raquel_complete, raquel_complete_many and raquel_fail (raquel.results_served on), which serve their own jobs'' waiters (raquel_serve_results).';

-- Guarantees: as 0024_edge_values' raquel_complete; its job's result waiters
-- are served by raquel_serve_results, not by the trigger.
CREATE OR REPLACE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL, result jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_complete.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_complete', raquel_complete.now) END;
    v_status text;
    v_zero   record;
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
BEGIN
    IF raquel_complete.result IS NULL THEN
        SELECT * INTO v_zero FROM raquel_zero_retention();
        IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
            DELETE FROM raquel_jobs j
            WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
              AND j.status = 'claimed'
              AND (j.queue = ANY (v_zero.queues) OR (v_zero.default_zero AND j.queue <> ALL (v_zero.kept)))
              AND NOT EXISTS (SELECT FROM raquel_result_waiters w WHERE w.job_id = j.id);
            IF FOUND THEN
                v_served := set_config('raquel.results_served', '', true);
                IF EXISTS (SELECT FROM raquel_result_waiters) THEN
                    PERFORM raquel_serve_results(ARRAY[raquel_complete.job_id]);
                END IF;
                RETURN 'success';
            END IF;
        END IF;
    END IF;
    UPDATE raquel_jobs j SET
        status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY[raquel_complete.job_id]);
    END IF;
    RETURN v_status;
END;
$$;

-- Guarantees: as 0024_edge_values' raquel_complete_many; its jobs' result
-- waiters are served by raquel_serve_results, not by the trigger.
CREATE OR REPLACE FUNCTION raquel_complete_many(
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
    v_zero    record;
    v_watched uuid[];
    v_gone    bigint[] := '{}';
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
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
    SELECT * INTO v_zero FROM raquel_zero_retention();
    IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
        -- The watched jobs are looked for only when someone waits for a result.
        IF EXISTS (SELECT FROM raquel_result_waiters) THEN
            v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                               WHERE w.job_id = ANY (raquel_complete_many.job_ids));
        ELSE
            v_watched := '{}';
        END IF;
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
                 WITH ORDINALITY AS p(job_id, claim_id, ord)
            WHERE raquel_complete_many.results IS NULL
               OR raquel_complete_many.results[p.ord::integer] IS NULL
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id, pairs.ord
            FROM pairs
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), gone AS (
            DELETE FROM raquel_jobs j
            USING firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
              AND (j.queue = ANY (v_zero.queues) OR (v_zero.default_zero AND j.queue <> ALL (v_zero.kept)))
              AND j.id <> ALL (v_watched)
            RETURNING f.ord
        )
        SELECT coalesce(array_agg(gone.ord), '{}') INTO v_gone FROM gone;
        IF cardinality(v_gone) = cardinality(raquel_complete_many.job_ids) THEN
            -- Every pair deleted (so none repeated): every pair recorded.
            RETURN QUERY
            SELECT p.job_id, true
            FROM unnest(raquel_complete_many.job_ids) WITH ORDINALITY AS p(job_id, ord)
            ORDER BY p.ord;
            v_served := set_config('raquel.results_served', '', true);
            IF EXISTS (SELECT FROM raquel_result_waiters) THEN
                PERFORM raquel_serve_results(raquel_complete_many.job_ids);
            END IF;
            RETURN;
        END IF;
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
            WHERE cardinality(v_gone) = 0 OR pairs.ord <> ALL (v_gone)
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), done AS (
            UPDATE raquel_jobs j SET
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
                lease_expires_at = NULL, result = NULL
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        ), ok AS (
            SELECT done.ord FROM done
            UNION ALL
            SELECT g.ord FROM unnest(v_gone) AS g(ord)
        )
        SELECT p.job_id, ok.ord IS NOT NULL
        FROM pairs p LEFT JOIN ok ON ok.ord = p.ord
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
            WHERE cardinality(v_gone) = 0 OR pairs.ord <> ALL (v_gone)
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), done AS (
            UPDATE raquel_jobs j SET
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
                lease_expires_at = NULL, result = f.result
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        ), ok AS (
            SELECT done.ord FROM done
            UNION ALL
            SELECT g.ord FROM unnest(v_gone) AS g(ord)
        )
        SELECT p.job_id, ok.ord IS NOT NULL
        FROM pairs p LEFT JOIN ok ON ok.ord = p.ord
        ORDER BY p.ord;
    END IF;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(raquel_complete_many.job_ids);
    END IF;
END;
$$;

-- Guarantees: as 0024_edge_values' raquel_fail; its job's result waiters are
-- served by raquel_serve_results, not by the trigger.
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
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
BEGIN
    UPDATE raquel_jobs j SET
        attempts = least(j.attempts, 2147483646) + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.cancel_claim_id = j.claim_id
                              OR (j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count)
                            THEN j.scheduled_at
                            ELSE v_now + least(raquel_retry_delay(least(j.attempts, 2147483646) + 1, j.backoff_base,
                                                                  j.min_retry_delay, j.max_retry_delay),
                                               253402214399999 - v_now) END,
        error = raquel_fail.error,
        error_trace = raquel_fail.error_trace,
        finished_at = v_now,
        lease_expires_at = NULL
    WHERE j.id = raquel_fail.job_id AND j.claim_id = raquel_fail.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY[raquel_fail.job_id]);
    END IF;
    RETURN v_status;
END;
$$;
