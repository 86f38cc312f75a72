-- 0014_job_writes: what a job's claim and success write. raquel_jobs leaves
-- half of each heap page free for the next versions of its rows, and
-- raquel_jobs_pkey half of each leaf page for the entries those versions add
-- (this first part); a success of a queue whose retention is 0 deletes the
-- job instead of keeping it (the second part, below).
--
-- Guarantees (first part): none change. Only where PostgreSQL puts a new
-- row version and how full it fills a page; every statement reads and
-- writes the same rows. On a table migrated with rows in it, pages written
-- from now on get the new fill (nothing is rewritten; VACUUM FULL or
-- pg_repack would rewrite the old ones).
--
-- Why. A job is written three times: enqueued (INSERT), claimed (UPDATE of
-- status, lease_expires_at, claim_id, claimed_by, claimed_at) and finished
-- (UPDATE of status, finished_at, lease_expires_at, attempts, result). Both
-- updates change indexed columns, so neither can be a HOT update, and a
-- job's row is written as a new version each time. With the table's pages
-- filled to the brim at enqueue (fillfactor 100, the default), no new
-- version fits beside the old one: PostgreSQL puts it on another page (the
-- table's end), and to do so WAL-logs a lock of the old version, then the
-- whole new tuple with references to both pages. Kept on its page, the new
-- version is WAL-logged as the bytes that differ from the old one (prefix and
-- suffix left out), with no lock record, and the page it is on is already
-- dirty. Half of a page holds the claimed version of every row of the other
-- half (a claimed row is 40-70 bytes longer than a queued one), and once the
-- claim commits the queued versions are dead and pruned, making room for the
-- finished ones. The primary key gets a new entry at each non-HOT update;
-- its leaves, filled to 90% by the enqueues, split at the claim (whose old
-- versions are not dead yet, so bottom-up deletion cannot make room); at 50%
-- they hold the claim's and the completion's entries until the old ones can
-- be deleted.
--
-- Measured (bench/RESULTS.md, "Issue 23: server cost per job";
-- `python -m bench.run --only servercost`: 20,000 no-op jobs drained by
-- subscribe(concurrency=10 and 50, prefetch=500, durable_claims=False) after
-- a CHECKPOINT, PostgreSQL 15, WAL of the run's database read with
-- pg_walinspect, two interleaved runs): 1,013-1,014 -> 846-847 WAL bytes per
-- job; the claim 610 -> 534 (1.97 -> 1.27 lock records per job, the update
-- record 205 -> 183 bytes, no primary-key page splits), the completion 397
-- -> 303 (its lock record gone, the update record 203 -> 156); server CPU
-- 18.5-19.7 -> 18.0-19.0 us per job (the primary key's setting gives 14 of
-- the 167 bytes and most of the CPU); a third run 16.6-16.7 -> 15.3-15.7.
--
-- What it trades (`python -m bench.fill_cost`, same server, interleaved):
-- waiting jobs take twice the room. 1,000,000 waiting no-op jobs: heap 128 ->
-- 260 MB, primary key 30 -> 54 MB. Finished jobs do not: a drained table is
-- smaller (its rows no longer move to the table's end: 951 pages for 20,000
-- drained jobs against 1,171). enqueue_many of 10,000 (204,065 against
-- 204,719 jobs/s), a single enqueue (444 against 441 us, 241 against 242 us
-- of server CPU) and a claim of 10 from 1,000,000 waiting jobs (799 against
-- 774 us) are within the noise. A fill of 70 took 1.4x the heap for about
-- half the WAL gain (927 bytes per job) and none of the CPU gain.

ALTER TABLE raquel_jobs SET (fillfactor = 50);
ALTER INDEX raquel_jobs_pkey SET (fillfactor = 50);

-- Successes of a queue that keeps no finished job are deleted at once.
--
-- Guarantees. A queue whose retention is 0 ms (raquel_set_retention(queue,
-- '0'), or the default retention 0 and no retention of its own) keeps no
-- finished success: raquel_complete and raquel_complete_many delete the job's
-- row in the statement that records the success, instead of updating it to
-- 'success', when the success stores no result (result NULL) and no result
-- waiter is registered for the job (raquel_result_watch) when the statement
-- reads the registrations; such a success is reported recorded as before.
-- Everything else is unchanged: fencing (only the current claim's claim_id,
-- only a 'claimed' job: a stale outcome for a deleted job matches no row and
-- is refused as today), a success with a result or a watched job is kept
-- ('success' with its result, pruned later as any finished job), failures,
-- cancellations and expiries are recorded as before. A deleted success is not
-- counted in raquel_queue_controls' pruned nor in raquel_throughput; reading
-- it (raquel_result, get()) finds no such job. A result waiter registering
-- while the deleting statement runs is told by NOTIFY raquel_results (the
-- trigger raquel_jobs_31_notify_results_deleted below) and then finds no
-- such job: it never waits for nothing.
--
-- Why: a success kept writes a new row version (~156 WAL bytes), a
-- primary-key entry and a history-index entry (72 + 64 bytes); deleting it
-- writes one 54-byte record and no index entry. Measured beside
-- graphile-worker, which deletes every completed job (bench/RESULTS.md,
-- "Issue 23: server cost per job", run 4; 20,000 no-op jobs, fast mode, 10
-- and 50 in flight): 846-847 -> 597 WAL bytes per job (graphile-worker
-- 632-633), server CPU 16.35-16.49 -> 13.73-14.09 us (graphile-worker
-- 14.43-14.95). Without a queue of retention 0 the functions read two small
-- tables once per call and then run the update they ran before.

-- The queues whose successes are deleted at once: queues (the ones with a
-- retention 0 of their own) and, when default_zero, every queue but kept
-- (those with a retention of their own that is not 0). None: queues is empty
-- and default_zero false.
CREATE FUNCTION raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[])
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT ARRAY(SELECT s.queue::text FROM raquel_queue_settings s WHERE s.retention_ms = 0),
           coalesce((SELECT d.retention_ms = 0 FROM raquel_retention_default d), false),
           ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                 WHERE s.retention_ms IS NOT NULL AND s.retention_ms <> 0)
