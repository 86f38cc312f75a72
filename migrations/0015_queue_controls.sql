-- queue_controls: operators steer whole queues, across every worker on
-- every host, from the engine: pause and resume, a global limit on the jobs
-- of a queue running at once (max_running), a limit on how fast its claims
-- start (per_second), and how long finished jobs are kept (retention).
-- Enforced inside raquel_claim, so they hold whatever client claims.
--
-- 1. raquel_queue_settings: one row per queue an operator set something for
--    (or whose finished jobs raquel_prune deleted: it counts them there).
--    raquel_retention_default: the retention of queues without their own.
-- 2. raquel_pause_queue / raquel_resume_queue: a paused queue accepts
--    enqueues; claims that begin after the pause committed skip it; running
--    jobs finish as usual. A resume NOTIFYs the idle workers waiting for the
--    queue (raquel_notify_ready, the enqueue triggers' channel).
-- 3. raquel_set_queue_limits(queue, max_running, per_second): NULL is no
--    limit. max_running caps the queue's claimed jobs (status 'claimed',
--    whatever worker or host holds them). per_second is a token bucket kept
--    in the settings row: it refills at per_second tokens a second up to
--    greatest(1, per_second / 10) tokens, and each claimed job takes one, so
--    over any second at most per_second plus one bucket of claims start.
-- 4. raquel_claim: the change is one block, marked "Queue controls",
--    after the rescue and before the claim proper (see there), plus a filter
--    in the all-queues claim and the expiry's queue list. A claim none of
--    whose queues is controlled pays one probe of a partial index that holds
--    the controlled queues only.
-- 5. raquel_next_due: a worker held back sleeps until the engine says the
--    next claim can succeed: a paused queue's jobs are never due, a
--    per_second queue's next job no sooner than its next token, and a queue
--    at max_running not before one of its running jobs' leases runs out
--    (its slots free sooner when a job finishes: the workers that ran them
--    claim again at once; the others wake at their poll interval).
-- 6. raquel_set_retention, raquel_prune: finished jobs (success, cancelled,
--    expired, exhausted) older than their queue's retention (else the
--    default; NULL keeps them, the default) are deleted in batches, one
--    sweep at a time across all sessions (a transaction advisory lock).
-- 7. raquel_queue_controls(): what is set, per queue; raquel_queue_stats
--    gets paused, max_running and per_second columns.
--
-- Like every migration, it runs with search_path = raquel,
-- pg_catalog, pg_temp: its objects land in schema raquel, and the runner
-- makes their stand-ins in the install schema.

CREATE TABLE raquel_queue_settings (
    queue        raquel_name      PRIMARY KEY,
    paused       boolean          NOT NULL DEFAULT false,
    max_running  integer          CHECK (max_running >= 1),
    per_second   double precision CHECK (per_second > 0 AND per_second < 'Infinity'),
    -- The token bucket of per_second: tokens as of tokens_at (ms).
    tokens       double precision NOT NULL DEFAULT 0,
    tokens_at    bigint           NOT NULL DEFAULT 0,
    retention_ms bigint           CHECK (retention_ms >= 0),
    pruned       bigint           NOT NULL DEFAULT 0
);
-- The queues whose claims are held back or paused: what every claim probes.
CREATE INDEX raquel_queue_settings_controlled_idx ON raquel_queue_settings (queue)
    WHERE paused OR max_running IS NOT NULL OR per_second IS NOT NULL;
COMMENT ON TABLE raquel_queue_settings IS
    'raquel_pg per-queue controls: paused, max_running (claimed jobs at once), per_second (claims started per second, a token bucket: tokens as of tokens_at), retention_ms (finished jobs kept; NULL: the default) and pruned (finished jobs raquel_prune deleted). Change it through raquel_pause_queue, raquel_resume_queue, raquel_set_queue_limits and raquel_set_retention.';

CREATE TABLE raquel_retention_default (
    single       boolean PRIMARY KEY DEFAULT true CHECK (single),
    retention_ms bigint  CHECK (retention_ms >= 0)
);
INSERT INTO raquel_retention_default (retention_ms) VALUES (NULL);
COMMENT ON TABLE raquel_retention_default IS
    'raquel_pg: the retention of finished jobs of queues without their own (one row; NULL keeps them forever, the default). Set by raquel_set_retention(NULL, ...).';

