-- 0017_complete_many_deleted_whole: a batch of successes that a queue's
-- retention 0 deletes whole is answered from the DELETE alone.
--
-- Guarantees: 0007_outcomes' raquel_complete_many, unchanged (what it
-- records, deletes, refuses and reports, in input order; a repeated pair is
-- recorded once). Only what it runs to get there changes.
--
-- Measured reason (PostgreSQL 15, 2 cores; issue 23). With retention 0 a
-- worker's batch of successes is deleted by the first statement, yet the
-- function still ran the second one, the UPDATE of the pairs left over:
-- its pairs were filtered by "ord <> ALL (v_gone)", every pair compared with
-- every deleted one (62,500 comparisons for a batch of 250), and its empty
-- UPDATE fired the statement trigger that serves result waiters. Now a batch
-- whose every pair the DELETE took (the fast mode's, each pair once) returns
-- there; any other batch runs both statements as before. And the jobs a
-- result waiter watches are looked for only when raquel_result_waiters holds
-- a row (one probe of an unlogged table, usually empty), not by matching its
-- rows against every pair at every call.
--
-- Server CPU per job of a batch of 250 successes, retention 0, read from the
-- backend's /proc/PID/schedstat around each call (3 runs of 200 claims of 250
-- from 50,000 jobs, each batch completed by one variant in turn, medians):
-- 6.28 / 6.72 / 6.48 us before, 4.90 / 5.35 / 5.03 us with the early
-- return alone, 4.65 / 5.02 / 4.93 us with both. The claim of the same jobs
-- cost 8.5-9.6 us per job.

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
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
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
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
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
END;
$$;
COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint, jsonb[]) IS
'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still recorded). Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';
