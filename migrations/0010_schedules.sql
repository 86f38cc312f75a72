-- 0010_schedules: jobs enqueued on a schedule (a cron expression or a fixed
-- interval), exactly one job per tick however many schedulers run.
--
-- Guarantees. The state lives in raquel_schedules (0003_tables), so psql
-- shows each schedule's next tick (next_run_at). Firing is a compare-and-set:
-- a scheduler reads the due schedules, computes each one's following tick,
-- and calls raquel_fire_schedules with the tick it read; only a call whose
-- tick still matches the row advances it and enqueues the job, in the same
-- statement. A concurrent scheduler that read the same tick waits for the row
-- lock, finds it moved and does nothing. Cron arithmetic needs a cron parser,
-- so clients compute cron ticks (raquel_pg uses croniter); interval ticks are
-- computed here. Missed ticks (every scheduler down across several ticks):
-- one job is enqueued for the oldest missed tick (scheduled_at = that tick),
-- and the schedule moves on to the first tick after now; the others are
-- skipped. The functions are SECURITY DEFINER and not executable by PUBLIC:
-- a worker role fires schedules without any privilege on the tables.

-- Guarantees: creates or updates the schedule "name" and returns its
-- next_run_at. Exactly one of cron and every (ms, > 0) must be given.
-- first_run_at is the first tick; default: now + every for an interval, and
-- for cron NULL, which the next scheduler run replaces by the first cron tick
-- after it (without enqueueing). Re-declaring a schedule with the same cron
-- and every (as every process does at start-up) keeps its next_run_at, so a
-- restart neither skips nor repeats a tick; first_run_at is then ignored.
-- Changing cron or every restarts the schedule from first_run_at.
-- first_run_at must lie in the time range, every and max_age at most
-- 2^62 - 1 ms, and without first_run_at now + every at most the range's end
-- (blaming every); each refused naming the argument, nothing written.
-- From psql: SELECT raquel_set_schedule('cleanup', 'maintenance', every => 3600000);
CREATE FUNCTION raquel_set_schedule(
    name            text,
    queue           text,
    payload         text    DEFAULT NULL,
    cron            text    DEFAULT NULL,
    every           bigint  DEFAULT NULL,
    first_run_at    bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    now             bigint  DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_now   bigint := CASE WHEN raquel_set_schedule.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_set_schedule', raquel_set_schedule.now) END;
    v_first bigint;
    v_next  bigint;
BEGIN
    IF raquel_set_schedule.name IS NULL OR raquel_set_schedule.name = ''
       OR octet_length(raquel_set_schedule.name) > 1000 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'name', 'must be a non-empty string of at most 1000 bytes');
    END IF;
    IF raquel_set_schedule.queue IS NULL OR raquel_set_schedule.queue = ''
       OR octet_length(raquel_set_schedule.queue) > 1000 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'queue', 'must be a non-empty string of at most 1000 bytes');
    END IF;
    IF (raquel_set_schedule.cron IS NULL) = (raquel_set_schedule.every IS NULL) THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'cron', 'give exactly one of cron and every');
    END IF;
    IF raquel_set_schedule.cron = '' THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'cron', 'must be a cron expression, got an empty string');
    END IF;
    IF raquel_set_schedule.every <= 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('must be > 0 ms, got %s', raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.every > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('must be at most 4611686018427387903 ms, got %s', raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.first_run_at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'first_run_at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_set_schedule.first_run_at));
    END IF;
    IF raquel_set_schedule.first_run_at IS NULL AND raquel_set_schedule.every > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'every',
            format('now + every must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_set_schedule.every));
    END IF;
    IF raquel_set_schedule.max_age <= 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_age',
            format('must be > 0 ms, got %s', raquel_set_schedule.max_age));
    END IF;
    IF raquel_set_schedule.max_age > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_age',
            format('must be at most 4611686018427387903 ms, got %s', raquel_set_schedule.max_age));
    END IF;
    IF raquel_set_schedule.max_retry_count < 0 THEN
        PERFORM raquel_invalid('raquel_set_schedule', 'max_retry_count',
            format('must be >= 0, got %s', raquel_set_schedule.max_retry_count));
    END IF;
    v_first := coalesce(raquel_set_schedule.first_run_at, v_now + raquel_set_schedule.every);

    INSERT INTO raquel_schedules AS s (
        name, queue, payload, cron, every, priority, max_age, max_retry_count, next_run_at, created_at)
    VALUES (
        raquel_set_schedule.name, raquel_set_schedule.queue, raquel_set_schedule.payload,
        raquel_set_schedule.cron, raquel_set_schedule.every, coalesce(raquel_set_schedule.priority, 0),
        raquel_set_schedule.max_age, raquel_set_schedule.max_retry_count, v_first, v_now)
    ON CONFLICT (name) DO UPDATE SET
        queue = excluded.queue, payload = excluded.payload, priority = excluded.priority,
        max_age = excluded.max_age, max_retry_count = excluded.max_retry_count,
        cron = excluded.cron, every = excluded.every,
        next_run_at = CASE WHEN s.cron IS NOT DISTINCT FROM excluded.cron
                            AND s.every IS NOT DISTINCT FROM excluded.every
                           THEN s.next_run_at ELSE excluded.next_run_at END
    RETURNING s.next_run_at INTO v_next;
    RETURN v_next;
END;
$$;
COMMENT ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) IS
    'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument).';
REVOKE EXECUTE ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) FROM PUBLIC;

-- Guarantees: deletes the schedule "name"; returns whether it existed. Jobs
-- it already enqueued are left alone.
-- From psql: SELECT raquel_drop_schedule('cleanup');
CREATE FUNCTION raquel_drop_schedule(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM raquel_schedules s WHERE s.name = raquel_drop_schedule.name;
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION raquel_drop_schedule(text) IS
    'Deletes schedule name; returns whether it existed. Jobs it already enqueued are left alone.';
REVOKE EXECUTE ON FUNCTION raquel_drop_schedule(text) FROM PUBLIC;

-- Guarantees: for each i, if schedule names[i] still has next_run_at =
-- ticks[i] (NULL matching NULL), moves it to next_run_ats[i] and, when
-- ticks[i] is not NULL (and <= now), enqueues one job for that tick: the
-- schedule's queue, payload, priority, max_age and max_retry_count,
-- scheduled_at = the tick, enqueued_at = now, its id from one raquel_new_ids
-- call for the batch. Both happen in one statement, so a tick is fired at
-- most once: a caller whose tick no longer matches (another scheduler fired
-- it) changes nothing. next_run_ats[i] NULL means: compute it here, for an
-- interval schedule (the first tick after now on the schedule's grid, capped
-- at the time range's end); a cron schedule needs it given, after ticks[i]
-- and now. Each tick and each next_run_at must lie in the time range
-- (refused naming ticks or next_run_ats, nothing written). Returns (name,
-- job_id) for each job enqueued.
CREATE FUNCTION raquel_fire_schedules(
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
    -- also keep a larger every, written by hand, from overflowing).
    RETURN QUERY
    WITH advanced AS (
        UPDATE raquel_schedules s SET
            next_run_at = coalesce(d.next, CASE
                WHEN d.tick IS NULL THEN v_now + least(s.every, 253402214399999 - v_now)
                WHEN s.every > 253402214399999 - d.tick THEN 253402214399999
                ELSE least(d.tick + s.every * ((v_now - d.tick) / s.every + 1), 253402214399999) END),
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
    'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';
REVOKE EXECUTE ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) FROM PUBLIC;
