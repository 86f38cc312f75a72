-- 0021_notify_scheduled: a worker waiting for a queue hears of a job due
-- later too, when it would otherwise sleep past it.
--
-- Guarantees (new): after a statement that inserts jobs due later
-- (scheduled_at after now: enqueue's at or delay), or an update that puts a
-- job back to waiting due later (a failure's retry backoff, a reschedule, an
-- operator's change), each such job's queue is passed to raquel_notify_ready
-- (0008_notifications: NOTIFY raquel_jobs with the queue's name, the
-- registrations consumed) when a live registration wanting it expires after
-- the job is due: its worker may sleep past the job (it last read
-- raquel_next_due before the job existed, and sleeps until then or its
-- poll_interval). The woken worker claims, reads raquel_next_due again and
-- sleeps until the job is due. Outside READ COMMITTED the registrations read
-- may predate the statement's lock, as 0008 says; the job then waits for the
-- worker's next raquel_next_due (its poll_interval at most), as before.
-- (A slot freed in a queue at its max_running is 0020_notify_freed's.)
--
-- Why (found by probing the workers as users run them, 2026-12-06). An idle
-- worker (AsyncWorker defaults, poll_interval 2 s) and a job enqueued with
-- delay => 300 every few seconds: the job started 519-1,648 ms after its
-- enqueue instead of ~300 ms (p50 of the lateness 252-571 ms in two probes).
-- Nothing told the sleeping worker: the insert trigger notifies ready jobs
-- only.
--
-- Cost: the insert trigger's function is restated, not joined by another
-- trigger: an enqueue with no live registration returns after the same one
-- probe of raquel_waiters as before; with one, the statement's new jobs are
-- still read in one pass. (A second statement trigger cost a single
-- raquel_enqueue 7.9 us more with nobody waiting.) The update trigger's WHEN
-- clause is unchanged: claims and completions never call it.

-- Guarantees: whether a live waiter registration wanting queue expires after
-- at (its worker may sleep past a job due then). Reads raquel_waiters; the
-- trigger functions call it (raquel_tg_jobs__notify_update is not SECURITY
-- DEFINER: it runs as the role that changed the job, the owner through the
-- queue functions or an operator), so SECURITY DEFINER, not executable by PUBLIC.
CREATE FUNCTION raquel_waits_past(queue text, at bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT EXISTS (SELECT FROM raquel_waiters w
                   WHERE w.expires_at > raquel_waits_past.at
                     AND (w.queues IS NULL OR raquel_waits_past.queue = ANY (w.queues)));
$$;
COMMENT ON FUNCTION raquel_waits_past(text, bigint) IS
    'Internal (the notification triggers): whether a live waiter registration for queue expires after at, i.e. a worker may be asleep past a job due then.';
REVOKE EXECUTE ON FUNCTION raquel_waits_past(text, bigint) FROM PUBLIC;

-- The insert trigger's function (0019_handoff's), with jobs due later: the
-- hand-off of a lone ready job unchanged; then, in one pass over the
-- statement's new jobs, each queue that got a ready job is notified as
-- before (when a live registration wants it, or always outside READ
-- COMMITTED), and each queue that got a job due later when a live
-- registration for it expires after the earliest such job is due
-- (raquel_waits_past). With no live registration it returns after one probe,
-- as before: an enqueue nobody waits for pays nothing more.
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
    FROM (SELECT n.queue, bool_or(n.scheduled_at <= v_now) AS ready,
                 min(n.scheduled_at) FILTER (WHERE n.scheduled_at > v_now) AS due
          FROM raquel_new_jobs n
          WHERE n.status IN ('queued', 'failed')
          GROUP BY n.queue) AS r
    WHERE (r.ready AND (NOT v_read_committed
                        OR EXISTS (SELECT FROM raquel_waiters w
                                   WHERE w.expires_at > v_now AND (w.queues IS NULL OR r.queue = ANY (w.queues)))))
       OR (r.due IS NOT NULL AND raquel_waits_past(r.queue, r.due));
    IF v_queues IS NOT NULL THEN
        PERFORM raquel_notify_ready(v_queues);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_insert() IS
    'Statement trigger after INSERT on raquel_jobs: one notification per distinct queue that got a ready job, only when an idle worker registered for it waits, or that got a job due later when a waiting worker''s registration outlives its due time (0021_notify_scheduled: that worker then reads raquel_next_due again); a lone ready job is instead handed to an idle worker that accepts hand-offs (0019_handoff: its registration taken now, the job claimed for it at commit).';

-- The update trigger's function (0008_notifications), with jobs due later:
-- a job put back to waiting and due now notifies its queue as before; one due
-- later notifies it when a live registration for it expires after the job is
-- due (taking the wake-up lock first in READ COMMITTED, as the insert
-- trigger does).
CREATE OR REPLACE FUNCTION raquel_tg_jobs__notify_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.scheduled_at <= raquel_now_ms() THEN
        PERFORM raquel_notify_ready(ARRAY[NEW.queue]);
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM pg_advisory_xact_lock_shared(7021557117354893312);  -- the raquel wake-up lock
    END IF;
    IF raquel_waits_past(NEW.queue, NEW.scheduled_at) THEN
        PERFORM raquel_notify_ready(ARRAY[NEW.queue]);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_update() IS
    'Row trigger after UPDATE on raquel_jobs (its WHEN clause is evaluated in C): notifies when a job comes back to a waiting state (reject, reschedule, rescue, retry) or is moved earlier, and an idle worker waits for its queue: at once when it is due now, and when it is due later if a waiting worker''s registration outlives that time (0021_notify_scheduled).';
