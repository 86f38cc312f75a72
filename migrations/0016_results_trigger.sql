-- 0016_results_trigger: the result-waiters trigger (0013_results) fires only
-- after the statements that end a job, not after claims.
--
-- Why. raquel_jobs_30_notify_results fired after every UPDATE OF status, so
-- every claim paid a trigger call too (60-90 us per call under auto_explain)
-- although a claim never finishes a job. Every statement that ends a job sets
-- finished_at (raquel_complete and raquel_complete_many, raquel_fail,
-- raquel_cancel, raquel_expire, raquel_rescue: 0005_sweeps, 0007_outcomes,
-- 0013_results); a claim does not. So the trigger now fires after UPDATE OF
-- finished_at: one call per finishing statement (per job, or per batch of
-- raquel_complete_many), none per claim. A job ended by hand must set
-- finished_at too, as the functions do, for its waiters to be woken.
--
-- Guarantees: those of 0013_results for result waiters (a registered
-- waiter's job that finishes is notified; no lost wake-up through
-- raquel_result), with the trigger's statements narrowed as said.

DROP TRIGGER raquel_jobs_30_notify_results ON raquel_jobs;

CREATE TRIGGER raquel_jobs_30_notify_results
    AFTER UPDATE OF finished_at ON raquel_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_results();

COMMENT ON FUNCTION raquel_tg_jobs__notify_results() IS
'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not): NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table.';
