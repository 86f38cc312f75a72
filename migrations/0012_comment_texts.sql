-- 0012_comment_texts: the catalog comments no longer cite migration numbers.
--
-- Guarantees: comments only, no object changes. Twenty functions' COMMENT ON
-- (what \df+ shows and what docs/reference/sql.md is generated from) named the
-- development delta that gave them a rule, e.g. "now only from a role that may
-- update raquel_jobs (0020)", or "after each migration from 0021 on". Those
-- deltas were folded into the baseline (0001_engine_schema .. 0011_dashboard)
-- and no longer exist; each text keeps its rule and drops the number.

COMMENT ON FUNCTION raquel_cancel(uuid, uuid, bigint) IS
    'Cancels a waiting job, or (with claim_id) the claimed job of that claim; returns cancelled or NULL. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) IS
    'Claims up to batch ready jobs (scheduled at or before now, and before when given), each to this call alone, under one new claim_id and a lease of lease ms. now only from a role that may update raquel_jobs (else 42501); now + lease within the time range.';

COMMENT ON FUNCTION raquel_clock(text, bigint) IS
    'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range; else 42501 or 22023 naming "now".';

COMMENT ON FUNCTION raquel_complete(uuid, uuid, bigint) IS
    'Outcome success, fenced by claim_id; NULL when the claim is no longer current. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_complete_many(uuid[], uuid[], bigint) IS
    'raquel_complete for each pair, one statement; one row per pair in input order. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_enqueue(text, text, bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text, text) IS
    'Inserts one queued job and returns its id, or raises 22023 naming the bad argument and writes nothing. Times within 0001-01-02 .. 9999-12-30 UTC; now only from a role that may update raquel_jobs (else 42501).';

COMMENT ON FUNCTION raquel_enqueue_many(text, text[], bigint, bigint, bigint, integer, bigint, bigint, bigint, bigint, integer, text[], text) IS
    'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue.';

COMMENT ON FUNCTION raquel_expire(text[], bigint) IS
    'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_expose(text) IS
    'For the migration runner (after each migration, as the owner): makes the install schema''s stand-ins match schema raquel, an SQL function with the same signature whose body is the schema-qualified call for every raquel_* function, a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';

COMMENT ON FUNCTION raquel_fail(uuid, uuid, text, text, bigint) IS
    'Outcome failed (or exhausted), fenced by claim_id; the next attempt is due at now + the retry delay, at 9999-12-30 UTC at the latest.';

COMMENT ON FUNCTION raquel_fire_schedules(text[], bigint[], bigint[], bigint) IS
    'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_purge(interval, text[], integer, bigint) IS
    'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it).';

COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';

COMMENT ON FUNCTION raquel_reschedule(uuid, uuid, bigint, bigint, bigint) IS
    'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay.';

COMMENT ON FUNCTION raquel_rescue(text[], bigint) IS
    'Every claimed job whose lease ran out counts a failed attempt (failed or exhausted); returns how many. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_retry(uuid, bigint) IS
    'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs.';

COMMENT ON FUNCTION raquel_retry_jobs(text, text[], timestamp with time zone, bigint) IS
    'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since).';

COMMENT ON FUNCTION raquel_set_schedule(text, text, text, text, bigint, bigint, integer, bigint, integer, bigint) IS
    'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument).';

COMMENT ON FUNCTION raquel_stats(bigint) IS
    'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold.';

COMMENT ON FUNCTION raquel_unexpose(text) IS
    'For the migration runner (before each migration but the first, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';
