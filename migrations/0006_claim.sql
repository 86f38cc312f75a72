-- 0006_claim: taking jobs to run, keeping them, and learning when the next one
-- is due.
--
-- Guarantees. A claim hands each job it returns to this call alone (FOR
-- UPDATE SKIP LOCKED: concurrent claimers never get the same job and never
-- wait for each other), as 'claimed' with a lease of "lease" ms and a
-- claim_id no earlier claim of the job had: the fencing token every outcome
-- function (0007_outcomes) checks. Ready means: status queued or failed,
-- scheduled_at <= now, not past max_age; order: highest priority first, then
-- oldest scheduled_at. The functions are SECURITY DEFINER and not executable
-- by PUBLIC (raquel_pg/roles.sql grants them to the worker role).
--
-- Why the plan settings. A queue's statistics are stale by nature: ANALYZE
-- ran when the table held other jobs in other states. Taken while every job
-- was queued, they say no job is 'claimed'. raquel_renew_leases (and
-- raquel_complete_many) then joined their (id, claim_id) pairs to a
-- sequential scan filtered on 'claimed' (estimated: 1 row) as the inner side
-- of a nested loop: a million comparisons for a batch of 1,000, 372 ms
-- against 12.6 ms through the primary key (PostgreSQL 15, 20,000 jobs).
-- raquel_claim joined its picked jobs back to the table with a hash join over
-- a sequential scan once its batch reached the hundreds. Each of these
-- statements is meant to touch only the rows it names or picks, so these
-- functions run with enable_seqscan = off (it disfavours, never forbids, a
-- sequential scan, so a statement with no other path still runs); nested
-- calls (the claim's sweeps) see the same setting and probe partial indexes
-- made for them. The claim and raquel_next_due also run with
-- max_parallel_workers_per_gather = 0 (see 0005_sweeps).
--
-- Why jit = off beside enable_seqscan = off (raquel_claim, raquel_renew_leases
-- and raquel_complete_many): before PostgreSQL 18, enable_seqscan = off adds
-- 10^10 to the cost of a sequential scan. A statement reached inside these
-- functions that has no other path then carries that cost, far past
-- jit_above_cost (100,000 by default), and is compiled by LLVM with inlining
-- and optimisation at every execution. The statement that did it was the
-- wake-up check of raquel_notify_ready (a scan of the small raquel_waiters
-- table), run by the row trigger on every job a claim's rescue put back:
-- 460-600 ms of JIT per job, so a claim that rescued 100 expired leases took
-- 17.5 s instead of 7 ms (PostgreSQL 15, jit = on as shipped). JIT never pays
-- for the few-row statements of the engine, so these functions turn it off
-- for the duration of the call (nested calls and triggers included). A
-- function restated later with enable_seqscan = off must keep jit = off
-- (tests/sql/test_skewed_plans.py checks the catalog).
--
-- Comments inside the bodies of raquel_claim and raquel_next_due that name
-- 0013_many_queues name the delta, folded into this file before the first
-- release, that made the change they explain (the long-list branch, the
-- rescue of every queue); the bodies are kept as that delta left them, so
-- the catalog is the one the deltas built.

-- Guarantees: claims up to "batch" ready jobs of the given queues (NULL: all
-- queues) and returns them, each 'claimed' by this call alone under one new
-- claim_id shared by the jobs of this call (drawn once per call; each claim
-- of a job still gives it a new one), never one past its max_age. Before
-- claiming, when any lease has run out, it rescues every queue's lost jobs
-- (not only those of the queues asked for); after, it expires those past
-- max_age when the claim came back short or at most once
-- a second per connection. before => ms claims only jobs scheduled at or
-- before it (raquel's dequeue(before=)). now only from a role that may update
-- raquel_jobs; lease refused (naming it) when now + lease would pass the time
-- range's end. durable => false makes the calling transaction commit
-- asynchronously (synchronous_commit = off for that transaction only); NULL,
-- or false in a transaction that has already written (its earlier writes
-- would lose their durability with the claim's), raises
-- invalid_parameter_value naming "durable" and claims nothing. Queue controls
-- (0009_operations): no job of a paused queue is claimed; a queue's claimed
-- jobs never exceed its max_running, and its claims take its per_second
-- tokens. Limited queues are claimed first, each on its own up to what its
-- limits allow, then the unlimited queues (priority order holds within each
-- of these groups).
--
-- How, and why so:
-- - The queue controls are one block, marked "Queue controls", after the
--   rescue and before the claim proper, plus a filter in the all-queues claim
--   and the expiry's queue list. A claim none of whose queues is controlled
--   pays one probe of raquel_queue_settings_controlled_idx, a partial index
--   that holds the controlled queues only.
-- - Priority level by level, highest first. One index probe finds the
--   highest priority among waiting jobs; a range scan of that level
--   (priority = level AND scheduled_at <= now, in scheduled_at order) claims
--   from it and stops at its first not-yet-due job; the next lower level is
--   probed only while the batch is not full. A single scan ordered by
--   (priority DESC, scheduled_at) would instead step over every not-yet-due
--   job of the levels above the first ready one (before PostgreSQL 18's skip
--   scan), that is over all of them when nothing is ready: the idle worker's
--   claim.
-- - One set of static statements per queue-filter shape, so that each keeps
--   its own prepared plan on the index that matches it:
--   raquel_jobs_ready_priority_idx for all queues,
--   raquel_jobs_ready_queue_priority_idx for one queue, and for several
--   queues (up to 16) whichever of the two the data favours. A longer list
--   is claimed by raquel_claim_listed (below, with its reasons).
-- - Rescue is called only when an index probe finds a lease run out, and
--   expiry after the claim, so a claim under a backlog makes no nested
--   function calls: a claim of 10 jobs measured 1.13 ms against 1.32 ms with
--   both sweeps called every time (PostgreSQL 15, alternating calls).
-- - The picked rows are updated by their physical address (ctid) rather than
--   found again through the primary key (one descent of raquel_jobs_pkey per
--   job). This is exact: a row locked by this statement cannot be updated or
--   moved by anyone else until the transaction ends, and when the lock had to
--   follow a concurrent update (READ COMMITTED), the CTE's row is the version
--   it locked, whose ctid is the one returned. The CTE is MATERIALIZED, so it
--   is evaluated once, whatever plan the UPDATE gets, and no job is picked
--   twice. A claim of 1,000 jobs: 75.9k -> 68.6k instructions per job
--   (callgrind, PostgreSQL 18).
-- - durable => false: the claim's commit then does not wait for its WAL flush
--   (about 0.35 ms of a 1.2 ms claim of 10 jobs on a 2-core machine). What it
--   trades, and only if the PostgreSQL server itself crashes: claims
--   committed in that last moment are undone, those jobs are 'queued' again
--   and run again, possibly while the worker that claimed them still runs
--   them (that worker's outcome, fenced by the undone claim_id, is then not
--   recorded). No job is lost and none is left half-claimed: WAL is flushed
--   in order, so any later durable commit makes the claim before it durable
--   too. The Python workers pass false only when told to
--   (subscribe(..., durable_claims=False)).
CREATE FUNCTION raquel_claim(
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
SET enable_seqscan = off
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
    -- queue's lost jobs (0013_many_queues): when it took only the queues
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
                -- own: a new snapshot), over raquel_jobs_lease_idx.
                v_allow := least(v_allow, v_ctl.max_running - (
                    SELECT count(*) FROM raquel_jobs j
                    WHERE j.status = 'claimed' AND j.queue = v_ctl.queue)::integer);
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
                    WHERE j.queue = v_ctl.queue
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                    ORDER BY j.priority DESC, j.scheduled_at
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
                    WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.priority = v_level
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
                        WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                          AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
    ELSIF cardinality(raquel_claim.queues) > 16 THEN
        -- A long list (0013_many_queues): by raquel_claim_listed, which walks
        -- the all-queues index with generic plans.
        RETURN QUERY SELECT * FROM raquel_claim_listed(raquel_claim.queues, raquel_claim.claim_as, v_left,
                                                       v_now, v_upto, v_until, v_claim);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
    ELSE
        -- One probe per queue: the highest level among them.
        v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                    CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                        WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                        ORDER BY j.priority DESC LIMIT 1) AS top);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS MATERIALIZED (
                SELECT j.ctid FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
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
            v_level := (SELECT max(top.priority) FROM unnest(raquel_claim.queues) AS q(name)
                        CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                                              AND j.priority < v_level
                                            ORDER BY j.priority DESC LIMIT 1) AS top);
        END LOOP;
    END IF;

    -- Expiry. The claim above never hands out a job past its max_age; marking
    -- such jobs 'expired' is done here: always when this claim came back
    -- short (the queues look drained, so the call is cheap and an operator
    -- or dequeue() sees expired jobs at once), else at most once a second
    -- per connection (raquel.expired_at, a session setting), so that claims
    -- under a backlog do not pay for it each time. (Queue controls: over every queue
    -- asked for, v_asked, paused and limited ones included.)
    -- Tried in 0013_many_queues and not kept: calling raquel_expire only when
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

-- A claim of a long list of queues (issue 23: "1,000 queues listed
-- explicitly: claim p50 within 1.5x of one queue"). raquel_claim calls
-- raquel_claim_listed for more than 16 queues, after its rescue and queue
-- controls; up to 16 a probe per queue is cheap, and its custom plans serve
-- skewed queues best (tests/sql/test_skewed_plans.py).
-- Measured reason (PostgreSQL 15, 2 cores, 1,000 queues of 300 jobs each, a
-- claim of 10): with raquel_claim's statements for several queues, a worker
-- subscribed to 1 / 100 / 1,000 queues claimed in 1.45 / 2.84 / 7.62 ms
-- (medians, a loaded machine; issue 23 measured 0.54 / 0.97 / 4.11 ms on a
-- quieter one). Of the 1,000-queue claim, the probe of each listed queue for
-- the highest priority read 3,132 buffers (1,000 index descents), and the
-- claim's statement, planned anew at every call with the 1,000 names as a
-- constant, spent 0.5-1.1 ms planning. bench/queues.py measures both shapes
-- (bench/RESULTS.md, "Issue 23: many queues listed explicitly"): claims of
-- 10 from 1,000 spread queues 4.23 -> 1.31 ms with raquel_claim_listed (0.79
-- ms for one queue; 1.24x one queue with the list dumped once by the client,
-- 1.65x with psycopg dumping it at each call), 49 -> 5.0 ms where the listed
-- queues are rare beside a big unlisted one, and a default worker of 1,000
-- queues drained at 0.77x one queue's rate (0.26x with the per-queue
-- probes).
--
-- Guarantees: claims up to "batch" ready jobs of the queues listed, each
-- 'claimed' by this call alone (FOR UPDATE SKIP LOCKED) under claim_id
-- "claim" with lease_expires_at "until", claimed_at "claimed_at" and
-- claimed_by "claim_as", and returns them: ready as raquel_claim means it
-- (status queued or failed, scheduled_at <= upto, not past max_age at
-- claimed_at), highest priority first, then oldest scheduled_at. Internal:
-- only raquel_claim calls it (not executable by PUBLIC).
-- How, and why so (measured on PostgreSQL 15, 1,000 queues of 300 jobs):
-- - raquel_claim's shape for several queues probes each listed queue's index
--   range for the highest priority (1,000 probes, ~3,100 buffers, 2.5-6 ms)
--   and plans `queue = ANY (queues)` anew at every call with the list as a
--   constant (0.5-1.1 ms of planning for 1,000 names).
-- - Here priority levels come from the all-queues index
--   (raquel_jobs_ready_priority_idx: one probe per level, as the all-queues
--   claim does), and each level is walked in scheduled_at order over that
--   index, keeping the jobs of the listed queues: a hashed membership test
--   (`queue IN (SELECT unnest(queues))`, a hash table built once per
--   statement; a plain `= ANY` over a parameter compares with each name in
--   turn, ~10 us per row for 1,000 names). The walk is lazy: it reads the
--   level's jobs only until it has enough of the listed ones.
-- - The walk reads at most v_walk of a level's jobs (256, or 16 per job
--   asked for): the listed queues may be rare among other queues' jobs (the
--   claim of a small queue must not walk a big unlisted one). Cut short, the
--   claim goes on from that level one index probe per listed queue on
--   raquel_jobs_ready_queue_priority_idx (what raquel_claim's shape for
--   several queues costs), in plans no statistics can turn into a walk of
--   the other queues' jobs (see below). raquel_claim's own statement for
--   several queues, custom-planned on the statistics, is not used here: it
--   took 22.8 ms a claim (1,000 listed queues holding 4% of the waiting
--   jobs, interleaved with one big queue's): the planner expected the listed
--   jobs spread along the index, but claims take them from its head, so it
--   walked ever more of the big queue's entries.
-- - The candidates are then locked and updated by ctid, rechecked under the
--   lock (status, level, due, max_age, and the queue the walk read: a
--   re-enqueue under a unique key can move a waiting job to another queue),
--   in scheduled_at order; those another claim holds are skipped, and when
--   that leaves the batch short the walk is read again further (twice the
--   candidates).
-- - plan_cache_mode = force_generic_plan: each statement is planned once
--   per session, never again with the 1,000 names as constants. None of
--   these plans depends on statistics: each has one index that serves its
--   order (tests/sql/test_many_queues.py reads them).
CREATE FUNCTION raquel_claim_listed(
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
    'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index with a hashed membership test, at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';
REVOKE EXECUTE ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid) FROM PUBLIC;

-- Guarantees: the earliest time (ms) at which a job of these queues (NULL:
-- all) becomes claimable: the next scheduled_at of a waiting job or the next
-- lease deadline of a claimed one; NULL when there is none. Workers sleep
-- until then when no notification comes first. Queue controls: a paused
-- queue contributes nothing; a queue at its max_running only its running
-- jobs' lease deadlines (its slots free sooner when a job finishes: the
-- workers that ran them claim again at once; the others wake at their poll
-- interval); a per_second queue whose bucket holds less than a token no time
-- before its next token. So a worker held back sleeps until the engine says
-- the next claim can succeed.
-- Why so: the ready indexes are ordered by priority first, so the earliest
-- scheduled_at is found per priority: a loose index scan (a recursive CTE
-- that jumps from one distinct priority to the next) reads one index entry
-- per distinct priority instead of every waiting job. PL/pgSQL with one
-- static statement per queue-filter shape, as in raquel_claim, each kept as
-- a generic cached plan (plan_cache_mode = force_generic_plan): planning this
-- statement costs more than running it (a SQL function, or custom plans,
-- would plan it again at every call).
-- More than 16 queues: the all-queues index read level by level, as
-- raquel_claim_listed reads it (the function forces generic plans). Measured
-- reason (PostgreSQL 15, 1,000 queues of 300 waiting jobs): the recursive
-- reading of each listed queue's levels made 3,000 index probes (9,003
-- buffers, 13-14 ms a call) where one queue's took 0.08 ms, and a worker
-- calls raquel_next_due whenever a claim comes back short; read so, 4.77 ->
-- 0.55 ms (bench/queues.py).
CREATE FUNCTION raquel_next_due(queues text[] DEFAULT NULL)
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
    v_level  integer;  -- 0013_many_queues: a long list
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
                   SELECT count(*) FROM raquel_jobs j WHERE j.status = 'claimed' AND j.queue = v_ctl.queue) THEN
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
        -- A long list (0013_many_queues): the lease deadlines of its claimed
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

