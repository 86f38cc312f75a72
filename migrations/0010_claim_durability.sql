-- 0010_claim_durability: a claim may commit without waiting for its WAL flush.
--
-- A claim is a write, so its commit waits until its WAL record is on disk
-- (synchronous_commit, PostgreSQL's default): on this project's 2-core
-- machine that flush was about 0.35 ms of a 1.2 ms claim of 10 jobs, and a
-- worker with few slots waits for it before each batch starts. With
-- durable => false the claim's transaction commits asynchronously
-- (synchronous_commit = off for that transaction only): PostgreSQL replies at
-- once and its WAL writer flushes the record within 3 x wal_writer_delay
-- (600 ms by default).
--
-- What it trades, and only if the PostgreSQL server itself crashes (or its
-- machine loses power): claims committed in that last moment are undone.
-- Those jobs are 'queued' again, as they were before the claim, and run
-- again, possibly while the worker that claimed them is still running them;
-- that worker's outcome, fenced by the undone claim_id, is then not recorded.
-- No job is lost and none is left half-claimed: WAL is flushed in order, so
-- any later durable commit (an outcome, an enqueue) makes the claim before it
-- durable too. Jobs still run at least once; a server crash can make some run
-- twice. A worker crash changes nothing: the claim is visible and leased
-- exactly as a durable one.
--
-- The setting lasts until the end of the calling transaction, so false is
-- refused in a transaction that has already written (its earlier writes
-- would lose their durability with the claim's). The Python workers claim in
-- transactions of their own (autocommit) and pass false only when told to
-- (subscribe(..., durable_claims=False)); the default stays true.
--
-- A new parameter changes the signature: the old function is dropped, and its
-- EXECUTE grants (raquel_pg/roles.sql's worker and operator roles) are
-- copied to the new one first, so an upgrade keeps every role working.

-- Guarantees: as in 0008 (claim up to "batch" ready jobs, highest priority
-- first, each to this call alone, after rescuing what is due in these
-- queues; jobs past max_age are expired, never claimed). New: durable =>
-- false makes the calling transaction commit asynchronously (see above);
-- NULL, or false in a transaction that has already written, raises
-- invalid_parameter_value naming "durable" and claims nothing.
CREATE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL,
    durable  boolean DEFAULT true
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   bigint := coalesce(raquel_claim.now, raquel_now_ms());
    v_left  integer := raquel_claim.batch;
    v_level integer;
    v_count integer;
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch < 1 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch', format('must be >= 1, got %s', raquel_claim.batch));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease', format('must be > 0 ms, got %s', raquel_claim.lease));
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
    IF (SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed') <= v_now THEN
        PERFORM raquel_rescue(raquel_claim.queues, v_now);
    END IF;

    IF raquel_claim.queues IS NULL THEN
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
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
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = raquel_claim.queues[1] AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
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
            WITH picked AS (
                SELECT j.id FROM raquel_jobs j
                WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = v_level
                  AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
                  AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                ORDER BY j.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED
            )
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
            FROM picked WHERE j.id = picked.id
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
    -- under a backlog do not pay for it each time.
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        PERFORM raquel_expire(raquel_claim.queues, v_now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;
-- The old function's grants, onto the new one, then the old one goes. A new
-- function is executable by PUBLIC; the old one was not (0006), so PUBLIC
-- keeps EXECUTE only if it had it.
DO $$
DECLARE
    v_old regprocedure := 'raquel_claim(text[], text, integer, bigint, bigint)'::regprocedure;
    v_new regprocedure := 'raquel_claim(text[], text, integer, bigint, bigint, boolean)'::regprocedure;
    v_grantee text;
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_new);
    FOR v_grantee IN
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
        FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) AS a
        WHERE p.oid = v_old AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_new, v_grantee);
    END LOOP;
    EXECUTE format('DROP FUNCTION %s', v_old);
END;
$$;
