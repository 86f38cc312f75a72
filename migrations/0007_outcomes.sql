-- 0007_outcomes: what happened to a claimed job.
--
-- Guarantees. The fenced outcome functions act only on a job that is still
-- 'claimed' under the given claim_id, and return the job's new status, or
-- NULL when the claim is no longer current (the job was rescued, re-claimed,
-- unclaimed or already finished), in which case nothing changes: a slow
-- worker whose job was rescued and claimed again cannot overwrite the new
-- owner's result. Each outcome but release (and unclaim) counts one attempt
-- (attempts + 1), as in raquel. Every path out of 'claimed' clears
-- lease_expires_at. now is accepted only from a role that may update
-- raquel_jobs (0002_clock_and_ids). All are SECURITY DEFINER and not
-- executable by PUBLIC (raquel_pg/roles.sql grants them to the worker role).

-- Outcome: the job ran successfully. Status 'success', finished_at = now.
CREATE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL)
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
COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint) IS
    'Outcome success, fenced by claim_id; NULL when the claim is no longer current. now only from a role that may update raquel_jobs (0020).';
REVOKE EXECUTE ON FUNCTION raquel_complete(uuid, uuid, bigint) FROM PUBLIC;

-- Guarantees: for each pair (job_ids[i], claim_ids[i]) records 'success'
-- exactly as raquel_complete(job_ids[i], claim_ids[i], now) would (fenced;
-- attempts + 1, finished_at = now, lease cleared), all in one statement, and
-- returns one row per pair in input order: the job's id and whether its
-- success was recorded (false: the claim was no longer current, nothing
-- changed). The arrays must have the same length; a pair repeated is
-- recorded once (the first pair's row says true, the repeats false).
-- Why so: a worker batches its successes (one round trip, one statement).
-- DISTINCT ON keeps each pair's first position (one sort), the update returns
-- that position, and the rows of the answer are matched to it by position (a
-- hash join), then put in input order: 12.29 -> 10.64 us per job against a
-- window over the sorted pairs (batches of 500, PostgreSQL 18); the UPDATE
-- alone with no answer to build takes 9.88. enable_seqscan = off and
-- jit = off: see 0006_claim (1,000 pairs joined to a sequential scan took
-- 372 ms, 12.6 ms through the primary key).
CREATE FUNCTION raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint DEFAULT NULL)
RETURNS TABLE (job_id uuid, recorded boolean)
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
COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) IS
    'raquel_complete for each pair, one statement; one row per pair in input order. now only from a role that may update raquel_jobs (0020).';
REVOKE EXECUTE ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) FROM PUBLIC;

-- Outcome: the attempt failed. Records error and error_trace. With
-- max_retry_count set and this attempt being attempt max_retry_count + 1 (the
-- first run plus max_retry_count retries), the job becomes 'exhausted';
-- otherwise 'failed', due again at now + raquel_retry_delay(...), at the time
-- range's end at the latest, whatever the retry delay.
CREATE FUNCTION raquel_fail(
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
COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
    'Outcome failed (or exhausted), fenced by claim_id; the next attempt is due at now + the retry delay, at 9999-12-30 UTC at the latest (0020).';
REVOKE EXECUTE ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) FROM PUBLIC;

