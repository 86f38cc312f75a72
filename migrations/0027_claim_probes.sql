-- 0027_claim_probes: a claim's two probes read index ranges that hold no
-- entry in the common case, instead of the entries of the claims just made
-- (issue 23).
--
-- Every claim runs two probes before it locks a job, and both read
-- raquel_jobs from the start of an index:
--
-- 1. The rescue probe, min(lease_expires_at) of the claimed jobs, read
--    raquel_jobs_lease_idx from its lowest lease up to the first job still
--    claimed: past the entries of every job finished since (their rows
--    deleted or no longer claimed), each a heap visit until an index scan
--    could mark it dead. Now it reads the range of leases at or before now,
--    and rescues when it finds a claimed job there, as before. That range
--    holds no entry of a lease still running (a lease is now + 60 s by
--    default): only lost jobs' and, about a lease after they finished, the
--    entries of finished jobs that no scan has marked dead yet, each read
--    once (this probe marks them).
-- 2. The highest level's probe, the first ready job in priority order, read
--    the ready index from the start of the queue's range up to its first
--    live entry: past the entries of the jobs claimed in the last
--    milliseconds (their old row versions, not yet dead to every
--    transaction), each a heap visit. Now the probe reads only the range
--    priority > 0 of the index, in the index's order (so that no plan made
--    on other statistics reads another index): its first live entry is the
--    highest level, and with no job above 0 the range holds no entry (only
--    the entries of such jobs claimed lately, until a scan marks them dead)
--    and the claim starts at level 0. When level 0 holds no ready job, its
--    claim takes none and the levels below are found as after any level.
--
-- In a fast-mode drain of 400,000 jobs (4 processes x 24, bench/RESULTS.md,
-- 2026-12-07) the two probes read ~500 and ~300 index entries a claim of
-- ~250 jobs; auto_explain showed the level probe with 1,541 heap fetches
-- and the rescue probe up to 311 buffers (1.4 ms) in one claim. Which jobs
-- a claim takes, and when it rescues, are unchanged (among jobs of equal
-- priority and scheduled_at, which is taken first was never defined and may
-- differ). Fast-mode drains, 10 interleaved rounds, against 0024's
-- raquel_claim: 1.045x, 1.034x and 1.041x at 10, 50 and 4 x 24 in flight
-- (paired medians; 10, 10 and 8 rounds of 10 won), the server's CPU 0.4-0.6
-- us a job less. A claim that finds nothing now runs three statements (the
-- probe, level 0's claim, the probe of the levels below) instead of one: a
-- one-job claim of an empty queue 321 -> 349 us; one that finds its job
-- 524 -> 508 us. And since claims no longer mark the lease entries of
-- finished jobs dead, the first raquel_next_due of a worker going idle after
-- a burst reads them (its min(lease_expires_at) marks them): 10.2 ms after
-- 100,000 jobs claimed and finished within the lease, against 1.5 ms.

-- Guarantees: as 0024_edge_values' raquel_claim (see its header and
-- 0016_claim_walks'), with the two probes above.
CREATE OR REPLACE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL,
    durable  boolean DEFAULT true,
    before   bigint  DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_sort = off
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_claim.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_claim', raquel_claim.now) END;
    v_upto  bigint;
    v_until bigint;
    v_left  integer := raquel_claim.batch;
    v_level integer;
    v_count integer;
    v_claim uuid := gen_random_uuid();
    -- Queue controls
    v_asked  text[] := raquel_claim.queues;  -- the queues asked for (the expiry's)
    v_held   text[];                         -- of those, the paused or limited ones
    v_skip   text[] := '{}';                 -- left out of the all-queues claim
    v_ctl    record;
    v_allow  integer;
    v_tokens double precision;
    -- All queues but the held ones (0016_claim_walks)
    v_walk   integer;  -- set once batch is checked (16 * batch fits an integer then)
    v_need   integer;
    v_cands  tid[];
    v_seen   bigint;
    v_capped boolean := false;
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch NOT BETWEEN 1 AND 134217727 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch',
            format('must be between 1 and 134217727, got %s', coalesce(raquel_claim.batch::text, 'NULL')));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease',
            format('must be > 0 ms, got %s', coalesce(raquel_claim.lease::text, 'NULL')));
    END IF;
    IF raquel_claim.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_claim', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_claim.lease));
    END IF;
    IF raquel_claim.durable IS NULL THEN
        PERFORM raquel_invalid('raquel_claim', 'durable', 'must be true or false, got NULL');
    END IF;
    IF NOT raquel_claim.durable THEN
        -- Only a transaction that has written nothing yet: its earlier writes
        -- (an enqueue, say) would lose their durability with the claim's.
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'durable',
                'false needs a transaction of its own (this one has already written)');
        END IF;
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    -- How far a walk of one priority level reads (0016_claim_walks).
    v_walk := greatest(256, 16 * raquel_claim.batch);

    -- Rescue only when a lease has run out: the first entry of
    -- raquel_jobs_lease_idx at or before now (0027_claim_probes: an index
    -- range, which reads no entry of a lease still running; min() read the
    -- entries of the claims just finished one by one, each a heap visit).
    -- ORDER BY ... LIMIT 1 keeps it a plain index scan that stops at its
    -- first live row (an EXISTS got a bitmap scan, which reads every
    -- expired lease; this function rules out sequential scans).
    -- The probe reads every queue's leases, so the rescue takes every
    -- queue's lost jobs (issue 23, many queues): when it took only the queues
    -- asked for, one lease run out in a queue nobody claimed made every
    -- claim of the other queues call raquel_rescue for nothing until someone
    -- claimed that queue: a woken worker's one-job claim measured 0.496 ->
    -- 0.449 ms and 0.513 -> 0.497 ms (medians of 1,000 and 2,000 alternating
    -- calls, PostgreSQL 15; issue 23's wake-up work had measured 410 us on
    -- its machine).
    -- The sweeps get the caller's own now (NULL: they read the clock), so
    -- that they check it as the claim did; after a rescue on the real clock,
    -- the claim reads the clock again, so the jobs just rescued (scheduled
    -- at the rescue's now) are claimable by this call.
    IF (SELECT j.lease_expires_at FROM raquel_jobs j
        WHERE j.lease_expires_at <= v_now AND j.status = 'claimed'
        ORDER BY j.lease_expires_at LIMIT 1) IS NOT NULL THEN
        PERFORM raquel_rescue(NULL, raquel_claim.now);
        IF raquel_claim.now IS NULL THEN
            v_now := raquel_now_ms();
        END IF;
    END IF;
    -- The lease's end never passes the last time of the range (a clock read
    -- again above may be a few ms past the one the lease was checked at).
    v_until := v_now + least(raquel_claim.lease, 253402214399999 - v_now);
    -- before: only jobs scheduled at or before it (raquel's dequeue(before=)).
    v_upto := CASE WHEN raquel_claim.before < v_now THEN raquel_claim.before ELSE v_now END;

    -- Queue controls -- begin ----------------------------------------
    -- The queues that are paused or limited: a read of
    -- raquel_queue_settings_controlled_idx, which holds those queues only.
    -- The statement takes no parameter, so its plan is made once per
    -- session and kept (one that filtered by this claim's queues would be
    -- planned again at every call, its custom plan looking cheaper). When
    -- no queue is controlled, this block ends here and the claim below is
    -- 0006_claim's.
    v_held := ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                    WHERE s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL);
    IF cardinality(v_held) > 0 AND raquel_claim.queues IS NOT NULL THEN
        -- Only those among the queues asked for.
        v_held := ARRAY(SELECT q.name FROM unnest(v_held) AS q(name)
                        WHERE q.name = ANY (raquel_claim.queues));
    END IF;
    IF cardinality(v_held) > 0 THEN
        -- Each limited queue that is not paused is claimed here on its own,
        -- highest priority then oldest first, up to what its limits allow
        -- now, holding the lock of its settings row to commit: claims of one
        -- limited queue take turns (so two never both take its last slot or
        -- token, and each counts the claims committed before it), claims of
        -- other queues never wait for it. Rows are locked in queue order, so
        -- claims of several limited queues cannot deadlock. FOR UPDATE
        -- rereads a row changed meanwhile (paused, limits) before using it.
        FOR v_ctl IN
            SELECT s.queue::text AS queue, s.max_running, s.per_second, s.tokens, s.tokens_at
            FROM raquel_queue_settings s
            WHERE s.queue = ANY (v_held) AND NOT s.paused
            ORDER BY s.queue
            FOR UPDATE
        LOOP
            EXIT WHEN v_left = 0;
            v_allow := v_left;
            IF v_ctl.max_running IS NOT NULL THEN
                -- Its running jobs, read after the lock (a statement of its
                -- own: a new snapshot), over raquel_jobs_lease_idx: a claimed
                -- job always has a lease (raquel_jobs_claim_check), and naming
                -- it lets the planner use that partial index (0006's count,
                -- without it, read the whole table at each claim).
                v_allow := least(v_allow, v_ctl.max_running - (
                    SELECT count(*) FROM raquel_jobs j
                    WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed'
                      AND j.queue = v_ctl.queue)::integer);
            END IF;
            IF v_ctl.per_second IS NOT NULL THEN
                -- The bucket refilled since tokens_at, up to its size.
                v_tokens := least(greatest(1, v_ctl.per_second / 10),
                                  v_ctl.tokens + greatest(v_now - v_ctl.tokens_at, 0) * v_ctl.per_second / 1000);
                v_allow := least(v_allow, floor(v_tokens)::integer);
            END IF;
            IF v_allow > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.queue >= v_ctl.queue AND j.queue <= v_ctl.queue
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                    ORDER BY j.queue, j.priority DESC, j.scheduled_at
                    LIMIT v_allow
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                    lease_expires_at = v_until, claim_id = v_claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_count > 0 AND v_ctl.per_second IS NOT NULL THEN
                    -- tokens_at never goes back (this claim's clock may have been read
                    -- before a claim that took the lock first), so no time refills twice.
                    UPDATE raquel_queue_settings s SET tokens = v_tokens - v_count,
                                                       tokens_at = greatest(s.tokens_at, v_now)
                    WHERE s.queue = v_ctl.queue;
                END IF;
            END IF;
        END LOOP;
        -- The claim below takes the other queues: paused and limited ones
        -- left out of the list, or (all queues) skipped by its filter.
        IF raquel_claim.queues IS NULL THEN
            v_skip := v_held;
        ELSE
            raquel_claim.queues := ARRAY(SELECT q.name FROM unnest(raquel_claim.queues) AS q(name)
                                         WHERE q.name <> ALL (v_held));
        END IF;
    END IF;
    -- Queue controls -- end ------------------------------------------

    IF v_left = 0 THEN
        -- The limited queues' claims filled the batch (0023_claim_batch_filled):
        -- nothing is left to claim from the others. (The walks below read
        -- v_left jobs at a time and read further while they found as many:
        -- with none asked for, they never stopped.)
        NULL;
    ELSIF raquel_claim.queues IS NULL AND cardinality(v_skip) > 0 THEN
        -- Queue controls: every queue but the held ones (paused, limited),
        -- without reading the held queues' backlogs (0016_claim_walks).
        -- Level by level over the all-queues index, as raquel_claim_listed
        -- walks for a list: the first v_need jobs of queues not held among
        -- the level's first v_walk ready jobs (row v_walk comes back too when
        -- the walk reached it: cut short). When v_walk held jobs come first,
        -- the queues that are not held are named (one probe of the queue
        -- index each) and raquel_claim_listed claims from them by their own
        -- index ranges.
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL AND NOT v_capped LOOP
            v_need := v_left;
            LOOP
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.kept), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_seen
                FROM (SELECT r.ctid, r.kept, r.n
                      FROM (SELECT j.ctid, j.queue <> ALL (v_skip) AS kept,
                                   row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                            FROM raquel_jobs j
                            WHERE j.priority = v_level
                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                            ORDER BY j.scheduled_at
                            LIMIT v_walk) AS r
                      WHERE r.kept OR r.n = v_walk
                      LIMIT v_need) AS w;
                IF cardinality(v_cands) > 0 THEN
                    -- The candidates by their ctids, in walk order: a scan of the
                    -- all-queues index filtered on them would read on past the
                    -- walk when other claims hold some of them locked.
                    RETURN QUERY
                    WITH picked AS MATERIALIZED (
                        SELECT j.ctid FROM unnest(v_cands) WITH ORDINALITY AS c(ctid, n)
                        JOIN raquel_jobs j ON j.ctid = c.ctid
                        WHERE j.queue <> ALL (v_skip) AND j.priority = v_level
                          AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                          AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                        ORDER BY c.n
                        LIMIT v_left
                        FOR UPDATE OF j SKIP LOCKED
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                    EXIT WHEN v_left = 0;
                END IF;
                IF cardinality(v_cands) >= v_need AND v_need < v_walk THEN
                    -- Enough candidates, but other claims took some: read further.
                    v_need := least(v_need * 2, v_walk);
                ELSIF v_seen >= v_walk THEN
                    v_capped := true;  -- held jobs first: by the queues not held, below
                    EXIT;
                ELSE
                    EXIT;  -- every ready job of this level seen: the next level
                END IF;
            END LOOP;
            EXIT WHEN v_left = 0;
            IF NOT v_capped THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                            ORDER BY j.priority DESC LIMIT 1);
            END IF;
        END LOOP;
        IF v_capped THEN
            -- The queues with a waiting job, each found by one probe of
            -- raquel_jobs_ready_queue_priority_idx past the one before (a held
            -- queue's backlog is stepped over, not read), less the held ones.
            raquel_claim.queues := ARRAY(
                WITH RECURSIVE ready(queue) AS (
                    (SELECT j.queue::text FROM raquel_jobs j
                     WHERE j.status IN ('queued', 'failed')
                     ORDER BY j.queue LIMIT 1)
                    UNION ALL
                    SELECT (SELECT j.queue::text FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.queue > r.queue
                            ORDER BY j.queue LIMIT 1)
                    FROM ready r WHERE r.queue IS NOT NULL
                )
                SELECT r.queue FROM ready r WHERE r.queue IS NOT NULL AND r.queue <> ALL (v_skip));
            IF cardinality(raquel_claim.queues) > 0 THEN
                PERFORM set_config('enable_sort', 'on', true);
                RETURN QUERY SELECT * FROM raquel_claim_listed(raquel_claim.queues, raquel_claim.claim_as,
                                                               v_left, v_now, v_upto, v_until, v_claim);
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
            END IF;
        END IF;
    ELSIF raquel_claim.queues IS NULL THEN
        -- The highest level by its own statements (most claims need no other),
        -- then the others in one (0016_claim_walks). The highest level above
        -- 0, else 0 (0027_claim_probes: the range priority > 0 holds no entry
        -- when no job has a priority above 0, where the highest level's probe
        -- read the entries of the claims just made, each a heap visit). When
        -- level 0 holds no ready job, its claim takes none and the levels
        -- below are probed as after any level.
        v_level := coalesce((SELECT j.priority FROM raquel_jobs j
                             WHERE j.status IN ('queued', 'failed') AND j.priority > 0
                             ORDER BY j.priority DESC LIMIT 1), 0);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (0024_edge_values' header, 4).
            RETURN QUERY
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            WHERE j.ctid = ANY (ARRAY(
                SELECT p.ctid FROM raquel_jobs p
                WHERE p.priority = v_level
                  AND p.status IN ('queued', 'failed') AND p.scheduled_at <= v_upto
                  AND (p.max_age IS NULL OR p.enqueued_at + p.max_age > v_now)
                ORDER BY p.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED))
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            IF v_left > 0 THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                            ORDER BY j.priority DESC LIMIT 1);
                IF v_level IS NOT NULL THEN
                    -- A second level: it and every level below in one statement
                    -- (0016_claim_walks), each next level found
                    -- by one probe of the index past the one before (a recursive
                    -- union, read only as far as the claim needs), each level's due
                    -- jobs oldest first, the scan stopping at its first job not due.
                    RETURN QUERY
                    WITH RECURSIVE levels(priority) AS (
                        SELECT v_level
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.status IN ('queued', 'failed') AND j.priority < l.priority
                                ORDER BY j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    ), picked AS MATERIALIZED (
                        SELECT c.ctid FROM levels l
                        CROSS JOIN LATERAL (SELECT j.ctid FROM raquel_jobs j
                                            WHERE j.priority = l.priority
                                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                                            ORDER BY j.scheduled_at
                                            LIMIT v_left
                                            FOR UPDATE OF j SKIP LOCKED) AS c
                        WHERE l.priority IS NOT NULL
                        LIMIT v_left
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                END IF;
            END IF;
        END IF;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        -- The highest level by its own statements (most claims need no other),
        -- then the others in one (0016_claim_walks). The highest level above
        -- 0, else 0, as for every queue above.
        v_level := coalesce((SELECT j.priority FROM raquel_jobs j
                             WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                               AND j.priority > 0
                             ORDER BY j.queue, j.priority DESC LIMIT 1), 0);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (0024_edge_values' header, 4).
            RETURN QUERY
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            WHERE j.ctid = ANY (ARRAY(
                SELECT p.ctid FROM raquel_jobs p
                WHERE p.queue = ANY (raquel_claim.queues) AND p.priority = v_level
                  AND p.status IN ('queued', 'failed') AND p.scheduled_at <= v_upto
                  AND (p.max_age IS NULL OR p.enqueued_at + p.max_age > v_now)
                ORDER BY p.queue, p.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED))
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            IF v_left > 0 THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                              AND j.priority < v_level
                            ORDER BY j.queue, j.priority DESC LIMIT 1);
                IF v_level IS NOT NULL THEN
                    -- A second level: it and every level below in one statement
                    -- (0016_claim_walks), each next level found
                    -- by one probe of the index past the one before (a recursive
                    -- union, read only as far as the claim needs), each level's due
                    -- jobs oldest first, the scan stopping at its first job not due.
                    RETURN QUERY
                    WITH RECURSIVE levels(priority) AS (
                        SELECT v_level
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                                  AND j.priority < l.priority
                                ORDER BY j.queue, j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    ), picked AS MATERIALIZED (
                        SELECT c.ctid FROM levels l
                        CROSS JOIN LATERAL (SELECT j.ctid FROM raquel_jobs j
                                            WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = l.priority
                                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                                            ORDER BY j.queue, j.scheduled_at
                                            LIMIT v_left
                                            FOR UPDATE OF j SKIP LOCKED) AS c
                        WHERE l.priority IS NOT NULL
                        LIMIT v_left
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                END IF;
            END IF;
        END IF;
    ELSIF cardinality(raquel_claim.queues) > 1 THEN
        -- Several queues: by raquel_claim_listed (0013_claim_generic_plans' header), which
        -- walks the all-queues index with generic plans of its own, sorts allowed.
        PERFORM set_config('enable_sort', 'on', true);
        RETURN QUERY SELECT * FROM raquel_claim_listed(raquel_claim.queues, raquel_claim.claim_as, v_left,
                                                       v_now, v_upto, v_until, v_claim);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
    END IF;

    -- Expiry. The claim above never hands out a job past its max_age; marking
    -- such jobs 'expired' is done here: always when this claim came back
    -- short (the queues look drained, so the call is cheap and an operator
    -- or dequeue() sees expired jobs at once), else at most once a second
    -- per connection (raquel.expired_at, a session setting), so that claims
    -- under a backlog do not pay for it each time. (Queue controls: over every queue
    -- asked for, v_asked, paused and limited ones included.)
    -- Tried for many queues (issue 23) and not kept: calling raquel_expire only when
    -- a probe of raquel_jobs_expiry_idx found a job past its max_age. The
    -- one-job claim of a woken worker measured 0.468 -> 0.480 ms and 0.458
    -- -> 0.449 ms (medians of 1,000 and 2,000 alternating calls, PostgreSQL
    -- 15): the nested call costs about what the probe does.
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        PERFORM raquel_expire(v_asked, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch (1 .. 134217727) ready jobs (scheduled at or before now, and before when given), the highest priority then the oldest first, each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range. Bad arguments: 22023 naming them, nothing written. The rows come back in no particular order (the clients sort them by priority, then scheduled_at).';
