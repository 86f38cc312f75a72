-- 0009_operations: what an on-call engineer needs from psql.
--
-- Guarantees. Read-only views (queue stats, problem jobs, expired leases) and
-- the operator's functions (stats, retry, purge, priority). Cancelling a job
-- is raquel_cancel(job_id) (0007_outcomes). Operator-facing arguments that
-- people type take PostgreSQL types (timestamptz for "since", interval for
-- "older than"); "now" stays in ms since the epoch, like every clock
-- argument, so tests can fix time. Views show times as timestamptz and ages
-- as intervals, for people; the functions return ms, for programs. The
-- functions are SECURITY DEFINER and not executable by PUBLIC; the views
-- have no privilege for PUBLIC (raquel_pg/roles.sql grants both to the
-- operator; raquel_queue_stats calls raquel_stats, so its reader needs
-- EXECUTE on it).

-- Guarantees: one row per queue that has jobs, sorted by queue: the count of
-- each status; "ready", the waiting (queued or failed) jobs whose
-- scheduled_at has come, i.e. claimable now; "scheduled", waiting jobs due
-- later; "lease_expired", claimed jobs whose lease has run out (their worker
-- died or hangs; the next claim on the queue rescues them); and
-- oldest_ready_age_ms, how long the oldest ready job has been claimable
-- (now - its scheduled_at; NULL when none is ready). A queue whose ready age
-- keeps growing has no worker keeping up. Reads only; never fails on the
-- times rows hold (a scheduled_at before the time range counts as its start).
-- The status counts take one pass over the table grouped by (queue, status);
-- the rest reads only the partial indexes of waiting and claimed jobs.
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
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_stats.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_stats', raquel_stats.now) END;
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
               v_now - min(greatest(j.scheduled_at, -62135510400000))
                       FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), lost AS (
        SELECT j.queue, count(*) AS lease_expired FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now GROUP BY j.queue
    )
    SELECT c.queue::text, c.total, c.queued, c.claimed, c.success, c.failed, c.cancelled, c.expired,
           c.exhausted, coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(l.lease_expired, 0),
           w.oldest_ready_age_ms
    FROM counts c
    LEFT JOIN waiting w ON w.queue = c.queue
    LEFT JOIN lost l ON l.queue = c.queue
    ORDER BY c.queue;
END;
$$;
COMMENT ON FUNCTION raquel_stats(bigint) IS
    'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold.';
REVOKE EXECUTE ON FUNCTION raquel_stats(bigint) FROM PUBLIC;

-- raquel_stats() for psql, with the oldest ready age as an interval, and each
-- queue's controls (paused, max_running, per_second; see below).
CREATE VIEW raquel_queue_stats AS
SELECT s.queue, s.total, s.queued, s.claimed, s.success, s.failed, s.cancelled, s.expired,
       s.exhausted, s.ready, s.scheduled, s.lease_expired,
       s.oldest_ready_age_ms * interval '1 millisecond' AS oldest_ready_age,
       coalesce(c.paused, false) AS paused, c.max_running, c.per_second
FROM raquel_stats() s
LEFT JOIN raquel_queue_settings c ON c.queue = s.queue;
COMMENT ON VIEW raquel_queue_stats IS
    'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired (claimed, lease run out: a dead or hung worker), oldest_ready_age (interval, NULL when nothing is ready), and its controls: paused, max_running, per_second (NULL: no limit). The same numbers as raquel_stats().';

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
COMMENT ON VIEW raquel_problem_jobs IS
    'Failed, exhausted and expired jobs with their last error and attempts, newest first; finished as timestamptz.';

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
COMMENT ON VIEW raquel_expired_leases IS
    'Claimed jobs whose lease ran out: their worker died or hangs. The next claim on their queue rescues them (one failed attempt).';

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
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_retry.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_retry', raquel_retry.now) END;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    WHERE j.id = raquel_retry.job_id
      AND j.status IN ('failed', 'exhausted', 'expired', 'cancelled');
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION raquel_retry(uuid, bigint) IS
    'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_retry(uuid, bigint) FROM PUBLIC;

