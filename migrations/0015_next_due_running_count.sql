-- 0015_next_due_running_count: raquel_next_due counts a limited queue's
-- running jobs over the lease index.
--
-- Guarantees: 0006_claim's raquel_next_due, unchanged. Only the plan of one
-- statement changes.
--
-- Measured reason (PostgreSQL 15; issue 23). For a queue with max_running,
-- the count of its claimed jobs had no index to use: status 'claimed' is in
-- no partial index's predicate, so it read the whole table, finished jobs
-- included, at every call (a worker calls raquel_next_due whenever a claim
-- comes back short, as a throttled queue's claims do). Naming the lease
-- (lease_expires_at IS NOT NULL, which every claimed job has:
-- raquel_jobs_claim_check) lets the planner read raquel_jobs_lease_idx, as
-- raquel_claim's same count does since 0013_claim_generic_plans. A call for
-- a queue with max_running beside 200,000 finished jobs: 37.7 ms -> 0.72 ms
-- (4 alternating rounds of 50 calls; raquel_claim's count: 42 -> 0.70 ms).

CREATE OR REPLACE FUNCTION raquel_next_due(queues text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_queues text[] := raquel_next_due.queues;
    v_held   text[];
    v_skip   text[] := '{}';
    v_due    bigint;
    v_ctl    record;
    v_at     bigint;
    v_level  integer;  -- issue 23, many queues: a long list
    v_listed boolean;
    v_seen   bigint;
BEGIN
    -- Queue controls: the paused and limited queues asked for are
    -- taken out of the general reading below and given their own time here.
    v_held := ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                    WHERE (s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL)
                      AND (v_queues IS NULL OR s.queue = ANY (v_queues)));
    IF cardinality(v_held) > 0 THEN
        IF v_queues IS NULL THEN
            v_skip := v_held;
        ELSE
            v_queues := ARRAY(SELECT q.name FROM unnest(v_queues) AS q(name) WHERE q.name <> ALL (v_held));
        END IF;
        FOR v_ctl IN
            SELECT s.queue::text AS queue, s.max_running, s.per_second, s.tokens, s.tokens_at
            FROM raquel_queue_settings s WHERE s.queue = ANY (v_held) AND NOT s.paused
        LOOP
            IF v_ctl.max_running IS NOT NULL AND v_ctl.max_running <= (
                   SELECT count(*) FROM raquel_jobs j
                   WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed' AND j.queue = v_ctl.queue) THEN
                -- Full: not before a slot frees (a lease running out, at the latest).
                v_at := (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                         WHERE j.status = 'claimed' AND j.queue = v_ctl.queue);
            ELSE
                -- Its earliest waiting job, one index probe per priority level.
                v_at := (
                    WITH RECURSIVE levels(priority) AS (
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                ORDER BY j.priority DESC LIMIT 1)
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                  AND j.priority < l.priority
                                ORDER BY j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    )
                    SELECT min((SELECT j.scheduled_at FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                  AND j.priority = l.priority
                                ORDER BY j.scheduled_at LIMIT 1))
                    FROM levels l WHERE l.priority IS NOT NULL);
                IF v_at IS NOT NULL AND v_ctl.per_second IS NOT NULL AND v_ctl.tokens < 1 THEN
                    -- Not before its bucket holds a whole token again.
                    v_at := greatest(v_at, v_ctl.tokens_at
                                           + ceil((1 - v_ctl.tokens) * 1000 / v_ctl.per_second)::bigint);
                END IF;
            END IF;
            v_due := least(v_due, v_at);
        END LOOP;
    END IF;

    IF v_queues IS NULL THEN
        RETURN least(v_due, (
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
                          AND j.queue <> ALL (v_skip)
                        ORDER BY j.scheduled_at LIMIT 1) AS t
                FROM levels l WHERE l.priority IS NOT NULL
                UNION ALL
                SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'
                  AND j.queue <> ALL (v_skip)
            ) AS due));
    END IF;
    IF cardinality(v_queues) > 16 THEN
        -- A long list (issue 23, many queues): the lease deadlines of its claimed
        -- jobs (raquel_jobs_lease_idx in deadline order, a hashed membership
        -- test: the IS TRUE keeps it a filter, so min() still reads the
        -- index from its start), then level by level over the all-queues
        -- index: the first job of a listed queue in scheduled_at order among
        -- the level's first 256, else one probe per listed queue.
        v_due := least(v_due, (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                               WHERE j.status = 'claimed'
                                 AND (j.queue IN (SELECT unnest(v_queues))) IS TRUE));
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            SELECT w.scheduled_at, w.listed, w.n INTO v_at, v_listed, v_seen
            FROM (SELECT j.scheduled_at, j.queue IN (SELECT unnest(v_queues)) AS listed,
                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                  FROM raquel_jobs j
                  WHERE j.priority = v_level AND j.status IN ('queued', 'failed')
                  ORDER BY j.scheduled_at
                  LIMIT 256) AS w
            WHERE w.listed OR w.n = 256
            LIMIT 1;
            IF FOUND AND NOT v_listed THEN
                -- 256 jobs of other queues first: the listed queues one by
                -- one (a range over raquel_jobs_ready_queue_priority_idx in
                -- its own order, as raquel_claim_listed probes them).
                v_at := (SELECT min(h.scheduled_at) FROM unnest(v_queues) AS q(name)
                         CROSS JOIN LATERAL (SELECT j.scheduled_at FROM raquel_jobs j
                                             WHERE j.queue >= q.name AND j.queue <= q.name
                                               AND j.priority = v_level AND j.status IN ('queued', 'failed')
                                             ORDER BY j.queue, j.scheduled_at LIMIT 1) AS h);
            ELSIF NOT FOUND THEN
                v_at := NULL;
            END IF;
            v_due := least(v_due, v_at);
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
        RETURN v_due;
    END IF;
    RETURN least(v_due, (
        WITH RECURSIVE levels(queue, priority) AS (
            SELECT q.name, (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                            ORDER BY j.priority DESC LIMIT 1)
            FROM unnest(v_queues) AS q(name)
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
            WHERE j.status = 'claimed' AND j.queue = ANY (v_queues)
        ) AS due));
END;
$$;
COMMENT ON FUNCTION raquel_next_due(text[]) IS
    'The earliest time (ms) at which a claim of these queues (NULL: all) can take a job: a waiting job''s scheduled_at or a claimed job''s lease deadline, as the queue controls permit (a paused queue: never; at max_running: its running jobs'' lease deadlines; per_second: not before its next token); NULL when there is none. Workers sleep until then.';
REVOKE EXECUTE ON FUNCTION raquel_next_due(text[]) FROM PUBLIC;
