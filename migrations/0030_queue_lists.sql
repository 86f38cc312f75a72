-- 0030_queue_lists: a worker of a long list of queues registers the list
-- once, and its claims name the list instead of sending it (issue 23, "1,000
-- queues listed explicitly: claim p50 within 1.5x of one queue").
--
-- A claim of a list sent the list with every call, and the server hashed
-- every name at every call: for 1,000 names, 0.044 ms to send and receive
-- the list and 60 us to hash it (0029_claim_listed_hash_join), while the
-- claim's walk then tested some ten jobs against the hash. A claim of 10
-- from 1,000 listed queues took 1.35-1.52x one queue's (bench/RESULTS.md,
-- 2026-12-07).
--
-- Now raquel_queue_list(queues) stores a list once (its names sorted and
-- deduplicated, found again by a digest of them, so a list registered twice
-- is one row) and returns its id, and raquel_claim(queue_list => id) claims
-- from it: the walk looks each job's queue up in raquel_queue_list_members
-- by its primary key, an index probe of a microsecond or so, for the first
-- 32 jobs it reads; a walk longer than that (the listed queues rare among
-- the others' jobs) hashes the members once, as 0029 hashed the list. The
-- worker (raquel_pg/producer_async.py) registers a list of more than 16
-- queues at its first claim. raquel_next_due, raquel_wait_begin and
-- raquel_claimers still take the names: a worker calls them when it has no
-- backlog, or once a second.
--
-- A list is never deleted by raquel_pg: one row per distinct list, and a row
-- per name of it. Deleting one (by hand) makes the claims naming it fail with
-- 22023; the worker then registers its list again.

-- Guarantees: the claims of raquel_claim(queue_list => id) are those of
-- raquel_claim(queues => the list's names), the queue controls included;
-- raquel_claim's signature gains queue_list (its privileges are kept).

CREATE TABLE raquel_queue_lists (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest        bytea  NOT NULL UNIQUE,
    size          integer NOT NULL,
    registered_at bigint NOT NULL
);
COMMENT ON TABLE raquel_queue_lists IS
    'Lists of queues registered by raquel_queue_list: one row per distinct list (digest: SHA-256 of its names, sorted and deduplicated, each prefixed by its length in bytes); raquel_claim(queue_list => id) claims from one.';

CREATE TABLE raquel_queue_list_members (
    list_id bigint      NOT NULL REFERENCES raquel_queue_lists (id) ON DELETE CASCADE,
    queue   raquel_name NOT NULL,
    PRIMARY KEY (list_id, queue)
);
COMMENT ON TABLE raquel_queue_list_members IS
    'The queues of each list of raquel_queue_lists; a claim of a list looks the queue of each job it reads up here.';

-- Guarantees: returns the id of the list of these queues (order and
-- repetitions do not matter), registering it when no list has the same
-- names; two calls with the same names get the same id, even at the same
-- time. 22023 naming queues for NULL, an empty list, a NULL name, or a name
-- that is empty or longer than 1000 bytes; nothing written then.
CREATE FUNCTION raquel_queue_list(queues text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_names  text[];
    v_digest bytea;
    v_id     bigint;
BEGIN
    IF raquel_queue_list.queues IS NULL OR cardinality(raquel_queue_list.queues) = 0 THEN
        PERFORM raquel_invalid('raquel_queue_list', 'queues',
            format('must name at least one queue, got %s', coalesce(raquel_queue_list.queues::text, 'NULL')));
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_queue_list.queues) AS q(name)
               WHERE q.name IS NULL OR q.name = '' OR octet_length(q.name) > 1000) THEN
        PERFORM raquel_invalid('raquel_queue_list', 'queues',
            'each queue name must be non-empty text of at most 1000 bytes (got NULL, an empty name or a longer one)');
    END IF;
    v_names := ARRAY(SELECT d.name FROM (SELECT DISTINCT q.name FROM unnest(raquel_queue_list.queues) AS q(name)) AS d
                     ORDER BY d.name COLLATE "C");
    v_digest := sha256(convert_to(
        (SELECT string_agg(octet_length(n.name)::text || ':' || n.name, '' ORDER BY n.i)
         FROM unnest(v_names) WITH ORDINALITY AS n(name, i)), 'UTF8'));
    INSERT INTO raquel_queue_lists (digest, size, registered_at)
    VALUES (v_digest, cardinality(v_names), raquel_now_ms())
    ON CONFLICT (digest) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- Registered before (or by a transaction that committed while this
        -- one waited for it).
        v_id := (SELECT l.id FROM raquel_queue_lists l WHERE l.digest = v_digest);
        IF v_id IS NULL THEN
            RAISE EXCEPTION 'raquel_queue_list: the list was registered by a transaction this one cannot see yet'
                USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
        END IF;
        RETURN v_id;
    END IF;
    INSERT INTO raquel_queue_list_members (list_id, queue) SELECT v_id, n.name FROM unnest(v_names) AS n(name);
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION raquel_queue_list(text[]) IS
    'The id of the list of these queues (order and repetitions do not matter), registered at the first call: raquel_claim(queue_list => id) claims from it without sending the names. 22023 naming queues for NULL, an empty list, a NULL name, or a name empty or longer than 1000 bytes.';
REVOKE EXECUTE ON FUNCTION raquel_queue_list(text[]) FROM PUBLIC;

-- raquel_claim_listed (0029_claim_listed_hash_join) gains queue_list: a
-- registered list, looked up in its members instead of hashed.
DROP FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid);

