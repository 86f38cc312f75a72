-- 0026_comments: every public function, view, table and domain states its
-- contract in the catalog, so psql users read it with \df+, \dv+, \dt+ and
-- \dD+, and the documentation's SQL reference is generated from the same
-- text (docs/reference/sql.md, read from the schema snapshot tests/schema.sql).
--
-- Comments only: no object changes. Unqualified names are the engine's
-- objects in schema raquel (the runner's search_path since 0021); the runner's
-- raquel_expose after this migration copies each comment to its stand-in in
-- the install schema, so \df+ shows it from either. Times are ms since the Unix epoch (UTC),
-- durations ms. Bad arguments raise SQLSTATE 22023 (invalid_parameter_value)
-- naming the argument in the message and the error's COLUMN field.
-- Signatures are given in full: COMMENT ON needs the argument types.

-- Tables --------------------------------------------------------------------

COMMENT ON TABLE raquel_jobs IS
    'raquel_pg jobs, one row per job, with raquel''s columns and meanings plus lease_expires_at and claim_id. Times are ms since the epoch (raquel_ts(ms) reads one as timestamptz). Change rows through the raquel_* functions; one-column rules are domains, the two that span columns are CHECK constraints.';

-- raquel_migrations stays in the install schema (0021), which is not on this
-- migration's search_path: the runner names it in raquel.install_schema.
DO $$
BEGIN
    EXECUTE format('COMMENT ON TABLE %I.raquel_migrations IS %L',
        current_setting('raquel.install_schema'),
        'raquel_pg migrations applied to this schema: version, name, SHA-256 checksum of the file and when it was applied. Written by raquel-pg migrate; an applied migration whose file changed is refused.');
END
$$;

COMMENT ON TABLE raquel_waiters IS
    'raquel_pg idle workers waiting on LISTEN raquel_jobs (UNLOGGED): one row per registration, consumed by the first NOTIFY it causes. Written by raquel_wait_begin / raquel_wait_end and the enqueue triggers only.';

-- Domains -------------------------------------------------------------------

COMMENT ON DOMAIN raquel_status IS
    'A job status: queued, claimed, success, failed (will be retried), cancelled, expired or exhausted (raquel''s seven).';

COMMENT ON DOMAIN raquel_name IS
    'A queue name or unique key: non-empty text of at most 1000 bytes.';

COMMENT ON DOMAIN raquel_delay IS
    'A duration in ms that is never negative (min_retry_delay, max_retry_delay, backoff_base).';

COMMENT ON DOMAIN raquel_max_age IS
    'A job''s max_age in ms, counted from enqueued_at: positive, or NULL for no limit.';

COMMENT ON DOMAIN raquel_retry_count IS
    'A job''s max_retry_count (retries after the first attempt) or attempts: never negative; NULL max_retry_count retries forever.';

-- Views ---------------------------------------------------------------------

COMMENT ON VIEW raquel_queue_stats IS
    'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired (claimed, lease run out: a dead or hung worker) and oldest_ready_age (interval, NULL when nothing is ready). The same numbers as raquel_stats().';

COMMENT ON VIEW raquel_problem_jobs IS
    'Failed, exhausted and expired jobs with their last error and attempts, newest first; finished as timestamptz.';

COMMENT ON VIEW raquel_expired_leases IS
    'Claimed jobs whose lease ran out: their worker died or hangs. The next claim on their queue rescues them (one failed attempt).';

-- Enqueue -------------------------------------------------------------------

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text) IS
    'Inserts one queued job due at coalesce(at, now) + coalesce(delay, 0) and returns its id; every argument is optional and named (NULL = default). priority: higher runs first (default 0). unique_key: at most one queued, failed or claimed job per key; unique_mode keep (default) returns the existing job unchanged, replace rewrites a waiting one (same id; a running one is kept). Bad arguments raise 22023 naming the argument and write nothing; times within +-(2^62 - 1) ms of the epoch, durations within [0, 2^62 - 1]. Wakes a registered idle worker by NOTIFY at commit.';

COMMENT ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text) IS
    'One job per element of payloads, with raquel_enqueue''s options, checks and messages, in one INSERT and one NOTIFY per queue; returns the ids in payload order. unique_keys gives one key (or NULL) per payload and behaves like the same raquel_enqueue calls one after the other (a repeated key makes one job; every element with it returns that id). A refused call writes nothing.';

-- raquel_enqueue_job has its comment since 0019.

COMMENT ON FUNCTION raquel_new_id() IS
    'A new job id in the UUID version 7 layout (RFC 9562): the current ms in the first 48 bits, then 74 random bits from one gen_random_uuid(). Ids drawn in the same ms are in random order among themselves. The default of raquel_jobs.id, inlined by the planner. Touches no table.';

