-- 0020_notify_freed: a worker waiting on a queue held at its max_running is
-- woken when one of the queue's jobs ends.
--
-- Guarantees (new): after any statement that ends jobs (sets
-- raquel_jobs.finished_at: a success, a failure, a reschedule, a
-- cancellation, a rescue, an expiry) or deletes them (a success of a queue of
-- retention 0, a prune, a DELETE by hand), every queue with a max_running
-- that is not paused, has fewer claimed jobs than its max_running and a
-- waiting job (due now, or later: the woken worker then reads raquel_next_due
-- again, having slept until a lease deadline while the queue was full) is
-- passed to raquel_notify_ready (0008_notifications): NOTIFY raquel_jobs with
-- the queue's name when a live registration wants it, that registration
-- consumed. With no such queue setting it costs one probe of
-- raquel_queue_settings per statement; without a live registration for a
-- limited queue, that probe and the wake-up lock.
--
-- Why (found by testing a limited queue the way a user runs it; issue 23's
-- note listed "a max_running worker is not woken when a slot frees"). A
-- worker's successes are batched by default: its slot frees when the handler
-- returns and its producer claims at once, before the batch that records the
-- success has committed. A queue at its max_running then gives that claim
-- nothing, the worker registers as waiting and sleeps until raquel_next_due
-- (the running jobs' lease deadline) or its poll_interval, and nothing
-- notified it when the batch committed. Measured before this migration
-- (PostgreSQL 15, an AsyncWorker with its defaults, a queue with
-- max_running = 1, 20 no-op jobs): 38.2 s to drain, one job every 2.0 s
-- (the poll_interval); with batch_outcomes=False 0.05 s. A worker of another
-- process waiting on the queue was likewise left to its poll_interval when a
-- slot freed. And a slot that freed while the queue's next job was due 300 ms
-- later: that job started at 1,711-1,723 ms (a probe, 2026-12-06), the waiting
-- worker having last read the full queue's lease deadline.
--
-- No lost wake-up: the trigger takes the wake-up lock shared (as an enqueue
-- does) before it reads raquel_waiters, so a worker registering meanwhile
-- either is seen, or is told by raquel_wait_begin that a producer is in
-- flight and claims again shortly, after this statement's transaction has
-- committed.

-- Guarantees: see the migration header. A statement trigger: one call per
-- statement, however many rows it ended. The queues it passes on are those
-- whose claim can succeed as far as max_running goes, now or when their next
-- job is due (a per_second limit may still make the woken worker wait for its
-- next token).
CREATE FUNCTION raquel_tg_jobs__notify_freed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint;
    v_queues text[];
BEGIN
    IF NOT EXISTS (SELECT FROM raquel_queue_settings s
                   WHERE s.max_running IS NOT NULL AND NOT s.paused) THEN
        RETURN NULL;
    END IF;
    v_now := raquel_now_ms();
    PERFORM pg_advisory_xact_lock_shared(7021557117354893312);  -- the raquel wake-up lock
    -- The queues some worker waits for first (two small tables), so that
    -- the jobs are read only when a wake-up may be due.
    v_queues := ARRAY(
        SELECT s.queue::text FROM raquel_queue_settings s
        WHERE s.max_running IS NOT NULL AND NOT s.paused
          AND EXISTS (SELECT FROM raquel_waiters w
                      WHERE w.expires_at > v_now AND (w.queues IS NULL OR s.queue = ANY (w.queues))));
    IF cardinality(v_queues) = 0 THEN
        RETURN NULL;
    END IF;
    -- Of those, the ones below their max_running (the count as raquel_claim
    -- makes it, over the lease index) holding a waiting job: due now, it can
    -- be claimed; due later, the waiter reads raquel_next_due again.
    v_queues := ARRAY(
        SELECT s.queue::text FROM raquel_queue_settings s
        WHERE s.queue = ANY (v_queues)
          AND s.max_running > (SELECT count(*) FROM raquel_jobs j
                               WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed'
                                 AND j.queue = s.queue)
          AND EXISTS (SELECT FROM raquel_jobs j
                      WHERE j.queue = s.queue AND j.status IN ('queued', 'failed')));
    IF cardinality(v_queues) > 0 THEN
        PERFORM raquel_notify_ready(v_queues);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION raquel_tg_jobs__notify_freed() IS
'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE: every queue with a max_running, not paused, below it in claimed jobs, with a waiting job (due now or later) and a live waiter registration goes to raquel_notify_ready (NOTIFY raquel_jobs), so a worker held by the limit claims, or reads raquel_next_due again, when a slot frees. With no max_running set anywhere, one probe of raquel_queue_settings.';
REVOKE EXECUTE ON FUNCTION raquel_tg_jobs__notify_freed() FROM PUBLIC;

CREATE TRIGGER raquel_jobs_40_notify_freed
    AFTER UPDATE OF finished_at ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_freed();

CREATE TRIGGER raquel_jobs_41_notify_freed_deleted
    AFTER DELETE ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_freed();