-- Guarantees: raises 22023 naming "queue" (for function fn) unless queue is
-- a queue name (non-empty, at most 1000 bytes); otherwise does nothing.
CREATE FUNCTION raquel_check_queue(fn text, queue text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF raquel_check_queue.queue IS NULL OR raquel_check_queue.queue = ''
       OR octet_length(raquel_check_queue.queue) > 1000 THEN
        PERFORM raquel_invalid(raquel_check_queue.fn, 'queue',
            format('must be a queue name (non-empty, at most 1000 bytes), got %s',
                   coalesce(quote_literal(left(raquel_check_queue.queue, 40)), 'NULL')));
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_check_queue(text, text) IS
    'Internal: 22023 naming "queue" (and the calling function fn) unless queue is a queue name (non-empty, at most 1000 bytes).';

-- Guarantees: the queue is paused from this transaction's commit on (claims
-- that begin after it skip the queue; enqueues and running jobs go on);
-- returns true when this call paused it, false when it was paused already.
CREATE FUNCTION raquel_pause_queue(queue text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_was boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_pause_queue', raquel_pause_queue.queue);
    SELECT s.paused INTO v_was FROM raquel_queue_settings s
    WHERE s.queue = raquel_pause_queue.queue FOR UPDATE;
    INSERT INTO raquel_queue_settings AS s (queue, paused) VALUES (raquel_pause_queue.queue, true)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET paused = true;
    RETURN NOT coalesce(v_was, false);
END;
$$;
COMMENT ON FUNCTION raquel_pause_queue(text) IS
    'Pauses a queue: claims that begin after this commits skip it; it still accepts enqueues and its running jobs finish as usual. True when this call paused it, false when it was paused already. 22023 naming queue for a NULL, empty or over-long name.';

-- Guarantees: the queue is no longer paused; returns true when it was, and
-- then NOTIFYs (at commit) the idle workers registered for the queue, as an
-- enqueue does; false, nothing written, when it was not paused.
CREATE FUNCTION raquel_resume_queue(queue text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_resume_queue', raquel_resume_queue.queue);
    UPDATE raquel_queue_settings s SET paused = false
    WHERE s.queue = raquel_resume_queue.queue AND s.paused
    RETURNING true INTO v_found;
    IF v_found THEN
        PERFORM raquel_notify_ready(ARRAY[raquel_resume_queue.queue]);
    END IF;
    RETURN coalesce(v_found, false);
END;
$$;
COMMENT ON FUNCTION raquel_resume_queue(text) IS
    'Resumes a paused queue: claims take its jobs again, and the idle workers waiting for it are notified at commit (NOTIFY raquel_jobs). True when it was paused, false (nothing written) otherwise. 22023 naming queue for a bad name.';

-- Guarantees: the queue's limits become exactly the ones given (NULL: no
-- such limit): max_running >= 1 caps its claimed jobs across every worker,
-- per_second > 0 (finite) caps how fast its claims start (token bucket, see
-- the head of this file; it starts full). Bad values raise 22023 naming the
-- argument and write nothing. Idle workers waiting for the queue are
-- notified at commit (a limit may have been raised).
CREATE FUNCTION raquel_set_queue_limits(
    queue       text,
    max_running integer          DEFAULT NULL,
    per_second  double precision DEFAULT NULL,
    now         bigint           DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_set_queue_limits.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_set_queue_limits', raquel_set_queue_limits.now) END;
BEGIN
    PERFORM raquel_check_queue('raquel_set_queue_limits', raquel_set_queue_limits.queue);
    IF raquel_set_queue_limits.max_running < 1 THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'max_running',
            format('must be >= 1 or NULL (no limit), got %s', raquel_set_queue_limits.max_running));
    END IF;
    IF NOT (raquel_set_queue_limits.per_second > 0 AND raquel_set_queue_limits.per_second < 'Infinity') THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'per_second',
            format('must be a finite number > 0 or NULL (no limit), got %s', raquel_set_queue_limits.per_second));
    END IF;
    INSERT INTO raquel_queue_settings AS s (queue, max_running, per_second, tokens, tokens_at)
    VALUES (raquel_set_queue_limits.queue, raquel_set_queue_limits.max_running,
            raquel_set_queue_limits.per_second,
            greatest(1, coalesce(raquel_set_queue_limits.per_second, 0) / 10), v_now)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET
        max_running = excluded.max_running,
        per_second = excluded.per_second,
        -- A new rate starts with a full bucket; the same rate keeps its tokens.
        tokens = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens
                      ELSE excluded.tokens END,
        tokens_at = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens_at
                         ELSE excluded.tokens_at END;
    PERFORM raquel_notify_ready(ARRAY[raquel_set_queue_limits.queue]);
