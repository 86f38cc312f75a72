-- 0016_claim_walks: claims that no longer read what they do not claim: a
-- claim of all queues, and its next_due, step over a paused or limited
-- queue's backlog, and a claim reads the priority levels below its first in
-- one statement.
--
-- Guarantees: 0006_claim's raquel_claim and raquel_next_due, unchanged (what
-- they claim or return, in what order, their sweeps, queue controls and
-- errors). Only how a claim of all queues finds the jobs of the queues that
-- are not held, and how a claim goes from one priority level to the next,
-- change.
--
-- Held backlogs (PostgreSQL 15, 2 cores; issue 23). A claim of all queues
-- leaves out the held queues (paused, or with max_running or per_second:
-- those are claimed first, each on its own). 0013 left them out with a
-- filter (queue <> ALL (held)) on a walk of the all-queues index in claim
-- order, so a held queue's waiting jobs that come first in that order were
-- read one by one at every claim, and raquel_next_due read them again after
-- each short claim. Pausing a queue with a backlog made every all-queues
-- worker pay for the backlog, and a queue with max_running and a backlog
-- did so for good: beside 200,000 paused jobs enqueued before 20,000
-- others, a claim of 10 took 58-59 ms and raquel_next_due 40-49 ms
-- (python -m bench.controls, part 3: two runs of 7 alternating rounds of
-- 50 calls, medians).
--
-- Now both walk at most 256 of a level's waiting jobs (16 per job asked
-- for, when more), as raquel_claim_listed does for a list. When that many
-- held jobs come first, they name the queues that are not held (one probe
-- of raquel_jobs_ready_queue_priority_idx per queue with a waiting job,
-- each stepping over a held queue's backlog in one probe) and read those
-- by their own index ranges: the claim through raquel_claim_listed, the
-- due time by one probe per queue. The same runs: 1.34-1.38 ms a claim,
-- 0.51-0.68 ms a raquel_next_due; with the held jobs enqueued after the
-- others' (no walk to save), 0.73-0.90 -> 0.85 ms a claim and 0.30-0.31 ->
-- 0.30-0.34 ms a raquel_next_due. The jobs the walk found are locked by
-- their ctids in walk order: a scan of the all-queues index filtered on
-- them read on through the backlog behind them when other claims held
-- some (1,552 buffers against 84, test_skewed_plans). A claim of named
-- queues, or of all queues with none held, runs as in 0013. Naming the
-- queues costs a probe per queue with a waiting job, paid only when a walk
-- was cut short.
--
-- Priority levels (PostgreSQL 15, 2 cores; issue 23). A claim takes the
-- highest priority level's due jobs first, then the next level's, and 0006
-- read each level with two statements of its own: the level's probe, then its
-- claim. A queue whose jobs carry many priorities (a score, a deadline) paid
-- two statements per level a claim reached, and every level that held only
-- jobs not yet due (retries waiting out their backoff, delayed jobs) cost its
-- two statements at every claim: a claim of 250 from 6,000 jobs each of its
-- own priority took 29.7 ms (one queue named) and 21.0 ms (all queues), a
-- claim of 10 below 1,000 levels of delayed jobs 32.8 and 23.2 ms
-- (python -m bench.levels: 6 alternating rounds of 20 calls after an untimed
-- one, medians, the claim before this change recreated beside today's).
--
-- The highest level is still claimed by its own statements, as most claims
-- need no other: a claim that one level fills, or that finds nothing, runs
-- what it ran before (in the same run, the cases that take that path moved by
-- 0.83-1.24x, the run's noise: the statements are the same). When it comes
-- back short and a lower level exists, one statement claims from that level
-- and every level below: a recursive union finds each next level with one
-- probe of the index past the one before, read only as far as the claim
-- needs, and a lateral scan takes each level's due jobs oldest first,
-- stopping at its first job not due, locked as before (SKIP LOCKED). The same
-- run: 9.6 and 7.3 ms for the claims of 250 jobs of distinct priorities, 14.3
-- and 8.4 ms below 1,000 delayed levels, and for claims of 10 from distinct
-- priorities 1.55 -> 0.88 and 1.20 -> 0.71 ms. Written as one statement for
-- every claim (the first level too), a claim that finds nothing paid that
-- statement's executor start for nothing (0.231 -> 0.284 ms), as the probes
-- in one statement did before (docs/internals/performance.md).

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
    v_walk   integer := greatest(256, 16 * raquel_claim.batch);
    v_need   integer;
    v_cands  tid[];
    v_seen   bigint;
    v_capped boolean := false;
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch < 1 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch', format('must be >= 1, got %s', raquel_claim.batch));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease', format('must be > 0 ms, got %s', raquel_claim.lease));
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

    -- Rescue only when the oldest lease has run out: min() over
    -- raquel_jobs_lease_idx, a plan the planner keeps whatever its
    -- statistics say (an EXISTS probe let it pick a sequential scan on a
    -- table never analyzed). status is read from the row, so this is a plain
    -- index scan, which marks the entries of finished claims dead as it
    -- passes them.
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
    IF (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed') <= v_now THEN
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

    IF raquel_claim.queues IS NULL AND cardinality(v_skip) > 0 THEN
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
        -- then the others in one (0016_claim_walks).
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        IF v_level IS NOT NULL THEN
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            FROM picked WHERE j.ctid = picked.ctid
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
        -- then the others in one (0016_claim_walks).
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                    ORDER BY j.queue, j.priority DESC LIMIT 1);
        IF v_level IS NOT NULL THEN
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.queue, j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            FROM picked WHERE j.ctid = picked.ctid
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
        -- Several queues: by raquel_claim_listed (see this file's header), which
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
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range.';
REVOKE EXECUTE ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) FROM PUBLIC;

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

    IF v_queues IS NULL AND cardinality(v_skip) > 0 THEN
        -- All queues but the held ones, without reading the held queues'
        -- backlogs (0016_claim_walks): the lease deadlines of the
        -- others' claimed jobs, then level by level the first waiting job of
        -- a queue not held among the level's first 256 (raquel_claim's walk);
        -- when 256 held jobs come first, the queues that are not held are
        -- named (one probe of the queue index each, raquel_claim's way) and
        -- probed one by one, as for a long list.
        v_due := least(v_due, (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                               WHERE j.status = 'claimed' AND j.queue <> ALL (v_skip)));
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            SELECT w.scheduled_at, w.kept, w.n INTO v_at, v_listed, v_seen
            FROM (SELECT j.scheduled_at, j.queue <> ALL (v_skip) AS kept,
                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                  FROM raquel_jobs j
                  WHERE j.priority = v_level AND j.status IN ('queued', 'failed')
                  ORDER BY j.scheduled_at
                  LIMIT 256) AS w
            WHERE w.kept OR w.n = 256
            LIMIT 1;
            IF FOUND AND NOT v_listed THEN
                IF v_queues IS NULL THEN
                    v_queues := ARRAY(
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
                END IF;
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