-- Guarantees: raquel_retry for every job matching all the given filters:
-- status in "statuses" (default: failed, exhausted, expired; only those and
-- 'cancelled' are allowed), of "queue" (NULL: every queue), finished at or
-- after "since" (NULL: any time; 'infinity' and '-infinity' are refused
-- naming since). Returns how many jobs were retried. Rows locked by a
-- concurrent caller are skipped, never waited for.
-- From psql: SELECT raquel_retry_jobs(queue => 'emails', since => now() - interval '1 hour');
CREATE FUNCTION raquel_retry_jobs(
    queue    text        DEFAULT NULL,
    statuses text[]      DEFAULT NULL,
    since    timestamptz DEFAULT NULL,
    now      bigint      DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_retry_jobs.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_retry_jobs', raquel_retry_jobs.now) END;
    v_statuses text[] := coalesce(raquel_retry_jobs.statuses, ARRAY['failed', 'exhausted', 'expired']);
    v_since    bigint;
    v_count    integer;
BEGIN
    IF NOT isfinite(raquel_retry_jobs.since) THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'since',
            format('must be a finite time, got %s', raquel_retry_jobs.since));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['failed', 'exhausted', 'expired', 'cancelled'] THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'statuses',
            format('must be some of failed, exhausted, expired, cancelled, got %s', v_statuses));
    END IF;
    v_since := floor(extract(epoch FROM raquel_retry_jobs.since) * 1000)::bigint;
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
COMMENT ON FUNCTION raquel_retry_jobs(text, text[], timestamp with time zone, bigint) IS
    'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since).';
REVOKE EXECUTE ON FUNCTION raquel_retry_jobs(text, text[], timestamp with time zone, bigint) FROM PUBLIC;

