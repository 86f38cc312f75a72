-- 0029_claim_listed_hash_join: the claim of a list of queues keeps the
-- listed queues' jobs by a hash join, whose hash table of the names costs
-- half what the hashed subplan's did (issue 23, "1,000 queues listed
-- explicitly: claim p50 within 1.5x of one queue").
--
-- raquel_claim_listed (0006_claim) walks a priority level of the all-queues
-- index in scheduled_at order and keeps the jobs of the listed queues. It
-- tested each row with `queue IN (SELECT unnest(queues))`: a hashed subplan,
-- whose hash table of the names is built at every call. For 1,000 names
-- that took 110 us (PostgreSQL 15, a PL/pgSQL loop of 2,000 statements
-- testing one name), most of the walk's cost in a claim of 10: the table's
-- size is estimated from unnest's 10 rows, so it grows six times, and each
-- name is copied into a tuple of its own. Now the walk is the outer side of a
-- hash join with unnest(queues): the same names hashed in a hash join's table
-- took 60 us. The function's settings (enable_nestloop, enable_mergejoin off)
-- leave the planner no other join for the walk: a nested loop over unnest,
-- which statistics seen on a nearly empty table could choose, would compare
-- each row read with every name (a walk of 256 rows, 256,000 comparisons).
-- Its other statements join unnest(queues) LATERALly, which only a nested
-- loop can run: unchanged.
--
-- Measured through raquel_claim (PostgreSQL 15, 2 cores, a scratch database
-- of 400,000 waiting jobs of one queue, claims of 10 with a lease of 1 h, the
-- list sent as the worker sends it, binary and built once; 300 calls
-- alternating with a one-queue claim, medians, 4 runs): a list of 1,000
-- names 0.861 / 0.870 ms -> 0.782 / 0.813 ms, 1.57x / 1.54x -> 1.47x / 1.47x
-- one queue's claim. Dropping this function's settings that raquel_claim
-- already sets (it is its only caller) measured no difference (1.45x / 1.46x
-- against 1.47x / 1.39x), so they stay.

