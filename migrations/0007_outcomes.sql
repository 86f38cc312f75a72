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
--
-- Cancelling a running job: raquel_cancel(job_id, running => true) sets
-- cancel_claim_id to the job's current claim and sends NOTIFY raquel_cancel
-- with the job's id to tell its worker. The request belongs to that claim:
-- the worker's raquel_fail, or a rescue of that claim (0005_sweeps), ends the
-- job 'cancelled' (never retried); a success still records success (the
-- work was done).

-- Successes of a queue that keeps no finished job are deleted at once.
--
-- Guarantees. A queue whose retention is 0 ms (raquel_set_retention(queue,
-- '0'), or the default retention 0 and no retention of its own) keeps no
-- finished success: raquel_complete and raquel_complete_many delete the job's
-- row in the statement that records the success, instead of updating it to
-- 'success', when the success stores no result (result NULL) and no result
-- waiter is registered for the job (raquel_result_watch) when the statement
-- reads the registrations; such a success is reported recorded as any other.
-- Fencing is the same (only the current claim's claim_id, only a 'claimed'
-- job: a stale outcome for a deleted job matches no row and is refused); a
-- success with a result or a watched job is kept ('success' with its result,
-- pruned later as any finished job); failures, cancellations and expiries are
-- recorded as for any queue. A deleted success is not counted in
-- raquel_queue_controls' pruned nor in raquel_throughput; reading it
-- (raquel_result, get()) finds no such job. A result waiter registering while
-- the deleting statement runs is told by NOTIFY raquel_results (the trigger
-- raquel_jobs_31_notify_results_deleted, 0008_notifications) and then finds
-- no such job: it never waits for nothing.
--
-- Why: a success kept writes a new row version (~156 WAL bytes), a
-- primary-key entry and a history-index entry (72 + 64 bytes); deleting it
-- writes one 54-byte record and no index entry. Measured beside
-- graphile-worker, which deletes every completed job (bench/RESULTS.md,
-- "Issue 23: server cost per job", run 4; 20,000 no-op jobs, fast mode, 10
-- and 50 in flight), keeping against deleting the successes: 846-847 -> 597
-- WAL bytes per job (graphile-worker 632-633), server CPU 16.35-16.49 ->
-- 13.73-14.09 us (graphile-worker 14.43-14.95). Without a queue of retention
-- 0 the functions read two small tables once per call and then run the
-- update alone.

-- The queues whose successes are deleted at once: queues (the ones with a
-- retention 0 of their own) and, when default_zero, every queue but kept
-- (those with a retention of their own that is not 0). None: queues is empty
-- and default_zero false.
CREATE FUNCTION raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[])
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT ARRAY(SELECT s.queue::text FROM raquel_queue_settings s WHERE s.retention_ms = 0),
           coalesce((SELECT d.retention_ms = 0 FROM raquel_retention_default d), false),
           ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                 WHERE s.retention_ms IS NOT NULL AND s.retention_ms <> 0)
$$;
COMMENT ON FUNCTION raquel_zero_retention() IS
    'The queues whose successes raquel_complete / raquel_complete_many delete at once (retention 0): queues (their own retention 0) and, when default_zero (the default retention is 0), every queue but kept (a retention of its own, not 0). Read-only.';
REVOKE EXECUTE ON FUNCTION raquel_zero_retention() FROM PUBLIC;

-- Outcome: the job ran successfully. Status 'success', finished_at = now,
-- and result (what the handler returned, JSON) stored in the same UPDATE; or,
-- for a queue of retention 0, the job deleted (above).
CREATE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL, result jsonb DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_complete.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_complete', raquel_complete.now) END;
    v_status text;
    v_zero   record;
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
                RETURN 'success';
            END IF;
        END IF;
    END IF;
    UPDATE raquel_jobs j SET
        status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;
COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint, jsonb) IS
'Records the success of the claimed job, fenced by claim_id, with result (JSON, NULL for none) stored in the same UPDATE; returns ''success'', or NULL (nothing written) when the claim is no longer current. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still ''success''). Called inside a handler''s own transaction it commits or rolls back with the handler''s writes (exactly once for work in the same database). now only from a role that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_complete(uuid, uuid, bigint, jsonb) FROM PUBLIC;

-- Guarantees: for each pair (job_ids[i], claim_ids[i]) records 'success'
-- exactly as raquel_complete(job_ids[i], claim_ids[i], now) would (fenced;
-- attempts + 1, finished_at = now, lease cleared), all in one statement, and
-- returns one row per pair in input order: the job's id and whether its
-- success was recorded (false: the claim was no longer current, nothing
-- changed). The arrays must have the same length; a pair repeated is
-- recorded once (the first pair's row says true, the repeats false).
-- results: NULL, or one JSON value or NULL per pair (as long as job_ids, else
-- 22023 naming results), each stored with its success in the same UPDATE.
-- Why so: a worker batches its successes (one round trip, one statement).
-- DISTINCT ON keeps each pair's first position (one sort), the update returns
-- that position, and the rows of the answer are matched to it by position (a
-- hash join), then put in input order: 12.29 -> 10.64 us per job against a
-- window over the sorted pairs (batches of 500, PostgreSQL 18); the UPDATE
-- alone with no answer to build takes 9.88. enable_seqscan = off and
-- jit = off: see 0006_claim (1,000 pairs joined to a sequential scan took
-- 372 ms, 12.6 ms through the primary key). A queue of retention 0 (above):
-- the pairs whose success is deleted are deleted first (their positions
-- kept), then the others are updated; a pair repeated is recorded once
-- either way.
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
        v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                           WHERE w.job_id = ANY (raquel_complete_many.job_ids));
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
REVOKE EXECUTE ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint, jsonb[]) FROM PUBLIC;

-- Outcome: the attempt failed. Records error and error_trace. With
-- max_retry_count set and this attempt being attempt max_retry_count + 1 (the
-- first run plus max_retry_count retries), the job becomes 'exhausted';
-- otherwise 'failed', due again at now + raquel_retry_delay(...), at the time
-- range's end at the latest, whatever the retry delay. When the cancellation
-- of this claim was requested (cancel_claim_id = claim_id) the job ends
-- 'cancelled' instead, never retried.
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
    'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay.';
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
-- under its worker, unless running => true: then a claimed job keeps running
-- until its worker records an outcome, cancel_claim_id is set to its current
-- claim, NOTIFY raquel_cancel carries the job's id, and 'cancel_requested' is
-- returned. Returns 'cancelled', 'cancel_requested', or NULL when nothing was
-- done. running NULL: 22023 naming running.
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
COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint, boolean) IS
'With claim_id: the claimed job becomes cancelled, fenced. Without: a queued or failed job becomes cancelled (returns ''cancelled''); with running => true a claimed job''s current claim is asked to stop (cancel_claim_id, NOTIFY raquel_cancel with the job id; returns ''cancel_requested''): its worker''s failure or a rescue then ends it cancelled. NULL when nothing was done. now only from a role that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_cancel(uuid, uuid, bigint, boolean) FROM PUBLIC;

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
