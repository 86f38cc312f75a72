-- 0008_notifications: waking idle workers when jobs become ready, and only
-- them.
--
-- Guarantees. NOTIFY on channel 'raquel_jobs', with the queue name as
-- payload, when jobs become claimable now and an idle worker registered for
-- their queue waits. Future-scheduled jobs send nothing: workers learn of
-- them from raquel_next_due() and sleep until then. A plain LISTEN
-- raquel_jobs hears nothing unless a waiter is registered.
--
-- Why only when a worker waits. A transaction that has sent NOTIFY takes a
-- cluster-wide lock at commit, which serialises the commits of concurrent
-- producers (no group commit). So idle workers register in raquel_waiters
-- (raquel_wait_begin), the triggers notify a ready queue only when a live
-- registration wants it, and busy workers get no notifications. Why a
-- registration wakes its worker once: while a registered worker was notified
-- for every ready job, each insert sent a NOTIFY, and 4 producers ran at
-- 0.56x the rate without the trigger. A worker that has been woken is no
-- longer idle: it claims, and registers again only when a claim finds its
-- queues drained. So the transaction that notifies a waiter also consumes its
-- registration (deletes the row), and producers that commit after it send
-- nothing until the worker is back.
--
-- Nobody ever waits on a registration's row lock: a producer consumes only
-- the rows it can lock at once (SKIP LOCKED) and notifies whenever it sees a
-- live registration, locked or not (a row locked by another producer is one
-- that producer is consuming but has not committed: it may be a long
-- transaction, or roll back). raquel_wait_begin inserts a new row per
-- registration instead of updating the worker's row in place (which would
-- wait for such a producer), and removes the worker's older rows it can lock.
-- A registration left locked by a producer that rolled back stays until its
-- ttl runs out; it only causes extra NOTIFYs, never a missed one.
--
-- The raquel wake-up lock (an advisory lock, key 7021557117354893312) closes
-- the race between a registration and a producer in flight: producers take
-- it shared to the end of their transaction, so they never wait for each
-- other; raquel_wait_begin tries it exclusively. A producer that committed
-- after a registration was consumed and before the next one is seen by the
-- claim that follows the next raquel_wait_begin. What a worker must do (the
-- Python workers do it): take any notification for one of its queues as the
-- end of its registration, and after it has claimed what it was woken for,
-- register again before it waits.