END;
$$;
COMMENT ON FUNCTION raquel_set_queue_limits(text, integer, double precision, bigint) IS
    'Sets a queue''s limits to exactly these (NULL: none): max_running (>= 1) caps its claimed jobs at once across all workers and hosts; per_second (> 0) caps how fast its claims start (token bucket of greatest(1, per_second/10) tokens: over any second at most per_second plus one bucket). Enforced by raquel_claim. 22023 naming the argument for a bad value, nothing written. "now" only from roles that may update raquel_jobs.';

-- Guarantees: finished jobs of the queue (NULL: of every queue without a
-- retention of its own) are kept for "keep" after they finished, then
-- raquel_prune may delete them; keep NULL keeps them forever. A negative or
-- infinite keep raises 22023 naming it and writes nothing.
CREATE FUNCTION raquel_set_retention(queue text, keep interval)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ms bigint;
BEGIN
    IF raquel_set_retention.queue IS NOT NULL THEN
        PERFORM raquel_check_queue('raquel_set_retention', raquel_set_retention.queue);
    END IF;
    IF raquel_set_retention.keep < interval '0' OR NOT isfinite(raquel_set_retention.keep) THEN
        PERFORM raquel_invalid('raquel_set_retention', 'keep',
            format('must be a finite interval >= 0 or NULL (keep forever), got %s', raquel_set_retention.keep));
    END IF;
    v_ms := floor(extract(epoch FROM raquel_set_retention.keep) * 1000)::bigint;
    IF raquel_set_retention.queue IS NULL THEN
        UPDATE raquel_retention_default SET retention_ms = v_ms;
    ELSE
        INSERT INTO raquel_queue_settings AS s (queue, retention_ms) VALUES (raquel_set_retention.queue, v_ms)
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET retention_ms = excluded.retention_ms;
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_set_retention(text, interval) IS
    'Keeps the finished jobs (success, cancelled, expired, exhausted) of queue (NULL: of every queue without its own setting) for keep after they finished; older ones are deleted by raquel_prune (and the workers'' maintenance). keep NULL keeps them forever (the default). 22023 naming keep for a negative or infinite interval, naming queue for a bad name.';

-- Guarantees: deletes at most batch_size finished jobs (success, cancelled,
-- expired, exhausted) that finished longer ago than their queue's retention
-- (else the default), oldest first, and returns how many; adds them to their
-- queue's "pruned" count in raquel_queue_settings. Returns 0 when no
-- retention is set, NULL (nothing done) while another transaction is
-- pruning: one sweep at a time (pg_try_advisory_xact_lock, released at
-- commit). Rows other transactions have locked are skipped.
CREATE FUNCTION raquel_prune(batch_size integer DEFAULT 1000, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_now     bigint := CASE WHEN raquel_prune.now IS NULL THEN raquel_now_ms()
                             ELSE raquel_clock('raquel_prune', raquel_prune.now) END;
    v_default bigint := (SELECT d.retention_ms FROM raquel_retention_default d);
    v_least   bigint;
    v_count   bigint;
BEGIN
    IF raquel_prune.batch_size IS NULL OR raquel_prune.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_prune', 'batch_size',
            format('must be >= 1, got %s', coalesce(raquel_prune.batch_size::text, 'NULL')));
    END IF;
    -- The shortest retention in force: no job finished after now - v_least
    -- is old enough, so the scan of raquel_jobs_finished_idx stops there.
    v_least := least(v_default, (SELECT min(s.retention_ms) FROM raquel_queue_settings s));
    IF v_least IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT pg_try_advisory_xact_lock(7021557117354893313) THEN  -- the raquel prune lock
        RETURN NULL;
    END IF;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        LEFT JOIN raquel_queue_settings s ON s.queue = j.queue
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.finished_at < v_now - v_least
          AND j.finished_at < v_now - coalesce(s.retention_ms, v_default)
        ORDER BY j.finished_at
        LIMIT raquel_prune.batch_size
        FOR UPDATE OF j SKIP LOCKED
    ), gone AS (
        DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id RETURNING j.queue
    ), counted AS (
        SELECT g.queue, count(*) AS n FROM gone g GROUP BY g.queue
    ), noted AS (
        INSERT INTO raquel_queue_settings AS s (queue, pruned)
        SELECT c.queue, c.n FROM counted c ORDER BY c.queue
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET pruned = s.pruned + excluded.pruned
        RETURNING 1
    )
    SELECT coalesce(sum(c.n), 0) INTO v_count FROM counted c;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION raquel_prune(integer, bigint) IS
    'Deletes at most batch_size finished jobs older than their queue''s retention (raquel_set_retention; else the default), oldest first; returns how many and adds them to the queue''s pruned count. 0 when no retention is set; NULL, nothing done, while another transaction prunes (one sweep at a time). 22023 naming batch_size when it is below 1. "now" only from roles that may update raquel_jobs.';

