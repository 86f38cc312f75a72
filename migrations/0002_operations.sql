-- 0002_operations: what an on-call engineer needs from psql.
--
-- Read-only views (queue stats, problem jobs, expired leases) and the
-- operator's write functions (retry, purge, stats). Cancelling a job is
-- raquel_cancel(job_id) from 0001.
--
-- Operator-facing arguments that people type take PostgreSQL types
-- (timestamptz for "since", interval for "older than"); "now" stays in ms
-- since the epoch, like every clock argument of 0001, so tests can fix time.
-- Views show times as timestamptz and ages as intervals, for people; the
-- functions return ms, for programs.

-- History: finished jobs by finish time, for purging old ones in batches
-- without scanning the table for each batch.
CREATE INDEX raquel_jobs_finished_idx ON raquel_jobs (finished_at)
    WHERE status IN ('success', 'cancelled', 'expired', 'exhausted');

-- A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading rows.
CREATE FUNCTION raquel_ts(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT to_timestamp(raquel_ts.ms / 1000.0) $$;

-- Guarantees: one row per queue that has jobs, sorted by queue: the count of
-- each status; "ready", the waiting (queued or failed) jobs whose
-- scheduled_at has come, i.e. claimable now; "scheduled", waiting jobs due
-- later; "lease_expired", claimed jobs whose lease has run out (their worker
-- died or hangs; the next claim on the queue rescues them); and
-- oldest_ready_age_ms, how long the oldest ready job has been claimable
-- (now - its scheduled_at; NULL when none is ready). A queue whose ready
-- age keeps growing has no worker keeping up. Reads only. The status counts
-- take one pass over the table grouped by (queue, status); the rest reads
-- only the partial indexes of waiting and claimed jobs.
CREATE FUNCTION raquel_stats(now bigint DEFAULT NULL)
RETURNS TABLE (
    queue               text,
    total               bigint,
    queued              bigint,
    claimed             bigint,
    success             bigint,
    failed              bigint,
    cancelled           bigint,
    expired             bigint,
    exhausted           bigint,
    ready               bigint,
    scheduled           bigint,
    lease_expired       bigint,
    oldest_ready_age_ms bigint
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_stats.now, raquel_now_ms());
BEGIN
    RETURN QUERY
    WITH by_status AS (
        SELECT j.queue, j.status, count(*) AS n FROM raquel_jobs j GROUP BY j.queue, j.status
    ), counts AS (
        SELECT b.queue,
               sum(b.n)::bigint AS total,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'queued'), 0)::bigint AS queued,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'claimed'), 0)::bigint AS claimed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'success'), 0)::bigint AS success,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'failed'), 0)::bigint AS failed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'expired'), 0)::bigint AS expired,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'exhausted'), 0)::bigint AS exhausted
        FROM by_status b GROUP BY b.queue
    ), waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(j.scheduled_at) FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), lost AS (
        SELECT j.queue, count(*) AS lease_expired FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now GROUP BY j.queue
    )
    SELECT c.queue, c.total, c.queued, c.claimed, c.success, c.failed, c.cancelled, c.expired,
           c.exhausted, coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(l.lease_expired, 0),
           w.oldest_ready_age_ms
    FROM counts c
    LEFT JOIN waiting w ON w.queue = c.queue
    LEFT JOIN lost l ON l.queue = c.queue
    ORDER BY c.queue;
END;
$$;

-- raquel_stats() for psql, with the oldest ready age as an interval.
CREATE VIEW raquel_queue_stats AS
SELECT s.queue, s.total, s.queued, s.claimed, s.success, s.failed, s.cancelled, s.expired,
       s.exhausted, s.ready, s.scheduled, s.lease_expired,
       s.oldest_ready_age_ms * interval '1 millisecond' AS oldest_ready_age
FROM raquel_stats() s;

-- Jobs that went wrong: 'failed' (waiting for a retry), 'exhausted' (out of
-- retries) and 'expired' (not started within max_age), newest first, with
-- their last error. error_trace is left out: read it with
-- SELECT error_trace FROM raquel_jobs WHERE id = ...
CREATE VIEW raquel_problem_jobs AS
SELECT j.id, j.queue, j.status, j.attempts, j.max_retry_count, j.error,
       raquel_ts(j.finished_at) AS finished, raquel_ts(j.enqueued_at) AS enqueued,
       CASE WHEN j.status = 'failed' THEN raquel_ts(j.scheduled_at) END AS next_attempt,
       j.claimed_by AS last_worker
FROM raquel_jobs j
WHERE j.status IN ('failed', 'exhausted', 'expired')
ORDER BY j.finished_at DESC NULLS LAST, j.id;

