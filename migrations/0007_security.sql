-- 0007_security: least privilege for the functions of 0002 to 0005.
--
-- 0006 made 0001's functions SECURITY DEFINER and took EXECUTE away from
-- PUBLIC. The functions added by 0002 (operations), 0003 (priorities) and
-- 0005 (periodic schedules) still ran with the caller's rights and were
-- executable by everyone. Here they get the same treatment, so that
-- raquel_pg/roles.sql can give each role exactly what it needs:
--
--   the operator's functions (raquel_stats, raquel_retry, raquel_retry_jobs,
--   raquel_purge, raquel_set_priority, raquel_set_schedule,
--   raquel_drop_schedule) and the scheduler's (raquel_fire_schedules, which
--   a worker role calls to enqueue a schedule's job and advance it without
--   any privilege on raquel_jobs or raquel_schedules)
--
-- become SECURITY DEFINER and are no longer executable by PUBLIC. Each
-- already has a fixed search_path (SET search_path FROM CURRENT: the raquel
-- schema, then pg_temp), which is what makes SECURITY DEFINER safe: a table
-- or function a caller creates in another schema, or in pg_temp, cannot stand
-- in for the queue's.
--
-- Left callable by everyone, with the caller's rights: the pure helpers
-- raquel_ts (ms -> timestamptz, used by the views), raquel_now_ms,
-- raquel_retry_delay and raquel_invalid (0006). The trigger functions
-- raquel_tg_jobs__notify_* cannot be called directly; they only NOTIFY.
-- The views of 0002 are not granted to anyone here (a new view has no
-- privilege for PUBLIC); roles.sql grants them to the operator. The view
-- raquel_queue_stats calls raquel_stats, so its reader needs EXECUTE on it.
-- Names without argument lists: each function has one signature.

ALTER FUNCTION raquel_stats SECURITY DEFINER;
ALTER FUNCTION raquel_retry SECURITY DEFINER;
ALTER FUNCTION raquel_retry_jobs SECURITY DEFINER;
ALTER FUNCTION raquel_purge SECURITY DEFINER;
ALTER FUNCTION raquel_set_priority SECURITY DEFINER;
ALTER FUNCTION raquel_set_schedule SECURITY DEFINER;
ALTER FUNCTION raquel_drop_schedule SECURITY DEFINER;
ALTER FUNCTION raquel_fire_schedules SECURITY DEFINER;

REVOKE EXECUTE ON FUNCTION
    raquel_stats, raquel_retry, raquel_retry_jobs, raquel_purge, raquel_set_priority,
    raquel_set_schedule, raquel_drop_schedule, raquel_fire_schedules
FROM PUBLIC;
