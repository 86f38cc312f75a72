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

-- raquel_enqueue_job has its comment since 0019; the functions 0020 restated
-- (enqueue, enqueue_many, claim, the sweeps, the outcomes that take now, the
-- operations and schedules) have theirs since 0020.

COMMENT ON FUNCTION raquel_new_id() IS
    'A new job id in the UUID version 7 layout (RFC 9562): the current ms in the first 48 bits, then 74 random bits from one gen_random_uuid(). Ids drawn in the same ms are in random order among themselves. The default of raquel_jobs.id, inlined by the planner. Touches no table.';

COMMENT ON FUNCTION raquel_new_ids(integer) IS
    'n distinct new job ids in raquel_new_id''s layout that sort by creation time, the random bits drawn once per call (for a batch); none for n < 1 or NULL.';

-- Claim ---------------------------------------------------------------------

COMMENT ON FUNCTION raquel_next_due(text[]) IS
    'The earliest time (ms) at which a job of these queues (NULL: all) becomes claimable (a waiting job''s scheduled_at or a claimed job''s lease deadline), or NULL when there is none. Workers sleep until then.';

-- Outcomes ------------------------------------------------------------------

COMMENT ON FUNCTION raquel_reject(uuid, uuid) IS
    'Outcome: this worker will not run the job; another may take it at once (raquel''s reject): queued, scheduled_at unchanged, claimed_by/claimed_at cleared, one attempt counted. Fenced: NULL and no change unless still claimed under claim_id.';

COMMENT ON FUNCTION raquel_release(uuid, uuid) IS
    'Hands a claimed job back untouched, as if never claimed: queued, claim cleared, scheduled_at unchanged, no attempt counted. For jobs a worker claimed but did not run (shutdown, cancellation). Fenced: NULL and no change unless still claimed under claim_id.';

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

COMMENT ON FUNCTION raquel_set_priority(uuid, integer) IS
    'Sets the priority of an unfinished (queued, failed or claimed) job and returns true; false, changing nothing, when the job is missing or finished. Higher runs first.';

COMMENT ON FUNCTION raquel_now_ms() IS
    'The current time in ms since the Unix epoch, from clock_timestamp(). Inlined into the caller''s statement. Touches no table.';

COMMENT ON FUNCTION raquel_ts(bigint) IS
    'A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading raquel_jobs by hand.';

COMMENT ON FUNCTION raquel_invalid(text, text, text) IS
    'Raises invalid_parameter_value (SQLSTATE 22023) saying that function p_function refused argument p_argument because of p_problem; the argument is also in the error''s COLUMN field.';

-- Schedules -----------------------------------------------------------------

COMMENT ON FUNCTION raquel_drop_schedule(text) IS
    'Deletes schedule name; returns whether it existed. Jobs it already enqueued are left alone.';

-- The engine schema (0021) ------------------------------------------------------

COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration from 0021 on, as the owner): makes the install schema''s stand-ins match schema raquel, an SQL function with the same signature whose body is the schema-qualified call for every raquel_* function, a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';

COMMENT ON FUNCTION raquel_unexpose(text) IS
    'For the migration runner (before each migration after 0021, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';

-- The dashboard (0023) ---------------------------------------------------------

COMMENT ON TABLE raquel_throughput_state IS
    'raquel_pg: one row, kept_until (ms since the epoch, exclusive): the minutes before it are counted in raquel_throughput_minutes. Written only by raquel_throughput(); derived, safe to reset to 0 with the minutes truncated.';
