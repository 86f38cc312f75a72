-- 0024_edge_values: values at the edges of their types no longer stop the
-- queue or reach a worker's trace; and a cheaper claim (4).
--
-- 1-3 were found by a user-style probe of the guides (2026-12-07), each
-- written from psql or passed to an SQL function:
--
-- 1. attempts. A row written by hand with attempts = 2147483647 (integer's
--    largest) could never be recorded: every outcome adds one attempt, so
--    raquel_complete, raquel_complete_many and raquel_fail failed with 22003
--    (a worker's batch of successes failed with it, all of them run again).
--    Once such a row was claimed and its lease ran out, raquel_rescue failed
--    the same way, and since every claim rescues first when a lease has run
--    out, every claim of every queue failed: the whole queue stopped. Now
--    every function that counts an attempt counts least(attempts,
--    2147483646) + 1: a job at 2147483647 stays there and is recorded,
--    retried and rescued as any other (a count the engine itself reaches
--    only after two billion attempts). raquel_attempt_claim compares the
--    running attempt as a bigint.
-- 2. raquel_claim(batch => 134217728 or more) failed with 22003 (its walk,
--    16 * batch, overflowed) before checking its arguments. batch is now
--    checked first: 1 .. 134217727, else 22023 naming batch. A NULL batch or
--    lease is named as NULL in the error (it printed as nothing).
-- 3. raquel_check_trace_context took any traceparent of the right shape. It
--    now also refuses what W3C Trace Context calls invalid: version ff, and a
--    trace id or parent id of zeros only (22023 naming trace_context, nothing
--    written). A worker would have run such a job under a root span anyway.
-- 4. (issue 23) The claim's first level, for one queue and for every queue,
--    updates the rows it locked by their list of ctids (one TID scan) instead
--    of a materialized CTE joined by ctid (a nested loop with a TID scan per
--    row): a claim of 250 jobs from a backlog, 7.2-7.4 -> 5.9-6.5 us a job;
--    the fast-mode drain (bench/RESULTS.md, 2026-12-07) 1.47x -> 1.51x,
--    1.45x -> 1.52x and 1.38x -> 1.45x graphile-worker's perfTest at 10, 50
--    and 4 x 24 in flight, the server's CPU 1.0-1.4 us a job less. Which jobs
--    a claim takes is unchanged (the first ready ones, by priority then
--    scheduled_at); the rows of one level now come back in the order of
--    their ctids, not FIFO, and the clients sort a claim's rows by priority,
--    then scheduled_at (sorting them here gave the gain back: 7.35-7.45 us).
--    Exact as the CTE was: the ctids are those of the versions the
--    subquery locked (0006_claim), and the array is built once, before the
--    UPDATE reads a row.

-- Guarantees: W3C Trace Context's invalid traceparents refused too (see the
-- header); otherwise as 0004_enqueue's raquel_check_trace_context.
CREATE OR REPLACE FUNCTION raquel_check_trace_context(fn text, trace_context text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_carrier jsonb;
    v_parent  text;
BEGIN
    IF raquel_check_trace_context.trace_context IS NULL THEN
        RETURN;
    END IF;
    IF octet_length(raquel_check_trace_context.trace_context) > 2048 THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('must be at most 2048 bytes, got %s', octet_length(raquel_check_trace_context.trace_context)));
    END IF;
    BEGIN
        v_carrier := raquel_check_trace_context.trace_context::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        v_carrier := NULL;
    END;
    IF v_carrier IS NULL OR jsonb_typeof(v_carrier) <> 'object'
       OR EXISTS (SELECT FROM jsonb_each(v_carrier) AS e WHERE jsonb_typeof(e.value) <> 'string') THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})');
    END IF;
    v_parent := v_carrier->>'traceparent';
    IF v_parent IS NOT NULL
       AND (v_parent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
            OR left(v_parent, 2) = 'ff'
            OR substr(v_parent, 4, 32) = repeat('0', 32)
            OR substr(v_parent, 37, 16) = repeat('0', 16)) THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('traceparent must be W3C trace context (00-<32 hex>-<16 hex>-<2 hex>; version ff and ids of zeros only are invalid), got %L',
                   left(v_parent, 100)));
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_check_trace_context(text, text) IS
    'Returns when trace_context is NULL or a storable trace carrier (a JSON object of strings, at most 2048 bytes, a valid W3C traceparent if it has one: not version ff, no trace id or parent id of zeros only); else 22023 naming trace_context, the message naming fn. Writes nothing. The rule raquel_enqueue_row and raquel_enqueue_many apply.';

