-- 0003_priority: an integer priority per job. Higher runs first; the default
-- is 0 and negative values are allowed (background work below the default).
-- The claim takes the highest-priority ready job, and within one priority the
-- oldest scheduled_at first (FIFO).

-- A constant default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE raquel_jobs ADD COLUMN priority integer NOT NULL DEFAULT 0;

COMMENT ON COLUMN raquel_jobs.priority IS
    'Higher runs first (default 0); FIFO by scheduled_at within one priority. Change with raquel_set_priority().';

-- The claim indexes follow the claim's order (priority DESC, scheduled_at), so
-- a claim reads the first ready entries of the index and stops. They replace
-- 0001's (queue, scheduled_at) and (scheduled_at) indexes.
DROP INDEX raquel_jobs_ready_queue_idx;
DROP INDEX raquel_jobs_ready_idx;
CREATE INDEX raquel_jobs_ready_queue_priority_idx ON raquel_jobs (queue, priority DESC, scheduled_at)
    WHERE status IN ('queued', 'failed');
CREATE INDEX raquel_jobs_ready_priority_idx ON raquel_jobs (priority DESC, scheduled_at)
    WHERE status IN ('queued', 'failed');

-- raquel_enqueue gains "priority" (NULL: 0). Every earlier parameter keeps its
-- name, position and default, so existing calls work unchanged.
-- From psql: SELECT raquel_enqueue('reports', 'monthly', priority => 10);
DROP FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint);

-- Guarantees: inserts one queued job and returns its id, or raises
-- invalid_parameter_value naming the bad argument and writes nothing.
-- NULL for any option means its default. The job is scheduled at
-- coalesce(at, now) + coalesce(delay, 0) (raquel: the delay is added to "at").
-- From psql: SELECT raquel_enqueue('emails', '{"to": "a@b.c"}');
--            SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000);
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
    priority        integer DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now       bigint := coalesce(raquel_enqueue.now, raquel_now_ms());
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
    IF raquel_enqueue.delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue.delay));
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
    IF v_max_delay < v_min_delay THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
            format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
    END IF;
    IF raquel_enqueue.backoff_base < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
            format('must be >= 0 ms, got %s', raquel_enqueue.backoff_base));
    END IF;

    INSERT INTO raquel_jobs AS j (
        queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
        backoff_base, enqueued_at, scheduled_at, priority)
    VALUES (
        raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
        raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
        coalesce(raquel_enqueue.backoff_base, 1000), v_now,
        coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0),
        coalesce(raquel_enqueue.priority, 0))
    RETURNING j.id INTO v_id;
    RETURN v_id;
END;
$$;

-- Guarantees: claims up to "batch" ready jobs of the given queues (NULL: all
-- queues) and returns them; each returned job is 'claimed' by this call alone
-- (FOR UPDATE SKIP LOCKED: concurrent claimers never get the same job and
-- never wait for each other), with a lease of "lease" ms and a fresh claim_id.
-- Ready means: status queued or failed, scheduled_at <= now, not past max_age.
-- Before claiming, it expires jobs past max_age and rescues jobs whose lease
-- ran out, in the same queues, so no sweeper process is needed.
-- Order: highest priority first, then oldest scheduled_at first.
--
-- How: priority level by level, highest first. One index probe finds the
-- highest priority among waiting jobs; a range scan of that level
-- (priority = level AND scheduled_at <= now, in scheduled_at order) claims
-- from it and stops at its first not-yet-due job; the next lower level is
-- probed only while the batch is not full. A single scan ordered by
-- (priority DESC, scheduled_at) would instead step over every not-yet-due job
-- of the levels above the first ready one (before PostgreSQL 18's skip scan),
-- that is over all of them when nothing is ready: the idle worker's claim.
-- One set of static statements per queue-filter shape, so that each keeps its
-- own prepared plan on the index that matches it:
-- raquel_jobs_ready_priority_idx for all queues,
-- raquel_jobs_ready_queue_priority_idx for one queue, and for several queues
-- whichever of the two the data favours.
CREATE OR REPLACE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   bigint := coalesce(raquel_claim.now, raquel_now_ms());
    v_left  integer := raquel_claim.batch;
    v_level integer;
    v_count integer;
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch < 1 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch', format('must be >= 1, got %s', raquel_claim.batch));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease', format('must be > 0 ms, got %s', raquel_claim.lease));
    END IF;

    PERFORM raquel_expire(raquel_claim.queues, v_now);
    PERFORM raquel_rescue(raquel_claim.queues, v_now);

    IF raquel_claim.queues IS NULL THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                          AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSE
        -- One probe per queue: the highest level among them.
        v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                    CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                        WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                        ORDER BY j.priority DESC LIMIT 1) AS top);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            EXIT WHEN v_left = 0;
            v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                        CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                              AND j.priority < v_level
                                            ORDER BY j.priority DESC LIMIT 1) AS top);
        END LOOP;
    END IF;
END;
$$;

-- Guarantees: as in 0001, the earliest time (ms) at which a job of these
-- queues (NULL: all) becomes claimable, or NULL when there is none.
-- The ready indexes are now ordered by priority first, so the earliest
-- scheduled_at is found per priority: a loose index scan (a recursive CTE
-- that jumps from one distinct priority to the next) reads one index entry
-- per distinct priority instead of every waiting job. PL/pgSQL with one
-- static statement per queue-filter shape, as in raquel_claim, each kept as
-- a generic cached plan: planning this statement costs more than running it
-- (a SQL function, or custom plans, would plan it again at every call).
CREATE OR REPLACE FUNCTION raquel_next_due(queues text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF raquel_next_due.queues IS NULL THEN
        RETURN (
            WITH RECURSIVE levels(priority) AS (
                SELECT (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed')
                        ORDER BY j.priority DESC LIMIT 1)
                UNION ALL
                SELECT (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < l.priority
                        ORDER BY j.priority DESC LIMIT 1)
                FROM levels l WHERE l.priority IS NOT NULL
            )
            SELECT min(t) FROM (
                SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority = l.priority
                        ORDER BY j.scheduled_at LIMIT 1) AS t
                FROM levels l WHERE l.priority IS NOT NULL
                UNION ALL
                SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'
            ) AS due);
    END IF;
    RETURN (
        WITH RECURSIVE levels(queue, priority) AS (
            SELECT q.name, (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                            ORDER BY j.priority DESC LIMIT 1)
            FROM unnest(raquel_next_due.queues) AS q(name)
            UNION ALL
            SELECT l.queue, (SELECT j.priority FROM raquel_jobs j
                             WHERE j.queue = l.queue AND j.status IN ('queued', 'failed')
                               AND j.priority < l.priority
                             ORDER BY j.priority DESC LIMIT 1)
            FROM levels l WHERE l.priority IS NOT NULL
        )
        SELECT min(t) FROM (
            SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                    WHERE j.queue = l.queue AND j.status IN ('queued', 'failed') AND j.priority = l.priority
                    ORDER BY j.scheduled_at LIMIT 1) AS t
            FROM levels l WHERE l.priority IS NOT NULL
            UNION ALL
            SELECT min(j.lease_expires_at) FROM raquel_jobs j
            WHERE j.status = 'claimed' AND j.queue = ANY (raquel_next_due.queues)
        ) AS due);
END;
$$;

-- Guarantees: sets the priority of an unfinished job (queued, failed or
-- claimed; for a claimed job it matters if the job is retried) and returns
-- true; returns false, changing nothing, when the job does not exist or is
-- finished. From psql: SELECT raquel_set_priority('<job id>', 10);
CREATE FUNCTION raquel_set_priority(job_id uuid, priority integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
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
