-- 0031_claim_listed_order: a claim of a list of queues sent by their names
-- takes the oldest of the listed queues' ready jobs again, whatever plan the
-- statistics give its walk (issue 23).
--
-- 0029_claim_listed_hash_join joined the walk (a priority level's ready
-- jobs in scheduled_at order) to unnest(queues) by a hash join and kept the
-- first jobs it returned. A hash join returns the rows in its outer side's
-- order only when the walk is that side: the planner may hash the walk
-- instead (a "Hash Right Join", probed in the list's order), as
-- PostgreSQL 18 did on statistics taken with 5 jobs in the table (and not
-- with 0, 1, 50 or 5,000), and the claim then took newer jobs before older
-- ones (tests/client/test_priority.py, "several", failed so in .ci/run on
-- the embedded PostgreSQL 18: a job enqueued later taken before an older
-- one of the same priority). The walk tests membership again with 0006's
-- hashed subplan, which the walk's own rows probe in their order: 110 us
-- for 1,000 names, against 0029's 60, at every claim of a list sent by its
-- names. A worker of more than 16 queues claims by a registered list
-- (0030_queue_lists), whose walk this does not change.

-- Guarantees: as 0030_queue_lists' raquel_claim_listed (0006_claim's for a
-- list of names: the oldest ready jobs of the listed queues first).
CREATE OR REPLACE FUNCTION raquel_claim_listed(
    queues     text[],
    claim_as   text,
    batch      integer,
    claimed_at bigint,
    upto       bigint,
    until      bigint,
    claim      uuid,
    queue_list bigint DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
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
            IF raquel_claim_listed.queue_list IS NULL THEN
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.listed), '{}'),
                       coalesce(array_agg(w.queue) FILTER (WHERE w.listed), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_names, v_seen
                -- A hashed subplan (0006's): a hash table of the names built
                -- once per statement, probed by the walk's rows in their own
                -- order (0029's hash join gave no such order; see this file's
                -- header).
                FROM (SELECT r.ctid, r.queue, r.listed, r.n
                      FROM (SELECT j.ctid, j.queue::text AS queue,
                                   j.queue IN (SELECT unnest(raquel_claim_listed.queues)) AS listed,
                                   row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                            FROM raquel_jobs j
                            WHERE j.priority = v_level
                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                            ORDER BY j.scheduled_at
                            LIMIT v_walk) AS r
                      WHERE r.listed OR r.n = v_walk
                      LIMIT v_need) AS w;
            ELSE
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.listed), '{}'),
                       coalesce(array_agg(w.queue) FILTER (WHERE w.listed), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_names, v_seen
                -- Each row's queue looked up in the list's members: an index
                -- probe (a scalar subquery, which is never hashed) for each of
                -- the first 32 rows, then, when the walk goes on (the listed
                -- queues rare among the others' jobs), a hash table of the
                -- members, built once at the 33rd row. OFFSET 0 keeps r a
                -- subquery of its own: pulled up, its test would be run twice a
                -- row (in the filter and in the output).
                FROM (SELECT r.ctid, r.queue, r.listed, r.n
                      FROM (SELECT s.ctid, s.queue, s.n,
                                   CASE WHEN s.n <= 32
                                        THEN (SELECT true FROM raquel_queue_list_members m
                                              WHERE m.list_id = raquel_claim_listed.queue_list AND m.queue = s.queue
                                              LIMIT 1) IS NOT NULL
                                        ELSE s.queue IN (SELECT m.queue FROM raquel_queue_list_members m
                                                         WHERE m.list_id = raquel_claim_listed.queue_list) END AS listed
                            FROM (SELECT j.ctid, j.queue::text AS queue,
                                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                                  FROM raquel_jobs j
                                  WHERE j.priority = v_level
                                    AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                                    AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                  ORDER BY j.scheduled_at
                                  LIMIT v_walk) AS s
                            OFFSET 0) AS r
                      WHERE r.listed OR r.n = v_walk
                      LIMIT v_need) AS w;
            END IF;
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
    IF v_capped AND raquel_claim_listed.queue_list IS NOT NULL THEN
        -- A registered list: its names, as a list sent with the call.
        raquel_claim_listed.queues := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                                            WHERE m.list_id = raquel_claim_listed.queue_list);
    END IF;
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
COMMENT ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid, bigint) IS
    'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (queues, or the registered list queue_list) (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index keeping the listed queues'' jobs by a hashed membership test (a hash table of the names built once per statement), or, for a registered list, by an index probe of its members for each of the first 32 jobs, at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';
REVOKE EXECUTE ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid, bigint) FROM PUBLIC;
