-- 0025_role_limits: no role but the owner may execute the engine's trigger
-- functions, and an interval schedule's next tick is the engine's own.
--
-- Found by a security probe (2026-12-07).
--
-- 1. EXECUTE on every raquel_tg_* function is revoked from PUBLIC, so no
--    other role can attach one to a table of its own. The triggers on
--    raquel_jobs and raquel_waiters fire as before: PostgreSQL checks EXECUTE
--    on a trigger function when the trigger is created, not when it fires.
--    raquel_tg_jobs__notify_insert (0008_notifications) and
--    raquel_tg_waiters__hand_off (0019_handoff) are SECURITY DEFINER and had
--    kept PUBLIC's EXECUTE (the other trigger functions revoke it). A role
--    with no grant at all could create a temporary table shaped like
--    raquel_waiters or raquel_jobs, attach either function to it and write
--    rows of its making: the hand-off trigger then claimed any queued job for
--    a worker name and lease of the attacker's choosing (stuck, its lease past
--    the time range), and the insert trigger, reading the attacker's rows as
--    its transition table, handed a job of one queue to a worker of another,
--    which ran it, and consumed workers' wake-up registrations.
--    raquel_tg_jobs__notify_update (not SECURITY DEFINER) is revoked too.
-- 2. raquel_fire_schedules took the caller's next_run_at for an interval
--    schedule too (the Python scheduler passes NULL for those, and the
--    function computes it): a worker role could push an operator's interval
--    schedule to 9999-12-30, so that it never fired again. The function now
--    always computes an interval schedule's next tick; a cron schedule's is
--    still the caller's (SQL does not evaluate cron expressions): a worker
--    role fires schedules, and can delay a cron schedule, as it can complete
--    any job it claims without running it (docs/operations/roles.md).

REVOKE EXECUTE ON FUNCTION raquel_tg_jobs__notify_insert() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION raquel_tg_waiters__hand_off() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION raquel_tg_jobs__notify_update() FROM PUBLIC;

-- Guarantees: as 0010_schedules' raquel_fire_schedules, an interval
-- schedule's next tick computed whatever next_run_ats holds for it.
CREATE OR REPLACE FUNCTION raquel_fire_schedules(
    names text[], ticks bigint[], next_run_ats bigint[], now bigint DEFAULT NULL
) RETURNS TABLE (name text, job_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_fire_schedules.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_fire_schedules', raquel_fire_schedules.now) END;
BEGIN
    IF cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.ticks)
       OR cardinality(raquel_fire_schedules.names) IS DISTINCT FROM cardinality(raquel_fire_schedules.next_run_ats) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'names', 'names, ticks and next_run_ats must have the same length');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.ticks) AS d(tick)
               WHERE d.tick NOT BETWEEN -62135510400000 AND 253402214399999) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'ticks',
            'each must be a time within [-62135510400000, 253402214399999] ms since the epoch'
            ' (0001-01-02 .. 9999-12-30 UTC)');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.next_run_ats) AS d(next)
               WHERE d.next NOT BETWEEN -62135510400000 AND 253402214399999) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'next_run_ats',
            'each must be a time within [-62135510400000, 253402214399999] ms since the epoch'
            ' (0001-01-02 .. 9999-12-30 UTC)');
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_fire_schedules.ticks, raquel_fire_schedules.next_run_ats) AS d(tick, next)
               WHERE d.tick > v_now OR d.next <= v_now) THEN
        PERFORM raquel_invalid('raquel_fire_schedules', 'next_run_ats',
            'each tick must be <= now and each next_run_at after now');
    END IF;

    -- Lock the rows first, in name order, so that schedulers firing
    -- overlapping sets cannot deadlock. A row another scheduler holds is
    -- waited for (it holds it for one statement), not skipped: skipping
    -- would let a scheduler that read a stale tick delay the firing of the
    -- current one past its time, and the missed-tick rule would drop ticks.
    PERFORM FROM raquel_schedules s
    WHERE s.name = ANY (raquel_fire_schedules.names)
    ORDER BY s.name
    FOR UPDATE;

    -- An interval schedule's next tick, capped at the range's end: computed
    -- so that no step can overflow bigint (every <= 2^62 - 1; the CASEs
    -- also keep a larger every, written by hand, from overflowing), whatever
    -- the caller passed (0025_role_limits). A cron schedule's is the caller's.
    RETURN QUERY
    WITH advanced AS (
        UPDATE raquel_schedules s SET
            next_run_at = CASE
                WHEN s.every IS NULL THEN d.next
                WHEN d.tick IS NULL THEN v_now + least(s.every, 253402214399999 - v_now)
                WHEN s.every > 253402214399999 - d.tick THEN 253402214399999
                ELSE least(d.tick + s.every * ((v_now - d.tick) / s.every + 1), 253402214399999) END,
            last_run_at = coalesce(d.tick, s.last_run_at),
            last_job_id = CASE WHEN d.tick IS NULL THEN s.last_job_id ELSE (raquel_new_ids(1))[1] END
        FROM unnest(raquel_fire_schedules.names, raquel_fire_schedules.ticks,
                    raquel_fire_schedules.next_run_ats) AS d(name, tick, next)
        WHERE s.name = d.name AND s.next_run_at IS NOT DISTINCT FROM d.tick
          AND (d.next IS NOT NULL OR s.every IS NOT NULL)
        RETURNING s.name AS schedule, d.tick, s.last_job_id AS job_id, s.queue, s.payload, s.priority,
                  s.max_age, s.max_retry_count
    ), enqueued AS (
        INSERT INTO raquel_jobs (id, queue, payload, priority, max_age, max_retry_count,
                                 enqueued_at, scheduled_at)
        SELECT a.job_id, a.queue, a.payload, a.priority, a.max_age, a.max_retry_count, v_now, a.tick
        FROM advanced a WHERE a.tick IS NOT NULL
        RETURNING raquel_jobs.id
    )
    SELECT a.schedule, e.id FROM advanced a JOIN enqueued e ON e.id = a.job_id;
END;
$$;
COMMENT ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) IS
    'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. An interval schedule moves to its next tick after now (its next_run_ats[i] is ignored), a cron schedule to next_run_ats[i] (the caller evaluates cron). ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';