-- Guarantees: for each queue of queues, sends NOTIFY raquel_jobs (payload:
-- the queue) when a live registration (expires_at > now) wants it, or always
-- when the transaction is not READ COMMITTED; sends nothing otherwise. In
-- READ COMMITTED it deletes the live registrations it notified that no other
-- transaction has locked; it never waits for a lock on raquel_waiters. It
-- takes the wake-up lock shared before reading raquel_waiters: once a
-- producer holds it, any registration committed before is seen (in READ
-- COMMITTED each statement takes a new snapshot after the lock). In
-- REPEATABLE READ or SERIALIZABLE the snapshot may predate the lock, so such
-- a transaction always notifies.
-- Called by the jobs table's triggers, which run as the role that changed the
-- rows: the owner (through the SECURITY DEFINER queue functions) or an
-- operator repairing jobs by hand. SECURITY DEFINER so that the operator need
-- not read raquel_waiters; not executable by PUBLIC.
CREATE FUNCTION raquel_notify_ready(queues text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM pg_notify('raquel_jobs', q.name) FROM unnest(raquel_notify_ready.queues) AS q(name);
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(7021557117354893312);  -- the raquel wake-up lock
    PERFORM pg_notify('raquel_jobs', q.name)
    FROM unnest(raquel_notify_ready.queues) AS q(name)
    WHERE EXISTS (SELECT FROM raquel_waiters w
                  WHERE w.expires_at > v_now AND (w.queues IS NULL OR q.name = ANY (w.queues)));
    IF FOUND THEN
        DELETE FROM raquel_waiters w
        WHERE w.registration IN (
            SELECT x.registration FROM raquel_waiters x
            WHERE x.expires_at > v_now
              AND (x.queues IS NULL OR x.queues && raquel_notify_ready.queues)
            FOR UPDATE SKIP LOCKED);
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_notify_ready(text[]) IS
    'Internal (the enqueue triggers): for each queue, NOTIFY raquel_jobs with the queue name when a live registration wants it (always outside READ COMMITTED), deleting the registrations it notified that no other transaction has locked.';
REVOKE EXECUTE ON FUNCTION raquel_notify_ready(text[]) FROM PUBLIC;

-- Guarantees: registers worker as waiting for jobs of queues (NULL: every
-- queue) for ttl_ms from now, as a new row consumed by the first NOTIFY it
-- causes; the worker's older registrations and every expired one are
-- deleted, except rows another transaction has locked (it never waits for a
-- lock). Then returns whether no producer that could have missed the
-- registration is still open: true when it got the wake-up lock exclusively
-- (held until this call's transaction ends, a few microseconds in
-- autocommit). After true, a claim made after this call's commit sees every
-- job whose NOTIFY was skipped, and the next ready job of these queues sends
-- a NOTIFY. After false (a producer is in flight), claim again shortly rather
-- than wait long. Call it in its own (autocommit) transaction: holding the
-- lock longer would block producers. Raises invalid_parameter_value for a
-- NULL worker or a ttl_ms not > 0.
CREATE FUNCTION raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    IF raquel_wait_begin.worker IS NULL THEN
        PERFORM raquel_invalid('raquel_wait_begin', 'worker', 'must not be NULL');
    END IF;
    IF raquel_wait_begin.ttl_ms IS NULL OR raquel_wait_begin.ttl_ms <= 0
       OR raquel_wait_begin.ttl_ms > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_wait_begin', 'ttl_ms',
            format('must be > 0 and at most 4611686018427387903 ms, got %s', raquel_wait_begin.ttl_ms));
    END IF;
    DELETE FROM raquel_waiters w
    WHERE w.registration IN (
        SELECT x.registration FROM raquel_waiters x
        WHERE x.worker = raquel_wait_begin.worker OR x.expires_at <= v_now
        FOR UPDATE SKIP LOCKED);
    INSERT INTO raquel_waiters (worker, queues, expires_at)
    VALUES (raquel_wait_begin.worker, raquel_wait_begin.queues, v_now + raquel_wait_begin.ttl_ms);
    RETURN pg_try_advisory_xact_lock(7021557117354893312);  -- the raquel wake-up lock
END;
$$;
COMMENT ON FUNCTION raquel_wait_begin(uuid, text[], bigint) IS
    'Registers worker as idle, waiting for jobs of queues (NULL: all) for ttl_ms, so producers NOTIFY raquel_jobs for them; the registration is consumed by the first notification it causes. Returns false while a producer that may have missed the registration is still open (claim again shortly instead of waiting). Never waits for a lock. 22023 for a NULL worker or ttl_ms not > 0.';
REVOKE EXECUTE ON FUNCTION raquel_wait_begin(uuid, text[], bigint) FROM PUBLIC;