-- Claimed jobs whose lease has run out: their worker stopped renewing (died,
-- hung, or lost its database connection). The next claim on their queue
-- rescues them (one failed attempt); until then they are stuck here.
CREATE VIEW raquel_expired_leases AS
SELECT j.id, j.queue, j.claimed_by, j.attempts,
       raquel_ts(j.claimed_at) AS claimed, raquel_ts(j.lease_expires_at) AS lease_expired,
       (raquel_now_ms() - j.lease_expires_at) * interval '1 millisecond' AS expired_for
FROM raquel_jobs j
WHERE j.status = 'claimed' AND j.lease_expires_at <= raquel_now_ms()
ORDER BY j.lease_expires_at, j.id;

-- Guarantees: puts one job that ended badly or was cancelled ('failed',
-- 'exhausted', 'expired', 'cancelled') back to 'queued', claimable at once:
-- scheduled_at = now, attempts kept (so max_retry_count still counts them:
-- an exhausted job gets one more attempt), enqueued_at reset to now (so a
-- max_age job does not expire again at once), error kept until the next
-- outcome, claim and finished_at cleared. Returns true, or false when the
-- job does not exist or is in another status (a queued, claimed or
-- successful job is never touched). Workers are woken by the update trigger.
CREATE FUNCTION raquel_retry(job_id uuid, now bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_retry.now, raquel_now_ms());
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    WHERE j.id = raquel_retry.job_id
      AND j.status IN ('failed', 'exhausted', 'expired', 'cancelled');
    RETURN FOUND;
END;
$$;

-- Guarantees: raquel_retry for every job matching all the given filters:
-- status in "statuses" (default: failed, exhausted, expired; only those and
-- 'cancelled' are allowed), of "queue" (NULL: every queue), finished at or
-- after "since" (NULL: any time). Returns how many jobs were retried. Rows
-- locked by a concurrent caller are skipped, never waited for.
-- From psql: SELECT raquel_retry_jobs(queue => 'emails', since => now() - interval '1 hour');
CREATE FUNCTION raquel_retry_jobs(
    queue    text        DEFAULT NULL,
    statuses text[]      DEFAULT NULL,
    since    timestamptz DEFAULT NULL,
    now      bigint      DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := coalesce(raquel_retry_jobs.now, raquel_now_ms());
    v_statuses text[] := coalesce(raquel_retry_jobs.statuses, ARRAY['failed', 'exhausted', 'expired']);
    v_since    bigint := floor(extract(epoch FROM raquel_retry_jobs.since) * 1000)::bigint;
    v_count    integer;
BEGIN
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['failed', 'exhausted', 'expired', 'cancelled'] THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'statuses',
            format('must be some of failed, exhausted, expired, cancelled, got %s', v_statuses));
    END IF;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = ANY (v_statuses)
          AND (raquel_retry_jobs.queue IS NULL OR j.queue = raquel_retry_jobs.queue)
          AND (v_since IS NULL OR j.finished_at >= v_since)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    FROM picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: deletes at most batch_size finished jobs ('success',
-- 'cancelled', 'expired', 'exhausted'; narrowed by "statuses") whose
-- finished_at is older than now - older_than, oldest first, and returns how
-- many. One batch per call, so each call is a short transaction holding few
-- locks: call it until it returns 0 (the CLI's purge does; from psql see
-- README "Operating with psql"). Waiting, running and failed jobs are never
-- deleted. Rows locked by a concurrent caller are skipped.
CREATE FUNCTION raquel_purge(
    older_than interval,
    statuses   text[]  DEFAULT NULL,
    batch_size integer DEFAULT 1000,
    now        bigint  DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := coalesce(raquel_purge.now, raquel_now_ms());
    v_statuses text[] := coalesce(raquel_purge.statuses, ARRAY['success', 'cancelled', 'expired', 'exhausted']);
    v_cutoff   bigint;
    v_count    integer;
BEGIN
    IF raquel_purge.older_than IS NULL OR raquel_purge.older_than < interval '0' THEN
        PERFORM raquel_invalid('raquel_purge', 'older_than',
            format('must be an interval >= 0, got %s', coalesce(raquel_purge.older_than::text, 'NULL')));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['success', 'cancelled', 'expired', 'exhausted'] THEN
        PERFORM raquel_invalid('raquel_purge', 'statuses',
            format('must be some of success, cancelled, expired, exhausted, got %s', v_statuses));
    END IF;
    IF raquel_purge.batch_size IS NULL OR raquel_purge.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_purge', 'batch_size',
            format('must be >= 1, got %s', raquel_purge.batch_size));
    END IF;
    v_cutoff := v_now - floor(extract(epoch FROM raquel_purge.older_than) * 1000)::bigint;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.status = ANY (v_statuses)
          AND j.finished_at < v_cutoff
        ORDER BY j.finished_at
        LIMIT raquel_purge.batch_size
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;