-- Guarantees: 0016_claim_walks' raquel_claim with 0023_claim_batch_filled's
-- end, and batch checked first (1 .. 134217727, else 22023 naming it; see
-- the header).
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
        -- then the others in one (0016_claim_walks).
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (see the header, 4).
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
        -- then the others in one (0016_claim_walks).
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                    ORDER BY j.queue, j.priority DESC LIMIT 1);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (see the header, 4).
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
    'Claims up to batch (1 .. 134217727) ready jobs (scheduled at or before now, and before when given), the highest priority then the oldest first, each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range. Bad arguments: 22023 naming them, nothing written. The rows come back in no particular order (the clients sort them by priority, then scheduled_at).';

-- Guarantees: as 0019_handoff's raquel_rescue; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_rescue(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_rescue.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_rescue', raquel_rescue.now) END;
    v_handed integer;
    v_count  integer;
BEGIN
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now AND j.claimed_at IS NULL
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled' ELSE 'queued' END,
        finished_at = CASE WHEN j.cancel_claim_id = j.claim_id THEN v_now END,
        claimed_by = NULL, lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_handed = ROW_COUNT;
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        attempts = least(j.attempts, 2147483646) + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        error = format('lease expired at %s: worker %s stopped renewing its claim',
                       j.lease_expires_at, coalesce(j.claimed_by, '(unnamed)')),
        error_trace = NULL,
        scheduled_at = v_now,
        finished_at = v_now,
        lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_handed + v_count;
END;
$$;

-- Guarantees: as 0007_outcomes's raquel_complete; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL, result jsonb DEFAULT NULL)
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
        status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: as 0017_complete_many_deleted_whole's raquel_complete_many; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_complete_many(
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
        -- The watched jobs are looked for only when someone waits for a result.
        IF EXISTS (SELECT FROM raquel_result_waiters) THEN
            v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                               WHERE w.job_id = ANY (raquel_complete_many.job_ids));
        ELSE
            v_watched := '{}';
        END IF;
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
        IF cardinality(v_gone) = cardinality(raquel_complete_many.job_ids) THEN
            -- Every pair deleted (so none repeated): every pair recorded.
            RETURN QUERY
            SELECT p.job_id, true
            FROM unnest(raquel_complete_many.job_ids) WITH ORDINALITY AS p(job_id, ord)
            ORDER BY p.ord;
            RETURN;
        END IF;
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
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
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
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
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

-- Guarantees: as 0007_outcomes's raquel_fail; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_fail(
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
        attempts = least(j.attempts, 2147483646) + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.cancel_claim_id = j.claim_id
                              OR (j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count)
                            THEN j.scheduled_at
                            ELSE v_now + least(raquel_retry_delay(least(j.attempts, 2147483646) + 1, j.backoff_base,
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

-- Guarantees: as 0007_outcomes's raquel_reject; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_reject(job_id uuid, claim_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', attempts = least(j.attempts, 2147483646) + 1,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_reject.job_id AND j.claim_id = raquel_reject.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: as 0007_outcomes's raquel_reschedule; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_reschedule(
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
        attempts = least(j.attempts, 2147483646) + 1,
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

-- Guarantees: as 0007_outcomes's raquel_cancel; each attempt counted with
-- least(attempts, 2147483646) + 1 (see the header).
CREATE OR REPLACE FUNCTION raquel_cancel(
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
            status = 'cancelled', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
            lease_expires_at = NULL
        WHERE j.id = raquel_cancel.job_id AND j.claim_id = raquel_cancel.claim_id
          AND j.status = 'claimed'
        RETURNING j.status INTO v_status;
    END IF;
    RETURN v_status;
END;
$$;

-- Guarantees: as 0006_claim's raquel_attempt_claim; the running attempt (attempts + 1) is
-- computed as a bigint, so that a job at integer's largest attempts is no error.
CREATE OR REPLACE FUNCTION raquel_attempt_claim(job_id uuid, attempt_num integer)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF raquel_attempt_claim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_attempt_claim.attempt_num IS NULL OR raquel_attempt_claim.attempt_num < 1 THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'attempt_num',
            format('must be >= 1, got %s', coalesce(raquel_attempt_claim.attempt_num::text, 'NULL')));
    END IF;
    RETURN (SELECT j.claim_id FROM raquel_jobs j
            WHERE j.id = raquel_attempt_claim.job_id AND j.status = 'claimed'
              AND j.attempts::bigint + 1 = raquel_attempt_claim.attempt_num);
END;
$$;
