-- 0019_handoff: an idle worker's next job is claimed for it by the enqueue
-- that makes it, durable with that enqueue's commit.
--
-- Guarantees. A worker that registers with its LISTEN connection's backend
-- pid, its claim_as and its lease (raquel_wait_begin's six-argument form)
-- may be handed a job: when one statement inserts one job that is ready now
-- (queued, scheduled_at <= now, not past its max_age) in a READ COMMITTED
-- transaction, and a live registration of that worker wants the job's queue,
-- and the job's queue is neither paused nor limited (max_running,
-- per_second), then the transaction takes that registration and, at its
-- commit, if the worker's LISTEN session is alive (it holds the raquel
-- listener lock, an advisory lock keyed by its pid), claims the job for that
-- worker (claimed, claimed_by its claim_as, claimed_at NULL: handed, not yet
-- taken; a lease of its lease_ms from the commit; a new claim_id) and sends
-- NOTIFY raquel_handoff with payload '<worker> <job id> <claim_id>'. No
-- other notification is sent for that job. The worker then takes it with
-- raquel_take (claimed_at set, lease renewed) and runs it as any claimed
-- job. Every other insert and every other isolation level notify as
-- 0008_notifications does. When the job is no longer queued and ready at
-- the commit (cancelled, deleted, rescheduled, its queue paused meanwhile),
-- the registration is given back as it was and nothing is sent. When the
-- worker's LISTEN session is gone at the commit (killed, or stopped while
-- this transaction held its registration), the registration is deleted and
-- the job's queue notified as 0008's producers do.
--
-- What a hand-off never does: run a job twice, or lose one. The claim is
-- made in the enqueue's transaction, so the job is never claimable by anyone
-- else between its commit and the worker's take; every later outcome is
-- fenced by claim_id as for any claim. A handed job the worker never takes
-- (it was killed, or stopped, between the commit and the notification's
-- arrival) keeps its lease; when the lease runs out, raquel_rescue puts
-- it back as queued with no attempt counted (claimed_at NULL tells it was
-- never taken), and any worker claims it.
--
-- Why at commit, not at insert: a transaction may still cancel, delete,
-- reschedule or reprioritise the job it has just enqueued; claimed at insert,
-- it would already be out of those calls' reach. The insert's statement
-- trigger only takes the registration (expires_at set to 0, so no producer
-- counts it as live, and the job's id noted in it: handed_job); a deferred
-- constraint trigger on that row claims the job at commit, or gives the
-- registration back when the job is no longer ready then. A transaction that
-- rolls back gives the registration back untouched.
--
-- Measured reason (PostgreSQL 15, 2 cores; issue 23's wake-up). A woken
-- worker's durable claim took 0.68-1.18 ms of the 1.3-1.4 ms from the
-- enqueue's commit to the handler's start: a round trip, the claim function
-- and its commit's WAL flush. A prototype of the hand-off had the row in the
-- worker's hands 0.20-0.25 ms after the commit against 0.61-0.69 ms for
-- NOTIFY + claim (bench/RESULTS.md, "A hand-off prototype"); the figures of
-- this migration's worker are in bench/RESULTS.md, "Issue 23: the wake-up
-- hand-off".

ALTER TABLE raquel_waiters
    ADD COLUMN claim_as     text,
    ADD COLUMN lease_ms     bigint,
    ADD COLUMN listener_pid integer,
    ADD COLUMN handed_job   uuid;
COMMENT ON TABLE raquel_waiters IS
    'raquel_pg idle workers waiting on LISTEN raquel_jobs (UNLOGGED): one row per registration, consumed by the first NOTIFY it causes, or by the hand-off of a job (handed_job, 0019_handoff). Written by raquel_wait_begin / raquel_wait_end and the enqueue triggers only.';
COMMENT ON COLUMN raquel_waiters.listener_pid IS
    'The backend pid of the worker''s LISTEN connection when it accepts hand-offs (NULL: notifications only); a hand-off needs that session to hold the raquel listener lock, pg_advisory_lock(1903257711, pid), at the enqueue''s commit.';
COMMENT ON COLUMN raquel_waiters.handed_job IS
    'The job an enqueue is handing to this worker, claimed for it when that enqueue commits (the registration is then deleted).';

-- Guarantees: as raquel_wait_begin(worker, queues, ttl_ms) (0008_notifications),
-- and when listener_pid is not NULL the registration accepts hand-offs:
-- a job may be claimed for the worker as claim_as with a lease of lease_ms
-- by the enqueue that makes it, and announced by NOTIFY raquel_handoff
-- '<worker> <job id> <claim_id>' (this file's header). listener_pid must be
-- the backend pid of the connection on which the worker LISTENs on
-- raquel_handoff, and that session must hold the raquel listener lock,
-- pg_advisory_lock(1903257711, pg_backend_pid()), for as long as it listens:
-- an enqueue hands a job only to a worker whose session holds it at the
-- enqueue's commit (one lock probe; a session that is gone, or another that
-- reused its pid, does not hold it). Raises invalid_parameter_value for a NULL worker, a ttl_ms
-- not > 0, or, with a listener_pid, a lease_ms not > 0.
CREATE FUNCTION raquel_wait_begin(
    worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer
) RETURNS boolean
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
    IF raquel_wait_begin.listener_pid IS NOT NULL
       AND (raquel_wait_begin.lease_ms IS NULL OR raquel_wait_begin.lease_ms <= 0
            OR raquel_wait_begin.lease_ms > 253402214399999 - v_now) THEN
        PERFORM raquel_invalid('raquel_wait_begin', 'lease_ms',
            format('must be > 0 ms (and now + lease_ms within the time range) when listener_pid is given, got %s',
                   raquel_wait_begin.lease_ms));
    END IF;
    DELETE FROM raquel_waiters w
    WHERE w.registration IN (
        SELECT x.registration FROM raquel_waiters x
        WHERE x.worker = raquel_wait_begin.worker OR x.expires_at <= v_now
        FOR UPDATE SKIP LOCKED);
    INSERT INTO raquel_waiters (worker, queues, expires_at, claim_as, lease_ms, listener_pid)
    VALUES (raquel_wait_begin.worker, raquel_wait_begin.queues, v_now + raquel_wait_begin.ttl_ms,
            raquel_wait_begin.claim_as,
            CASE WHEN raquel_wait_begin.listener_pid IS NOT NULL THEN raquel_wait_begin.lease_ms END,
            raquel_wait_begin.listener_pid);
    RETURN pg_try_advisory_xact_lock(7021557117354893312);  -- the raquel wake-up lock
END;
$$;
COMMENT ON FUNCTION raquel_wait_begin(uuid, text[], bigint, text, bigint, integer) IS
    'Registers worker as idle, as raquel_wait_begin(worker, queues, ttl_ms); with a listener_pid (the backend pid of its LISTEN connection, which holds pg_advisory_lock(1903257711, pg_backend_pid()) while it listens) it also accepts hand-offs: the enqueue of a job of its queues may claim it for the worker as claim_as with a lease of lease_ms at commit and NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''; take it with raquel_take. Never waits for a lock. 22023 for a NULL worker, ttl_ms not > 0, or lease_ms not > 0 with a listener_pid.';
REVOKE EXECUTE ON FUNCTION raquel_wait_begin(uuid, text[], bigint, text, bigint, integer) FROM PUBLIC;

-- The three-argument form: the same registration, without hand-offs (one body).
CREATE OR REPLACE FUNCTION raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT raquel_wait_begin(raquel_wait_begin.worker, raquel_wait_begin.queues, raquel_wait_begin.ttl_ms,
                             NULL::text, NULL::bigint, NULL::integer)
$$;

-- Guarantees: when job_id is claimed under claim_id and was handed, not yet
-- taken (claimed_at NULL), marks it taken (claimed_at now) with a lease of
-- lease ms from now and returns its row; else returns no row and changes
-- nothing (the job was rescued, cancelled, released or taken meanwhile).
-- In a transaction that has written nothing yet, its commit does not wait
-- for the WAL flush (synchronous_commit off, as a non-durable claim's): the
-- claim itself is already durable (made by the enqueue's commit), and a take
-- lost in a server crash only means that, should the lease run out, the
-- rescue hands the job back without counting the attempt. Raises
-- invalid_parameter_value for a NULL job_id or claim_id, or a lease not > 0.
CREATE FUNCTION raquel_take(job_id uuid, claim_id uuid, lease bigint DEFAULT 60000)
RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    IF raquel_take.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_take.claim_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'claim_id', 'must not be NULL');
    END IF;
    IF raquel_take.lease IS NULL OR raquel_take.lease <= 0 OR raquel_take.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_take', 'lease',
            format('must be > 0 ms (and now + lease within the time range), got %s', raquel_take.lease));
    END IF;
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET claimed_at = v_now, lease_expires_at = v_now + raquel_take.lease
    WHERE j.id = raquel_take.job_id AND j.claim_id = raquel_take.claim_id
      AND j.status = 'claimed' AND j.claimed_at IS NULL
    RETURNING j.*;
END;
$$;
COMMENT ON FUNCTION raquel_take(uuid, uuid, bigint) IS
    'Takes a job handed to this worker (NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''): when still claimed under claim_id and not yet taken, sets claimed_at, renews its lease to lease ms from now and returns its row; else no row, nothing changed. Its commit does not wait for the WAL flush when the transaction wrote nothing before (the claim is already durable). 22023 for a NULL job_id or claim_id, or lease not > 0.';
REVOKE EXECUTE ON FUNCTION raquel_take(uuid, uuid, bigint) FROM PUBLIC;

-- Guarantees: 0005_sweeps' raquel_rescue, and a handed job never taken
-- (claimed_at NULL) whose lease ran out goes back untouched, as raquel_release
-- leaves a job: queued, claim cleared, no attempt counted, no error; or
-- cancelled when its cancellation was requested (cancel_claim_id = claim_id),
-- still with no attempt counted. Returns how many jobs it changed.
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
        attempts = j.attempts + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
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
COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
'Every claimed job (of queues, NULL: all) whose lease ran out counts one failed attempt: failed and claimable at once, exhausted after max_retry_count retries, or cancelled when its claim''s cancellation was requested; a job handed to a worker that never took it (claimed_at NULL, 0019_handoff) goes back queued (or cancelled) with no attempt counted. Returns how many. Locked rows are skipped. now only from a role that may update raquel_jobs.';

-- The insert trigger (0008_notifications), with the hand-off: when one ready
-- job was inserted in READ COMMITTED and a live registration that accepts
-- hand-offs wants its queue (the queue neither paused nor limited), the
-- oldest such registration is taken for the job (expires_at 0, handed_job)
-- and the job is left to the deferred trigger below; nothing is notified for
-- it now. Otherwise as 0008's.
CREATE OR REPLACE FUNCTION raquel_tg_jobs__notify_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
    v_read_committed boolean := current_setting('transaction_isolation') = 'read committed';
    v_queues text[];
    v_job record;
BEGIN
    IF v_read_committed THEN
        PERFORM pg_advisory_xact_lock_shared(7021557117354893312);  -- the raquel wake-up lock
        IF NOT EXISTS (SELECT FROM raquel_waiters w WHERE w.expires_at > v_now) THEN
            RETURN NULL;
        END IF;
        -- The hand-off: one ready job, inserted alone.
        IF (SELECT count(*) FROM (SELECT FROM raquel_new_jobs LIMIT 2) AS n) = 1 THEN
            SELECT n.id, n.queue INTO v_job FROM raquel_new_jobs n
            WHERE n.status = 'queued' AND n.scheduled_at <= v_now
              AND (n.max_age IS NULL OR n.enqueued_at + n.max_age > v_now)
              AND NOT EXISTS (SELECT FROM raquel_queue_settings s
                              WHERE s.queue = n.queue
                                AND (s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL));
            IF FOUND THEN
                UPDATE raquel_waiters w SET expires_at = 0, handed_job = v_job.id
                WHERE w.registration = (
                    SELECT x.registration FROM raquel_waiters x
                    WHERE x.expires_at > v_now AND x.listener_pid IS NOT NULL
                      AND (x.queues IS NULL OR v_job.queue = ANY (x.queues))
                    ORDER BY x.registration
                    LIMIT 1
                    FOR UPDATE SKIP LOCKED);
                IF FOUND THEN
                    RETURN NULL;  -- claimed for that worker at commit (raquel_tg_waiters__hand_off)
                END IF;
            END IF;
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
    'Statement trigger after INSERT on raquel_jobs: one notification per distinct queue that got a ready job, only when an idle worker registered for it waits; a lone ready job is instead handed to an idle worker that accepts hand-offs (0019_handoff: its registration taken now, the job claimed for it at commit).';

-- Guarantees: at the commit of the transaction that took a registration for
-- a hand-off (handed_job set), when the worker's LISTEN session is gone (it
-- no longer holds the raquel listener lock of its pid), deletes the
-- registration and notifies the job's queue as a producer does
-- (raquel_notify_ready) if the job is ready. Else claims that job for the
-- registration's worker when it is still queued and ready and its queue
-- neither paused nor limited:
-- status claimed, claimed_by its claim_as, claimed_at NULL (not yet taken),
-- a lease of its lease_ms from now, a new claim_id; then NOTIFY
-- raquel_handoff '<worker> <job id> <claim_id>', and deletes the registration.
-- Otherwise (the job gone, claimed, not due, past its max_age, or its queue
-- paused or limited: no worker could claim it now) gives the registration
-- back as it was and sends nothing.
CREATE FUNCTION raquel_tg_waiters__hand_off() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   bigint := raquel_now_ms();
    v_claim uuid := gen_random_uuid();
    v_queue text;
BEGIN
    -- The worker's listening session holds the raquel listener lock for its pid
    -- while it lives (raquel_wait_begin): if this shared try gets it, the
    -- worker is gone (its lock released with its session) or never held it.
    IF pg_try_advisory_xact_lock_shared(1903257711, NEW.listener_pid) THEN
        -- Its worker is gone (killed, or stopped while this transaction held
        -- its registration): wake another idle worker of the queue the usual way.
        DELETE FROM raquel_waiters w WHERE w.registration = NEW.registration;
        SELECT j.queue INTO v_queue FROM raquel_jobs j
        WHERE j.id = NEW.handed_job AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now;
        IF FOUND THEN
            PERFORM raquel_notify_ready(ARRAY[v_queue]);
        END IF;
        RETURN NULL;
    END IF;
    UPDATE raquel_jobs j SET
        status = 'claimed', claimed_by = NEW.claim_as, claimed_at = NULL,
        lease_expires_at = v_now + NEW.lease_ms, claim_id = v_claim
    WHERE j.id = NEW.handed_job
      AND j.status = 'queued' AND j.scheduled_at <= v_now
      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
      AND NOT EXISTS (SELECT FROM raquel_queue_settings s
                      WHERE s.queue = j.queue
                        AND (s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL));
    IF FOUND THEN
        PERFORM pg_notify('raquel_handoff', format('%s %s %s', NEW.worker, NEW.handed_job, v_claim));
        DELETE FROM raquel_waiters w WHERE w.registration = NEW.registration;
    ELSE
        -- Nobody can claim the job now (gone, claimed, not due, expired, or its
        -- queue held): the registration stands again, as if never taken.
        UPDATE raquel_waiters w SET expires_at = OLD.expires_at, handed_job = NULL
        WHERE w.registration = NEW.registration;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_waiters__hand_off() IS
    'Deferred constraint trigger after a registration of raquel_waiters is taken for a hand-off (0019_handoff): at commit, claims the job for its worker (claimed_at NULL until raquel_take), sends NOTIFY raquel_handoff ''<worker> <job id> <claim_id>'' and deletes the registration; when the job is no longer claimable, gives the registration back as it was; when the worker''s LISTEN session is gone (no longer holding the raquel listener lock of its pid), deletes the registration and notifies the job''s queue the usual way.';

CREATE CONSTRAINT TRIGGER raquel_waiters_10_hand_off
    AFTER UPDATE OF handed_job ON raquel_waiters
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.handed_job IS NOT NULL)
    EXECUTE FUNCTION raquel_tg_waiters__hand_off();