-- Guarantees: deletes at most batch_size finished jobs ('success',
-- 'cancelled', 'expired', 'exhausted'; narrowed by "statuses") whose
-- finished_at is older than now - older_than, oldest first, and returns how
-- many. older_than must be finite (an infinite interval, PostgreSQL 17+, is
-- refused naming it); a cutoff before the time range's start is its start.
-- One batch per call, so each call is a short transaction holding few locks:
-- call it until it returns 0 (the CLI's purge does). Waiting, running and
-- failed jobs are never deleted. Rows locked by a concurrent caller are
-- skipped.
CREATE FUNCTION raquel_purge(
    older_than interval,
    statuses   text[]  DEFAULT NULL,
    batch_size integer DEFAULT 1000,
    now        bigint  DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_purge.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_purge', raquel_purge.now) END;
    v_statuses text[] := coalesce(raquel_purge.statuses, ARRAY['success', 'cancelled', 'expired', 'exhausted']);
    v_cutoff   bigint;
    v_count    integer;
BEGIN
    IF raquel_purge.older_than IS NULL OR raquel_purge.older_than < interval '0'
       OR NOT isfinite(raquel_purge.older_than) THEN
        PERFORM raquel_invalid('raquel_purge', 'older_than',
            format('must be a finite interval >= 0, got %s', coalesce(raquel_purge.older_than::text, 'NULL')));
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
    v_cutoff := greatest(v_now - floor(extract(epoch FROM raquel_purge.older_than) * 1000),
                         -62135510400000)::bigint;
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
COMMENT ON FUNCTION raquel_purge(interval, text[], integer, bigint) IS
    'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it).';
REVOKE EXECUTE ON FUNCTION raquel_purge(interval, text[], integer, bigint) FROM PUBLIC;

-- Guarantees: sets the priority of an unfinished job (queued, failed or
-- claimed; for a claimed job it matters if the job is retried) and returns
-- true; returns false, changing nothing, when the job does not exist or is
-- finished. From psql: SELECT raquel_set_priority('<job id>', 10);
CREATE FUNCTION raquel_set_priority(job_id uuid, priority integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF raquel_set_priority.priority IS NULL THEN
        PERFORM raquel_invalid('raquel_set_priority', 'priority', 'must be an integer, got NULL');
    END IF;
    UPDATE raquel_jobs j SET priority = raquel_set_priority.priority
    WHERE j.id = raquel_set_priority.job_id AND j.status IN ('queued', 'failed', 'claimed');
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION raquel_set_priority(uuid, integer) IS
    'Sets the priority of an unfinished (queued, failed or claimed) job and returns true; false, changing nothing, when the job is missing or finished. Higher runs first.';
REVOKE EXECUTE ON FUNCTION raquel_set_priority(uuid, integer) FROM PUBLIC;

-- Queue controls. Operators steer whole queues, across every worker on every
-- host, from the engine: pause and resume, a global limit on the jobs of a
-- queue running at once (max_running), a limit on how fast its claims start
-- (per_second), and how long finished jobs are kept (retention). Enforced
-- inside raquel_claim (0006_claim) and raquel_next_due, so they hold whatever
-- client claims. The state lives in raquel_queue_settings and
-- raquel_retention_default (0003_tables).
-- - Pause and resume: a paused queue accepts enqueues; claims that begin
--   after the pause committed skip it; running jobs finish as usual. A resume
--   NOTIFYs the idle workers waiting for the queue (raquel_notify_ready, the
--   enqueue triggers' channel).
-- - Limits (NULL: none): max_running caps the queue's claimed jobs (status
--   'claimed', whatever worker or host holds them). per_second is a token
--   bucket: it refills at per_second tokens a second up to greatest(1,
--   per_second / 10) tokens, and each claimed job takes one, so over any
--   second at most per_second plus one bucket of claims start.
-- - Retention: finished jobs (success, cancelled, expired, exhausted) older
--   than their queue's retention (else the default; NULL keeps them, the
--   default) are deleted in batches by raquel_prune, one sweep at a time
--   across all sessions (a transaction advisory lock).

-- Guarantees: raises 22023 naming "queue" (for function fn) unless queue is
-- a queue name (non-empty, at most 1000 bytes); otherwise does nothing.
CREATE FUNCTION raquel_check_queue(fn text, queue text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF raquel_check_queue.queue IS NULL OR raquel_check_queue.queue = ''
       OR octet_length(raquel_check_queue.queue) > 1000 THEN
        PERFORM raquel_invalid(raquel_check_queue.fn, 'queue',
            format('must be a queue name (non-empty, at most 1000 bytes), got %s',
                   coalesce(quote_literal(left(raquel_check_queue.queue, 40)), 'NULL')));
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_check_queue(text, text) IS
    'Internal: 22023 naming "queue" (and the calling function fn) unless queue is a queue name (non-empty, at most 1000 bytes).';
REVOKE EXECUTE ON FUNCTION raquel_check_queue(text, text) FROM PUBLIC;

-- Guarantees: the queue is paused from this transaction's commit on (claims
-- that begin after it skip the queue; enqueues and running jobs go on);
-- returns true when this call paused it, false when it was paused already.
CREATE FUNCTION raquel_pause_queue(queue text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_was boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_pause_queue', raquel_pause_queue.queue);
    SELECT s.paused INTO v_was FROM raquel_queue_settings s
    WHERE s.queue = raquel_pause_queue.queue FOR UPDATE;
    INSERT INTO raquel_queue_settings AS s (queue, paused) VALUES (raquel_pause_queue.queue, true)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET paused = true;
    RETURN NOT coalesce(v_was, false);
END;
$$;
COMMENT ON FUNCTION raquel_pause_queue(text) IS
    'Pauses a queue: claims that begin after this commits skip it; it still accepts enqueues and its running jobs finish as usual. True when this call paused it, false when it was paused already. 22023 naming queue for a NULL, empty or over-long name.';
REVOKE EXECUTE ON FUNCTION raquel_pause_queue(text) FROM PUBLIC;

-- Guarantees: the queue is no longer paused; returns true when it was, and
-- then NOTIFYs (at commit) the idle workers registered for the queue, as an
-- enqueue does; false, nothing written, when it was not paused.
CREATE FUNCTION raquel_resume_queue(queue text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_resume_queue', raquel_resume_queue.queue);
    UPDATE raquel_queue_settings s SET paused = false
    WHERE s.queue = raquel_resume_queue.queue AND s.paused
    RETURNING true INTO v_found;
    IF v_found THEN
        PERFORM raquel_notify_ready(ARRAY[raquel_resume_queue.queue]);
    END IF;
    RETURN coalesce(v_found, false);
END;
$$;
COMMENT ON FUNCTION raquel_resume_queue(text) IS
    'Resumes a paused queue: claims take its jobs again, and the idle workers waiting for it are notified at commit (NOTIFY raquel_jobs). True when it was paused, false (nothing written) otherwise. 22023 naming queue for a bad name.';
REVOKE EXECUTE ON FUNCTION raquel_resume_queue(text) FROM PUBLIC;

-- Guarantees: the queue's limits become exactly the ones given (NULL: no
-- such limit): max_running >= 1 caps its claimed jobs across every worker,
-- per_second > 0 (finite) caps how fast its claims start (the token bucket
-- above; it starts full). Bad values raise 22023 naming the argument and
-- write nothing. Idle workers waiting for the queue are notified at commit (a
-- limit may have been raised).
CREATE FUNCTION raquel_set_queue_limits(
    queue       text,
    max_running integer          DEFAULT NULL,
    per_second  double precision DEFAULT NULL,
    now         bigint           DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_set_queue_limits.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_set_queue_limits', raquel_set_queue_limits.now) END;
BEGIN
    PERFORM raquel_check_queue('raquel_set_queue_limits', raquel_set_queue_limits.queue);
    IF raquel_set_queue_limits.max_running < 1 THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'max_running',
            format('must be >= 1 or NULL (no limit), got %s', raquel_set_queue_limits.max_running));
    END IF;
    IF NOT (raquel_set_queue_limits.per_second > 0 AND raquel_set_queue_limits.per_second < 'Infinity') THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'per_second',
            format('must be a finite number > 0 or NULL (no limit), got %s', raquel_set_queue_limits.per_second));
    END IF;
    INSERT INTO raquel_queue_settings AS s (queue, max_running, per_second, tokens, tokens_at)
    VALUES (raquel_set_queue_limits.queue, raquel_set_queue_limits.max_running,
            raquel_set_queue_limits.per_second,
            greatest(1, coalesce(raquel_set_queue_limits.per_second, 0) / 10), v_now)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET
        max_running = excluded.max_running,
        per_second = excluded.per_second,
        -- A new rate starts with a full bucket; the same rate keeps its tokens.
        tokens = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens
                      ELSE excluded.tokens END,
        tokens_at = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens_at
                         ELSE excluded.tokens_at END;
    PERFORM raquel_notify_ready(ARRAY[raquel_set_queue_limits.queue]);
END;
$$;
COMMENT ON FUNCTION raquel_set_queue_limits(text, integer, double precision, bigint) IS
    'Sets a queue''s limits to exactly these (NULL: none): max_running (>= 1) caps its claimed jobs at once across all workers and hosts; per_second (> 0) caps how fast its claims start (token bucket of greatest(1, per_second/10) tokens: over any second at most per_second plus one bucket). Enforced by raquel_claim. 22023 naming the argument for a bad value, nothing written. "now" only from roles that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_set_queue_limits(text, integer, double precision, bigint) FROM PUBLIC;

-- Guarantees: finished jobs of the queue (NULL: of every queue without a
-- retention of its own) are kept for "keep" after they finished, then
-- raquel_prune may delete them; keep NULL keeps them forever. A negative or
-- infinite keep raises 22023 naming it and writes nothing.
CREATE FUNCTION raquel_set_retention(queue text, keep interval)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ms bigint;
BEGIN
    IF raquel_set_retention.queue IS NOT NULL THEN
        PERFORM raquel_check_queue('raquel_set_retention', raquel_set_retention.queue);
    END IF;
    IF raquel_set_retention.keep < interval '0' OR NOT isfinite(raquel_set_retention.keep) THEN
        PERFORM raquel_invalid('raquel_set_retention', 'keep',
            format('must be a finite interval >= 0 or NULL (keep forever), got %s', raquel_set_retention.keep));
    END IF;
    v_ms := floor(extract(epoch FROM raquel_set_retention.keep) * 1000)::bigint;
    IF raquel_set_retention.queue IS NULL THEN
        UPDATE raquel_retention_default SET retention_ms = v_ms;
    ELSE
        INSERT INTO raquel_queue_settings AS s (queue, retention_ms) VALUES (raquel_set_retention.queue, v_ms)
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET retention_ms = excluded.retention_ms;
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_set_retention(text, interval) IS
    'Keeps the finished jobs (success, cancelled, expired, exhausted) of queue (NULL: of every queue without its own setting) for keep after they finished; older ones are deleted by raquel_prune (and the workers'' maintenance). keep NULL keeps them forever (the default). 22023 naming keep for a negative or infinite interval, naming queue for a bad name.';
REVOKE EXECUTE ON FUNCTION raquel_set_retention(text, interval) FROM PUBLIC;

-- Guarantees: deletes at most batch_size finished jobs (success, cancelled,
-- expired, exhausted) that finished longer ago than their queue's retention
-- (else the default), oldest first, and returns how many; adds them to their
-- queue's "pruned" count in raquel_queue_settings. Returns 0 when no
-- retention is set, NULL (nothing done) while another transaction is
-- pruning: one sweep at a time (pg_try_advisory_xact_lock, released at
-- commit). Rows other transactions have locked are skipped.
CREATE FUNCTION raquel_prune(batch_size integer DEFAULT 1000, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now     bigint := CASE WHEN raquel_prune.now IS NULL THEN raquel_now_ms()
                             ELSE raquel_clock('raquel_prune', raquel_prune.now) END;
    v_default bigint := (SELECT d.retention_ms FROM raquel_retention_default d);
    v_least   bigint;
    v_count   bigint;
BEGIN
    IF raquel_prune.batch_size IS NULL OR raquel_prune.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_prune', 'batch_size',
            format('must be >= 1, got %s', coalesce(raquel_prune.batch_size::text, 'NULL')));
    END IF;
    -- The shortest retention in force: no job finished after now - v_least
    -- is old enough, so the scan of raquel_jobs_finished_idx stops there.
    v_least := least(v_default, (SELECT min(s.retention_ms) FROM raquel_queue_settings s));
    IF v_least IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT pg_try_advisory_xact_lock(7021557117354893313) THEN  -- the raquel prune lock
        RETURN NULL;
    END IF;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        LEFT JOIN raquel_queue_settings s ON s.queue = j.queue
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.finished_at < v_now - v_least
          AND j.finished_at < v_now - coalesce(s.retention_ms, v_default)
        ORDER BY j.finished_at
        LIMIT raquel_prune.batch_size
        FOR UPDATE OF j SKIP LOCKED
    ), gone AS (
        DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id RETURNING j.queue
    ), counted AS (
        SELECT g.queue, count(*) AS n FROM gone g GROUP BY g.queue
    ), noted AS (
        INSERT INTO raquel_queue_settings AS s (queue, pruned)
        SELECT c.queue, c.n FROM counted c ORDER BY c.queue
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET pruned = s.pruned + excluded.pruned
        RETURNING 1
    )
    SELECT coalesce(sum(c.n), 0) INTO v_count FROM counted c;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION raquel_prune(integer, bigint) IS
    'Deletes at most batch_size finished jobs older than their queue''s retention (raquel_set_retention; else the default), oldest first; returns how many and adds them to the queue''s pruned count. 0 when no retention is set; NULL, nothing done, while another transaction prunes (one sweep at a time). 22023 naming batch_size when it is below 1. "now" only from roles that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_prune(integer, bigint) FROM PUBLIC;

-- Guarantees: one row per queue with a setting (paused, limits, retention
-- or a pruned count), sorted by queue, then, when a default retention is
-- set, one row with queue NULL carrying it. Reads nothing else.
CREATE FUNCTION raquel_queue_controls()
RETURNS TABLE (
    queue        text,
    paused       boolean,
    max_running  integer,
    per_second   double precision,
    retention_ms bigint,
    pruned       bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT * FROM (
        SELECT s.queue::text, s.paused, s.max_running, s.per_second, s.retention_ms, s.pruned
        FROM raquel_queue_settings s
        UNION ALL
        SELECT NULL, false, NULL, NULL, d.retention_ms, NULL
        FROM raquel_retention_default d WHERE d.retention_ms IS NOT NULL
    ) AS c
    ORDER BY c.queue NULLS LAST
$$;
COMMENT ON FUNCTION raquel_queue_controls() IS
    'Per queue with a setting: paused, max_running, per_second, retention_ms (NULL: the default), pruned (finished jobs raquel_prune deleted), by queue; then, when a default retention is set, a row with queue NULL carrying it. Read-only.';
REVOKE EXECUTE ON FUNCTION raquel_queue_controls() FROM PUBLIC;