-- Guarantees: as 0006_claim's raquel_claim_listed. A name listed twice may
-- make a walk read further (a row of its queue counts twice toward the
-- candidates it looks for); which jobs a claim takes is unchanged.
CREATE OR REPLACE FUNCTION raquel_claim_listed(
    queues     text[],
    claim_as   text,
    batch      integer,
    claimed_at bigint,
    upto       bigint,
    until      bigint,
    claim      uuid
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_nestloop = off
SET enable_mergejoin = off
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    v_left   integer := raquel_claim_listed.batch;
    v_walk   integer := greatest(256, 16 * raquel_claim_listed.batch);
    v_level  integer;
    v_need   integer;
    v_cands  tid[];
    v_names  text[];
    v_seen   bigint;
    v_count  integer;
    v_capped boolean := false;
BEGIN
    -- Level by level over the all-queues index, highest first.
    v_level := (SELECT j.priority FROM raquel_jobs j
                WHERE j.status IN ('queued', 'failed')
                ORDER BY j.priority DESC LIMIT 1);
    WHILE v_level IS NOT NULL AND NOT v_capped LOOP
        v_need := v_left;
        LOOP
            -- The first v_need jobs of the listed queues among the level's
            -- first v_walk ready jobs; row v_walk comes back too (seen =
            -- v_walk) when the walk reached it: cut short.
            SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.listed), '{}'),
                   coalesce(array_agg(w.queue) FILTER (WHERE w.listed), '{}'), coalesce(max(w.n), 0)
            INTO v_cands, v_names, v_seen
            -- The listed queues are the inner side of a hash join (the
            -- function's settings leave no other join): a hash table of the
            -- names built once per statement, which the walk, its outer side,
            -- probes row by row in its own order.
            FROM (SELECT r.ctid, r.queue, l.name IS NOT NULL AS listed, r.n
                  FROM (SELECT j.ctid, j.queue::text AS queue,
                               row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                        FROM raquel_jobs j
                        WHERE j.priority = v_level
                          AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                          AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                        ORDER BY j.scheduled_at
                        LIMIT v_walk) AS r
                  LEFT JOIN unnest(raquel_claim_listed.queues) AS l(name) ON l.name = r.queue
                  WHERE l.name IS NOT NULL OR r.n = v_walk
                  LIMIT v_need) AS w;
            IF cardinality(v_cands) > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.ctid = ANY (v_cands)
                      AND j.queue = ANY (v_names) AND j.priority = v_level
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                    ORDER BY j.scheduled_at
                    LIMIT v_left
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim_listed.claim_as,
                    claimed_at = raquel_claim_listed.claimed_at,
                    lease_expires_at = raquel_claim_listed.until, claim_id = raquel_claim_listed.claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_left = 0 THEN
                    RETURN;
                END IF;
            END IF;
            IF cardinality(v_cands) >= v_need AND v_need < v_walk THEN
                -- Enough candidates, but some were taken by other claims:
                -- read further (the jobs claimed above are no longer ready).
                v_need := least(v_need * 2, v_walk);
            ELSIF v_seen >= v_walk THEN
                v_capped := true;  -- go on from this level the per-queue way
                EXIT;
            ELSE
                EXIT;  -- every ready job of this level seen: the next level
            END IF;
        END LOOP;
        IF NOT v_capped THEN
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END IF;
    END LOOP;

    -- Cut short: from v_level down, the listed queues one by one, each over
    -- raquel_jobs_ready_queue_priority_idx. Each probe names its queue as a
    -- range (queue >= q.name AND queue <= q.name) and asks for the index's
    -- order (queue first): raquel_jobs_ready_priority_idx cannot give that
    -- order, so no statistics can make the plan walk the other queues' jobs
    -- there (with `queue = q.name`, on statistics that had seen one queue,
    -- the generic plan did: 30,241 buffers for a claim of 2). It starts at
    -- v_level itself (where the walk stopped), with no probe of each
    -- queue's highest level first: that probe cost as much as the claim's
    -- own reading (1,000 index probes).
    WHILE v_capped AND v_level IS NOT NULL LOOP
        v_need := v_left;
        LOOP
            -- The v_need oldest ready jobs of the level among the listed
            -- queues. They are all in the v_need queues whose oldest ready
            -- job is the oldest (one row read per queue), so only those are
            -- read further, up to v_need jobs each, and merged.
            WITH heads AS MATERIALIZED (
                SELECT q.name FROM unnest(raquel_claim_listed.queues) AS q(name)
                CROSS JOIN LATERAL (SELECT j.scheduled_at FROM raquel_jobs j
                                    WHERE j.queue >= q.name AND j.queue <= q.name AND j.priority = v_level
                                      AND j.status IN ('queued', 'failed')
                                      AND j.scheduled_at <= raquel_claim_listed.upto
                                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                    ORDER BY j.queue, j.scheduled_at LIMIT 1) AS h
                ORDER BY h.scheduled_at LIMIT v_need
            )
            SELECT coalesce(array_agg(m.ctid), '{}'), coalesce(array_agg(m.queue), '{}')
            INTO v_cands, v_names
            FROM (SELECT c.ctid, c.queue FROM heads
                  CROSS JOIN LATERAL (SELECT j.ctid, j.queue::text AS queue, j.scheduled_at FROM raquel_jobs j
                                      WHERE j.queue >= heads.name AND j.queue <= heads.name
                                        AND j.priority = v_level AND j.status IN ('queued', 'failed')
                                        AND j.scheduled_at <= raquel_claim_listed.upto
                                        AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                      ORDER BY j.queue, j.scheduled_at LIMIT v_need) AS c
                  ORDER BY c.scheduled_at LIMIT v_need) AS m;
            IF cardinality(v_cands) > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.ctid = ANY (v_cands)
                      AND j.queue = ANY (v_names) AND j.priority = v_level
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                    ORDER BY j.scheduled_at
                    LIMIT v_left
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim_listed.claim_as,
                    claimed_at = raquel_claim_listed.claimed_at,
                    lease_expires_at = raquel_claim_listed.until, claim_id = raquel_claim_listed.claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_left = 0 THEN
                    RETURN;
                END IF;
            END IF;
            EXIT WHEN cardinality(v_cands) < v_need;
            v_need := v_need * 2;  -- some were taken by other claims: read further
        END LOOP;
        v_level := (SELECT max(top.priority) FROM unnest(raquel_claim_listed.queues) AS q(name)
                    CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                        WHERE j.queue >= q.name AND j.queue <= q.name
                                          AND j.status IN ('queued', 'failed') AND j.priority < v_level
                                        ORDER BY j.queue, j.priority DESC LIMIT 1) AS top);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid) IS
    'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index keeping the listed queues'' jobs by a hash join (a hash table of the names built once per statement), at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';
REVOKE EXECUTE ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid) FROM PUBLIC;
