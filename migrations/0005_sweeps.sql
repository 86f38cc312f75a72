-- 0005_sweeps: what happens to jobs nobody finished: waiting jobs past their
-- max_age expire, claimed jobs whose lease ran out are rescued.
--
-- Guarantees. No sweeper process is needed: raquel_claim runs both sweeps
-- (rescue, of every queue, when a probe finds a lease run out; expiry, in the
-- queues it claims from, after a short claim or at most once a second per
-- connection), and an operator may call them. Rows locked by a concurrent caller are skipped,
-- never waited for. Both are SECURITY DEFINER, not executable by PUBLIC.
--
-- Why the plan settings. Each runs with max_parallel_workers_per_gather = 0:
-- these functions touch a handful of rows through indexes on many connections
-- at once, and parallel query cannot pay there. raquel_expire's probe goes
-- through raquel_jobs_expiry_idx, a partial index that is empty unless jobs
-- have a max_age; the planner has no statistics for an empty index's
-- expression and guesses that a third of the table matches. Beside a backlog
-- of 300,000 jobs that guess priced the probe above parallel_setup_cost, and
-- with enable_seqscan off (inherited from raquel_claim) it chose a Gather
-- over a parallel bitmap heap scan: the probe took 0.007 ms, starting its two
-- workers 7 to 30 ms, once a second on every worker connection, with the
-- claim's transaction open and its caller waiting.

-- Guarantees: every waiting (queued or failed) job whose enqueued_at +
-- max_age has passed becomes 'expired' with finished_at = now; returns how
-- many. Locked rows are skipped. now only from a role that may update
-- raquel_jobs.
-- Why a plain probe first: a call with nothing to expire (nearly every claim
-- makes one) then never plans the UPDATE ... FROM join; beside 1M finished
-- jobs, planning that statement measured 4.1 ms (EXPLAIN SUMMARY, PostgreSQL
-- 18) against 0.2 ms for the probe alone.
CREATE FUNCTION raquel_expire(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
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
COMMENT ON FUNCTION raquel_expire(text[], bigint) IS
    'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_expire(text[], bigint) FROM PUBLIC;

-- Guarantees: every claimed job whose lease ran out (its worker died or hung)
-- counts one failed attempt with error 'lease expired ...' and becomes
-- 'failed', claimable at once, or 'exhausted' when that attempt was its last,
-- or 'cancelled' when the cancellation of that claim was requested
-- (cancel_claim_id = claim_id, raquel_cancel(running => true)).
-- Returns how many. Locked rows are skipped. now only from a role that may
-- update raquel_jobs.
CREATE FUNCTION raquel_rescue(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
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
REVOKE EXECUTE ON FUNCTION raquel_rescue(text[], bigint) FROM PUBLIC;
