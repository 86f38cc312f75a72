-- 0012_complete_many_lean: raquel_complete_many records a batch of successes
-- without a result in one statement per kind of write, with no sort and no
-- join of the pairs with themselves.
--
-- Guarantees: none change. Each pair is recorded only if it is the job's
-- current claim (claim_id fence, status 'claimed'); a pair repeated is
-- recorded once, and reported recorded at its first position only; a
-- success of a queue whose retention is 0, for a job no result waiter
-- watches, deletes the job (as 0007_outcomes defines it); the rows come back
-- in input order. A call with results (results not NULL) runs the statements
-- of 0007_outcomes' function unchanged.
--
-- Why. 0007_outcomes' function first picked each pair's first position
-- (DISTINCT ON: a sort of the batch), excluded the deleted positions with `<> ALL` (a
-- comparison of every pair with every deleted one: 65,025 for a batch of 255
-- deleted jobs), ran the UPDATE even when the DELETE had taken every job (a
-- primary-key probe per pair, for nothing), and joined the outcome with the
-- pairs. Here the DELETE and the UPDATE join the pairs to the table directly
-- (a job matched twice is changed once: the second match finds it already
-- changed by this statement), the UPDATE runs only for pairs the DELETE left,
-- and when every pair was recorded, which a repeated or refused pair makes
-- impossible, each row is (job_id, true) with no further work. Otherwise the
-- report is computed exactly as before (first positions, recorded pairs).
--
-- Measured: bench/RESULTS.md, "Issue 23: the worker's hot path and
-- raquel_complete_many (fastpy)".

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
    v_n       integer := coalesce(cardinality(raquel_complete_many.job_ids), 0);
    v_ids     uuid[] := '{}';
    v_claims  uuid[] := '{}';
    v_more    uuid[];
    v_more_c  uuid[];
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
    IF raquel_complete_many.results IS NULL THEN
        -- Successes without a result: deleted (retention 0), then the rest updated.
        IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
            v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                               WHERE w.job_id = ANY (raquel_complete_many.job_ids));
            WITH gone AS (
                DELETE FROM raquel_jobs j
                USING unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids) AS p(job_id, claim_id)
                WHERE j.id = p.job_id AND j.claim_id = p.claim_id AND j.status = 'claimed'
                  AND (j.queue = ANY (v_zero.queues) OR (v_zero.default_zero AND j.queue <> ALL (v_zero.kept)))
                  AND j.id <> ALL (v_watched)
                RETURNING j.id, j.claim_id
            )
            SELECT coalesce(array_agg(gone.id), '{}'), coalesce(array_agg(gone.claim_id), '{}')
            INTO v_ids, v_claims FROM gone;
        END IF;
        IF cardinality(v_ids) < v_n THEN
            WITH done AS (
                UPDATE raquel_jobs j SET
                    status = 'success', attempts = j.attempts + 1, finished_at = v_now,
                    lease_expires_at = NULL, result = NULL
                FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids) AS p(job_id, claim_id)
                WHERE j.id = p.job_id AND j.claim_id = p.claim_id AND j.status = 'claimed'
                RETURNING j.id, j.claim_id
            )
            SELECT coalesce(array_agg(done.id), '{}'), coalesce(array_agg(done.claim_id), '{}')
            INTO v_more, v_more_c FROM done;
            v_ids := v_ids || v_more;
            v_claims := v_claims || v_more_c;
        END IF;
        IF cardinality(v_ids) = v_n THEN
            -- Every pair recorded, each job once: no pair was repeated or refused.
            RETURN QUERY SELECT p.job_id, true FROM unnest(raquel_complete_many.job_ids) AS p(job_id);
            RETURN;
        END IF;
        -- Some pair repeated or refused: recorded at the first position of each recorded pair.
        RETURN QUERY
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
                 WITH ORDINALITY AS p(job_id, claim_id, ord)
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id, pairs.ord
            FROM pairs
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), ok AS (
            SELECT f.ord
            FROM firsts f
            JOIN unnest(v_ids, v_claims) AS r(job_id, claim_id)
              ON r.job_id = f.job_id AND r.claim_id = f.claim_id
        )
        SELECT p.job_id, ok.ord IS NOT NULL
        FROM pairs p LEFT JOIN ok ON ok.ord = p.ord
        ORDER BY p.ord;
        RETURN;
    END IF;
    -- With results: 0007_outcomes' statements, unchanged.
    IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
        v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                           WHERE w.job_id = ANY (raquel_complete_many.job_ids));
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
                 WITH ORDINALITY AS p(job_id, claim_id, ord)
            WHERE raquel_complete_many.results[p.ord::integer] IS NULL
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
    END IF;
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
END;
$$;
COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint, jsonb[]) IS
'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still recorded). Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';
