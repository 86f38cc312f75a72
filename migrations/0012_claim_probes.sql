-- 0012_claim_probes: the claim's probes in one statement (issue 23's wake-up
-- goal: commit -> handler start p50 <= 1 ms, p99 <= 3 ms; the one-job claim
-- of a woken worker is most of that path).
--
-- Guarantees: 0006_claim's raquel_claim (header and guarantees there),
-- unchanged: each job to one claim, highest priority then oldest
-- scheduled_at first (jobs not yet due at a higher priority never hold
-- back ready ones), never past max_age, never scheduled after before,
-- every queue's lost leases rescued before the claim, queue controls
-- (paused, max_running, per_second), the expiry sweep, durable, the
-- arguments' checks (22023 naming the argument), one new claim_id per call.
-- What changes is how many statements and expressions a claim runs.
--
-- Measured reason (PostgreSQL 15, the shared 2-core machine; bench/RESULTS.md,
-- "Issue 23: the claim's probes in one statement"): a woken worker's
-- one-job claim ran four queries inside the function (the rescue's probe of
-- the oldest lease, the read of the paused or limited queues, the probe of
-- the highest priority level, the claim's UPDATE), each with its executor
-- started and ended, and some twenty PL/pgSQL expressions, each prepared
-- again in every transaction (a claim is a transaction of its own). The
-- three probes are now one statement (two statements for a claim of one
-- queue or of all queues, three for a longer list, where it was four and
-- more), the arguments are checked in one expression while they pass, and
-- durable => false sets synchronous_commit by an assignment (an
-- expression) rather than PERFORM (a query). The gain is small: 1-3% of
-- the claim's round trip and of its backend CPU (medians of interleaved
-- calls of this function and 0006_claim's in one database). A function
-- with none of the claim's checks, probes or sweeps (one UPDATE) still
-- took about 45 us more than the same UPDATE as a prepared statement, and
-- about 100 us less backend CPU than this claim after 15 ms idle: the
-- PL/pgSQL call itself and the three probes' index reads are what remains.
-- Tried and not kept: the three probes as init plans of the claim's UPDATE,
-- with the code as before only when they turned it away or it came back
-- short (one statement for the woken worker's claim): 20-35 us quicker for
-- a one-job claim, but 40-70 us slower for a claim that finds nothing (the
-- UPDATE's executor is started for nothing before the code as before
-- runs), which a worker makes twice per job when it then waits.

-- raquel_claim, restated: 0006_claim's, with its three probes in one
-- statement and its arguments checked in one expression while they pass.
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
    v_asked  text[];                         -- the queues asked for, when the controls change
                                             -- raquel_claim.queues (the expiry's)
    v_held   text[];                         -- of those, the paused or limited ones
    v_skip   text[];                         -- left out of the all-queues claim (NULL: none)
    v_ctl    record;
    v_allow  integer;
    v_tokens double precision;
    v_oldest bigint;                         -- the oldest lease's end (the rescue's probe)
    v_set    text;
BEGIN
    -- The arguments' checks, in one expression while they all pass (each
    -- expression of a function is prepared again in every transaction).
    IF (raquel_claim.batch >= 1 AND raquel_claim.lease > 0 AND raquel_claim.lease <= 253402214399999 - v_now
        AND raquel_claim.durable IS NOT NULL) IS NOT TRUE THEN
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
    END IF;
    IF NOT raquel_claim.durable THEN
        -- Only a transaction that has written nothing yet: its earlier writes
        -- (an enqueue, say) would lose their durability with the claim's.
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'durable',
                'false needs a transaction of its own (this one has already written)');
        END IF;
        -- An assignment rather than PERFORM: an expression, not a query.
        v_set := set_config('synchronous_commit', 'off', true);
    END IF;

    -- Rescue only when the oldest lease has run out: min() over
    -- raquel_jobs_lease_idx, a plan the planner keeps whatever its
    -- statistics say (an EXISTS probe let it pick a sequential scan on a
    -- table never analyzed). status is read from the row, so this is a plain
    -- index scan, which marks the entries of finished claims dead as it
    -- passes them.
    -- The probe reads every queue's leases, so the rescue takes every
    -- queue's lost jobs (since the many-queues work of issue 23): when it took only the queues
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
    -- Since claim_probes (issue 23): this probe, the queue controls' read of the
    -- paused or limited queues (below) and, for one queue or all queues, the
    -- probe of the highest priority among the waiting jobs (the claim's
    -- first level, below) are one statement, each an init plan of it: a
    -- claim of one queue or of all queues with no lease run out and none of
    -- its queues controlled makes two statements (this one and the claim's
    -- UPDATE), where it made four. Its plan is the three probes' plans as
    -- they were.
    IF raquel_claim.queues IS NULL THEN
        SELECT (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'),
               ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                     WHERE s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL),
               (SELECT j.priority FROM raquel_jobs j
                WHERE j.status IN ('queued', 'failed')
                ORDER BY j.priority DESC LIMIT 1)
        INTO v_oldest, v_held, v_level;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        SELECT (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'),
               ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                     WHERE s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL),
               (SELECT j.priority FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                ORDER BY j.priority DESC LIMIT 1)
        INTO v_oldest, v_held, v_level;
    ELSE
        SELECT (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'),
               ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                     WHERE s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL)
        INTO v_oldest, v_held;
    END IF;
    IF v_oldest <= v_now THEN
        PERFORM raquel_rescue(NULL, raquel_claim.now);
        IF raquel_claim.now IS NULL THEN
            v_now := raquel_now_ms();
        END IF;
        -- The jobs rescued may be of a higher priority: the first level
        -- again (the claim of several queues probes its own).
        IF raquel_claim.queues IS NULL THEN
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed')
                        ORDER BY j.priority DESC LIMIT 1);
        ELSIF cardinality(raquel_claim.queues) = 1 THEN
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                        ORDER BY j.priority DESC LIMIT 1);
        END IF;
    END IF;
    -- The lease's end never passes the last time of the range (a clock read
    -- again above may be a few ms past the one the lease was checked at).
    v_until := v_now + least(raquel_claim.lease, 253402214399999 - v_now);
    -- before: only jobs scheduled at or before it (raquel's dequeue(before=)).
    v_upto := CASE WHEN raquel_claim.before < v_now THEN raquel_claim.before ELSE v_now END;

    -- Queue controls -- begin ----------------------------------------
    -- v_held: the queues that are paused or limited, read with the rescue's
    -- probe above (raquel_queue_settings_controlled_idx, which holds those
    -- queues only). That read filters by no claim's queues: one that did
    -- would be planned again at every call, its custom plan looking
    -- cheaper. When no queue is controlled, this block ends here and the
    -- claim below is 0006_claim's.
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
            v_asked := raquel_claim.queues;
            raquel_claim.queues := ARRAY(SELECT q.name FROM unnest(raquel_claim.queues) AS q(name)
                                         WHERE q.name <> ALL (v_held));
            IF cardinality(raquel_claim.queues) = 1 THEN
                -- One queue left of several: the claim of one queue below
                -- takes its first level from here, not from the probe.
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = raquel_claim.queues[1] AND j.status IN ('queued', 'failed')
                            ORDER BY j.priority DESC LIMIT 1);
            END IF;
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
        -- The first level: the probe's (above).
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
        -- The first level: the probe's, or the controls' when they left
        -- one queue of several (above).
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
        -- A long list (more than 16 queues): by raquel_claim_listed, which walks
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
    -- Tried with the many-queues work and not kept: calling raquel_expire only when
    -- a probe of raquel_jobs_expiry_idx found a job past its max_age. The
    -- one-job claim of a woken worker measured 0.468 -> 0.480 ms and 0.458
    -- -> 0.449 ms (medians of 1,000 and 2,000 alternating calls, PostgreSQL
    -- 15): the nested call costs about what the probe does.
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        PERFORM raquel_expire(CASE WHEN v_asked IS NULL THEN raquel_claim.queues ELSE v_asked END, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range.';
REVOKE EXECUTE ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) FROM PUBLIC;
