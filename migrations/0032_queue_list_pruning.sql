-- 0032_queue_list_pruning: registered lists of queues no worker has used for
-- 7 days are deleted by raquel_prune (the workers' maintenance).
--
-- 0030_queue_lists kept every list registered, forever: one row per distinct
-- list and one per name of it. A deployment whose workers' lists change
-- (queues per tenant, added and dropped) grew both tables without bound. Now
-- a list records when a worker last registered it (used_at); a running worker
-- registers its list again every hour (raquel_pg/producer_async.py), which
-- writes used_at at most once an hour; and raquel_prune deletes the lists
-- unused for 7 days, whatever retention is set. A worker whose list was
-- deleted all the same (a clock set back, a list deleted by hand) is told so
-- by its next claim (22023 naming queue_list, nothing claimed) and registers
-- the list again, as 0030's workers do.

-- used_at: the registration's time for the lists registered before.
ALTER TABLE raquel_queue_lists ADD COLUMN used_at bigint;
UPDATE raquel_queue_lists SET used_at = registered_at;
ALTER TABLE raquel_queue_lists ALTER COLUMN used_at SET NOT NULL;
COMMENT ON COLUMN raquel_queue_lists.used_at IS
    'When a worker last registered the list (ms since the epoch): raquel_queue_list writes it at most once an hour, and a running worker registers its list every hour; raquel_prune deletes the lists unused for 7 days.';

-- Guarantees: as 0030_queue_lists' raquel_queue_list; a list registered
-- again has its used_at set to now when it was more than an hour old (so a
-- list in use is written at most once an hour).
CREATE OR REPLACE FUNCTION raquel_queue_list(queues text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := raquel_now_ms();
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
    INSERT INTO raquel_queue_lists (digest, size, registered_at, used_at)
    VALUES (v_digest, cardinality(v_names), v_now, v_now)
    ON CONFLICT (digest) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- Registered before (or by a transaction that committed while this
        -- one waited for it): in use again.
        UPDATE raquel_queue_lists l SET used_at = v_now
        WHERE l.digest = v_digest AND l.used_at < v_now - 3600000;
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
    'The id of the list of these queues (order and repetitions do not matter), registered at the first call: raquel_claim(queue_list => id) claims from it without sending the names. A call for a list registered before marks it in use (used_at, written at most once an hour); raquel_prune deletes the lists unused for 7 days. 22023 naming queues for NULL, an empty list, a NULL name, or a name empty or longer than 1000 bytes.';

-- Guarantees: as 0009_operations' raquel_prune, and first, whatever
-- retention is set, deletes the registered lists of queues unused for 7 days
-- (their members with them); they are not counted in what it returns.
CREATE OR REPLACE FUNCTION raquel_prune(batch_size integer DEFAULT 1000, now bigint DEFAULT NULL)
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
    -- Lists of queues no worker registered for 7 days: a running worker
    -- registers its list every hour, so these are gone workers' lists.
    DELETE FROM raquel_queue_lists l WHERE l.used_at < v_now - 604800000;
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
    'Deletes at most batch_size finished jobs older than their queue''s retention (raquel_set_retention; else the default), oldest first; returns how many and adds them to the queue''s pruned count. 0 when no retention is set; NULL, nothing done, while another transaction prunes (one sweep at a time). First, whatever the retention, deletes the registered lists of queues (raquel_queue_list) unused for 7 days. 22023 naming batch_size when it is below 1. "now" only from roles that may update raquel_jobs.';
