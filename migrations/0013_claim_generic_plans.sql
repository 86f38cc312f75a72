-- 0013_claim_generic_plans: raquel_claim plans its statements once per
-- session, in plans no statistics can turn into a walk of other queues' jobs.
--
-- Guarantees: 0006_claim's raquel_claim, unchanged (what it claims, in what
-- order, its sweeps, its queue controls, its errors). Only the plans change.
--
-- Measured reason (PostgreSQL 15, 2 cores; issue 23). Every statement that
-- claims carries "LIMIT v_left", a parameter, so PostgreSQL's plan cache
-- priced its generic plan as if a tenth of the queue were wanted and planned
-- the statement anew at each call: a profile of a worker's one-job claims
-- (perf, the backend's CPU) put 29.5% of the backend in the planner, more
-- than the commit's WAL flush (17%). With each statement planned once per
-- session (plan_cache_mode = force_generic_plan), a claim of one job took
-- 604 -> 447 us from call to reply (server CPU 383 -> 267 us), of ten 751 ->
-- 587 us, of ten from all queues 593 -> 458 us (medians of 6 alternating
-- rounds of 300 calls, a backlog of 200,000 jobs): the wake-up's claim, and
-- the round trip that bounds a default worker's rate.
--
-- A generic plan does not see the queue's name, and is kept for the session,
-- so the plans are made so that no statistics can choose a walk:
-- - One queue: the statements name it as `queue = ANY (queues)` (the list
--   of one) and ask for the queue index's own order (queue first). Only
--   raquel_jobs_ready_queue_priority_idx gives that order, and with
--   enable_sort = off no plan sorts instead; btree reads the list's one name
--   as an equality, so the scan stops at the level's first job not yet due.
--   Written `queue = queues[1]`, the generic plan took the all-queues index
--   on statistics that had seen one big queue (50,000 jobs): a claim of 5
--   from a small queue read 1,476 buffers (8.1 ms) instead of 9. Planned
--   while the table was empty and kept (a worker that starts before its
--   first job), the same walk followed; the probes of 0006 did it too under
--   custom plans (1,548 buffers, statistics taken on an empty table).
-- - A limited queue (queue controls): named as a range (queue >= name AND
--   queue <= name) with the index's order, as raquel_claim_listed does; its
--   claim reads the queue across its levels anyway. Its count of running
--   jobs (max_running) names the lease, so that it reads
--   raquel_jobs_lease_idx: 0006's count had no index to use and read the
--   whole table (a sequential scan, finished jobs included) at each claim.
-- - Several queues (two or more; 0006 did so above 16): raquel_claim_listed,
--   whose plans are generic and made the same way (its header). 0006's own
--   statements for 2 to 16 queues took the all-queues index, custom-planned
--   at every call, to serve rare queues: a claim of 10 from two queues of
--   3,000 jobs beside an unlisted one of 200,000 took 38.2 ms, 0.89 ms by
--   raquel_claim_listed; two busy queues 0.77 -> 0.67 ms, a busy and an empty
--   one 0.73 -> 0.72 ms (medians of 4 alternating rounds of 200 claims). And
--   0006's probe for each listed queue's highest level read the backlog to
--   find an empty queue's once its plan turned generic: 22.7 ms a claim of a
--   busy queue and an empty one beside 200,000 jobs (worker-like, the same
--   session claiming again and again). raquel_claim_listed runs
--   with sorts allowed (set_config, restored at the end of the call by the
--   function's own SET clause).

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
        -- Queue controls: every queue but the paused and limited ones (their
        -- own statement, so that the claim of all queues below keeps its plan).
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                  AND j.queue <> ALL (v_skip)
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
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSIF raquel_claim.queues IS NULL THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
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
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                    ORDER BY j.queue, j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
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
            EXIT WHEN v_left = 0;
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                          AND j.priority < v_level
                        ORDER BY j.queue, j.priority DESC LIMIT 1);
        END LOOP;
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