-- Guarantees: one row per queue with a setting (paused, limits, retention
-- or a pruned count), sorted by queue, then, when a default retention is
-- set, one row with queue NULL carrying it. Reads nothing else.
CREATE FUNCTION raquel_queue_controls()
RETURNS TABLE (
    queue        text,
    paused       boolean,
    max_running  integer,
    per_second   double precision,
    retention_ms bigint,
    pruned       bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT * FROM (
        SELECT s.queue::text, s.paused, s.max_running, s.per_second, s.retention_ms, s.pruned
        FROM raquel_queue_settings s
        UNION ALL
        SELECT NULL, false, NULL, NULL, d.retention_ms, NULL
        FROM raquel_retention_default d WHERE d.retention_ms IS NOT NULL
    ) AS c
    ORDER BY c.queue NULLS LAST
$$;
COMMENT ON FUNCTION raquel_queue_controls() IS
    'Per queue with a setting: paused, max_running, per_second, retention_ms (NULL: the default), pruned (finished jobs raquel_prune deleted), by queue; then, when a default retention is set, a row with queue NULL carrying it. Read-only.';

-- Guarantees: as in 0006_claim (up to "batch" ready jobs of the given queues,
-- highest priority first then oldest scheduled_at, each claimed by this call
-- alone under one new claim_id, never one past its max_age; rescue and
-- expiry as before; durable; before => ms; now only from a role
-- that may update raquel_jobs; lease refused when now + lease would pass
-- the time range's end). New here: no job of a paused queue is claimed;
-- a queue's claimed jobs never exceed its max_running, and its claims take
-- its per_second tokens (raquel_set_queue_limits). Limited queues are
-- claimed first, each on its own up to what its limits allow, then the
-- unlimited queues (priority order holds within each of these groups).
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
    -- The sweeps get the caller's own now (NULL: they read the clock), so
    -- that they check it as the claim did; after a rescue on the real clock,
    -- the claim reads the clock again, so the jobs just rescued (scheduled
    -- at the rescue's now) are claimable by this call.
    IF (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed') <= v_now THEN
        PERFORM raquel_rescue(raquel_claim.queues, raquel_claim.now);
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
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        PERFORM raquel_expire(v_asked, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range.';

-- Guarantees: as in 0006_claim (the earliest time, ms, at which a job of these
-- queues (NULL: all) becomes claimable: a waiting job's scheduled_at or a
-- claimed job's lease deadline; NULL when there is none). New here: the
-- time the queue controls permit: a paused queue contributes nothing; a
-- queue at its max_running only its running jobs' lease deadlines; a
-- per_second queue whose bucket holds less than a token no time before its
-- next token.
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

-- The stats view shows the controls: columns appended (a view keeps its
-- existing columns in place).
CREATE OR REPLACE VIEW raquel_queue_stats AS
SELECT s.queue, s.total, s.queued, s.claimed, s.success, s.failed, s.cancelled, s.expired,
       s.exhausted, s.ready, s.scheduled, s.lease_expired,
       s.oldest_ready_age_ms * interval '1 millisecond' AS oldest_ready_age,
       coalesce(c.paused, false) AS paused, c.max_running, c.per_second
FROM raquel_stats() s
LEFT JOIN raquel_queue_settings c ON c.queue = s.queue;
COMMENT ON VIEW raquel_queue_stats IS
    'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired (claimed, lease run out: a dead or hung worker), oldest_ready_age (interval, NULL when nothing is ready), and its controls: paused, max_running, per_second (NULL: no limit). The same numbers as raquel_stats().';

REVOKE EXECUTE ON FUNCTION raquel_check_queue(text, text), raquel_pause_queue(text), raquel_resume_queue(text),
    raquel_set_queue_limits(text, integer, double precision, bigint), raquel_set_retention(text, interval),
    raquel_prune(integer, bigint), raquel_queue_controls() FROM PUBLIC;