-- Guarantees: worker has no registration left that a NOTIFY could consume
-- (rows locked by a producer are being consumed by it and are skipped, not
-- waited for); returns whether it deleted any.
CREATE FUNCTION raquel_wait_end(worker uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    WITH gone AS (
        DELETE FROM raquel_waiters w
        WHERE w.registration IN (SELECT x.registration FROM raquel_waiters x
                                 WHERE x.worker = raquel_wait_end.worker
                                 FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) > 0 FROM gone
$$;
COMMENT ON FUNCTION raquel_wait_end(uuid) IS
    'Removes worker''s registrations (rows a producer is consuming are skipped, never waited for); returns whether it deleted any.';
REVOKE EXECUTE ON FUNCTION raquel_wait_end(uuid) FROM PUBLIC;

-- The insert trigger: one statement-level trigger over the transition table,
-- so a 10,000-row INSERT sends one notification per distinct queue, not
-- 10,000. It first asks, under the same lock and rules as
-- raquel_notify_ready, whether anyone waits at all, and returns at once when
-- nobody does (the usual case under load): no scan of the inserted rows and
-- no nested call (1.2-1.3x the single-row enqueue rate of calling
-- raquel_notify_ready unconditionally, pgbench, PostgreSQL 15). It then calls
-- raquel_notify_ready only for queues a live registration wants: with one
-- idle worker of another queue registered, calling it for any registration
-- cost single-row enqueues 0.72x the rate (pgbench, 4 clients). SECURITY
-- DEFINER, as raquel_notify_ready, so that an operator inserting by hand need
-- not read raquel_waiters.
CREATE FUNCTION raquel_tg_jobs__notify_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
    v_read_committed boolean := current_setting('transaction_isolation') = 'read committed';
    v_queues text[];
BEGIN
    IF v_read_committed THEN
        PERFORM pg_advisory_xact_lock_shared(7021557117354893312);  -- the raquel wake-up lock
        IF NOT EXISTS (SELECT FROM raquel_waiters w WHERE w.expires_at > v_now) THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT array_agg(r.queue) INTO v_queues
    FROM (SELECT DISTINCT n.queue FROM raquel_new_jobs n
          WHERE n.status IN ('queued', 'failed') AND n.scheduled_at <= v_now) AS r
    WHERE NOT v_read_committed
       OR EXISTS (SELECT FROM raquel_waiters w
                  WHERE w.expires_at > v_now AND (w.queues IS NULL OR r.queue = ANY (w.queues)));
    IF v_queues IS NOT NULL THEN
        PERFORM raquel_notify_ready(v_queues);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_insert() IS
    'Statement trigger after INSERT on raquel_jobs: one notification per distinct queue that got a ready job, only when an idle worker registered for it waits.';

CREATE TRIGGER raquel_jobs_10_notify_insert
    AFTER INSERT ON raquel_jobs
    REFERENCING NEW TABLE AS raquel_new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_insert();

-- The update trigger: a row trigger whose WHEN clause filters in C, so claims
-- and completions (the hot path) never call PL/pgSQL. It fires when a job
-- moves into a waiting state (reject, reschedule, rescue, an operator's
-- retry) or is moved earlier; PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION raquel_tg_jobs__notify_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.scheduled_at <= raquel_now_ms() THEN
        PERFORM raquel_notify_ready(ARRAY[NEW.queue]);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_update() IS
    'Row trigger after UPDATE on raquel_jobs (its WHEN clause is evaluated in C): notifies when a job comes back to a waiting state ready now (reject, immediate reschedule, rescue, retry) and an idle worker waits for its queue.';

CREATE TRIGGER raquel_jobs_20_notify_update
    AFTER UPDATE ON raquel_jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('queued', 'failed')
          AND (OLD.status NOT IN ('queued', 'failed') OR NEW.scheduled_at < OLD.scheduled_at))
    EXECUTE FUNCTION raquel_tg_jobs__notify_update();

-- Result waiters. A client waiting for a job's end LISTENs on channel
-- raquel_results, registers with raquel_result_watch(job_id) (its own
-- transaction, committed), then reads raquel_result(job_id); when the job is
-- not finished it waits for a notification whose payload is the job's id, and
-- reads again. No poll loop. No lost wake-up: a finishing statement whose
-- trigger ran before the registration committed has either committed before
-- raquel_result's read (which then sees the job finished), or is still open or
-- committed after that read's snapshot: then the row's xmax is set and
-- raquel_result waits for that transaction with a FOR SHARE lock and reads the
-- version it left. A row nobody is changing is read without a lock, so a
-- waiter never makes a claim skip a queued job. No registration, no
-- notification: when nobody waits, a statement pays one probe of an empty
-- table, and finished jobs nobody watches send nothing.

-- Guarantees: registers a wait for job_id's end and returns the
-- registration's id; after it commits, any statement that finishes the job
-- (or finds it finished or gone) sends NOTIFY raquel_results with the job's
-- id and deletes the registration. 22023 naming job_id when NULL.
CREATE FUNCTION raquel_result_watch(job_id uuid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF raquel_result_watch.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result_watch', 'job_id', 'must not be NULL');
    END IF;
    INSERT INTO raquel_result_waiters (job_id) VALUES (raquel_result_watch.job_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION raquel_result_watch(uuid) IS
'Registers a wait for the job''s end (LISTEN raquel_results first, commit this, then read raquel_result): the statement that finishes the job sends NOTIFY raquel_results with the job id and deletes the registration. Returns the registration id for raquel_result_unwatch. 22023 naming job_id when NULL.';
REVOKE EXECUTE ON FUNCTION raquel_result_watch(uuid) FROM PUBLIC;

-- Guarantees: deletes the registration watch_id if it is job_id's; true if
-- it was there, false if it was already served, never existed or is another
-- job's (then nothing is deleted).
-- Why the job too: registration ids are a sequence, so with the id alone any
-- role that may wait for results (the worker, and the enqueuer, which
-- roles.sql grants it) could delete another client's registration by
-- guessing its id; that client would then wait for a notification that never
-- came, until its timeout. Naming the job too (74 of a job id's bits are
-- random) limits it to the jobs whose ids the caller has.
CREATE FUNCTION raquel_result_unwatch(watch_id bigint, job_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    DELETE FROM raquel_result_waiters w
    WHERE w.id = raquel_result_unwatch.watch_id AND w.job_id = raquel_result_unwatch.job_id
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;
COMMENT ON FUNCTION raquel_result_unwatch(bigint, uuid) IS
'Deletes the result-wait registration watch_id of job job_id (a waiter that gave up); true if it was there, false if it was already served, never existed or is another job''s (nothing deleted).';
REVOKE EXECUTE ON FUNCTION raquel_result_unwatch(bigint, uuid) FROM PUBLIC;

-- Guarantees: one row (status, result, error, attempts, finished_at) of the
-- job, or no row when there is no such job. finished is true for success,
-- exhausted, expired and cancelled. When a transaction is changing the row
-- right now (or committed a change after this read's snapshot was taken),
-- waits for it to end and returns what it left, so a waiter registered before
-- this call never misses the job's end.
CREATE FUNCTION raquel_result(job_id uuid)
RETURNS TABLE (status text, finished boolean, result jsonb, error text, attempts integer,
               finished_at bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_xmax text;
BEGIN
    IF raquel_result.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result', 'job_id', 'must not be NULL');
    END IF;
    SELECT j.xmax::text INTO v_xmax FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    IF v_xmax IS NULL THEN
        RETURN;
    END IF;
    IF v_xmax <> '0' THEN
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id
        FOR SHARE;
    ELSE
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_result(uuid) IS
'The job''s status, whether it is finished (success, exhausted, expired, cancelled), its result (JSON stored with the success), error, attempts and finished_at; no row when there is no such job. Waits for a transaction changing the job at that moment, so that with raquel_result_watch no end is missed. 22023 naming job_id when NULL.';
REVOKE EXECUTE ON FUNCTION raquel_result(uuid) FROM PUBLIC;

-- The results trigger. Guarantees: after any statement that ends a job (sets
-- raquel_jobs.finished_at), each registered waiter whose job is finished (or
-- gone) gets NOTIFY raquel_results with the job id, once per job per
-- statement, and its registration is deleted; registrations another
-- transaction is deleting are skipped (it notifies). With no registration at
-- all it only probes the empty table. A statement trigger: one call per
-- statement, however many rows.
-- Why UPDATE OF finished_at and not UPDATE OF status: every statement that
-- ends a job sets finished_at (raquel_complete and raquel_complete_many,
-- raquel_fail, raquel_cancel, raquel_expire, raquel_rescue); a claim does not,
-- and fired after every claim the trigger cost 60-90 us per call (under
-- auto_explain) although a claim never finishes a job. A job ended by hand
-- must set finished_at too, as the functions do, for its waiters to be woken.
CREATE FUNCTION raquel_tg_jobs__notify_results()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM raquel_result_waiters) THEN
        RETURN NULL;
    END IF;
    WITH served AS (
        DELETE FROM raquel_result_waiters w
        WHERE w.id IN (SELECT w2.id FROM raquel_result_waiters w2
                       LEFT JOIN raquel_jobs j ON j.id = w2.job_id
                       WHERE j.id IS NULL OR j.status IN ('success', 'exhausted', 'expired', 'cancelled')
                       FOR UPDATE OF w2 SKIP LOCKED)
        RETURNING w.job_id
    )
    SELECT count(pg_notify('raquel_results', s.job_id::text))
    INTO v_count
    FROM (SELECT DISTINCT served.job_id FROM served) AS s;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_results() IS
'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE (a success deleted at once, a prune): NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table.';
REVOKE EXECUTE ON FUNCTION raquel_tg_jobs__notify_results() FROM PUBLIC;

CREATE TRIGGER raquel_jobs_30_notify_results
    AFTER UPDATE OF finished_at ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_results();

-- A result waiter whose job a success deleted (a queue of retention 0,
-- 0007_outcomes) or a prune removed is told as one whose job finished is:
-- the trigger function serves every registration whose job is finished or
-- gone. A statement trigger: one probe of the (usually empty) registrations
-- per deleting statement (raquel_prune's batches included).
CREATE TRIGGER raquel_jobs_31_notify_results_deleted
    AFTER DELETE ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_results();