COMMENT ON FUNCTION raquel_new_ids(integer) IS
    'n distinct new job ids in raquel_new_id''s layout that sort by creation time, the random bits drawn once per call (for a batch); none for n < 1 or NULL.';

-- Claim ---------------------------------------------------------------------

COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean) IS
    'Rescues jobs of these queues (NULL: all) whose lease ran out, then claims up to batch ready jobs (queued or failed, due, not past max_age), highest priority first then oldest scheduled_at, with FOR UPDATE SKIP LOCKED: each job goes to exactly one caller, status claimed, claimed_by = claim_as, a lease of lease ms (default 60000) and one fresh claim_id shared by the jobs of this call. Expires jobs past max_age when the claim comes back short, else at most once a second per connection. durable => false commits the calling transaction without waiting for its WAL flush (a server crash may undo the claim; the job then runs again); refused with 22023 in a transaction that has already written.';

COMMENT ON FUNCTION raquel_next_due(text[]) IS
    'The earliest time (ms) at which a job of these queues (NULL: all) becomes claimable (a waiting job''s scheduled_at or a claimed job''s lease deadline), or NULL when there is none. Workers sleep until then.';

COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the lease of each (job_id, claim_id) pair still held by that claim to now + lease ms and returns the ids renewed. A job missing from the result was rescued or finished: its worker no longer owns it.';

COMMENT ON FUNCTION raquel_expire(text[], bigint) IS
    'Every waiting job of these queues (NULL: all) past its max_age (counted from enqueued_at) becomes expired, finished_at = now; returns how many. Rows locked by a concurrent caller are skipped. raquel_claim runs it when due.';

COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
    'Every claimed job of these queues (NULL: all) whose lease ran out counts one failed attempt with error ''lease expired ...'' and becomes failed, claimable at once, or exhausted when that was its last attempt. Returns how many; rows locked by a concurrent caller are skipped. raquel_claim runs it when the oldest lease has run out.';

-- Outcomes ------------------------------------------------------------------

COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint) IS
    'Outcome: the job ran successfully: success, finished_at = now, one attempt counted. Fenced: acts only on a job still claimed under claim_id and returns its new status, else NULL, changing nothing.';

COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) IS
    'raquel_complete for each (job_id, claim_id) pair, in one statement: one row per pair in input order saying whether it was recorded (a repeated pair is recorded on its first row only). Fenced per pair like raquel_complete.';

COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
    'Outcome: the attempt failed. Records error and error_trace, counts one attempt; the job becomes failed, due again after raquel_retry_delay, or exhausted once max_retry_count retries are used. Fenced: NULL and no change unless still claimed under claim_id.';

COMMENT ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) IS
    'Outcome: run the job again later (raquel''s reschedule): queued at coalesce(at, now) + coalesce(delay, 0), or now + min_retry_delay when neither is given; one attempt counted, claimed_by/claimed_at kept, finished_at cleared. Fenced: NULL and no change unless still claimed under claim_id.';

COMMENT ON FUNCTION raquel_reject(uuid, uuid) IS
    'Outcome: this worker will not run the job; another may take it at once (raquel''s reject): queued, scheduled_at unchanged, claimed_by/claimed_at cleared, one attempt counted. Fenced: NULL and no change unless still claimed under claim_id.';

COMMENT ON FUNCTION raquel_release(uuid, uuid) IS
    'Hands a claimed job back untouched, as if never claimed: queued, claim cleared, scheduled_at unchanged, no attempt counted. For jobs a worker claimed but did not run (shutdown, cancellation). Fenced: NULL and no change unless still claimed under claim_id.';

COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint) IS
    'Cancels a job. With claim_id (from the job''s own handler): the claimed job becomes cancelled, one attempt counted, fenced like every outcome. Without: only a waiting (queued or failed) job; a claimed job is never cancelled under its worker. Returns ''cancelled'', or NULL when nothing was cancelled.';

COMMENT ON FUNCTION raquel_claim_outcome(uuid, uuid) IS
    'Read-only: when claim claim_id of job job_id has ended, the status and error that claim''s outcome (or the rescue that ended it) left; no row while the claim still runs or when it is not the job''s last claim. Workers call it after an outcome whose reply was lost, to learn whether it committed.';

COMMENT ON FUNCTION raquel_retry_delay(integer, bigint, bigint, bigint) IS
    'The wait after a job''s n-th failed attempt: backoff_base * 2^(n-1) clamped to [min_retry_delay, max_retry_delay] (1 s, 2 s, 4 s, ... up to 12 h with the defaults). Pure; never overflows.';

-- Waking workers ------------------------------------------------------------