-- Outcome: run the job again later (raquel's reschedule). Status 'queued',
-- scheduled at coalesce(at, now) + coalesce(delay, 0), or at now +
-- min_retry_delay (capped at the time range's end) when neither is given.
-- claimed_by/claimed_at are kept (that is how raquel tells a rescheduled job
-- from a rejected one); finished_at is cleared. at must lie in the time
-- range, delay within [0, 2^62 - 1] ms and at + delay (now + delay) at most
-- the range's end, else invalid_parameter_value naming at or delay and
-- nothing changes.
CREATE FUNCTION raquel_reschedule(
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
COMMENT ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) IS
    'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay (0020).';
REVOKE EXECUTE ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) FROM PUBLIC;

-- Outcome: this worker will not run the job; another may take it at once
-- (raquel's reject). Status 'queued', scheduled_at unchanged, claimed_by and
-- claimed_at cleared.
CREATE FUNCTION raquel_reject(job_id uuid, claim_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', attempts = j.attempts + 1,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_reject.job_id AND j.claim_id = raquel_reject.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;
COMMENT ON FUNCTION raquel_reject(uuid, uuid) IS
    'Outcome: this worker will not run the job; another may take it at once (raquel''s reject): queued, scheduled_at unchanged, claimed_by/claimed_at cleared, one attempt counted. Fenced: NULL and no change unless still claimed under claim_id.';
REVOKE EXECUTE ON FUNCTION raquel_reject(uuid, uuid) FROM PUBLIC;

-- Outcome: hand the job back untouched, as if it had never been claimed (no
-- attempt counted): status 'queued', claim cleared, scheduled_at unchanged.
-- Workers use it for jobs they claimed but never started (shutdown) and for
-- jobs interrupted by cancellation.
CREATE FUNCTION raquel_release(job_id uuid, claim_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_release.job_id AND j.claim_id = raquel_release.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;
COMMENT ON FUNCTION raquel_release(uuid, uuid) IS
    'Hands a claimed job back untouched, as if never claimed: queued, claim cleared, scheduled_at unchanged, no attempt counted. For jobs a worker claimed but did not run (shutdown, cancellation). Fenced: NULL and no change unless still claimed under claim_id.';
REVOKE EXECUTE ON FUNCTION raquel_release(uuid, uuid) FROM PUBLIC;

-- Guarantees: cancels a job. With claim_id (from inside the job's handler):
-- the claimed job becomes 'cancelled' (one attempt counted), fenced like every
-- outcome. Without claim_id (an operator or client): only a waiting job
-- (queued or failed) is cancelled; a claimed job is never cancelled out from
-- under its worker. Returns 'cancelled', or NULL when nothing was cancelled.
CREATE FUNCTION raquel_cancel(job_id uuid, claim_id uuid DEFAULT NULL, now bigint DEFAULT NULL)
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
COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint) IS
    'Cancels a waiting job, or (with claim_id) the claimed job of that claim; returns cancelled or NULL. now only from a role that may update raquel_jobs (0020).';
REVOKE EXECUTE ON FUNCTION raquel_cancel(uuid, uuid, bigint) FROM PUBLIC;

-- Guarantees: puts a claimed job back as queued whoever holds it (raquel's
-- unclaim(job_id)): no attempt counted, claim cleared; true if the job was
-- claimed, false (nothing written) otherwise. Not fenced, by design: the
-- holder's later outcome calls are refused (their claim is no longer
-- current) and its lease renewals stop. raquel_release needs the claim_id.
CREATE FUNCTION raquel_unclaim(job_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    IF raquel_unclaim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_unclaim', 'job_id', 'must not be NULL');
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_unclaim.job_id AND j.status = 'claimed'
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;
COMMENT ON FUNCTION raquel_unclaim(uuid) IS
'Puts a claimed job back as queued, whoever holds it (raquel''s unclaim): no attempt counted, claim cleared; true if the job was claimed, false (nothing written) otherwise. The holder''s later outcome calls are refused (their claim is no longer current) and its lease renewals stop. SQLSTATE 22023 naming job_id when it is NULL.';
REVOKE EXECUTE ON FUNCTION raquel_unclaim(uuid) FROM PUBLIC;

-- Guarantees: when the claim claim_id of job job_id has ended (the job is no
-- longer 'claimed' under it), returns the job's status and error as that
-- claim's outcome (or the rescue that ended it) left them; no row while the
-- claim still runs or when claim_id is not the job's last claim. Read-only.
-- Why: a worker whose outcome call lost its reply (the connection broke after
-- the commit) and got NULL on retry learns from it whether the lost call had
-- committed.
CREATE FUNCTION raquel_claim_outcome(job_id uuid, claim_id uuid)
RETURNS TABLE (status text, error text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT j.status, j.error FROM raquel_jobs j
    WHERE j.id = raquel_claim_outcome.job_id AND j.claim_id = raquel_claim_outcome.claim_id
      AND j.status <> 'claimed'
$$;
COMMENT ON FUNCTION raquel_claim_outcome(uuid, uuid) IS
    'Read-only: when claim claim_id of job job_id has ended, the status and error that claim''s outcome (or the rescue that ended it) left; no row while the claim still runs or when it is not the job''s last claim. Workers call it after an outcome whose reply was lost, to learn whether it committed.';
REVOKE EXECUTE ON FUNCTION raquel_claim_outcome(uuid, uuid) FROM PUBLIC;
