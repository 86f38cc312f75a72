-- 0009_wake_once: a waiter's registration wakes it once.
--
-- Under 0008 a registered waiter was notified for every ready job until it
-- unregistered, so while an idle worker sat registered each insert sent a
-- NOTIFY, and NOTIFY serialises the commits of every notifying transaction
-- in the cluster: 4 producers ran at 0.56x the rate without the trigger.
-- A worker that has been woken is no longer idle: it claims, and registers
-- again only when a claim finds its queues drained. So now the transaction
-- that notifies a waiter also consumes its registration (deletes the row),
-- and producers that commit after it send nothing until the worker is back.
--
-- Nobody ever waits on a registration's row lock:
-- - A producer consumes only the rows it can lock at once (SKIP LOCKED) and
--   notifies whenever it sees a live registration, locked or not. A row
--   locked by another producer is one that producer is consuming but has not
--   committed (it may be a long transaction, or roll back), so this producer
--   still sends its own NOTIFY, exactly as under 0008.
-- - raquel_wait_begin inserts a new row per registration instead of updating
--   the worker's row in place (which would wait for such a producer), and
--   removes the worker's older rows it can lock. A registration left locked
--   by a producer that rolled back stays until its ttl runs out; it only
--   causes extra NOTIFYs, never a missed one.
--
-- What a worker must do (the Python workers do it): take any notification
-- for one of its queues as the end of its registration, and after it has
-- claimed what it was woken for, register again before it waits. The
-- raquel wake-up lock (0008) still closes the race between a registration and
-- a producer in flight: a producer that committed after the registration
-- was consumed and before the next one is seen by the claim that follows
-- the next raquel_wait_begin.

-- A registration is a row of its own (several may exist for one worker for
-- a moment); the worker column is no longer the key.
ALTER TABLE raquel_waiters DROP CONSTRAINT raquel_waiters_pkey;
ALTER TABLE raquel_waiters ADD COLUMN registration bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE INDEX raquel_waiters_worker_idx ON raquel_waiters (worker);

-- Guarantees: as in 0008, for each queue of queues, sends NOTIFY raquel_jobs
-- (payload: the queue) when a live registration (expires_at > now) wants it,
-- or always when the transaction is not READ COMMITTED; sends nothing
-- otherwise. New: in READ COMMITTED, it deletes the live registrations it
-- notified that no other transaction has locked (a waiter is woken once per
-- registration); it never waits for a lock on raquel_waiters.
-- SECURITY DEFINER and not executable by PUBLIC, as in 0008.
CREATE OR REPLACE FUNCTION raquel_notify_ready(queues text[]) RETURNS void
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

-- The insert trigger (0008's rules) now looks for a live registration that
-- wants one of the new ready jobs' queues before calling raquel_notify_ready,
-- not just for any live registration: with one idle worker of another queue
-- registered, single-row enqueues (pgbench, 4 clients) ran at 0.72x the rate
-- with no registration at all, the price of the nested call.
CREATE OR REPLACE FUNCTION raquel_tg_jobs__notify_insert() RETURNS trigger
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

-- Guarantees: as in 0008 (registers worker as waiting for jobs of queues,
-- NULL: every queue, for ttl_ms from now, then returns whether no producer
-- that could have missed the registration is still open). New: the
-- registration is a new row, consumed by the first NOTIFY it causes; the
-- worker's older registrations and every expired one are deleted, except
-- rows another transaction has locked (it never waits for a lock).
-- Raises invalid_parameter_value for a NULL worker or a ttl_ms not > 0.
CREATE OR REPLACE FUNCTION raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) RETURNS boolean
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

-- Guarantees: worker has no registration left that a NOTIFY could consume
-- (rows locked by a producer are being consumed by it and are skipped, not
-- waited for); returns whether it deleted any.
CREATE OR REPLACE FUNCTION raquel_wait_end(worker uuid) RETURNS boolean
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