-- Guarantees: extends the lease of each (job_id, claim_id) pair still held by
-- that claim to now + lease ms, and returns the ids renewed. A job missing
-- from the result was rescued or finished: its worker no longer owns it.
-- Arrays of different lengths (or NULL) are refused naming claim_ids, and
-- nothing is renewed; lease refused (naming it) when now + lease would pass
-- the time range's end; now only from a role that may update raquel_jobs.
CREATE FUNCTION raquel_renew_leases(
    job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_renew_leases.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_renew_leases', raquel_renew_leases.now) END;
BEGIN
    IF raquel_renew_leases.job_ids IS NULL OR raquel_renew_leases.claim_ids IS NULL
       OR coalesce(cardinality(raquel_renew_leases.job_ids), 0)
          <> coalesce(cardinality(raquel_renew_leases.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_renew_leases.job_ids), cardinality(raquel_renew_leases.claim_ids)));
    END IF;
    IF raquel_renew_leases.lease IS NULL OR raquel_renew_leases.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('must be > 0 ms, got %s', raquel_renew_leases.lease));
    END IF;
    IF raquel_renew_leases.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_renew_leases.lease));
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET lease_expires_at = v_now + raquel_renew_leases.lease
    FROM unnest(raquel_renew_leases.job_ids, raquel_renew_leases.claim_ids) AS held(id, claim_id)
    WHERE j.id = held.id AND j.claim_id = held.claim_id AND j.status = 'claimed'
    RETURNING j.id;
