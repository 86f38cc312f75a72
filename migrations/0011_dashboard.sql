-- 0011_dashboard: what the web dashboard and the metrics exporter read,
-- answering in milliseconds beside millions of finished jobs.
--
-- Why not raquel_stats(): it also counts every finished job, one pass over
-- the whole table (about 250 ms beside 1M finished jobs): too slow to refresh
-- a page every few seconds. These read only the partial indexes of waiting
-- and claimed jobs, and counts kept per closed minute. SECURITY DEFINER, not
-- executable by PUBLIC (raquel_pg/roles.sql grants them to the operator).

-- Guarantees: one row per queue that has waiting (queued or failed) or
-- claimed jobs, sorted by queue: "queued" and "failed" (waiting for a retry)
-- counts, "ready" (claimable now), "scheduled" (due later), "running"
-- (claimed), "lease_expired" (claimed, lease run out: the worker died or
-- hangs) and oldest_ready_age_ms (now - the oldest ready job's
-- scheduled_at; NULL when none is ready). The same numbers as raquel_stats()
-- without the finished jobs' counts. Reads only the partial indexes of
-- waiting and claimed jobs, whatever the history holds.
CREATE FUNCTION raquel_queue_overview(now bigint DEFAULT NULL)
RETURNS TABLE (
    queue               text,
    queued              bigint,
    failed              bigint,
    ready               bigint,
    scheduled           bigint,
    running             bigint,
    lease_expired       bigint,
    oldest_ready_age_ms bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_queue_overview.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_queue_overview', raquel_queue_overview.now) END;
BEGIN
    RETURN QUERY
    WITH waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.status = 'queued') AS queued,
               count(*) FILTER (WHERE j.status = 'failed') AS failed,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(j.scheduled_at) FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), claimed AS (
        SELECT j.queue, count(*) AS running,
               count(*) FILTER (WHERE j.lease_expires_at <= v_now) AS lease_expired
        FROM raquel_jobs j
        -- lease_expires_at IS NOT NULL: reads raquel_jobs_lease_idx (0003_tables), which holds claimed jobs.
        WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed' GROUP BY j.queue
    )
    SELECT coalesce(w.queue, c.queue)::text, coalesce(w.queued, 0), coalesce(w.failed, 0),
           coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(c.running, 0),
           coalesce(c.lease_expired, 0), w.oldest_ready_age_ms
    FROM waiting w FULL JOIN claimed c ON c.queue = w.queue
    ORDER BY 1;
END;
$$;
COMMENT ON FUNCTION raquel_queue_overview(bigint) IS
    'Per queue with waiting or claimed jobs: queued, failed, ready, scheduled, running, lease_expired, '
    'oldest_ready_age_ms, read from the partial indexes only. "now" only from roles that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_queue_overview(bigint) FROM PUBLIC;

-- Guarantees: one row per minute, queue and final status with jobs that
-- finished (finished_at) in [since, now), since rounded down to its minute:
-- minute (its start, ms since the epoch), queue, status (success,
-- cancelled, expired, exhausted) and jobs (> 0). since must lie within the
-- last two days (22023 naming it otherwise). Concurrent callers keep each
-- minute once (the state row is locked while they are counted).
-- Why so: a minute that has closed (ended more than a minute ago) is counted
-- once from raquel_jobs and kept in raquel_throughput_minutes; later calls
-- read the kept counts and count only the minutes since. So a day's chart
-- reads about 1,440 rows per queue and status instead of every job that
-- finished that day. The kept counts record jobs as they finished: a later
-- retry or purge of those jobs does not change them. Minutes older than two
-- days are forgotten.
CREATE FUNCTION raquel_throughput(since bigint, now bigint DEFAULT NULL)
RETURNS TABLE (minute bigint, queue text, status text, jobs bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_throughput.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_throughput', raquel_throughput.now) END;
    v_since  bigint := raquel_throughput.since - raquel_throughput.since % 60000;
    -- Minutes that ended a minute ago or more: no outcome is still on its way into them.
    v_closed bigint := v_now - v_now % 60000 - 60000;
    v_horizon bigint := v_closed - 2 * 86400000;
    v_kept   bigint;
BEGIN
    IF raquel_throughput.since IS NULL OR raquel_throughput.since < v_now - 2 * 86400000
       OR raquel_throughput.since > v_now THEN
        PERFORM raquel_invalid('raquel_throughput', 'since',
            format('must lie within the last two days (ms since the epoch), got %s',
                   coalesce(raquel_throughput.since::text, 'NULL')));
    END IF;
    SELECT s.kept_until INTO v_kept FROM raquel_throughput_state s;
    IF v_kept < v_closed THEN
        SELECT s.kept_until INTO v_kept FROM raquel_throughput_state s FOR UPDATE;
        IF v_kept < v_closed THEN
            v_kept := greatest(v_kept, v_horizon);
            INSERT INTO raquel_throughput_minutes (minute, queue, status, jobs)
            SELECT j.finished_at - j.finished_at % 60000, j.queue, j.status, count(*)
            FROM raquel_jobs j
            WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
              AND j.finished_at >= v_kept AND j.finished_at < v_closed
            GROUP BY 1, 2, 3
            ON CONFLICT ON CONSTRAINT raquel_throughput_minutes_pkey DO NOTHING;
            DELETE FROM raquel_throughput_minutes m WHERE m.minute < v_horizon;
            UPDATE raquel_throughput_state SET kept_until = v_closed;
            v_kept := v_closed;
        END IF;
    END IF;
    RETURN QUERY
    SELECT m.minute, m.queue::text, m.status::text, m.jobs
    FROM raquel_throughput_minutes m
    WHERE m.minute >= v_since AND m.minute < v_kept
    UNION ALL
    SELECT j.finished_at - j.finished_at % 60000, j.queue::text, j.status::text, count(*)
    FROM raquel_jobs j
    WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
      AND j.finished_at >= greatest(v_kept, v_since) AND j.finished_at < v_now
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
END;
$$;
COMMENT ON FUNCTION raquel_throughput(bigint, bigint) IS
    'Jobs finished per minute, queue and final status since "since" (within two days); closed minutes '
    'are counted once and kept. "now" only from roles that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_throughput(bigint, bigint) FROM PUBLIC;