$$;
COMMENT ON FUNCTION raquel_zero_retention() IS
    'The queues whose successes raquel_complete / raquel_complete_many delete at once (retention 0): queues (their own retention 0) and, when default_zero (the default retention is 0), every queue but kept (a retention of its own, not 0). Read-only.';
REVOKE EXECUTE ON FUNCTION raquel_zero_retention() FROM PUBLIC;

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
        status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;
COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint, jsonb) IS
'Records the success of the claimed job, fenced by claim_id, with result (JSON, NULL for none) stored in the same UPDATE; returns ''success'', or NULL (nothing written) when the claim is no longer current. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still ''success''). Called inside a handler''s own transaction it commits or rolls back with the handler''s writes (exactly once for work in the same database). now only from a role that may update raquel_jobs.';

-- raquel_complete_many: as 0007_outcomes, plus the deletion above. The pairs
-- whose success is deleted are deleted first (their positions kept), then the
-- others are updated as before; a pair repeated is recorded once either way.
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
        v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                           WHERE w.job_id = ANY (raquel_complete_many.job_ids));
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
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
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
                status = 'success', attempts = j.attempts + 1, finished_at = v_now,
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
COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint, jsonb[]) IS
'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still recorded). Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';

-- A result waiter whose job a success deleted is told, as one whose job
-- finished is (0008_notifications' raquel_tg_jobs__notify_results: it serves
-- every registration whose job is finished or gone). A statement trigger: one
-- probe of the (usually empty) registrations per deleting statement
-- (raquel_prune's batches included).
CREATE TRIGGER raquel_jobs_31_notify_results_deleted
    AFTER DELETE ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_results();
COMMENT ON FUNCTION raquel_tg_jobs__notify_results() IS
'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE (a success deleted at once, a prune): NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table.';