END;
$$;
COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';
REVOKE EXECUTE ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) FROM PUBLIC;

-- Guarantees: the claim_id of job job_id's running claim when attempt_num is
-- its running attempt (raquel's numbering: a job with `attempts` finished
-- attempts runs attempt attempts + 1); NULL otherwise. Read-only.
-- Why: raquel settles a claimed job by its id and attempt number
-- (resolve(job_id, attempt_num), reject, fail), raquel_pg's outcome functions
-- by claim_id. This turns the one into the other, so the client calls the
-- fenced functions in one statement, e.g.
--   SELECT raquel_complete(id, raquel_attempt_claim(id, n))
-- and an attempt number that is not the running attempt's changes nothing
-- (the fenced function gets NULL and matches no row).
CREATE FUNCTION raquel_attempt_claim(job_id uuid, attempt_num integer)
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
              AND j.attempts + 1 = raquel_attempt_claim.attempt_num);
END;
$$;
COMMENT ON FUNCTION raquel_attempt_claim(uuid, integer) IS
'The claim_id of the job''s current claim when the job is claimed and attempt_num is its running attempt (attempts + 1), else NULL; passing it to raquel_complete/raquel_fail/raquel_reject settles exactly that attempt and nothing else. Changes nothing. SQLSTATE 22023 naming the argument for a NULL job_id or an attempt_num below 1.';
REVOKE EXECUTE ON FUNCTION raquel_attempt_claim(uuid, integer) FROM PUBLIC;