COMMENT ON FUNCTION raquel_wait_begin(uuid, text[], bigint) IS
    'Registers worker as idle, waiting for jobs of queues (NULL: all) for ttl_ms, so producers NOTIFY raquel_jobs for them; the registration is consumed by the first notification it causes. Returns false while a producer that may have missed the registration is still open (claim again shortly instead of waiting). Never waits for a lock. 22023 for a NULL worker or ttl_ms not > 0.';

COMMENT ON FUNCTION raquel_wait_end(uuid) IS
    'Removes worker''s registrations (rows a producer is consuming are skipped, never waited for); returns whether it deleted any.';

COMMENT ON FUNCTION raquel_notify_ready(text[]) IS
    'Internal (the enqueue triggers): for each queue, NOTIFY raquel_jobs with the queue name when a live registration wants it (always outside READ COMMITTED), deleting the registrations it notified that no other transaction has locked.';

COMMENT ON FUNCTION raquel_tg_jobs__notify_insert() IS
    'Statement trigger after INSERT on raquel_jobs: one notification per distinct queue that got a ready job, only when an idle worker registered for it waits.';

COMMENT ON FUNCTION raquel_tg_jobs__notify_update() IS
    'Row trigger after UPDATE on raquel_jobs (its WHEN clause is evaluated in C): notifies when a job comes back to a waiting state ready now (reject, immediate reschedule, rescue, retry) and an idle worker waits for its queue.';

-- Operations ----------------------------------------------------------------

COMMENT ON FUNCTION raquel_stats(bigint) IS
    'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired and oldest_ready_age_ms (NULL when nothing is ready). The source of raquel_queue_stats and raquel-pg stats.';

COMMENT ON FUNCTION raquel_retry(uuid, bigint) IS
    'Puts one failed, exhausted, expired or cancelled job back to queued, claimable now: attempts kept (an exhausted job gets one more), enqueued_at reset (max_age counts from the retry), claim and finished_at cleared. Returns true, or false (no change) when the job is missing or in another status.';

COMMENT ON FUNCTION raquel_retry_jobs(text, text[], timestamp with time zone, bigint) IS
    'raquel_retry for every job of queue (NULL: all) in statuses (default failed, exhausted, expired; only those and cancelled allowed) finished at or after since (NULL: any time). Returns how many; rows locked by a concurrent caller are skipped.';

COMMENT ON FUNCTION raquel_purge(interval, text[], integer, bigint) IS
    'Deletes at most batch_size (default 1000) finished jobs (success, cancelled, expired, exhausted; narrowed by statuses) finished more than older_than ago, oldest first; returns how many. One short batch per call: call it until it returns 0. Waiting, running and failed jobs are never deleted.';

COMMENT ON FUNCTION raquel_set_priority(uuid, integer) IS
    'Sets the priority of an unfinished (queued, failed or claimed) job and returns true; false, changing nothing, when the job is missing or finished. Higher runs first.';

COMMENT ON FUNCTION raquel_now_ms() IS
    'The current time in ms since the Unix epoch, from clock_timestamp(). Inlined into the caller''s statement. Touches no table.';

COMMENT ON FUNCTION raquel_ts(bigint) IS
    'A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading raquel_jobs by hand.';

COMMENT ON FUNCTION raquel_invalid(text, text, text) IS
    'Raises invalid_parameter_value (SQLSTATE 22023) saying that function p_function refused argument p_argument because of p_problem; the argument is also in the error''s COLUMN field.';

-- Schedules -----------------------------------------------------------------

COMMENT ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) IS
    'Creates or updates schedule name (one job per tick on queue) and returns its next_run_at. Exactly one of cron and every (ms, > 0). Re-declaring with the same cron/every keeps next_run_at (a restart neither skips nor repeats a tick); changing them restarts from first_run_at (default: now + every; for cron, the next scheduler run sets the first tick).';

COMMENT ON FUNCTION raquel_drop_schedule(text) IS
    'Deletes schedule name; returns whether it existed. Jobs it already enqueued are left alone.';

COMMENT ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) IS
    'For schedulers: for each names[i] still due at ticks[i], enqueues its job (scheduled at the tick) and moves next_run_at to next_run_ats[i], as a compare-and-set in the same statement, so exactly one scheduler fires a tick. Returns the schedules fired and their job ids.';

-- The engine schema (0021) ------------------------------------------------------

COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration from 0021 on, as the owner): makes the install schema''s stand-ins match schema raquel, an SQL function with the same signature whose body is the schema-qualified call for every raquel_* function, a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';

COMMENT ON FUNCTION raquel_unexpose(text) IS
    'For the migration runner (before each migration after 0021, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';