-- Guarantees: as 0029_claim_listed_hash_join's raquel_claim_listed; given
-- queue_list (queues NULL), the queues of that list.
CREATE FUNCTION raquel_claim_listed(
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
            IF raquel_claim_listed.queue_list IS NULL THEN
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
    'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (queues, or the registered list queue_list) (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index keeping the listed queues'' jobs by a hash join (a hash table of the names built once per statement), or, for a registered list, by an index probe of its members for each of the first 32 jobs, at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';
REVOKE EXECUTE ON FUNCTION raquel_claim_listed(text[], text, integer, bigint, bigint, bigint, uuid, bigint) FROM PUBLIC;

-- raquel_claim (0027_claim_probes) gains queue_list. Its EXECUTE grants are
-- copied to the new signature (raquel-pg grant --worker gave them by name).
CREATE TEMPORARY TABLE raquel_claim_grants ON COMMIT DROP AS
SELECT a.grantee, a.is_grantable
FROM pg_proc p, aclexplode(p.proacl) AS a
WHERE p.oid = 'raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint)'::regprocedure
  AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;
DROP FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint);

-- Guarantees: as 0027_claim_probes' raquel_claim; queue_list names a list
-- registered by raquel_queue_list, claimed as its names would be (22023
-- naming queue_list for an id no list has, or when queues is given too).
CREATE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL,
    durable  boolean DEFAULT true,
    before   bigint  DEFAULT NULL,
    queue_list bigint DEFAULT NULL
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
    v_asked  text[] := raquel_claim.queues;  -- the queues asked for (the expiry's; a list's: when needed)
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
    -- A registered list of queues (raquel_queue_list), instead of queues.
    IF raquel_claim.queue_list IS NOT NULL THEN
        IF raquel_claim.queues IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'queue_list',
                'give queues or queue_list, not both');
        END IF;
        IF NOT EXISTS (SELECT FROM raquel_queue_lists l WHERE l.id = raquel_claim.queue_list) THEN
            PERFORM raquel_invalid('raquel_claim', 'queue_list',
                format('no queue list %s (register the list with raquel_queue_list(queues))', raquel_claim.queue_list));
        END IF;
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
    ELSIF cardinality(v_held) > 0 AND raquel_claim.queue_list IS NOT NULL THEN
        -- Only those of the list.
        v_held := ARRAY(SELECT q.name FROM unnest(v_held) AS q(name)
                        WHERE EXISTS (SELECT FROM raquel_queue_list_members m
                                      WHERE m.list_id = raquel_claim.queue_list AND m.queue = q.name));
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
        IF raquel_claim.queue_list IS NOT NULL THEN
            -- A list: its names but the held ones, claimed as a list sent
            -- with the call (the held queues' settings make such claims rare).
            raquel_claim.queues := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                                         WHERE m.list_id = raquel_claim.queue_list AND m.queue <> ALL (v_held));
            v_asked := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                             WHERE m.list_id = raquel_claim.queue_list);
            raquel_claim.queue_list := NULL;
        ELSIF raquel_claim.queues IS NULL THEN
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
    ELSIF raquel_claim.queue_list IS NOT NULL THEN
        -- A registered list (0030_queue_lists): by raquel_claim_listed, which
        -- tests each job it walks by an index probe of the list's members.
        PERFORM set_config('enable_sort', 'on', true);
        RETURN QUERY SELECT * FROM raquel_claim_listed(NULL, raquel_claim.claim_as, v_left, v_now, v_upto,
                                                       v_until, v_claim, raquel_claim.queue_list);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
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
        IF raquel_claim.queue_list IS NOT NULL THEN
            v_asked := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                             WHERE m.list_id = raquel_claim.queue_list);
        END IF;
        PERFORM raquel_expire(v_asked, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint, bigint) IS
    'Claims up to batch (1 .. 134217727) ready jobs (scheduled at or before now, and before when given), the highest priority then the oldest first, of the queues given (queues, or a list registered by raquel_queue_list given as queue_list, not both; neither: every queue), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range. Bad arguments: 22023 naming them, nothing written. The rows come back in no particular order (the clients sort them by priority, then scheduled_at).';
REVOKE EXECUTE ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint, bigint) FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM raquel_claim_grants LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint, bigint) TO %s%s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END;
$$;
