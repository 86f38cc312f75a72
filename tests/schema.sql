-- PostgreSQL 15: pg_dump --schema-only of a freshly migrated database, normalised. Regenerate: python tools/schema_snapshot.py
CREATE SCHEMA raquel;

COMMENT ON SCHEMA raquel IS 'raquel_pg''s engine: only its owner may create objects here (docs/security.md).';

CREATE DOMAIN raquel.raquel_delay AS bigint
	CONSTRAINT raquel_delay_check CHECK ((VALUE >= 0));

COMMENT ON DOMAIN raquel.raquel_delay IS 'A duration in ms that is never negative (min_retry_delay, max_retry_delay, backoff_base).';

CREATE DOMAIN raquel.raquel_max_age AS bigint
	CONSTRAINT raquel_max_age_check CHECK ((VALUE > 0));

COMMENT ON DOMAIN raquel.raquel_max_age IS 'A job''s max_age in ms, counted from enqueued_at: positive, or NULL for no limit.';

CREATE DOMAIN raquel.raquel_name AS text
	CONSTRAINT raquel_name_check CHECK (((VALUE <> ''::text) AND (octet_length(VALUE) <= 1000)));

COMMENT ON DOMAIN raquel.raquel_name IS 'A queue name or unique key: non-empty text of at most 1000 bytes.';

CREATE DOMAIN raquel.raquel_retry_count AS integer
	CONSTRAINT raquel_retry_count_check CHECK ((VALUE >= 0));

COMMENT ON DOMAIN raquel.raquel_retry_count IS 'A job''s max_retry_count (retries after the first attempt) or attempts: never negative; NULL max_retry_count retries forever.';

CREATE DOMAIN raquel.raquel_status AS text
	CONSTRAINT raquel_status_check CHECK ((VALUE = ANY (ARRAY['queued'::text, 'claimed'::text, 'success'::text, 'failed'::text, 'cancelled'::text, 'expired'::text, 'exhausted'::text])));

COMMENT ON DOMAIN raquel.raquel_status IS 'A job status: queued, claimed, success, failed (will be retried), cancelled, expired or exhausted (raquel''s seven).';

CREATE DOMAIN raquel.raquel_timeout AS bigint
	CONSTRAINT raquel_timeout_check CHECK ((VALUE > 0));

COMMENT ON DOMAIN raquel.raquel_timeout IS 'A job''s time limit per attempt in ms: positive, or NULL for none (the worker''s default).';

CREATE DOMAIN raquel.raquel_trace_context AS text
	CONSTRAINT raquel_trace_context_check CHECK ((octet_length(VALUE) <= 2048));

COMMENT ON DOMAIN raquel.raquel_trace_context IS 'A job''s stored trace context (propagation carrier as JSON text): at most 2048 bytes, or NULL for none.';

CREATE FUNCTION public.raquel_attempt_claim(job_id uuid, attempt_num integer) RETURNS uuid
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_attempt_claim (docs/security.md)
SELECT raquel.raquel_attempt_claim($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_attempt_claim(job_id uuid, attempt_num integer) IS 'The claim_id of the job''s current claim when the job is claimed and attempt_num is its running attempt (attempts + 1), else NULL; passing it to raquel_complete/raquel_fail/raquel_reject settles exactly that attempt and nothing else. Changes nothing. SQLSTATE 22023 naming the argument for a NULL job_id or an attempt_num below 1.';

CREATE FUNCTION public.raquel_cancel(job_id uuid, claim_id uuid DEFAULT NULL::uuid, now bigint DEFAULT NULL::bigint, running boolean DEFAULT false) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_cancel (docs/security.md)
SELECT raquel.raquel_cancel($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_cancel(job_id uuid, claim_id uuid, now bigint, running boolean) IS 'With claim_id: the claimed job becomes cancelled, fenced. Without: a queued or failed job becomes cancelled (returns ''cancelled''); with running => true a claimed job''s current claim is asked to stop (cancel_claim_id, NOTIFY raquel_cancel with the job id; returns ''cancel_requested''): its worker''s failure or a rescue then ends it cancelled. NULL when nothing was done. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_check_queue(fn text, queue text) RETURNS void
    LANGUAGE sql IMMUTABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_check_queue (docs/security.md)
SELECT raquel.raquel_check_queue($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_check_queue(fn text, queue text) IS 'Internal: 22023 naming "queue" (and the calling function fn) unless queue is a queue name (non-empty, at most 1000 bytes).';

CREATE FUNCTION public.raquel_check_trace_context(fn text, trace_context text) RETURNS void
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_check_trace_context (docs/security.md)
SELECT raquel.raquel_check_trace_context($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_check_trace_context(fn text, trace_context text) IS 'Returns when trace_context is NULL or a storable trace carrier (a JSON object of strings, at most 2048 bytes, a valid W3C traceparent if it has one: not version ff, no trace id or parent id of zeros only); else 22023 naming trace_context, the message naming fn. Writes nothing. The rule raquel_enqueue_row and raquel_enqueue_many apply.';

CREATE FUNCTION raquel.raquel_now_ms() RETURNS bigint
    LANGUAGE sql PARALLEL SAFE
    RETURN (floor((EXTRACT(epoch FROM clock_timestamp()) * (1000)::numeric)))::bigint;

COMMENT ON FUNCTION raquel.raquel_now_ms() IS 'The current time in ms since the Unix epoch, from clock_timestamp(). Inlined into the caller''s statement. Touches no table.';

CREATE FUNCTION raquel.raquel_new_id() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    RETURN (((lpad(to_hex((raquel.raquel_now_ms() & '281474976710655'::bigint)), 12, '0'::text) || '7'::text) || substr((gen_random_uuid())::text, 16)))::uuid;

COMMENT ON FUNCTION raquel.raquel_new_id() IS 'A new job id in the UUID version 7 layout (RFC 9562): the current ms in the first 48 bits, then 74 random bits from one gen_random_uuid(). Ids drawn in the same ms are in random order among themselves. The default of raquel_jobs.id, inlined by the planner. Touches no table.';

CREATE TABLE raquel.raquel_jobs (
    id uuid DEFAULT raquel.raquel_new_id() NOT NULL,
    queue raquel.raquel_name DEFAULT 'default'::text NOT NULL,
    payload text,
    status raquel.raquel_status DEFAULT 'queued'::text NOT NULL,
    max_age raquel.raquel_max_age,
    max_retry_count raquel.raquel_retry_count,
    min_retry_delay raquel.raquel_delay DEFAULT 1000 NOT NULL,
    max_retry_delay bigint DEFAULT 43200000 NOT NULL,
    backoff_base raquel.raquel_delay DEFAULT 1000 NOT NULL,
    enqueued_at bigint DEFAULT raquel.raquel_now_ms() NOT NULL,
    scheduled_at bigint DEFAULT raquel.raquel_now_ms() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    error text,
    error_trace text,
    claimed_by text,
    claimed_at bigint,
    finished_at bigint,
    lease_expires_at bigint,
    claim_id uuid,
    priority integer DEFAULT 0 NOT NULL,
    unique_key raquel.raquel_name,
    result jsonb,
    timeout raquel.raquel_timeout,
    cancel_claim_id uuid,
    trace_context raquel.raquel_trace_context,
    CONSTRAINT raquel_jobs_claim_check CHECK ((((status)::text <> 'claimed'::text) OR ((lease_expires_at IS NOT NULL) AND (claim_id IS NOT NULL)))),
    CONSTRAINT raquel_jobs_delays_check CHECK ((max_retry_delay >= (min_retry_delay)::bigint))
)
WITH (fillfactor='50');

COMMENT ON TABLE raquel.raquel_jobs IS 'raquel_pg jobs, one row per job, with raquel''s columns and meanings plus lease_expires_at and claim_id. Times are ms since the epoch (raquel_ts(ms) reads one as timestamptz). Change rows through the raquel_* functions; one-column rules are domains, the two that span columns are CHECK constraints.';

COMMENT ON COLUMN raquel.raquel_jobs.priority IS 'Higher runs first (default 0); FIFO by scheduled_at within one priority. Change with raquel_set_priority().';

COMMENT ON COLUMN raquel.raquel_jobs.unique_key IS 'At most one unfinished (queued, failed, claimed) job per key; see raquel_enqueue(unique_key, unique_mode).';

COMMENT ON COLUMN raquel.raquel_jobs.result IS 'What the handler returned (JSON), stored with the success by raquel_complete / raquel_complete_many; NULL when it returned nothing or the job did not succeed. Read it with raquel_result(job_id).';

COMMENT ON COLUMN raquel.raquel_jobs.timeout IS 'Per-job time limit in ms (NULL: the worker''s default, if any), set at enqueue; a worker cancels an attempt running longer and records it failed ("timed out after N ms").';

COMMENT ON COLUMN raquel.raquel_jobs.cancel_claim_id IS 'The claim whose cancellation was requested (raquel_cancel(job_id, running => true)); while it equals claim_id, a failure or rescue of that claim ends the job cancelled.';

COMMENT ON COLUMN raquel.raquel_jobs.trace_context IS 'The enqueuer''s trace context (a JSON object of strings, e.g. {"traceparent": "00-...-...-01"}, at most 2048 bytes), set at enqueue (raquel_enqueue(..., trace_context =>)); a worker with OpenTelemetry parents its span for the job on it. NULL: enqueued outside a trace.';

CREATE FUNCTION public.raquel_claim(queues text[] DEFAULT NULL::text[], claim_as text DEFAULT NULL::text, batch integer DEFAULT 1, lease bigint DEFAULT 60000, now bigint DEFAULT NULL::bigint, durable boolean DEFAULT true, before bigint DEFAULT NULL::bigint, queue_list bigint DEFAULT NULL::bigint) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql ROWS 1
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_claim (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_claim($1, $2, $3, $4, $5, $6, $7, $8); END$_$;

COMMENT ON FUNCTION public.raquel_claim(queues text[], claim_as text, batch integer, lease bigint, now bigint, durable boolean, before bigint, queue_list bigint) IS 'Claims up to batch (1 .. 134217727) ready jobs (scheduled at or before now, and before when given), the highest priority then the oldest first, of the queues given (queues, or a list registered by raquel_queue_list given as queue_list, not both; neither: every queue), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range. Bad arguments: 22023 naming them, nothing written. The rows come back in no particular order (the clients sort them by priority, then scheduled_at).';

CREATE FUNCTION public.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint DEFAULT NULL::bigint) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql ROWS 1
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_claim_listed (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_claim_listed($1, $2, $3, $4, $5, $6, $7, $8); END$_$;

COMMENT ON FUNCTION public.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint) IS 'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (queues, or the registered list queue_list) (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index keeping the listed queues'' jobs by a hashed membership test (a hash table of the names built once per statement), or, for a registered list, by an index probe of its members for each of the first 32 jobs, at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';

CREATE FUNCTION public.raquel_claim_outcome(job_id uuid, claim_id uuid) RETURNS TABLE(status text, error text)
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_claim_outcome (docs/security.md)
SELECT * FROM raquel.raquel_claim_outcome($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_claim_outcome(job_id uuid, claim_id uuid) IS 'Read-only: when claim claim_id of job job_id has ended, the status and error that claim''s outcome (or the rescue that ended it) left; no row while the claim still runs or when it is not the job''s last claim. Workers call it after an outcome whose reply was lost, to learn whether it committed.';

CREATE FUNCTION public.raquel_claimers(queues text[] DEFAULT NULL::text[], other_than text DEFAULT NULL::text, sample integer DEFAULT 1000) RETURNS integer
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_claimers (docs/security.md)
SELECT raquel.raquel_claimers($1, $2, $3)$_$;

COMMENT ON FUNCTION public.raquel_claimers(queues text[], other_than text, sample integer) IS 'How many workers (distinct claimed_by) other than other_than hold claimed jobs of queues (NULL: any queue) among the sample newest leases of every queue. Reads at most sample claimed jobs; never waits for a lock. A worker with a prefetch keeps a second claim in flight only while this is 0 (0028_claimers). 22023 for a sample not between 1 and 1000000.';

CREATE FUNCTION public.raquel_clock(p_function text, p_now bigint) RETURNS bigint
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_clock (docs/security.md)
SELECT raquel.raquel_clock($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_clock(p_function text, p_now bigint) IS 'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range; else 42501 or 22023 naming "now".';

CREATE FUNCTION public.raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL::bigint, result jsonb DEFAULT NULL::jsonb) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_complete (docs/security.md)
SELECT raquel.raquel_complete($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_complete(job_id uuid, claim_id uuid, now bigint, result jsonb) IS 'Records the success of the claimed job, fenced by claim_id, with result (JSON, NULL for none) stored in the same UPDATE; returns ''success'', or NULL (nothing written) when the claim is no longer current. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still ''success''). Called inside a handler''s own transaction it commits or rolls back with the handler''s writes (exactly once for work in the same database). now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint DEFAULT NULL::bigint, results jsonb[] DEFAULT NULL::jsonb[]) RETURNS TABLE(job_id uuid, recorded boolean)
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_complete_many (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_complete_many($1, $2, $3, $4); END$_$;

COMMENT ON FUNCTION public.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint, results jsonb[]) IS 'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still recorded). Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_drop_schedule(name text) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_drop_schedule (docs/security.md)
SELECT raquel.raquel_drop_schedule($1)$_$;

COMMENT ON FUNCTION public.raquel_drop_schedule(name text) IS 'Deletes schedule name; returns whether it existed. Jobs it already enqueued are left alone.';

CREATE FUNCTION public.raquel_enqueue(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_enqueue (docs/security.md)
SELECT raquel.raquel_enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)$_$;

COMMENT ON FUNCTION public.raquel_enqueue(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues one job and returns its id: scheduled at coalesce(at, now) + coalesce(delay, 0); unique_key/unique_mode keep or replace the unfinished job holding the key; timeout (ms) limits each attempt; trace_context stores the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes) for the worker''s span. now only from a role that may update raquel_jobs (else 42501). Bad arguments: 22023 naming the argument, nothing written. The id of raquel_enqueue_row: callers need EXECUTE on both.';

CREATE FUNCTION public.raquel_enqueue_job(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_enqueue_job (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_enqueue_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14); END$_$;

COMMENT ON FUNCTION public.raquel_enqueue_job(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues a job exactly as raquel_enqueue (same arguments but now, timeout and trace_context included; same rules and errors) and returns its row in the same call: for unique_mode keep, the row of the job already holding the key. raquel_enqueue_row''s row as a set.';

CREATE FUNCTION public.raquel_enqueue_many(queue text, payloads text[], at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_keys text[] DEFAULT NULL::text[], unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS SETOF uuid
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_enqueue_many (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_enqueue_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15); END$_$;

COMMENT ON FUNCTION public.raquel_enqueue_many(queue text, payloads text[], at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_keys text[], unique_mode text, timeout bigint, trace_context text) IS 'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue; timeout (ms) and trace_context are stored with every job.';

CREATE FUNCTION public.raquel_enqueue_row(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS raquel.raquel_jobs
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_enqueue_row (docs/security.md)
SELECT raquel.raquel_enqueue_row($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)$_$;

COMMENT ON FUNCTION public.raquel_enqueue_row(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues a job with raquel_enqueue''s arguments, rules and errors (errors name raquel_enqueue) and returns its row as stored: the new job, or for unique_mode keep the job already holding the key. trace_context: the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes, else 22023). What raquel_enqueue and raquel_enqueue_job call.';

CREATE FUNCTION public.raquel_expire(queues text[] DEFAULT NULL::text[], now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_expire (docs/security.md)
SELECT raquel.raquel_expire($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_expire(queues text[], now bigint) IS 'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_fail(job_id uuid, claim_id uuid, error text DEFAULT NULL::text, error_trace text DEFAULT NULL::text, now bigint DEFAULT NULL::bigint) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_fail (docs/security.md)
SELECT raquel.raquel_fail($1, $2, $3, $4, $5)$_$;

COMMENT ON FUNCTION public.raquel_fail(job_id uuid, claim_id uuid, error text, error_trace text, now bigint) IS 'Records a failed attempt of the claimed job, fenced by claim_id: exhausted after attempt max_retry_count + 1, else failed and due again at now + the retry delay (at most the time range''s end); cancelled (never retried) when the cancellation of this claim was requested. Returns the new status, or NULL when the claim is no longer current. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint DEFAULT NULL::bigint) RETURNS TABLE(name text, job_id uuid)
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_fire_schedules (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_fire_schedules($1, $2, $3, $4); END$_$;

COMMENT ON FUNCTION public.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint) IS 'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. An interval schedule moves to its next tick after now (its next_run_ats[i] is ignored), a cron schedule to next_run_ats[i] (the caller evaluates cron). ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_invalid(p_function text, p_argument text, p_problem text) RETURNS void
    LANGUAGE sql IMMUTABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_invalid (docs/security.md)
SELECT raquel.raquel_invalid($1, $2, $3)$_$;

COMMENT ON FUNCTION public.raquel_invalid(p_function text, p_argument text, p_problem text) IS 'Raises invalid_parameter_value (SQLSTATE 22023) saying that function p_function refused argument p_argument because of p_problem; the argument is also in the error''s COLUMN field.';

CREATE FUNCTION public.raquel_new_id() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$-- raquel_pg stand-in: calls raquel.raquel_new_id (docs/security.md)
SELECT raquel.raquel_new_id()$$;

COMMENT ON FUNCTION public.raquel_new_id() IS 'A new job id in the UUID version 7 layout (RFC 9562): the current ms in the first 48 bits, then 74 random bits from one gen_random_uuid(). Ids drawn in the same ms are in random order among themselves. The default of raquel_jobs.id, inlined by the planner. Touches no table.';

CREATE FUNCTION public.raquel_new_ids(n integer) RETURNS uuid[]
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_new_ids (docs/security.md)
SELECT raquel.raquel_new_ids($1)$_$;

COMMENT ON FUNCTION public.raquel_new_ids(n integer) IS 'n distinct new job ids in raquel_new_id''s layout that sort by creation time, the random bits drawn once per call (for a batch); none for n < 1 or NULL.';

CREATE FUNCTION public.raquel_next_due(queues text[] DEFAULT NULL::text[]) RETURNS bigint
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_next_due (docs/security.md)
SELECT raquel.raquel_next_due($1)$_$;

COMMENT ON FUNCTION public.raquel_next_due(queues text[]) IS 'The earliest time (ms) at which a claim of these queues (NULL: all) can take a job: a waiting job''s scheduled_at or a claimed job''s lease deadline, as the queue controls permit (a paused queue: never; at max_running: its running jobs'' lease deadlines; per_second: not before its next token); NULL when there is none. Workers sleep until then.';

CREATE FUNCTION public.raquel_notify_ready(queues text[]) RETURNS void
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_notify_ready (docs/security.md)
SELECT raquel.raquel_notify_ready($1)$_$;

COMMENT ON FUNCTION public.raquel_notify_ready(queues text[]) IS 'Internal (the enqueue triggers): for each queue, NOTIFY raquel_jobs with the queue name when a live registration wants it (always outside READ COMMITTED), deleting the registrations it notified that no other transaction has locked.';

CREATE FUNCTION public.raquel_now_ms() RETURNS bigint
    LANGUAGE sql PARALLEL SAFE
    AS $$-- raquel_pg stand-in: calls raquel.raquel_now_ms (docs/security.md)
SELECT raquel.raquel_now_ms()$$;

COMMENT ON FUNCTION public.raquel_now_ms() IS 'The current time in ms since the Unix epoch, from clock_timestamp(). Inlined into the caller''s statement. Touches no table.';

CREATE FUNCTION public.raquel_pause_queue(queue text) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_pause_queue (docs/security.md)
SELECT raquel.raquel_pause_queue($1)$_$;

COMMENT ON FUNCTION public.raquel_pause_queue(queue text) IS 'Pauses a queue: claims that begin after this commits skip it; it still accepts enqueues and its running jobs finish as usual. True when this call paused it, false when it was paused already. 22023 naming queue for a NULL, empty or over-long name.';

CREATE FUNCTION public.raquel_prune(batch_size integer DEFAULT 1000, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_prune (docs/security.md)
SELECT raquel.raquel_prune($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_prune(batch_size integer, now bigint) IS 'Deletes at most batch_size finished jobs older than their queue''s retention (raquel_set_retention; else the default), oldest first; returns how many and adds them to the queue''s pruned count. 0 when no retention is set; NULL, nothing done, while another transaction prunes (one sweep at a time). First, whatever the retention, deletes the registered lists of queues (raquel_queue_list) unused for 7 days. 22023 naming batch_size when it is below 1. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION public.raquel_purge(older_than interval, statuses text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1000, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_purge (docs/security.md)
SELECT raquel.raquel_purge($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_purge(older_than interval, statuses text[], batch_size integer, now bigint) IS 'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it).';

CREATE FUNCTION public.raquel_queue_controls() RETURNS TABLE(queue text, paused boolean, max_running integer, per_second double precision, retention_ms bigint, pruned bigint)
    LANGUAGE sql STABLE
    AS $$-- raquel_pg stand-in: calls raquel.raquel_queue_controls (docs/security.md)
SELECT * FROM raquel.raquel_queue_controls()$$;

COMMENT ON FUNCTION public.raquel_queue_controls() IS 'Per queue with a setting: paused, max_running, per_second, retention_ms (NULL: the default; 315576000000000: forever), pruned (finished jobs raquel_prune deleted), by queue; then, when a default retention is set, a row with queue NULL carrying it. Read-only.';

CREATE FUNCTION public.raquel_queue_list(queues text[]) RETURNS bigint
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_queue_list (docs/security.md)
SELECT raquel.raquel_queue_list($1)$_$;

COMMENT ON FUNCTION public.raquel_queue_list(queues text[]) IS 'The id of the list of these queues (order and repetitions do not matter), registered at the first call: raquel_claim(queue_list => id) claims from it without sending the names. A call for a list registered before marks it in use (used_at, written at most once an hour); raquel_prune deletes the lists unused for 7 days. 22023 naming queues for NULL, an empty list, a NULL name, or a name empty or longer than 1000 bytes.';

CREATE FUNCTION public.raquel_queue_overview(now bigint DEFAULT NULL::bigint) RETURNS TABLE(queue text, queued bigint, failed bigint, ready bigint, scheduled bigint, running bigint, lease_expired bigint, oldest_ready_age_ms bigint)
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_queue_overview (docs/security.md)
SELECT * FROM raquel.raquel_queue_overview($1)$_$;

COMMENT ON FUNCTION public.raquel_queue_overview(now bigint) IS 'Per queue with waiting or claimed jobs: queued, failed, ready, scheduled, running, lease_expired, oldest_ready_age_ms, read from the partial indexes only. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION public.raquel_reject(job_id uuid, claim_id uuid) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_reject (docs/security.md)
SELECT raquel.raquel_reject($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_reject(job_id uuid, claim_id uuid) IS 'Outcome: this worker will not run the job; another may take it at once (raquel''s reject): queued, scheduled_at unchanged, claimed_by/claimed_at cleared, one attempt counted. Fenced: NULL and no change unless still claimed under claim_id.';

CREATE FUNCTION public.raquel_release(job_id uuid, claim_id uuid) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_release (docs/security.md)
SELECT raquel.raquel_release($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_release(job_id uuid, claim_id uuid) IS 'Hands a claimed job back untouched, as if never claimed: queued, claim cleared, scheduled_at unchanged, no attempt counted. For jobs a worker claimed but did not run (shutdown, cancellation). Fenced: NULL and no change unless still claimed under claim_id.';

CREATE FUNCTION public.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL::bigint) RETURNS SETOF uuid
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_renew_leases (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_renew_leases($1, $2, $3, $4); END$_$;

COMMENT ON FUNCTION public.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint, now bigint) IS 'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';

CREATE FUNCTION public.raquel_reschedule(job_id uuid, claim_id uuid, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint) RETURNS text
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_reschedule (docs/security.md)
SELECT raquel.raquel_reschedule($1, $2, $3, $4, $5)$_$;

COMMENT ON FUNCTION public.raquel_reschedule(job_id uuid, claim_id uuid, at bigint, delay bigint, now bigint) IS 'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay.';

CREATE FUNCTION public.raquel_rescue(queues text[] DEFAULT NULL::text[], now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_rescue (docs/security.md)
SELECT raquel.raquel_rescue($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_rescue(queues text[], now bigint) IS 'Every claimed job (of queues, NULL: all) whose lease ran out counts one failed attempt: failed and claimable at once, exhausted after max_retry_count retries, or cancelled when its claim''s cancellation was requested; a job handed to a worker that never took it (claimed_at NULL, 0019_handoff) goes back queued (or cancelled) with no attempt counted. Returns how many. Locked rows are skipped. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_result(job_id uuid) RETURNS TABLE(status text, finished boolean, result jsonb, error text, attempts integer, finished_at bigint)
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_result (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_result($1); END$_$;

COMMENT ON FUNCTION public.raquel_result(job_id uuid) IS 'The job''s status, whether it is finished (success, exhausted, expired, cancelled), its result (JSON stored with the success), error, attempts and finished_at; no row when there is no such job. Waits for a transaction changing the job at that moment, so that with raquel_result_watch no end is missed. 22023 naming job_id when NULL.';

CREATE FUNCTION public.raquel_result_unwatch(watch_id bigint, job_id uuid) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_result_unwatch (docs/security.md)
SELECT raquel.raquel_result_unwatch($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_result_unwatch(watch_id bigint, job_id uuid) IS 'Deletes the result-wait registration watch_id of job job_id (a waiter that gave up); true if it was there, false if it was already served, never existed or is another job''s (nothing deleted).';

CREATE FUNCTION public.raquel_result_watch(job_id uuid) RETURNS bigint
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_result_watch (docs/security.md)
SELECT raquel.raquel_result_watch($1)$_$;

COMMENT ON FUNCTION public.raquel_result_watch(job_id uuid) IS 'Registers a wait for the job''s end (LISTEN raquel_results first, commit this, then read raquel_result): the statement that finishes the job sends NOTIFY raquel_results with the job id and deletes the registration. Returns the registration id for raquel_result_unwatch. 22023 naming job_id when NULL.';

CREATE FUNCTION public.raquel_resume_queue(queue text) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_resume_queue (docs/security.md)
SELECT raquel.raquel_resume_queue($1)$_$;

COMMENT ON FUNCTION public.raquel_resume_queue(queue text) IS 'Resumes a paused queue: claims take its jobs again, and the idle workers waiting for it are notified at commit (NOTIFY raquel_jobs). True when it was paused, false (nothing written) otherwise. 22023 naming queue for a bad name.';

CREATE FUNCTION public.raquel_retry(job_id uuid, now bigint DEFAULT NULL::bigint) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_retry (docs/security.md)
SELECT raquel.raquel_retry($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_retry(job_id uuid, now bigint) IS 'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs.';

CREATE FUNCTION public.raquel_retry_delay(attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_retry_delay (docs/security.md)
SELECT raquel.raquel_retry_delay($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_retry_delay(attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint) IS 'The wait after a job''s n-th failed attempt: backoff_base * 2^(n-1) clamped to [min_retry_delay, max_retry_delay] (1 s, 2 s, 4 s, ... up to 12 h with the defaults), then to [0, 2^62] ms. Pure; never overflows, whatever a row holds.';

CREATE FUNCTION public.raquel_retry_jobs(queue text DEFAULT NULL::text, statuses text[] DEFAULT NULL::text[], since timestamp with time zone DEFAULT NULL::timestamp with time zone, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_retry_jobs (docs/security.md)
SELECT raquel.raquel_retry_jobs($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_retry_jobs(queue text, statuses text[], since timestamp with time zone, now bigint) IS 'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since).';

CREATE FUNCTION public.raquel_serve_results(job_ids uuid[]) RETURNS integer
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_serve_results (docs/security.md)
SELECT raquel.raquel_serve_results($1)$_$;

COMMENT ON FUNCTION public.raquel_serve_results(job_ids uuid[]) IS 'Internal (raquel_complete, raquel_complete_many, raquel_fail, and the trigger raquel_jobs_30_notify_results for every registered job): NOTIFY raquel_results once per job among job_ids that is finished or gone and has registered result waiters, deleting those registrations (by the index on raquel_result_waiters.job_id). Returns the jobs notified.';

CREATE FUNCTION public.raquel_set_priority(job_id uuid, priority integer) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_set_priority (docs/security.md)
SELECT raquel.raquel_set_priority($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_set_priority(job_id uuid, priority integer) IS 'Sets the priority of an unfinished (queued, failed or claimed) job and returns true; false, changing nothing, when the job is missing or finished. Higher runs first.';

CREATE FUNCTION public.raquel_set_queue_limits(queue text, max_running integer DEFAULT NULL::integer, per_second double precision DEFAULT NULL::double precision, now bigint DEFAULT NULL::bigint) RETURNS void
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_set_queue_limits (docs/security.md)
SELECT raquel.raquel_set_queue_limits($1, $2, $3, $4)$_$;

COMMENT ON FUNCTION public.raquel_set_queue_limits(queue text, max_running integer, per_second double precision, now bigint) IS 'Sets a queue''s limits to exactly these (NULL: none): max_running (>= 1) caps its claimed jobs at once across all workers and hosts; per_second (> 0) caps how fast its claims start (token bucket of greatest(1, per_second/10) tokens: over any second at most per_second plus one bucket). Enforced by raquel_claim. 22023 naming the argument for a bad value, nothing written. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION public.raquel_set_retention(queue text, keep interval) RETURNS void
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_set_retention (docs/security.md)
SELECT raquel.raquel_set_retention($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_set_retention(queue text, keep interval) IS 'Keeps the finished jobs (success, cancelled, expired, exhausted) of queue (NULL: of every queue without its own setting) for keep after they finished; older ones are deleted by raquel_prune (and the workers'' maintenance). keep NULL keeps them forever (the default), for a queue whatever the default (stored as retention_ms 315576000000000, 0022_retention_forever). 22023 naming keep for a negative or infinite interval, naming queue for a bad name.';

CREATE FUNCTION public.raquel_set_schedule(name text, queue text, payload text DEFAULT NULL::text, cron text DEFAULT NULL::text, every bigint DEFAULT NULL::bigint, first_run_at bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, now bigint DEFAULT NULL::bigint) RETURNS bigint
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_set_schedule (docs/security.md)
SELECT raquel.raquel_set_schedule($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)$_$;

COMMENT ON FUNCTION public.raquel_set_schedule(name text, queue text, payload text, cron text, every bigint, first_run_at bigint, priority integer, max_age bigint, max_retry_count integer, now bigint) IS 'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument).';

CREATE FUNCTION public.raquel_stats(now bigint DEFAULT NULL::bigint) RETURNS TABLE(queue text, total bigint, queued bigint, claimed bigint, success bigint, failed bigint, cancelled bigint, expired bigint, exhausted bigint, ready bigint, scheduled bigint, lease_expired bigint, oldest_ready_age_ms bigint)
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_stats (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_stats($1); END$_$;

COMMENT ON FUNCTION public.raquel_stats(now bigint) IS 'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold.';

CREATE FUNCTION public.raquel_take(job_id uuid, claim_id uuid, lease bigint DEFAULT 60000, claim_as text DEFAULT NULL::text, queues text[] DEFAULT NULL::text[]) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql ROWS 1
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_take (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_take($1, $2, $3, $4, $5); END$_$;

COMMENT ON FUNCTION public.raquel_take(job_id uuid, claim_id uuid, lease bigint, claim_as text, queues text[]) IS 'Takes a job handed to a worker (NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''): when still claimed under claim_id, not yet taken, claimed by claim_as (when given) and of one of queues (when given), sets claimed_at, renews its lease to lease ms from now and returns its row; else no row, nothing changed. Its commit does not wait for the WAL flush when the transaction wrote nothing before (the claim is already durable). 22023 for a NULL job_id or claim_id, lease not > 0, an empty claim_as or an empty queues.';

CREATE FUNCTION public.raquel_throughput(since bigint, now bigint DEFAULT NULL::bigint) RETURNS TABLE(minute bigint, queue text, status text, jobs bigint)
    LANGUAGE plpgsql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_throughput (docs/security.md)
BEGIN RETURN QUERY SELECT * FROM raquel.raquel_throughput($1, $2); END$_$;

COMMENT ON FUNCTION public.raquel_throughput(since bigint, now bigint) IS 'Jobs finished per minute, queue and final status since "since" (within two days); closed minutes are counted once and kept. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION public.raquel_ts(ms bigint) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_ts (docs/security.md)
SELECT raquel.raquel_ts($1)$_$;

COMMENT ON FUNCTION public.raquel_ts(ms bigint) IS 'A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading raquel_jobs by hand.';

CREATE FUNCTION public.raquel_unclaim(job_id uuid) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_unclaim (docs/security.md)
SELECT raquel.raquel_unclaim($1)$_$;

COMMENT ON FUNCTION public.raquel_unclaim(job_id uuid) IS 'Puts a claimed job back as queued, whoever holds it (raquel''s unclaim): no attempt counted, claim cleared; true if the job was claimed, false (nothing written) otherwise. The holder''s later outcome calls are refused (their claim is no longer current) and its lease renewals stop. SQLSTATE 22023 naming job_id when it is NULL.';

CREATE FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_wait_begin (docs/security.md)
SELECT raquel.raquel_wait_begin($1, $2, $3)$_$;

COMMENT ON FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) IS 'Registers worker as idle, waiting for jobs of queues (NULL: all) for ttl_ms, so producers NOTIFY raquel_jobs for them; the registration is consumed by the first notification it causes. Returns false while a producer that may have missed the registration is still open (claim again shortly instead of waiting). Never waits for a lock. 22023 for a NULL worker or ttl_ms not > 0.';

CREATE FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_wait_begin (docs/security.md)
SELECT raquel.raquel_wait_begin($1, $2, $3, $4, $5, $6)$_$;

COMMENT ON FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) IS 'Registers worker as idle, as raquel_wait_begin(worker, queues, ttl_ms); with a listener_pid (the backend pid of its LISTEN connection, which holds pg_advisory_lock(1903257711, pg_backend_pid()) while it listens) it also accepts hand-offs: the enqueue of a job of its queues may claim it for the worker as claim_as with a lease of lease_ms at commit and NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''; take it with raquel_take. Never waits for a lock. 22023 for a NULL worker, ttl_ms not > 0, or lease_ms not > 0 with a listener_pid.';

CREATE FUNCTION public.raquel_wait_end(worker uuid) RETURNS boolean
    LANGUAGE sql
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_wait_end (docs/security.md)
SELECT raquel.raquel_wait_end($1)$_$;

COMMENT ON FUNCTION public.raquel_wait_end(worker uuid) IS 'Removes worker''s registrations (rows a producer is consuming are skipped, never waited for); returns whether it deleted any.';

CREATE FUNCTION public.raquel_waits_past(queue text, at bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $_$-- raquel_pg stand-in: calls raquel.raquel_waits_past (docs/security.md)
SELECT raquel.raquel_waits_past($1, $2)$_$;

COMMENT ON FUNCTION public.raquel_waits_past(queue text, at bigint) IS 'Internal (the notification triggers): whether a live waiter registration for queue expires after at, i.e. a worker may be asleep past a job due then.';

CREATE FUNCTION public.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) RETURNS record
    LANGUAGE sql STABLE
    AS $$-- raquel_pg stand-in: calls raquel.raquel_zero_retention (docs/security.md)
SELECT raquel.raquel_zero_retention()$$;

COMMENT ON FUNCTION public.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) IS 'The queues whose successes raquel_complete / raquel_complete_many delete at once (retention 0): queues (their own retention 0) and, when default_zero (the default retention is 0), every queue but kept (a retention of its own, not 0). Read-only.';

CREATE FUNCTION raquel.raquel_attempt_claim(job_id uuid, attempt_num integer) RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF raquel_attempt_claim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_attempt_claim.attempt_num IS NULL OR raquel_attempt_claim.attempt_num < 1 THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'attempt_num',
            format('must be >= 1, got %s', coalesce(raquel_attempt_claim.attempt_num::text, 'NULL')));
    END IF;
    RETURN (SELECT j.claim_id FROM raquel_jobs j
            WHERE j.id = raquel_attempt_claim.job_id AND j.status = 'claimed'
              AND j.attempts::bigint + 1 = raquel_attempt_claim.attempt_num);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_attempt_claim(job_id uuid, attempt_num integer) IS 'The claim_id of the job''s current claim when the job is claimed and attempt_num is its running attempt (attempts + 1), else NULL; passing it to raquel_complete/raquel_fail/raquel_reject settles exactly that attempt and nothing else. Changes nothing. SQLSTATE 22023 naming the argument for a NULL job_id or an attempt_num below 1.';

CREATE FUNCTION raquel.raquel_cancel(job_id uuid, claim_id uuid DEFAULT NULL::uuid, now bigint DEFAULT NULL::bigint, running boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_cancel.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_cancel', raquel_cancel.now) END;
    v_status text;
BEGIN
    IF raquel_cancel.running IS NULL THEN
        PERFORM raquel_invalid('raquel_cancel', 'running', 'must be true or false, got NULL');
    END IF;
    IF raquel_cancel.claim_id IS NULL THEN
        UPDATE raquel_jobs j SET status = 'cancelled', finished_at = v_now
        WHERE j.id = raquel_cancel.job_id AND j.status IN ('queued', 'failed')
        RETURNING j.status INTO v_status;
        IF v_status IS NULL AND raquel_cancel.running THEN
            UPDATE raquel_jobs j SET cancel_claim_id = j.claim_id
            WHERE j.id = raquel_cancel.job_id AND j.status = 'claimed'
            RETURNING 'cancel_requested' INTO v_status;
            IF v_status IS NOT NULL THEN
                PERFORM pg_notify('raquel_cancel', raquel_cancel.job_id::text);
            END IF;
        END IF;
    ELSE
        UPDATE raquel_jobs j SET
            status = 'cancelled', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
            lease_expires_at = NULL
        WHERE j.id = raquel_cancel.job_id AND j.claim_id = raquel_cancel.claim_id
          AND j.status = 'claimed'
        RETURNING j.status INTO v_status;
    END IF;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_cancel(job_id uuid, claim_id uuid, now bigint, running boolean) IS 'With claim_id: the claimed job becomes cancelled, fenced. Without: a queued or failed job becomes cancelled (returns ''cancelled''); with running => true a claimed job''s current claim is asked to stop (cancel_claim_id, NOTIFY raquel_cancel with the job id; returns ''cancel_requested''): its worker''s failure or a rescue then ends it cancelled. NULL when nothing was done. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_check_queue(fn text, queue text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF raquel_check_queue.queue IS NULL OR raquel_check_queue.queue = ''
       OR octet_length(raquel_check_queue.queue) > 1000 THEN
        PERFORM raquel_invalid(raquel_check_queue.fn, 'queue',
            format('must be a queue name (non-empty, at most 1000 bytes), got %s',
                   coalesce(quote_literal(left(raquel_check_queue.queue, 40)), 'NULL')));
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_check_queue(fn text, queue text) IS 'Internal: 22023 naming "queue" (and the calling function fn) unless queue is a queue name (non-empty, at most 1000 bytes).';

CREATE FUNCTION raquel.raquel_check_trace_context(fn text, trace_context text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_carrier jsonb;
    v_parent  text;
BEGIN
    IF raquel_check_trace_context.trace_context IS NULL THEN
        RETURN;
    END IF;
    IF octet_length(raquel_check_trace_context.trace_context) > 2048 THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('must be at most 2048 bytes, got %s', octet_length(raquel_check_trace_context.trace_context)));
    END IF;
    BEGIN
        v_carrier := raquel_check_trace_context.trace_context::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        v_carrier := NULL;
    END;
    IF v_carrier IS NULL OR jsonb_typeof(v_carrier) <> 'object'
       OR EXISTS (SELECT FROM jsonb_each(v_carrier) AS e WHERE jsonb_typeof(e.value) <> 'string') THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            'must be a JSON object of strings (a propagation carrier, e.g. {"traceparent": "00-<32 hex>-<16 hex>-01"})');
    END IF;
    v_parent := v_carrier->>'traceparent';
    IF v_parent IS NOT NULL
       AND (v_parent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
            OR left(v_parent, 2) = 'ff'
            OR substr(v_parent, 4, 32) = repeat('0', 32)
            OR substr(v_parent, 37, 16) = repeat('0', 16)) THEN
        PERFORM raquel_invalid(raquel_check_trace_context.fn, 'trace_context',
            format('traceparent must be W3C trace context (00-<32 hex>-<16 hex>-<2 hex>; version ff and ids of zeros only are invalid), got %L',
                   left(v_parent, 100)));
    END IF;
END;
$_$;

COMMENT ON FUNCTION raquel.raquel_check_trace_context(fn text, trace_context text) IS 'Returns when trace_context is NULL or a storable trace carrier (a JSON object of strings, at most 2048 bytes, a valid W3C traceparent if it has one: not version ff, no trace id or parent id of zeros only); else 22023 naming trace_context, the message naming fn. Writes nothing. The rule raquel_enqueue_row and raquel_enqueue_many apply.';

CREATE FUNCTION raquel.raquel_claim(queues text[] DEFAULT NULL::text[], claim_as text DEFAULT NULL::text, batch integer DEFAULT 1, lease bigint DEFAULT 60000, now bigint DEFAULT NULL::bigint, durable boolean DEFAULT true, before bigint DEFAULT NULL::bigint, queue_list bigint DEFAULT NULL::bigint) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql SECURITY DEFINER ROWS 1
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET enable_sort TO 'off'
    SET max_parallel_workers_per_gather TO '0'
    SET jit TO 'off'
    AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_claim.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_claim', raquel_claim.now) END;
    v_upto  bigint;
    v_until bigint;
    v_left  integer := raquel_claim.batch;
    v_level integer;
    v_count integer;
    v_claim uuid := gen_random_uuid();
    -- Queue controls
    v_asked  text[] := raquel_claim.queues;  -- the queues asked for (the expiry's; a list's: when needed)
    v_held   text[];                         -- of those, the paused or limited ones
    v_skip   text[] := '{}';                 -- left out of the all-queues claim
    v_ctl    record;
    v_allow  integer;
    v_tokens double precision;
    -- All queues but the held ones (0016_claim_walks)
    v_walk   integer;  -- set once batch is checked (16 * batch fits an integer then)
    v_need   integer;
    v_cands  tid[];
    v_seen   bigint;
    v_capped boolean := false;
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch NOT BETWEEN 1 AND 134217727 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch',
            format('must be between 1 and 134217727, got %s', coalesce(raquel_claim.batch::text, 'NULL')));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease',
            format('must be > 0 ms, got %s', coalesce(raquel_claim.lease::text, 'NULL')));
    END IF;
    IF raquel_claim.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_claim', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_claim.lease));
    END IF;
    IF raquel_claim.durable IS NULL THEN
        PERFORM raquel_invalid('raquel_claim', 'durable', 'must be true or false, got NULL');
    END IF;
    IF NOT raquel_claim.durable THEN
        -- Only a transaction that has written nothing yet: its earlier writes
        -- (an enqueue, say) would lose their durability with the claim's.
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'durable',
                'false needs a transaction of its own (this one has already written)');
        END IF;
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    -- A registered list of queues (raquel_queue_list), instead of queues.
    IF raquel_claim.queue_list IS NOT NULL THEN
        IF raquel_claim.queues IS NOT NULL THEN
            PERFORM raquel_invalid('raquel_claim', 'queue_list',
                'give queues or queue_list, not both');
        END IF;
        IF NOT EXISTS (SELECT FROM raquel_queue_lists l WHERE l.id = raquel_claim.queue_list) THEN
            PERFORM raquel_invalid('raquel_claim', 'queue_list',
                format('no queue list %s (register the list with raquel_queue_list(queues))', raquel_claim.queue_list));
        END IF;
    END IF;
    -- How far a walk of one priority level reads (0016_claim_walks).
    v_walk := greatest(256, 16 * raquel_claim.batch);

    -- Rescue only when a lease has run out: the first entry of
    -- raquel_jobs_lease_idx at or before now (0027_claim_probes: an index
    -- range, which reads no entry of a lease still running; min() read the
    -- entries of the claims just finished one by one, each a heap visit).
    -- ORDER BY ... LIMIT 1 keeps it a plain index scan that stops at its
    -- first live row (an EXISTS got a bitmap scan, which reads every
    -- expired lease; this function rules out sequential scans).
    -- The probe reads every queue's leases, so the rescue takes every
    -- queue's lost jobs (issue 23, many queues): when it took only the queues
    -- asked for, one lease run out in a queue nobody claimed made every
    -- claim of the other queues call raquel_rescue for nothing until someone
    -- claimed that queue: a woken worker's one-job claim measured 0.496 ->
    -- 0.449 ms and 0.513 -> 0.497 ms (medians of 1,000 and 2,000 alternating
    -- calls, PostgreSQL 15; issue 23's wake-up work had measured 410 us on
    -- its machine).
    -- The sweeps get the caller's own now (NULL: they read the clock), so
    -- that they check it as the claim did; after a rescue on the real clock,
    -- the claim reads the clock again, so the jobs just rescued (scheduled
    -- at the rescue's now) are claimable by this call.
    IF (SELECT j.lease_expires_at FROM raquel_jobs j
        WHERE j.lease_expires_at <= v_now AND j.status = 'claimed'
        ORDER BY j.lease_expires_at LIMIT 1) IS NOT NULL THEN
        PERFORM raquel_rescue(NULL, raquel_claim.now);
        IF raquel_claim.now IS NULL THEN
            v_now := raquel_now_ms();
        END IF;
    END IF;
    -- The lease's end never passes the last time of the range (a clock read
    -- again above may be a few ms past the one the lease was checked at).
    v_until := v_now + least(raquel_claim.lease, 253402214399999 - v_now);
    -- before: only jobs scheduled at or before it (raquel's dequeue(before=)).
    v_upto := CASE WHEN raquel_claim.before < v_now THEN raquel_claim.before ELSE v_now END;

    -- Queue controls -- begin ----------------------------------------
    -- The queues that are paused or limited: a read of
    -- raquel_queue_settings_controlled_idx, which holds those queues only.
    -- The statement takes no parameter, so its plan is made once per
    -- session and kept (one that filtered by this claim's queues would be
    -- planned again at every call, its custom plan looking cheaper). When
    -- no queue is controlled, this block ends here and the claim below is
    -- 0006_claim's.
    v_held := ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                    WHERE s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL);
    IF cardinality(v_held) > 0 AND raquel_claim.queues IS NOT NULL THEN
        -- Only those among the queues asked for.
        v_held := ARRAY(SELECT q.name FROM unnest(v_held) AS q(name)
                        WHERE q.name = ANY (raquel_claim.queues));
    ELSIF cardinality(v_held) > 0 AND raquel_claim.queue_list IS NOT NULL THEN
        -- Only those of the list.
        v_held := ARRAY(SELECT q.name FROM unnest(v_held) AS q(name)
                        WHERE EXISTS (SELECT FROM raquel_queue_list_members m
                                      WHERE m.list_id = raquel_claim.queue_list AND m.queue = q.name));
    END IF;
    IF cardinality(v_held) > 0 THEN
        -- Each limited queue that is not paused is claimed here on its own,
        -- highest priority then oldest first, up to what its limits allow
        -- now, holding the lock of its settings row to commit: claims of one
        -- limited queue take turns (so two never both take its last slot or
        -- token, and each counts the claims committed before it), claims of
        -- other queues never wait for it. Rows are locked in queue order, so
        -- claims of several limited queues cannot deadlock. FOR UPDATE
        -- rereads a row changed meanwhile (paused, limits) before using it.
        FOR v_ctl IN
            SELECT s.queue::text AS queue, s.max_running, s.per_second, s.tokens, s.tokens_at
            FROM raquel_queue_settings s
            WHERE s.queue = ANY (v_held) AND NOT s.paused
            ORDER BY s.queue
            FOR UPDATE
        LOOP
            EXIT WHEN v_left = 0;
            v_allow := v_left;
            IF v_ctl.max_running IS NOT NULL THEN
                -- Its running jobs, read after the lock (a statement of its
                -- own: a new snapshot), over raquel_jobs_lease_idx: a claimed
                -- job always has a lease (raquel_jobs_claim_check), and naming
                -- it lets the planner use that partial index (0006's count,
                -- without it, read the whole table at each claim).
                v_allow := least(v_allow, v_ctl.max_running - (
                    SELECT count(*) FROM raquel_jobs j
                    WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed'
                      AND j.queue = v_ctl.queue)::integer);
            END IF;
            IF v_ctl.per_second IS NOT NULL THEN
                -- The bucket refilled since tokens_at, up to its size.
                v_tokens := least(greatest(1, v_ctl.per_second / 10),
                                  v_ctl.tokens + greatest(v_now - v_ctl.tokens_at, 0) * v_ctl.per_second / 1000);
                v_allow := least(v_allow, floor(v_tokens)::integer);
            END IF;
            IF v_allow > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.queue >= v_ctl.queue AND j.queue <= v_ctl.queue
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                    ORDER BY j.queue, j.priority DESC, j.scheduled_at
                    LIMIT v_allow
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                    lease_expires_at = v_until, claim_id = v_claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_count > 0 AND v_ctl.per_second IS NOT NULL THEN
                    -- tokens_at never goes back (this claim's clock may have been read
                    -- before a claim that took the lock first), so no time refills twice.
                    UPDATE raquel_queue_settings s SET tokens = v_tokens - v_count,
                                                       tokens_at = greatest(s.tokens_at, v_now)
                    WHERE s.queue = v_ctl.queue;
                END IF;
            END IF;
        END LOOP;
        -- The claim below takes the other queues: paused and limited ones
        -- left out of the list, or (all queues) skipped by its filter.
        IF raquel_claim.queue_list IS NOT NULL THEN
            -- A list: its names but the held ones, claimed as a list sent
            -- with the call (the held queues' settings make such claims rare).
            raquel_claim.queues := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                                         WHERE m.list_id = raquel_claim.queue_list AND m.queue <> ALL (v_held));
            v_asked := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                             WHERE m.list_id = raquel_claim.queue_list);
            raquel_claim.queue_list := NULL;
        ELSIF raquel_claim.queues IS NULL THEN
            v_skip := v_held;
        ELSE
            raquel_claim.queues := ARRAY(SELECT q.name FROM unnest(raquel_claim.queues) AS q(name)
                                         WHERE q.name <> ALL (v_held));
        END IF;
    END IF;
    -- Queue controls -- end ------------------------------------------

    IF v_left = 0 THEN
        -- The limited queues' claims filled the batch (0023_claim_batch_filled):
        -- nothing is left to claim from the others. (The walks below read
        -- v_left jobs at a time and read further while they found as many:
        -- with none asked for, they never stopped.)
        NULL;
    ELSIF raquel_claim.queue_list IS NOT NULL THEN
        -- A registered list (0030_queue_lists): by raquel_claim_listed, which
        -- tests each job it walks by an index probe of the list's members.
        PERFORM set_config('enable_sort', 'on', true);
        RETURN QUERY SELECT * FROM raquel_claim_listed(NULL, raquel_claim.claim_as, v_left, v_now, v_upto,
                                                       v_until, v_claim, raquel_claim.queue_list);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
    ELSIF raquel_claim.queues IS NULL AND cardinality(v_skip) > 0 THEN
        -- Queue controls: every queue but the held ones (paused, limited),
        -- without reading the held queues' backlogs (0016_claim_walks).
        -- Level by level over the all-queues index, as raquel_claim_listed
        -- walks for a list: the first v_need jobs of queues not held among
        -- the level's first v_walk ready jobs (row v_walk comes back too when
        -- the walk reached it: cut short). When v_walk held jobs come first,
        -- the queues that are not held are named (one probe of the queue
        -- index each) and raquel_claim_listed claims from them by their own
        -- index ranges.
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL AND NOT v_capped LOOP
            v_need := v_left;
            LOOP
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.kept), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_seen
                FROM (SELECT r.ctid, r.kept, r.n
                      FROM (SELECT j.ctid, j.queue <> ALL (v_skip) AS kept,
                                   row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                            FROM raquel_jobs j
                            WHERE j.priority = v_level
                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                            ORDER BY j.scheduled_at
                            LIMIT v_walk) AS r
                      WHERE r.kept OR r.n = v_walk
                      LIMIT v_need) AS w;
                IF cardinality(v_cands) > 0 THEN
                    -- The candidates by their ctids, in walk order: a scan of the
                    -- all-queues index filtered on them would read on past the
                    -- walk when other claims hold some of them locked.
                    RETURN QUERY
                    WITH picked AS MATERIALIZED (
                        SELECT j.ctid FROM unnest(v_cands) WITH ORDINALITY AS c(ctid, n)
                        JOIN raquel_jobs j ON j.ctid = c.ctid
                        WHERE j.queue <> ALL (v_skip) AND j.priority = v_level
                          AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                          AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                        ORDER BY c.n
                        LIMIT v_left
                        FOR UPDATE OF j SKIP LOCKED
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                    EXIT WHEN v_left = 0;
                END IF;
                IF cardinality(v_cands) >= v_need AND v_need < v_walk THEN
                    -- Enough candidates, but other claims took some: read further.
                    v_need := least(v_need * 2, v_walk);
                ELSIF v_seen >= v_walk THEN
                    v_capped := true;  -- held jobs first: by the queues not held, below
                    EXIT;
                ELSE
                    EXIT;  -- every ready job of this level seen: the next level
                END IF;
            END LOOP;
            EXIT WHEN v_left = 0;
            IF NOT v_capped THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                            ORDER BY j.priority DESC LIMIT 1);
            END IF;
        END LOOP;
        IF v_capped THEN
            -- The queues with a waiting job, each found by one probe of
            -- raquel_jobs_ready_queue_priority_idx past the one before (a held
            -- queue's backlog is stepped over, not read), less the held ones.
            raquel_claim.queues := ARRAY(
                WITH RECURSIVE ready(queue) AS (
                    (SELECT j.queue::text FROM raquel_jobs j
                     WHERE j.status IN ('queued', 'failed')
                     ORDER BY j.queue LIMIT 1)
                    UNION ALL
                    SELECT (SELECT j.queue::text FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.queue > r.queue
                            ORDER BY j.queue LIMIT 1)
                    FROM ready r WHERE r.queue IS NOT NULL
                )
                SELECT r.queue FROM ready r WHERE r.queue IS NOT NULL AND r.queue <> ALL (v_skip));
            IF cardinality(raquel_claim.queues) > 0 THEN
                PERFORM set_config('enable_sort', 'on', true);
                RETURN QUERY SELECT * FROM raquel_claim_listed(raquel_claim.queues, raquel_claim.claim_as,
                                                               v_left, v_now, v_upto, v_until, v_claim);
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
            END IF;
        END IF;
    ELSIF raquel_claim.queues IS NULL THEN
        -- The highest level by its own statements (most claims need no other),
        -- then the others in one (0016_claim_walks). The highest level above
        -- 0, else 0 (0027_claim_probes: the range priority > 0 holds no entry
        -- when no job has a priority above 0, where the highest level's probe
        -- read the entries of the claims just made, each a heap visit). When
        -- level 0 holds no ready job, its claim takes none and the levels
        -- below are probed as after any level.
        v_level := coalesce((SELECT j.priority FROM raquel_jobs j
                             WHERE j.status IN ('queued', 'failed') AND j.priority > 0
                             ORDER BY j.priority DESC LIMIT 1), 0);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (0024_edge_values' header, 4).
            RETURN QUERY
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            WHERE j.ctid = ANY (ARRAY(
                SELECT p.ctid FROM raquel_jobs p
                WHERE p.priority = v_level
                  AND p.status IN ('queued', 'failed') AND p.scheduled_at <= v_upto
                  AND (p.max_age IS NULL OR p.enqueued_at + p.max_age > v_now)
                ORDER BY p.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED))
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            IF v_left > 0 THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                            ORDER BY j.priority DESC LIMIT 1);
                IF v_level IS NOT NULL THEN
                    -- A second level: it and every level below in one statement
                    -- (0016_claim_walks), each next level found
                    -- by one probe of the index past the one before (a recursive
                    -- union, read only as far as the claim needs), each level's due
                    -- jobs oldest first, the scan stopping at its first job not due.
                    RETURN QUERY
                    WITH RECURSIVE levels(priority) AS (
                        SELECT v_level
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.status IN ('queued', 'failed') AND j.priority < l.priority
                                ORDER BY j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    ), picked AS MATERIALIZED (
                        SELECT c.ctid FROM levels l
                        CROSS JOIN LATERAL (SELECT j.ctid FROM raquel_jobs j
                                            WHERE j.priority = l.priority
                                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                                            ORDER BY j.scheduled_at
                                            LIMIT v_left
                                            FOR UPDATE OF j SKIP LOCKED) AS c
                        WHERE l.priority IS NOT NULL
                        LIMIT v_left
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                END IF;
            END IF;
        END IF;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        -- The highest level by its own statements (most claims need no other),
        -- then the others in one (0016_claim_walks). The highest level above
        -- 0, else 0, as for every queue above.
        v_level := coalesce((SELECT j.priority FROM raquel_jobs j
                             WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                               AND j.priority > 0
                             ORDER BY j.queue, j.priority DESC LIMIT 1), 0);
        IF v_level IS NOT NULL THEN
            -- The level's jobs by their ctids (0024_edge_values' header, 4).
            RETURN QUERY
            UPDATE raquel_jobs j SET
                status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                lease_expires_at = v_until, claim_id = v_claim
            WHERE j.ctid = ANY (ARRAY(
                SELECT p.ctid FROM raquel_jobs p
                WHERE p.queue = ANY (raquel_claim.queues) AND p.priority = v_level
                  AND p.status IN ('queued', 'failed') AND p.scheduled_at <= v_upto
                  AND (p.max_age IS NULL OR p.enqueued_at + p.max_age > v_now)
                ORDER BY p.queue, p.scheduled_at
                LIMIT v_left
                FOR UPDATE SKIP LOCKED))
            RETURNING j.*;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            v_left := v_left - v_count;
            IF v_left > 0 THEN
                v_level := (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                              AND j.priority < v_level
                            ORDER BY j.queue, j.priority DESC LIMIT 1);
                IF v_level IS NOT NULL THEN
                    -- A second level: it and every level below in one statement
                    -- (0016_claim_walks), each next level found
                    -- by one probe of the index past the one before (a recursive
                    -- union, read only as far as the claim needs), each level's due
                    -- jobs oldest first, the scan stopping at its first job not due.
                    RETURN QUERY
                    WITH RECURSIVE levels(priority) AS (
                        SELECT v_level
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = ANY (raquel_claim.queues) AND j.status IN ('queued', 'failed')
                                  AND j.priority < l.priority
                                ORDER BY j.queue, j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    ), picked AS MATERIALIZED (
                        SELECT c.ctid FROM levels l
                        CROSS JOIN LATERAL (SELECT j.ctid FROM raquel_jobs j
                                            WHERE j.queue = ANY (raquel_claim.queues) AND j.priority = l.priority
                                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_upto
                                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
                                            ORDER BY j.queue, j.scheduled_at
                                            LIMIT v_left
                                            FOR UPDATE OF j SKIP LOCKED) AS c
                        WHERE l.priority IS NOT NULL
                        LIMIT v_left
                    )
                    UPDATE raquel_jobs j SET
                        status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
                        lease_expires_at = v_until, claim_id = v_claim
                    FROM picked WHERE j.ctid = picked.ctid
                    RETURNING j.*;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    v_left := v_left - v_count;
                END IF;
            END IF;
        END IF;
    ELSIF cardinality(raquel_claim.queues) > 1 THEN
        -- Several queues: by raquel_claim_listed (0013_claim_generic_plans' header), which
        -- walks the all-queues index with generic plans of its own, sorts allowed.
        PERFORM set_config('enable_sort', 'on', true);
        RETURN QUERY SELECT * FROM raquel_claim_listed(raquel_claim.queues, raquel_claim.claim_as, v_left,
                                                       v_now, v_upto, v_until, v_claim);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
    END IF;

    -- Expiry. The claim above never hands out a job past its max_age; marking
    -- such jobs 'expired' is done here: always when this claim came back
    -- short (the queues look drained, so the call is cheap and an operator
    -- or dequeue() sees expired jobs at once), else at most once a second
    -- per connection (raquel.expired_at, a session setting), so that claims
    -- under a backlog do not pay for it each time. (Queue controls: over every queue
    -- asked for, v_asked, paused and limited ones included.)
    -- Tried for many queues (issue 23) and not kept: calling raquel_expire only when
    -- a probe of raquel_jobs_expiry_idx found a job past its max_age. The
    -- one-job claim of a woken worker measured 0.468 -> 0.480 ms and 0.458
    -- -> 0.449 ms (medians of 1,000 and 2,000 alternating calls, PostgreSQL
    -- 15): the nested call costs about what the probe does.
    IF v_left > 0 OR v_now - coalesce(nullif(current_setting('raquel.expired_at', true), '')::bigint, 0)
                     NOT BETWEEN 0 AND 999 THEN
        IF raquel_claim.queue_list IS NOT NULL THEN
            v_asked := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                             WHERE m.list_id = raquel_claim.queue_list);
        END IF;
        PERFORM raquel_expire(v_asked, raquel_claim.now);
        PERFORM set_config('raquel.expired_at', v_now::text, false);
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_claim(queues text[], claim_as text, batch integer, lease bigint, now bigint, durable boolean, before bigint, queue_list bigint) IS 'Claims up to batch (1 .. 134217727) ready jobs (scheduled at or before now, and before when given), the highest priority then the oldest first, of the queues given (queues, or a list registered by raquel_queue_list given as queue_list, not both; neither: every queue), each to this call alone, under one new claim_id and a lease of lease ms; never a job of a paused queue, never more claimed jobs of a queue than its max_running, and a queue''s claims take its per_second tokens (raquel_set_queue_limits; limited queues first, then the others). now only from a role that may update raquel_jobs (else 42501); now + lease within the time range. Bad arguments: 22023 naming them, nothing written. The rows come back in no particular order (the clients sort them by priority, then scheduled_at).';

CREATE FUNCTION raquel.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint DEFAULT NULL::bigint) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql ROWS 1
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    SET max_parallel_workers_per_gather TO '0'
    SET jit TO 'off'
    AS $$
DECLARE
    v_left   integer := raquel_claim_listed.batch;
    v_walk   integer := greatest(256, 16 * raquel_claim_listed.batch);
    v_level  integer;
    v_need   integer;
    v_cands  tid[];
    v_names  text[];
    v_seen   bigint;
    v_count  integer;
    v_capped boolean := false;
BEGIN
    -- Level by level over the all-queues index, highest first.
    v_level := (SELECT j.priority FROM raquel_jobs j
                WHERE j.status IN ('queued', 'failed')
                ORDER BY j.priority DESC LIMIT 1);
    WHILE v_level IS NOT NULL AND NOT v_capped LOOP
        v_need := v_left;
        LOOP
            -- The first v_need jobs of the listed queues among the level's
            -- first v_walk ready jobs; row v_walk comes back too (seen =
            -- v_walk) when the walk reached it: cut short.
            IF raquel_claim_listed.queue_list IS NULL THEN
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.listed), '{}'),
                       coalesce(array_agg(w.queue) FILTER (WHERE w.listed), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_names, v_seen
                -- A hashed subplan (0006's): a hash table of the names built
                -- once per statement, probed by the walk's rows in their own
                -- order (0029's hash join gave no such order; see this file's
                -- header).
                FROM (SELECT r.ctid, r.queue, r.listed, r.n
                      FROM (SELECT j.ctid, j.queue::text AS queue,
                                   j.queue IN (SELECT unnest(raquel_claim_listed.queues)) AS listed,
                                   row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                            FROM raquel_jobs j
                            WHERE j.priority = v_level
                              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                            ORDER BY j.scheduled_at
                            LIMIT v_walk) AS r
                      WHERE r.listed OR r.n = v_walk
                      LIMIT v_need) AS w;
            ELSE
                SELECT coalesce(array_agg(w.ctid) FILTER (WHERE w.listed), '{}'),
                       coalesce(array_agg(w.queue) FILTER (WHERE w.listed), '{}'), coalesce(max(w.n), 0)
                INTO v_cands, v_names, v_seen
                -- Each row's queue looked up in the list's members: an index
                -- probe (a scalar subquery, which is never hashed) for each of
                -- the first 32 rows, then, when the walk goes on (the listed
                -- queues rare among the others' jobs), a hash table of the
                -- members, built once at the 33rd row. OFFSET 0 keeps r a
                -- subquery of its own: pulled up, its test would be run twice a
                -- row (in the filter and in the output).
                FROM (SELECT r.ctid, r.queue, r.listed, r.n
                      FROM (SELECT s.ctid, s.queue, s.n,
                                   CASE WHEN s.n <= 32
                                        THEN (SELECT true FROM raquel_queue_list_members m
                                              WHERE m.list_id = raquel_claim_listed.queue_list AND m.queue = s.queue
                                              LIMIT 1) IS NOT NULL
                                        ELSE s.queue IN (SELECT m.queue FROM raquel_queue_list_members m
                                                         WHERE m.list_id = raquel_claim_listed.queue_list) END AS listed
                            FROM (SELECT j.ctid, j.queue::text AS queue,
                                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                                  FROM raquel_jobs j
                                  WHERE j.priority = v_level
                                    AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                                    AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                  ORDER BY j.scheduled_at
                                  LIMIT v_walk) AS s
                            OFFSET 0) AS r
                      WHERE r.listed OR r.n = v_walk
                      LIMIT v_need) AS w;
            END IF;
            IF cardinality(v_cands) > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.ctid = ANY (v_cands)
                      AND j.queue = ANY (v_names) AND j.priority = v_level
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                    ORDER BY j.scheduled_at
                    LIMIT v_left
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim_listed.claim_as,
                    claimed_at = raquel_claim_listed.claimed_at,
                    lease_expires_at = raquel_claim_listed.until, claim_id = raquel_claim_listed.claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_left = 0 THEN
                    RETURN;
                END IF;
            END IF;
            IF cardinality(v_cands) >= v_need AND v_need < v_walk THEN
                -- Enough candidates, but some were taken by other claims:
                -- read further (the jobs claimed above are no longer ready).
                v_need := least(v_need * 2, v_walk);
            ELSIF v_seen >= v_walk THEN
                v_capped := true;  -- go on from this level the per-queue way
                EXIT;
            ELSE
                EXIT;  -- every ready job of this level seen: the next level
            END IF;
        END LOOP;
        IF NOT v_capped THEN
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END IF;
    END LOOP;

    -- Cut short: from v_level down, the listed queues one by one, each over
    -- raquel_jobs_ready_queue_priority_idx. Each probe names its queue as a
    -- range (queue >= q.name AND queue <= q.name) and asks for the index's
    -- order (queue first): raquel_jobs_ready_priority_idx cannot give that
    -- order, so no statistics can make the plan walk the other queues' jobs
    -- there (with `queue = q.name`, on statistics that had seen one queue,
    -- the generic plan did: 30,241 buffers for a claim of 2). It starts at
    -- v_level itself (where the walk stopped), with no probe of each
    -- queue's highest level first: that probe cost as much as the claim's
    -- own reading (1,000 index probes).
    IF v_capped AND raquel_claim_listed.queue_list IS NOT NULL THEN
        -- A registered list: its names, as a list sent with the call.
        raquel_claim_listed.queues := ARRAY(SELECT m.queue FROM raquel_queue_list_members m
                                            WHERE m.list_id = raquel_claim_listed.queue_list);
    END IF;
    WHILE v_capped AND v_level IS NOT NULL LOOP
        v_need := v_left;
        LOOP
            -- The v_need oldest ready jobs of the level among the listed
            -- queues. They are all in the v_need queues whose oldest ready
            -- job is the oldest (one row read per queue), so only those are
            -- read further, up to v_need jobs each, and merged.
            WITH heads AS MATERIALIZED (
                SELECT q.name FROM unnest(raquel_claim_listed.queues) AS q(name)
                CROSS JOIN LATERAL (SELECT j.scheduled_at FROM raquel_jobs j
                                    WHERE j.queue >= q.name AND j.queue <= q.name AND j.priority = v_level
                                      AND j.status IN ('queued', 'failed')
                                      AND j.scheduled_at <= raquel_claim_listed.upto
                                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                    ORDER BY j.queue, j.scheduled_at LIMIT 1) AS h
                ORDER BY h.scheduled_at LIMIT v_need
            )
            SELECT coalesce(array_agg(m.ctid), '{}'), coalesce(array_agg(m.queue), '{}')
            INTO v_cands, v_names
            FROM (SELECT c.ctid, c.queue FROM heads
                  CROSS JOIN LATERAL (SELECT j.ctid, j.queue::text AS queue, j.scheduled_at FROM raquel_jobs j
                                      WHERE j.queue >= heads.name AND j.queue <= heads.name
                                        AND j.priority = v_level AND j.status IN ('queued', 'failed')
                                        AND j.scheduled_at <= raquel_claim_listed.upto
                                        AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                                      ORDER BY j.queue, j.scheduled_at LIMIT v_need) AS c
                  ORDER BY c.scheduled_at LIMIT v_need) AS m;
            IF cardinality(v_cands) > 0 THEN
                RETURN QUERY
                WITH picked AS MATERIALIZED (
                    SELECT j.ctid FROM raquel_jobs j
                    WHERE j.ctid = ANY (v_cands)
                      AND j.queue = ANY (v_names) AND j.priority = v_level
                      AND j.status IN ('queued', 'failed') AND j.scheduled_at <= raquel_claim_listed.upto
                      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > raquel_claim_listed.claimed_at)
                    ORDER BY j.scheduled_at
                    LIMIT v_left
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE raquel_jobs j SET
                    status = 'claimed', claimed_by = raquel_claim_listed.claim_as,
                    claimed_at = raquel_claim_listed.claimed_at,
                    lease_expires_at = raquel_claim_listed.until, claim_id = raquel_claim_listed.claim
                FROM picked WHERE j.ctid = picked.ctid
                RETURNING j.*;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_left := v_left - v_count;
                IF v_left = 0 THEN
                    RETURN;
                END IF;
            END IF;
            EXIT WHEN cardinality(v_cands) < v_need;
            v_need := v_need * 2;  -- some were taken by other claims: read further
        END LOOP;
        v_level := (SELECT max(top.priority) FROM unnest(raquel_claim_listed.queues) AS q(name)
                    CROSS JOIN LATERAL (SELECT j.priority FROM raquel_jobs j
                                        WHERE j.queue >= q.name AND j.queue <= q.name
                                          AND j.status IN ('queued', 'failed') AND j.priority < v_level
                                        ORDER BY j.queue, j.priority DESC LIMIT 1) AS top);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint) IS 'Internal (raquel_claim, for a long list of queues): claims up to batch ready jobs of the queues listed (queues, or the registered list queue_list) (scheduled_at <= upto, not past max_age at claimed_at), highest priority then oldest first, each to this call alone, as claim with lease_expires_at until; walks the all-queues index keeping the listed queues'' jobs by a hashed membership test (a hash table of the names built once per statement), or, for a registered list, by an index probe of its members for each of the first 32 jobs, at most 256 (or 16 per job asked for) jobs per level, then one index probe per queue.';

CREATE FUNCTION raquel.raquel_claim_outcome(job_id uuid, claim_id uuid) RETURNS TABLE(status text, error text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT j.status, j.error FROM raquel_jobs j
    WHERE j.id = raquel_claim_outcome.job_id AND j.claim_id = raquel_claim_outcome.claim_id
      AND j.status <> 'claimed'
$$;

COMMENT ON FUNCTION raquel.raquel_claim_outcome(job_id uuid, claim_id uuid) IS 'Read-only: when claim claim_id of job job_id has ended, the status and error that claim''s outcome (or the rescue that ended it) left; no row while the claim still runs or when it is not the job''s last claim. Workers call it after an outcome whose reply was lost, to learn whether it committed.';

CREATE FUNCTION raquel.raquel_claimers(queues text[] DEFAULT NULL::text[], other_than text DEFAULT NULL::text, sample integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
BEGIN
    IF raquel_claimers.sample IS NULL OR raquel_claimers.sample NOT BETWEEN 1 AND 1000000 THEN
        PERFORM raquel_invalid('raquel_claimers', 'sample',
            format('must be between 1 and 1000000, got %s', coalesce(raquel_claimers.sample::text, 'NULL')));
    END IF;
    -- The newest leases over raquel_jobs_lease_idx, read backwards: a claim's
    -- jobs share its lease's end, so the sample spans the last claims of every
    -- worker still claiming (and the jobs whose leases were renewed last).
    RETURN (SELECT count(DISTINCT s.claimed_by)
            FROM (SELECT j.claimed_by, j.queue FROM raquel_jobs j
                  WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed'
                  ORDER BY j.lease_expires_at DESC
                  LIMIT raquel_claimers.sample) AS s
            WHERE s.claimed_by IS DISTINCT FROM raquel_claimers.other_than
              AND (raquel_claimers.queues IS NULL OR s.queue = ANY (raquel_claimers.queues)));
END;
$$;

COMMENT ON FUNCTION raquel.raquel_claimers(queues text[], other_than text, sample integer) IS 'How many workers (distinct claimed_by) other than other_than hold claimed jobs of queues (NULL: any queue) among the sample newest leases of every queue. Reads at most sample claimed jobs; never waits for a lock. A worker with a prefetch keeps a second claim in flight only while this is 0 (0028_claimers). 22023 for a sample not between 1 and 1000000.';

CREATE FUNCTION raquel.raquel_clock(p_function text, p_now bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_role text := CASE current_setting('role') WHEN 'none' THEN session_user::text
                        ELSE current_setting('role') END;
BEGIN
    IF NOT has_table_privilege(v_role, 'raquel_jobs', 'UPDATE') THEN
        RAISE EXCEPTION '%: argument "now" may be given only by a role that may update raquel_jobs (% may not); leave it NULL to use the database clock',
            p_function, v_role
            USING ERRCODE = 'insufficient_privilege', COLUMN = 'now';
    END IF;
    IF p_now NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid(p_function, 'now',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', p_now));
    END IF;
    RETURN p_now;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_clock(p_function text, p_now bigint) IS 'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range; else 42501 or 22023 naming "now".';

CREATE FUNCTION raquel.raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL::bigint, result jsonb DEFAULT NULL::jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_complete.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_complete', raquel_complete.now) END;
    v_status text;
    v_zero   record;
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
BEGIN
    IF raquel_complete.result IS NULL THEN
        SELECT * INTO v_zero FROM raquel_zero_retention();
        IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
            DELETE FROM raquel_jobs j
            WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
              AND j.status = 'claimed'
              AND (j.queue = ANY (v_zero.queues) OR (v_zero.default_zero AND j.queue <> ALL (v_zero.kept)))
              AND NOT EXISTS (SELECT FROM raquel_result_waiters w WHERE w.job_id = j.id);
            IF FOUND THEN
                v_served := set_config('raquel.results_served', '', true);
                IF EXISTS (SELECT FROM raquel_result_waiters) THEN
                    PERFORM raquel_serve_results(ARRAY[raquel_complete.job_id]);
                END IF;
                RETURN 'success';
            END IF;
        END IF;
    END IF;
    UPDATE raquel_jobs j SET
        status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now, lease_expires_at = NULL,
        result = raquel_complete.result
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY[raquel_complete.job_id]);
    END IF;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_complete(job_id uuid, claim_id uuid, now bigint, result jsonb) IS 'Records the success of the claimed job, fenced by claim_id, with result (JSON, NULL for none) stored in the same UPDATE; returns ''success'', or NULL (nothing written) when the claim is no longer current. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still ''success''). Called inside a handler''s own transaction it commits or rolls back with the handler''s writes (exactly once for work in the same database). now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint DEFAULT NULL::bigint, results jsonb[] DEFAULT NULL::jsonb[]) RETURNS TABLE(job_id uuid, recorded boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := CASE WHEN raquel_complete_many.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_complete_many', raquel_complete_many.now) END;
    v_zero    record;
    v_watched uuid[];
    v_gone    bigint[] := '{}';
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
BEGIN
    IF raquel_complete_many.job_ids IS NULL OR raquel_complete_many.claim_ids IS NULL
       OR coalesce(cardinality(raquel_complete_many.job_ids), 0)
          <> coalesce(cardinality(raquel_complete_many.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_complete_many', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_complete_many.job_ids), cardinality(raquel_complete_many.claim_ids)));
    END IF;
    IF coalesce(cardinality(raquel_complete_many.results), cardinality(raquel_complete_many.job_ids), 0)
       <> coalesce(cardinality(raquel_complete_many.job_ids), 0) THEN
        PERFORM raquel_invalid('raquel_complete_many', 'results',
            format('must be NULL or an array as long as job_ids (%s), got %s',
                   cardinality(raquel_complete_many.job_ids), cardinality(raquel_complete_many.results)));
    END IF;
    SELECT * INTO v_zero FROM raquel_zero_retention();
    IF cardinality(v_zero.queues) > 0 OR v_zero.default_zero THEN
        -- The watched jobs are looked for only when someone waits for a result.
        IF EXISTS (SELECT FROM raquel_result_waiters) THEN
            v_watched := ARRAY(SELECT w.job_id FROM raquel_result_waiters w
                               WHERE w.job_id = ANY (raquel_complete_many.job_ids));
        ELSE
            v_watched := '{}';
        END IF;
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
                 WITH ORDINALITY AS p(job_id, claim_id, ord)
            WHERE raquel_complete_many.results IS NULL
               OR raquel_complete_many.results[p.ord::integer] IS NULL
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id, pairs.ord
            FROM pairs
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), gone AS (
            DELETE FROM raquel_jobs j
            USING firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
              AND (j.queue = ANY (v_zero.queues) OR (v_zero.default_zero AND j.queue <> ALL (v_zero.kept)))
              AND j.id <> ALL (v_watched)
            RETURNING f.ord
        )
        SELECT coalesce(array_agg(gone.ord), '{}') INTO v_gone FROM gone;
        IF cardinality(v_gone) = cardinality(raquel_complete_many.job_ids) THEN
            -- Every pair deleted (so none repeated): every pair recorded.
            RETURN QUERY
            SELECT p.job_id, true
            FROM unnest(raquel_complete_many.job_ids) WITH ORDINALITY AS p(job_id, ord)
            ORDER BY p.ord;
            v_served := set_config('raquel.results_served', '', true);
            IF EXISTS (SELECT FROM raquel_result_waiters) THEN
                PERFORM raquel_serve_results(raquel_complete_many.job_ids);
            END IF;
            RETURN;
        END IF;
    END IF;
    IF raquel_complete_many.results IS NULL THEN
        RETURN QUERY
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids)
                 WITH ORDINALITY AS p(job_id, claim_id, ord)
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id, pairs.ord
            FROM pairs
            WHERE cardinality(v_gone) = 0 OR pairs.ord <> ALL (v_gone)
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), done AS (
            UPDATE raquel_jobs j SET
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
                lease_expires_at = NULL, result = NULL
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        ), ok AS (
            SELECT done.ord FROM done
            UNION ALL
            SELECT g.ord FROM unnest(v_gone) AS g(ord)
        )
        SELECT p.job_id, ok.ord IS NOT NULL
        FROM pairs p LEFT JOIN ok ON ok.ord = p.ord
        ORDER BY p.ord;
    ELSE
        RETURN QUERY
        WITH pairs AS (
            SELECT p.job_id, p.claim_id, p.result, p.ord
            FROM unnest(raquel_complete_many.job_ids, raquel_complete_many.claim_ids,
                        raquel_complete_many.results)
                 WITH ORDINALITY AS p(job_id, claim_id, result, ord)
        ), firsts AS (
            SELECT DISTINCT ON (pairs.job_id, pairs.claim_id) pairs.job_id, pairs.claim_id,
                   pairs.result, pairs.ord
            FROM pairs
            WHERE cardinality(v_gone) = 0 OR pairs.ord <> ALL (v_gone)
            ORDER BY pairs.job_id, pairs.claim_id, pairs.ord
        ), done AS (
            UPDATE raquel_jobs j SET
                status = 'success', attempts = least(j.attempts, 2147483646) + 1, finished_at = v_now,
                lease_expires_at = NULL, result = f.result
            FROM firsts f
            WHERE j.id = f.job_id AND j.claim_id = f.claim_id AND j.status = 'claimed'
            RETURNING f.ord
        ), ok AS (
            SELECT done.ord FROM done
            UNION ALL
            SELECT g.ord FROM unnest(v_gone) AS g(ord)
        )
        SELECT p.job_id, ok.ord IS NOT NULL
        FROM pairs p LEFT JOIN ok ON ok.ord = p.ord
        ORDER BY p.ord;
    END IF;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(raquel_complete_many.job_ids);
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint, results jsonb[]) IS 'Records the success of many claimed jobs in one statement, each fenced by its claim_id and with its result (results: NULL, or one JSON value or NULL per pair) in the same UPDATE; returns (job_id, recorded) per pair in input order, a pair repeated is recorded once. A success without a result of a queue whose retention is 0 (raquel_set_retention), for a job no result waiter watches, deletes the job instead (still recorded). Arrays of different lengths: 22023 naming claim_ids or results. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_drop_schedule(name text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    DELETE FROM raquel_schedules s WHERE s.name = raquel_drop_schedule.name;
    RETURN FOUND;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_drop_schedule(name text) IS 'Deletes schedule name; returns whether it existed. Jobs it already enqueued are left alone.';

CREATE FUNCTION raquel.raquel_enqueue_row(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS raquel.raquel_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
    v_now       bigint := CASE WHEN raquel_enqueue_row.now IS NULL THEN raquel_now_ms()
                               ELSE raquel_clock('raquel_enqueue', raquel_enqueue_row.now) END;
    v_min_delay bigint := coalesce(raquel_enqueue_row.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue_row.max_retry_delay, 43200000);
    v_job       raquel_jobs;
BEGIN
    -- The rules, behind one guard. With every optional argument NULL only the queue's rules can
    -- refuse (the delays' defaults pass), so the guard asks just that; the
    -- 19 tests run when an optional argument is given or the queue is bad.
    -- PL/pgSQL prepares each expression it evaluates afresh in every
    -- transaction: the tests cost about 50k of a call's ~490k instructions,
    -- the guard about 5k (callgrind, PostgreSQL 15). An argument added later
    -- belongs in num_nonnulls below if any rule reads it.
    IF num_nonnulls(raquel_enqueue_row.at, raquel_enqueue_row.delay, raquel_enqueue_row.max_age,
                    raquel_enqueue_row.max_retry_count, raquel_enqueue_row.min_retry_delay,
                    raquel_enqueue_row.max_retry_delay, raquel_enqueue_row.backoff_base,
                    raquel_enqueue_row.unique_key, raquel_enqueue_row.unique_mode,
                    raquel_enqueue_row.timeout) > 0
       OR raquel_enqueue_row.queue IS NULL OR raquel_enqueue_row.queue = ''
       OR octet_length(raquel_enqueue_row.queue) > 1000 THEN
        IF raquel_enqueue_row.queue IS NULL OR raquel_enqueue_row.queue = '' THEN
            PERFORM raquel_invalid('raquel_enqueue', 'queue', 'must be a non-empty string');
        END IF;
        IF octet_length(raquel_enqueue_row.queue) > 1000 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'queue',
                format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue_row.queue)));
        END IF;
        IF raquel_enqueue_row.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'at',
                format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                       ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_enqueue_row.at));
        END IF;
        IF raquel_enqueue_row.delay > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.delay));
        END IF;
        IF raquel_enqueue_row.max_age > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_age',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.max_age));
        END IF;
        IF v_max_delay > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
                format('must be at most %s ms, got %s', v_limit, v_max_delay));
        END IF;
        IF raquel_enqueue_row.backoff_base > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
                format('must be at most %s ms, got %s', v_limit, raquel_enqueue_row.backoff_base));
        END IF;
        IF raquel_enqueue_row.timeout <= 0 OR raquel_enqueue_row.timeout > v_limit THEN
            PERFORM raquel_invalid('raquel_enqueue', 'timeout',
                format('must be > 0 and at most %s ms, got %s', v_limit, raquel_enqueue_row.timeout));
        END IF;
        IF raquel_enqueue_row.delay < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue_row.delay));
        END IF;
        IF coalesce(raquel_enqueue_row.at, v_now) + raquel_enqueue_row.delay > 253402214399999 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'delay',
                format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                       CASE WHEN raquel_enqueue_row.at IS NULL THEN 'now' ELSE 'at' END,
                       coalesce(raquel_enqueue_row.at, v_now), raquel_enqueue_row.delay));
        END IF;
        IF raquel_enqueue_row.max_age <= 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_age', format('must be > 0 ms, got %s', raquel_enqueue_row.max_age));
        END IF;
        IF raquel_enqueue_row.max_retry_count < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_count',
                format('must be >= 0, got %s', raquel_enqueue_row.max_retry_count));
        END IF;
        IF v_min_delay < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
        END IF;
        IF v_max_delay < v_min_delay AND raquel_enqueue_row.max_retry_delay IS NULL THEN
            PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay',
                format('must be <= max_retry_delay (by default %s ms), got %s', v_max_delay, v_min_delay));
        END IF;
        IF v_max_delay < v_min_delay THEN
            PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
                format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
        END IF;
        IF raquel_enqueue_row.backoff_base < 0 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
                format('must be >= 0 ms, got %s', raquel_enqueue_row.backoff_base));
        END IF;
        IF raquel_enqueue_row.unique_key = '' OR octet_length(raquel_enqueue_row.unique_key) > 1000 THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_key',
                format('must be a non-empty string of at most 1000 bytes, got %s bytes',
                       octet_length(raquel_enqueue_row.unique_key)));
        END IF;
        IF raquel_enqueue_row.unique_mode NOT IN ('keep', 'replace') THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_mode',
                format('must be ''keep'' or ''replace'', got %L', raquel_enqueue_row.unique_mode));
        END IF;
        IF raquel_enqueue_row.unique_mode IS NOT NULL AND raquel_enqueue_row.unique_key IS NULL THEN
            PERFORM raquel_invalid('raquel_enqueue', 'unique_mode', 'needs a unique_key');
        END IF;
    END IF;
    -- trace_context: behind a guard of its own, after the other rules, so a
    -- traced enqueue without other optional arguments does not run the 19
    -- tests above.
    IF raquel_enqueue_row.trace_context IS NOT NULL THEN
        PERFORM raquel_check_trace_context('raquel_enqueue', raquel_enqueue_row.trace_context);
    END IF;

    -- Each pass either inserts, or finds (and for 'replace' rewrites) the job
    -- holding the key. A pass comes back empty only when that job finished
    -- between the INSERT and the SELECT, freeing the key: then try again.
    LOOP
        IF raquel_enqueue_row.unique_key IS NULL OR coalesce(raquel_enqueue_row.unique_mode, 'keep') = 'keep' THEN
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
            VALUES (
                raquel_enqueue_row.queue, raquel_enqueue_row.payload, raquel_enqueue_row.max_age,
                raquel_enqueue_row.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue_row.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0),
                coalesce(raquel_enqueue_row.priority, 0), raquel_enqueue_row.unique_key, raquel_enqueue_row.timeout,
                raquel_enqueue_row.trace_context)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO NOTHING
            RETURNING j.* INTO v_job;
        ELSE
            INSERT INTO raquel_jobs AS j (
                queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
            VALUES (
                raquel_enqueue_row.queue, raquel_enqueue_row.payload, raquel_enqueue_row.max_age,
                raquel_enqueue_row.max_retry_count, v_min_delay, v_max_delay,
                coalesce(raquel_enqueue_row.backoff_base, 1000), v_now,
                coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0),
                coalesce(raquel_enqueue_row.priority, 0), raquel_enqueue_row.unique_key, raquel_enqueue_row.timeout,
                raquel_enqueue_row.trace_context)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
            DO UPDATE SET
                queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL,
                timeout = excluded.timeout, trace_context = excluded.trace_context
            WHERE j.status IN ('queued', 'failed')
            RETURNING j.* INTO v_job;
            -- The update trigger wakes workers only for a job moved earlier;
            -- a rewritten job may have moved to another queue.
            IF v_job.id IS NOT NULL AND coalesce(raquel_enqueue_row.at, v_now) + coalesce(raquel_enqueue_row.delay, 0) <= v_now THEN
                PERFORM pg_notify('raquel_jobs', raquel_enqueue_row.queue);
            END IF;
        END IF;
        EXIT WHEN v_job.id IS NOT NULL;
        SELECT j.* INTO v_job FROM raquel_jobs j
        WHERE j.unique_key = raquel_enqueue_row.unique_key AND j.status IN ('queued', 'failed', 'claimed');
        EXIT WHEN v_job.id IS NOT NULL;
    END LOOP;
    RETURN v_job;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_enqueue_row(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues a job with raquel_enqueue''s arguments, rules and errors (errors name raquel_enqueue) and returns its row as stored: the new job, or for unique_mode keep the job already holding the key. trace_context: the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes, else 22023). What raquel_enqueue and raquel_enqueue_job call.';

CREATE FUNCTION raquel.raquel_enqueue(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE sql
    RETURN (raquel.raquel_enqueue_row(queue => queue, payload => payload, at => at, delay => delay, max_age => max_age, max_retry_count => max_retry_count, min_retry_delay => min_retry_delay, max_retry_delay => max_retry_delay, backoff_base => backoff_base, now => now, priority => priority, unique_key => unique_key, unique_mode => unique_mode, timeout => timeout, trace_context => trace_context)).id;

COMMENT ON FUNCTION raquel.raquel_enqueue(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues one job and returns its id: scheduled at coalesce(at, now) + coalesce(delay, 0); unique_key/unique_mode keep or replace the unfinished job holding the key; timeout (ms) limits each attempt; trace_context stores the enqueuer''s trace carrier (a JSON object of strings, at most 2048 bytes) for the worker''s span. now only from a role that may update raquel_jobs (else 42501). Bad arguments: 22023 naming the argument, nothing written. The id of raquel_enqueue_row: callers need EXECUTE on both.';

CREATE FUNCTION raquel.raquel_enqueue_job(queue text DEFAULT 'default'::text, payload text DEFAULT NULL::text, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_key text DEFAULT NULL::text, unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN NEXT raquel_enqueue_row(
        queue => raquel_enqueue_job.queue, payload => raquel_enqueue_job.payload,
        at => raquel_enqueue_job.at, delay => raquel_enqueue_job.delay,
        max_age => raquel_enqueue_job.max_age, max_retry_count => raquel_enqueue_job.max_retry_count,
        min_retry_delay => raquel_enqueue_job.min_retry_delay,
        max_retry_delay => raquel_enqueue_job.max_retry_delay,
        backoff_base => raquel_enqueue_job.backoff_base, priority => raquel_enqueue_job.priority,
        unique_key => raquel_enqueue_job.unique_key, unique_mode => raquel_enqueue_job.unique_mode,
        timeout => raquel_enqueue_job.timeout, trace_context => raquel_enqueue_job.trace_context);
END
$$;

COMMENT ON FUNCTION raquel.raquel_enqueue_job(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) IS 'Enqueues a job exactly as raquel_enqueue (same arguments but now, timeout and trace_context included; same rules and errors) and returns its row in the same call: for unique_mode keep, the row of the job already holding the key. raquel_enqueue_row''s row as a set.';

CREATE FUNCTION raquel.raquel_enqueue_many(queue text, payloads text[], at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, min_retry_delay bigint DEFAULT NULL::bigint, max_retry_delay bigint DEFAULT NULL::bigint, backoff_base bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, unique_keys text[] DEFAULT NULL::text[], unique_mode text DEFAULT NULL::text, timeout bigint DEFAULT NULL::bigint, trace_context text DEFAULT NULL::text) RETURNS SETOF uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_limit     constant bigint := 4611686018427387903;  -- 2^62 - 1
    v_fn        constant text := 'raquel_enqueue_many';
    v_now       bigint := CASE WHEN raquel_enqueue_many.now IS NULL THEN raquel_now_ms()
                               ELSE raquel_clock('raquel_enqueue_many', raquel_enqueue_many.now) END;
    v_min_delay bigint := coalesce(raquel_enqueue_many.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue_many.max_retry_delay, 43200000);
    v_backoff   bigint := coalesce(raquel_enqueue_many.backoff_base, 1000);
    v_priority  integer := coalesce(raquel_enqueue_many.priority, 0);
    v_replace   boolean := raquel_enqueue_many.unique_mode = 'replace';
    v_bad_key   text;
    v_pending   text[];     -- keys not yet resolved to a job
    v_keys      text[] := '{}';
    v_key_ids   uuid[] := '{}';
    v_got_keys  text[];
    v_got_ids   uuid[];
    v_touched   integer;
    v_ids       uuid[];
BEGIN
    IF raquel_enqueue_many.queue IS NULL OR raquel_enqueue_many.queue = '' THEN
        PERFORM raquel_invalid(v_fn, 'queue', 'must be a non-empty string');
    END IF;
    IF octet_length(raquel_enqueue_many.queue) > 1000 THEN
        PERFORM raquel_invalid(v_fn, 'queue',
            format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue_many.queue)));
    END IF;
    IF raquel_enqueue_many.payloads IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'payloads', 'must be an array, not NULL');
    END IF;
    IF raquel_enqueue_many.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid(v_fn, 'at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_enqueue_many.at));
    END IF;
    IF raquel_enqueue_many.delay > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'delay',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.delay));
    END IF;
    IF raquel_enqueue_many.max_age > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'max_age',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.max_age));
    END IF;
    IF v_max_delay > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_delay',
            format('must be at most %s ms, got %s', v_limit, v_max_delay));
    END IF;
    IF raquel_enqueue_many.backoff_base > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'backoff_base',
            format('must be at most %s ms, got %s', v_limit, raquel_enqueue_many.backoff_base));
    END IF;
    IF raquel_enqueue_many.delay < 0 THEN
        PERFORM raquel_invalid(v_fn, 'delay', format('must be >= 0 ms, got %s', raquel_enqueue_many.delay));
    END IF;
    IF coalesce(raquel_enqueue_many.at, v_now) + raquel_enqueue_many.delay > 253402214399999 THEN
        PERFORM raquel_invalid(v_fn, 'delay',
            format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   CASE WHEN raquel_enqueue_many.at IS NULL THEN 'now' ELSE 'at' END,
                   coalesce(raquel_enqueue_many.at, v_now), raquel_enqueue_many.delay));
    END IF;
    IF raquel_enqueue_many.max_age <= 0 THEN
        PERFORM raquel_invalid(v_fn, 'max_age', format('must be > 0 ms, got %s', raquel_enqueue_many.max_age));
    END IF;
    IF raquel_enqueue_many.max_retry_count < 0 THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_count',
            format('must be >= 0, got %s', raquel_enqueue_many.max_retry_count));
    END IF;
    IF v_min_delay < 0 THEN
        PERFORM raquel_invalid(v_fn, 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay AND raquel_enqueue_many.max_retry_delay IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'min_retry_delay',
            format('must be <= max_retry_delay (by default %s ms), got %s', v_max_delay, v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay THEN
        PERFORM raquel_invalid(v_fn, 'max_retry_delay',
            format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
    END IF;
    IF raquel_enqueue_many.backoff_base < 0 THEN
        PERFORM raquel_invalid(v_fn, 'backoff_base',
            format('must be >= 0 ms, got %s', raquel_enqueue_many.backoff_base));
    END IF;
    IF raquel_enqueue_many.unique_keys IS NOT NULL THEN
        IF coalesce(cardinality(raquel_enqueue_many.unique_keys), 0)
           <> coalesce(cardinality(raquel_enqueue_many.payloads), 0) THEN
            PERFORM raquel_invalid(v_fn, 'unique_keys',
                format('must have as many elements as payloads (%s), got %s',
                       coalesce(cardinality(raquel_enqueue_many.payloads), 0),
                       coalesce(cardinality(raquel_enqueue_many.unique_keys), 0)));
        END IF;
        SELECT k INTO v_bad_key FROM unnest(raquel_enqueue_many.unique_keys) AS u(k)
        WHERE k = '' OR octet_length(k) > 1000 LIMIT 1;
        IF FOUND THEN
            PERFORM raquel_invalid(v_fn, 'unique_keys',
                format('must be a non-empty string of at most 1000 bytes, got %s bytes',
                       octet_length(v_bad_key)));
        END IF;
    END IF;
    IF raquel_enqueue_many.unique_mode NOT IN ('keep', 'replace') THEN
        PERFORM raquel_invalid(v_fn, 'unique_mode',
            format('must be ''keep'' or ''replace'', got %L', raquel_enqueue_many.unique_mode));
    END IF;
    IF raquel_enqueue_many.unique_mode IS NOT NULL AND raquel_enqueue_many.unique_keys IS NULL THEN
        PERFORM raquel_invalid(v_fn, 'unique_mode', 'needs unique_keys');
    END IF;
    IF raquel_enqueue_many.timeout <= 0 OR raquel_enqueue_many.timeout > v_limit THEN
        PERFORM raquel_invalid(v_fn, 'timeout',
            format('must be > 0 and at most %s ms, got %s', v_limit, raquel_enqueue_many.timeout));
    END IF;
    IF raquel_enqueue_many.trace_context IS NOT NULL THEN
        PERFORM raquel_check_trace_context(v_fn, raquel_enqueue_many.trace_context);
    END IF;

    -- Jobs without a key: the ids are drawn first (raquel_new_ids, once for
    -- the whole array), then one INSERT ... SELECT over both arrays, and the
    -- answer is the id array itself, in the payloads' order by construction.
    IF raquel_enqueue_many.unique_keys IS NULL THEN
        v_ids := raquel_new_ids(cardinality(raquel_enqueue_many.payloads));
        INSERT INTO raquel_jobs (
            id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
            backoff_base, enqueued_at, scheduled_at, priority, timeout, trace_context)
        SELECT u.id, raquel_enqueue_many.queue, u.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
        FROM unnest(v_ids, raquel_enqueue_many.payloads) AS u(id, payload);
        RETURN QUERY SELECT unnest(v_ids);
        RETURN;
    END IF;

    -- With keys: unkeyed elements as above, then each distinct key once
    -- (first element for 'keep', last for 'replace'). Each pass inserts (or
    -- for 'replace' rewrites) the key's job, or finds the job holding it; a
    -- key stays pending only when its job finished between the INSERT and the
    -- SELECT (as in raquel_enqueue), and the next pass tries it again.
    SELECT array_agg(DISTINCT k) INTO v_pending
    FROM unnest(raquel_enqueue_many.unique_keys) AS u(k) WHERE k IS NOT NULL;
    WHILE cardinality(v_pending) > 0 LOOP
        IF v_replace THEN
            WITH rep AS (
                SELECT DISTINCT ON (u.k) u.k, u.payload
                FROM unnest(raquel_enqueue_many.payloads, raquel_enqueue_many.unique_keys)
                     WITH ORDINALITY AS u(payload, k, ord)
                WHERE u.k = ANY (v_pending)
                ORDER BY u.k, u.ord DESC
            ), written AS (
                INSERT INTO raquel_jobs AS j (
                    queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
                FROM rep
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
                DO UPDATE SET
                    queue = excluded.queue, payload = excluded.payload, max_age = excluded.max_age,
                    max_retry_count = excluded.max_retry_count, min_retry_delay = excluded.min_retry_delay,
                    max_retry_delay = excluded.max_retry_delay, backoff_base = excluded.backoff_base,
                    enqueued_at = excluded.enqueued_at, scheduled_at = excluded.scheduled_at,
                    priority = excluded.priority, status = 'queued', attempts = 0, error = NULL,
                    error_trace = NULL, claimed_by = NULL, claimed_at = NULL, finished_at = NULL,
                    timeout = excluded.timeout, trace_context = excluded.trace_context
                WHERE j.status IN ('queued', 'failed')
                RETURNING j.unique_key, j.id
            )
            SELECT array_agg(w.unique_key), array_agg(w.id), count(*) INTO v_got_keys, v_got_ids, v_touched
            FROM written w;
            -- As in raquel_enqueue: the update trigger wakes workers only for
            -- a job moved earlier, and a rewritten job may have changed queue.
            IF v_touched > 0
               AND coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0) <= v_now THEN
                PERFORM raquel_notify_ready(ARRAY[raquel_enqueue_many.queue]);
            END IF;
        ELSE
            WITH rep AS (
                SELECT DISTINCT ON (u.k) u.k, u.payload
                FROM unnest(raquel_enqueue_many.payloads, raquel_enqueue_many.unique_keys)
                     WITH ORDINALITY AS u(payload, k, ord)
                WHERE u.k = ANY (v_pending)
                ORDER BY u.k, u.ord
            ), written AS (
                INSERT INTO raquel_jobs AS j (
                    queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
                    backoff_base, enqueued_at, scheduled_at, priority, unique_key, timeout, trace_context)
                SELECT raquel_enqueue_many.queue, rep.payload, raquel_enqueue_many.max_age,
                       raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
                       coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
                       v_priority, rep.k, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
                FROM rep
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed')
                DO NOTHING
                RETURNING j.unique_key, j.id
            )
            SELECT array_agg(w.unique_key), array_agg(w.id) INTO v_got_keys, v_got_ids FROM written w;
        END IF;
        v_keys := v_keys || coalesce(v_got_keys, '{}');
        v_key_ids := v_key_ids || coalesce(v_got_ids, '{}');
        SELECT array_agg(j.unique_key), array_agg(j.id) INTO v_got_keys, v_got_ids
        FROM raquel_jobs j
        WHERE j.unique_key = ANY (v_pending) AND NOT j.unique_key = ANY (v_keys)
          AND j.status IN ('queued', 'failed', 'claimed');
        v_keys := v_keys || coalesce(v_got_keys, '{}');
        v_key_ids := v_key_ids || coalesce(v_got_ids, '{}');
        v_pending := ARRAY(SELECT p.k FROM unnest(v_pending) AS p(k) WHERE NOT p.k = ANY (v_keys));
    END LOOP;

    RETURN QUERY
    WITH rows AS MATERIALIZED (
        SELECT CASE WHEN u.k IS NULL THEN u.id END AS id, u.payload, u.k, u.ord
        FROM unnest(raquel_new_ids(cardinality(raquel_enqueue_many.payloads)), raquel_enqueue_many.payloads,
                    raquel_enqueue_many.unique_keys)
             WITH ORDINALITY AS u(id, payload, k, ord)
    ), inserted AS (
        INSERT INTO raquel_jobs (
            id, queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
            backoff_base, enqueued_at, scheduled_at, priority, timeout, trace_context)
        SELECT r.id, raquel_enqueue_many.queue, r.payload, raquel_enqueue_many.max_age,
               raquel_enqueue_many.max_retry_count, v_min_delay, v_max_delay, v_backoff, v_now,
               coalesce(raquel_enqueue_many.at, v_now) + coalesce(raquel_enqueue_many.delay, 0),
               v_priority, raquel_enqueue_many.timeout, raquel_enqueue_many.trace_context
        FROM rows r WHERE r.k IS NULL
    )
    SELECT coalesce(r.id, m.id) FROM rows r
    LEFT JOIN unnest(v_keys, v_key_ids) AS m(k, id) ON m.k = r.k
    ORDER BY r.ord;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_enqueue_many(queue text, payloads text[], at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_keys text[], unique_mode text, timeout bigint, trace_context text) IS 'One job per payload, ids in the payloads'' order, or 22023 naming the bad argument and nothing written. Rules of raquel_enqueue; timeout (ms) and trace_context are stored with every job.';

CREATE FUNCTION raquel.raquel_expire(queues text[] DEFAULT NULL::text[], now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
DECLARE
    v_now   bigint := CASE WHEN raquel_expire.now IS NULL THEN raquel_now_ms()
                           ELSE raquel_clock('raquel_expire', raquel_expire.now) END;
    v_count integer;
BEGIN
    IF NOT EXISTS (
        SELECT FROM raquel_jobs j
        WHERE j.status IN ('queued', 'failed') AND j.max_age IS NOT NULL
          AND j.enqueued_at + j.max_age <= v_now
          AND (raquel_expire.queues IS NULL OR j.queue = ANY (raquel_expire.queues))
    ) THEN
        RETURN 0;
    END IF;
    WITH due AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('queued', 'failed') AND j.max_age IS NOT NULL
          AND j.enqueued_at + j.max_age <= v_now
          AND (raquel_expire.queues IS NULL OR j.queue = ANY (raquel_expire.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET status = 'expired', finished_at = v_now
    FROM due WHERE j.id = due.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_expire(queues text[], now bigint) IS 'Every waiting job past its max_age becomes expired; returns how many. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_expose(install_schema text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    v_into oid := (SELECT n.oid FROM pg_namespace n WHERE n.nspname = raquel_expose.install_schema);
    v_args text;
    r      record;
    g      record;
BEGIN
    IF v_into IS NULL THEN
        RAISE EXCEPTION 'raquel_expose: no schema %', raquel_expose.install_schema
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'install_schema';
    END IF;
    -- No engine object may be bound to a function or operator of another
    -- schema (a view, default, index, constraint, trigger or SQL-standard
    -- body binds what its names meant when it was created: one created
    -- with a search_path holding a schema others could write to could
    -- have bound another role's operator for good).
    v_args := (
        SELECT string_agg(format('%s uses %s', pg_describe_object(d.classid, d.objid, d.objsubid),
                                 pg_describe_object(d.refclassid, d.refobjid, 0)), '; ')
        FROM pg_depend d
        WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
          AND CASE d.refclassid
                  WHEN 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = d.refobjid)
                  ELSE (SELECT o.oprnamespace FROM pg_operator o WHERE o.oid = d.refobjid)
              END NOT IN ('pg_catalog'::regnamespace, 'raquel'::regnamespace)
          AND CASE d.classid
                  WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite w
                                                    JOIN pg_class c ON c.oid = w.ev_class WHERE w.oid = d.objid)
                  WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a
                                                    JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
                  WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
                                                    JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
                  WHEN 'pg_constraint'::regclass THEN (SELECT n.connamespace FROM pg_constraint n WHERE n.oid = d.objid)
                  WHEN 'pg_class'::regclass THEN (SELECT c.relnamespace FROM pg_class c WHERE c.oid = d.objid)
                  WHEN 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = d.objid)
                  WHEN 'pg_type'::regclass THEN (SELECT t.typnamespace FROM pg_type t WHERE t.oid = d.objid)
              END = 'raquel'::regnamespace);
    IF v_args IS NOT NULL THEN
        RAISE EXCEPTION 'raquel_expose: engine objects are bound to objects outside schemas raquel and pg_catalog: %',
            v_args USING HINT = 'Another role may have planted them (docs/security.md): drop them, then recreate the engine objects.';
    END IF;
    IF v_into = 'raquel'::regnamespace THEN
        RETURN;
    END IF;
    -- Stand-in functions whose engine function is gone (e.g. its signature changed).
    FOR r IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p
        WHERE p.pronamespace = v_into AND p.proname LIKE 'raquel\_%' AND p.prosrc LIKE '-- raquel_pg stand-in%'
          AND NOT EXISTS (SELECT FROM pg_proc e WHERE e.pronamespace = 'raquel'::regnamespace
                          AND e.proname = p.proname AND e.proargtypes = p.proargtypes)
    LOOP
        EXECUTE format('DROP FUNCTION %s', r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid, p.proname, p.proargtypes, p.proretset, p.pronargs, p.proacl, p.proowner,
               pg_get_function_arguments(p.oid) AS args,
               pg_get_function_identity_arguments(p.oid) AS identity,
               pg_get_function_result(p.oid) AS result,
               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END AS volatility,
               CASE p.proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END AS parallel,
               CASE WHEN p.proisstrict THEN 'STRICT' ELSE 'CALLED ON NULL INPUT' END AS strictness,
               CASE WHEN p.proretset THEN format('ROWS %s', p.prorows) ELSE '' END AS rows,
               obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p
        WHERE p.pronamespace = 'raquel'::regnamespace AND p.proname LIKE 'raquel\_%' AND p.prokind = 'f'
          AND p.prorettype <> 'trigger'::regtype AND p.proname NOT IN ('raquel_expose', 'raquel_unexpose')
    LOOP
        v_args := (SELECT string_agg('$' || i, ', ' ORDER BY i) FROM generate_series(1, r.pronargs) i);
        -- A stand-in whose result changed cannot be replaced in place.
        IF EXISTS (SELECT FROM pg_proc s
                   WHERE s.pronamespace = v_into AND s.proname = r.proname AND s.proargtypes = r.proargtypes
                     AND pg_get_function_result(s.oid) <> r.result) THEN
            EXECUTE format('DROP FUNCTION %I.%I(%s)', raquel_expose.install_schema, r.proname, r.identity);
        END IF;
        -- A volatile function returning a set: PL/pgSQL, which plans its call
        -- once per session (such an SQL function is not inlined, and
        -- PostgreSQL before 18 planned its body anew at every call:
        -- 0018_standins_plpgsql). Any other: SQL, which the planner inlines.
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE %s %s %s PARALLEL %s %s AS %L',
            raquel_expose.install_schema, r.proname, r.args, r.result,
            CASE WHEN r.proretset AND r.volatility = 'VOLATILE' THEN 'plpgsql' ELSE 'sql' END,
            r.volatility, r.strictness,
            r.parallel, r.rows,
            format(E'-- raquel_pg stand-in: calls raquel.%I (docs/security.md)\n%s',
                   r.proname,
                   CASE WHEN r.proretset AND r.volatility = 'VOLATILE'
                        THEN format('BEGIN RETURN QUERY SELECT * FROM raquel.%I(%s); END', r.proname, coalesce(v_args, ''))
                        WHEN r.proretset THEN format('SELECT * FROM raquel.%I(%s)', r.proname, coalesce(v_args, ''))
                        ELSE format('SELECT raquel.%I(%s)', r.proname, coalesce(v_args, '')) END));
        EXECUTE format('COMMENT ON FUNCTION %I.%I(%s) IS %L',
                       raquel_expose.install_schema, r.proname, r.identity, r.comment);
        -- The engine function's privileges: PUBLIC's default, or exactly its grants.
        IF r.proacl IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC',
                           raquel_expose.install_schema, r.proname, r.identity);
            FOR g IN SELECT a.grantee, a.is_grantable FROM aclexplode(r.proacl) a
                     WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> r.proowner LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO %s%s',
                               raquel_expose.install_schema, r.proname, r.identity,
                               CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                               CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END IF;
    END LOOP;
    -- Stand-in views.
    FOR r IN
        SELECT c.relname, c.relacl, c.relowner, obj_description(c.oid, 'pg_class') AS comment
        FROM pg_class c
        WHERE c.relnamespace = 'raquel'::regnamespace AND c.relname LIKE 'raquel\_%' AND c.relkind IN ('r', 'p', 'v')
    LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %I.%I AS SELECT * FROM raquel.%I',
                       raquel_expose.install_schema, r.relname, r.relname);
        EXECUTE format('COMMENT ON VIEW %I.%I IS %L', raquel_expose.install_schema, r.relname,
                       coalesce(r.comment || E'\n', '')
                       || format('raquel_pg stand-in: the columns of raquel.%I (docs/security.md).', r.relname));
        EXECUTE format('REVOKE ALL ON %I.%I FROM PUBLIC', raquel_expose.install_schema, r.relname);
        FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(r.relacl) a
                 WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') AND a.grantee <> r.relowner LOOP
            EXECUTE format('GRANT %s ON %I.%I TO %s%s', g.privilege_type, raquel_expose.install_schema, r.relname,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                           CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
END;
$_$;

COMMENT ON FUNCTION raquel.raquel_expose(install_schema text) IS 'For the migration runner (after each migration, as the owner): makes the install schema''s stand-ins match schema raquel, a function with the same signature whose body is the schema-qualified call for every raquel_* function (PL/pgSQL for a volatile function returning a set, else SQL), a view of all columns for every raquel_* table or view, each with the engine object''s privileges and comment; drops stand-ins whose engine object is gone. First refuses when an object of schema raquel is bound to a function or operator outside raquel and pg_catalog. Not executable by PUBLIC.';

CREATE FUNCTION raquel.raquel_fail(job_id uuid, claim_id uuid, error text DEFAULT NULL::text, error_trace text DEFAULT NULL::text, now bigint DEFAULT NULL::bigint) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_fail.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_fail', raquel_fail.now) END;
    v_status text;
    -- this call serves its jobs' result waiters (raquel_serve_results), not the trigger
    v_served text := set_config('raquel.results_served', 'on', true);
BEGIN
    UPDATE raquel_jobs j SET
        attempts = least(j.attempts, 2147483646) + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.cancel_claim_id = j.claim_id
                              OR (j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count)
                            THEN j.scheduled_at
                            ELSE v_now + least(raquel_retry_delay(least(j.attempts, 2147483646) + 1, j.backoff_base,
                                                                  j.min_retry_delay, j.max_retry_delay),
                                               253402214399999 - v_now) END,
        error = raquel_fail.error,
        error_trace = raquel_fail.error_trace,
        finished_at = v_now,
        lease_expires_at = NULL
    WHERE j.id = raquel_fail.job_id AND j.claim_id = raquel_fail.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    v_served := set_config('raquel.results_served', '', true);
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY[raquel_fail.job_id]);
    END IF;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_fail(job_id uuid, claim_id uuid, error text, error_trace text, now bigint) IS 'Records a failed attempt of the claimed job, fenced by claim_id: exhausted after attempt max_retry_count + 1, else failed and due again at now + the retry delay (at most the time range''s end); cancelled (never retried) when the cancellation of this claim was requested. Returns the new status, or NULL when the claim is no longer current. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint DEFAULT NULL::bigint) RETURNS TABLE(name text, job_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint) IS 'Fires each schedule whose next_run_at still equals ticks[i]: one job per tick, at most once. An interval schedule moves to its next tick after now (its next_run_ats[i] is ignored), a cron schedule to next_run_ats[i] (the caller evaluates cron). ticks and next_run_ats within the time range; now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_invalid(p_function text, p_argument text, p_problem text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION '%: invalid argument "%": %', p_function, p_argument, p_problem
        USING ERRCODE = 'invalid_parameter_value', COLUMN = p_argument;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_invalid(p_function text, p_argument text, p_problem text) IS 'Raises invalid_parameter_value (SQLSTATE 22023) saying that function p_function refused argument p_argument because of p_problem; the argument is also in the error''s COLUMN field.';

CREATE FUNCTION raquel.raquel_new_ids(n integer) RETURNS uuid[]
    LANGUAGE sql
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT ARRAY(
        SELECT (s.head || to_hex(((s.rand_b + g) & 4611686018427387903) | (-9223372036854775807 - 1)))::uuid
        FROM generate_series(0, raquel_new_ids.n - 1) AS g)
    FROM (SELECT lpad(to_hex(((raquel_now_ms() & 281474976710655) << 16) | 28672
                             | ('x' || substr(r.hex, 14, 3))::bit(12)::bigint), 16, '0') AS head,
                 ('x' || substr(r.hex, 17, 16))::bit(64)::bigint & 4611686018427387903 AS rand_b
          FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS hex) AS r) AS s
$$;

COMMENT ON FUNCTION raquel.raquel_new_ids(n integer) IS 'n distinct new job ids in raquel_new_id''s layout that sort by creation time, the random bits drawn once per call (for a batch); none for n < 1 or NULL.';

CREATE FUNCTION raquel.raquel_next_due(queues text[] DEFAULT NULL::text[]) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
DECLARE
    v_queues text[] := raquel_next_due.queues;
    v_held   text[];
    v_skip   text[] := '{}';
    v_due    bigint;
    v_ctl    record;
    v_at     bigint;
    v_level  integer;  -- issue 23, many queues: a long list
    v_listed boolean;
    v_seen   bigint;
BEGIN
    -- Queue controls: the paused and limited queues asked for are
    -- taken out of the general reading below and given their own time here.
    v_held := ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                    WHERE (s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL)
                      AND (v_queues IS NULL OR s.queue = ANY (v_queues)));
    IF cardinality(v_held) > 0 THEN
        IF v_queues IS NULL THEN
            v_skip := v_held;
        ELSE
            v_queues := ARRAY(SELECT q.name FROM unnest(v_queues) AS q(name) WHERE q.name <> ALL (v_held));
        END IF;
        FOR v_ctl IN
            SELECT s.queue::text AS queue, s.max_running, s.per_second, s.tokens, s.tokens_at
            FROM raquel_queue_settings s WHERE s.queue = ANY (v_held) AND NOT s.paused
        LOOP
            IF v_ctl.max_running IS NOT NULL AND v_ctl.max_running <= (
                   SELECT count(*) FROM raquel_jobs j
                   WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed' AND j.queue = v_ctl.queue) THEN
                -- Full: not before a slot frees (a lease running out, at the latest).
                v_at := (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                         WHERE j.status = 'claimed' AND j.queue = v_ctl.queue);
            ELSE
                -- Its earliest waiting job, one index probe per priority level.
                v_at := (
                    WITH RECURSIVE levels(priority) AS (
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                ORDER BY j.priority DESC LIMIT 1)
                        UNION ALL
                        SELECT (SELECT j.priority FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                  AND j.priority < l.priority
                                ORDER BY j.priority DESC LIMIT 1)
                        FROM levels l WHERE l.priority IS NOT NULL
                    )
                    SELECT min((SELECT j.scheduled_at FROM raquel_jobs j
                                WHERE j.queue = v_ctl.queue AND j.status IN ('queued', 'failed')
                                  AND j.priority = l.priority
                                ORDER BY j.scheduled_at LIMIT 1))
                    FROM levels l WHERE l.priority IS NOT NULL);
                IF v_at IS NOT NULL AND v_ctl.per_second IS NOT NULL AND v_ctl.tokens < 1 THEN
                    -- Not before its bucket holds a whole token again.
                    v_at := greatest(v_at, v_ctl.tokens_at
                                           + ceil((1 - v_ctl.tokens) * 1000 / v_ctl.per_second)::bigint);
                END IF;
            END IF;
            v_due := least(v_due, v_at);
        END LOOP;
    END IF;

    IF v_queues IS NULL AND cardinality(v_skip) > 0 THEN
        -- All queues but the held ones, without reading the held queues'
        -- backlogs (0016_claim_walks): the lease deadlines of the
        -- others' claimed jobs, then level by level the first waiting job of
        -- a queue not held among the level's first 256 (raquel_claim's walk);
        -- when 256 held jobs come first, the queues that are not held are
        -- named (one probe of the queue index each, raquel_claim's way) and
        -- probed one by one, as for a long list.
        v_due := least(v_due, (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                               WHERE j.status = 'claimed' AND j.queue <> ALL (v_skip)));
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            SELECT w.scheduled_at, w.kept, w.n INTO v_at, v_listed, v_seen
            FROM (SELECT j.scheduled_at, j.queue <> ALL (v_skip) AS kept,
                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                  FROM raquel_jobs j
                  WHERE j.priority = v_level AND j.status IN ('queued', 'failed')
                  ORDER BY j.scheduled_at
                  LIMIT 256) AS w
            WHERE w.kept OR w.n = 256
            LIMIT 1;
            IF FOUND AND NOT v_listed THEN
                IF v_queues IS NULL THEN
                    v_queues := ARRAY(
                        WITH RECURSIVE ready(queue) AS (
                            (SELECT j.queue::text FROM raquel_jobs j
                             WHERE j.status IN ('queued', 'failed')
                             ORDER BY j.queue LIMIT 1)
                            UNION ALL
                            SELECT (SELECT j.queue::text FROM raquel_jobs j
                                    WHERE j.status IN ('queued', 'failed') AND j.queue > r.queue
                                    ORDER BY j.queue LIMIT 1)
                            FROM ready r WHERE r.queue IS NOT NULL
                        )
                        SELECT r.queue FROM ready r WHERE r.queue IS NOT NULL AND r.queue <> ALL (v_skip));
                END IF;
                v_at := (SELECT min(h.scheduled_at) FROM unnest(v_queues) AS q(name)
                         CROSS JOIN LATERAL (SELECT j.scheduled_at FROM raquel_jobs j
                                             WHERE j.queue >= q.name AND j.queue <= q.name
                                               AND j.priority = v_level AND j.status IN ('queued', 'failed')
                                             ORDER BY j.queue, j.scheduled_at LIMIT 1) AS h);
            ELSIF NOT FOUND THEN
                v_at := NULL;
            END IF;
            v_due := least(v_due, v_at);
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
        RETURN v_due;
    END IF;
    IF v_queues IS NULL THEN
        RETURN least(v_due, (
            WITH RECURSIVE levels(priority) AS (
                SELECT (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed')
                        ORDER BY j.priority DESC LIMIT 1)
                UNION ALL
                SELECT (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < l.priority
                        ORDER BY j.priority DESC LIMIT 1)
                FROM levels l WHERE l.priority IS NOT NULL
            )
            SELECT min(t) FROM (
                SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority = l.priority
                          AND j.queue <> ALL (v_skip)
                        ORDER BY j.scheduled_at LIMIT 1) AS t
                FROM levels l WHERE l.priority IS NOT NULL
                UNION ALL
                SELECT min(j.lease_expires_at) FROM raquel_jobs j WHERE j.status = 'claimed'
                  AND j.queue <> ALL (v_skip)
            ) AS due));
    END IF;
    IF cardinality(v_queues) > 16 THEN
        -- A long list (issue 23, many queues): the lease deadlines of its claimed
        -- jobs (raquel_jobs_lease_idx in deadline order, a hashed membership
        -- test: the IS TRUE keeps it a filter, so min() still reads the
        -- index from its start), then level by level over the all-queues
        -- index: the first job of a listed queue in scheduled_at order among
        -- the level's first 256, else one probe per listed queue.
        v_due := least(v_due, (SELECT min(j.lease_expires_at) FROM raquel_jobs j
                               WHERE j.status = 'claimed'
                                 AND (j.queue IN (SELECT unnest(v_queues))) IS TRUE));
        v_level := (SELECT j.priority FROM raquel_jobs j
                    WHERE j.status IN ('queued', 'failed')
                    ORDER BY j.priority DESC LIMIT 1);
        WHILE v_level IS NOT NULL LOOP
            SELECT w.scheduled_at, w.listed, w.n INTO v_at, v_listed, v_seen
            FROM (SELECT j.scheduled_at, j.queue IN (SELECT unnest(v_queues)) AS listed,
                         row_number() OVER (ORDER BY j.scheduled_at ROWS UNBOUNDED PRECEDING) AS n
                  FROM raquel_jobs j
                  WHERE j.priority = v_level AND j.status IN ('queued', 'failed')
                  ORDER BY j.scheduled_at
                  LIMIT 256) AS w
            WHERE w.listed OR w.n = 256
            LIMIT 1;
            IF FOUND AND NOT v_listed THEN
                -- 256 jobs of other queues first: the listed queues one by
                -- one (a range over raquel_jobs_ready_queue_priority_idx in
                -- its own order, as raquel_claim_listed probes them).
                v_at := (SELECT min(h.scheduled_at) FROM unnest(v_queues) AS q(name)
                         CROSS JOIN LATERAL (SELECT j.scheduled_at FROM raquel_jobs j
                                             WHERE j.queue >= q.name AND j.queue <= q.name
                                               AND j.priority = v_level AND j.status IN ('queued', 'failed')
                                             ORDER BY j.queue, j.scheduled_at LIMIT 1) AS h);
            ELSIF NOT FOUND THEN
                v_at := NULL;
            END IF;
            v_due := least(v_due, v_at);
            v_level := (SELECT j.priority FROM raquel_jobs j
                        WHERE j.status IN ('queued', 'failed') AND j.priority < v_level
                        ORDER BY j.priority DESC LIMIT 1);
        END LOOP;
        RETURN v_due;
    END IF;
    RETURN least(v_due, (
        WITH RECURSIVE levels(queue, priority) AS (
            SELECT q.name, (SELECT j.priority FROM raquel_jobs j
                            WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                            ORDER BY j.priority DESC LIMIT 1)
            FROM unnest(v_queues) AS q(name)
            UNION ALL
            SELECT l.queue, (SELECT j.priority FROM raquel_jobs j
                             WHERE j.queue = l.queue AND j.status IN ('queued', 'failed')
                               AND j.priority < l.priority
                             ORDER BY j.priority DESC LIMIT 1)
            FROM levels l WHERE l.priority IS NOT NULL
        )
        SELECT min(t) FROM (
            SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                    WHERE j.queue = l.queue AND j.status IN ('queued', 'failed') AND j.priority = l.priority
                    ORDER BY j.scheduled_at LIMIT 1) AS t
            FROM levels l WHERE l.priority IS NOT NULL
            UNION ALL
            SELECT min(j.lease_expires_at) FROM raquel_jobs j
            WHERE j.status = 'claimed' AND j.queue = ANY (v_queues)
        ) AS due));
END;
$$;

COMMENT ON FUNCTION raquel.raquel_next_due(queues text[]) IS 'The earliest time (ms) at which a claim of these queues (NULL: all) can take a job: a waiting job''s scheduled_at or a claimed job''s lease deadline, as the queue controls permit (a paused queue: never; at max_running: its running jobs'' lease deadlines; per_second: not before its next token); NULL when there is none. Workers sleep until then.';

CREATE FUNCTION raquel.raquel_notify_ready(queues text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_notify_ready(queues text[]) IS 'Internal (the enqueue triggers): for each queue, NOTIFY raquel_jobs with the queue name when a live registration wants it (always outside READ COMMITTED), deleting the registrations it notified that no other transaction has locked.';

CREATE FUNCTION raquel.raquel_pause_queue(queue text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_was boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_pause_queue', raquel_pause_queue.queue);
    SELECT s.paused INTO v_was FROM raquel_queue_settings s
    WHERE s.queue = raquel_pause_queue.queue FOR UPDATE;
    INSERT INTO raquel_queue_settings AS s (queue, paused) VALUES (raquel_pause_queue.queue, true)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET paused = true;
    RETURN NOT coalesce(v_was, false);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_pause_queue(queue text) IS 'Pauses a queue: claims that begin after this commits skip it; it still accepts enqueues and its running jobs finish as usual. True when this call paused it, false when it was paused already. 22023 naming queue for a NULL, empty or over-long name.';

CREATE FUNCTION raquel.raquel_prune(batch_size integer DEFAULT 1000, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
DECLARE
    v_now     bigint := CASE WHEN raquel_prune.now IS NULL THEN raquel_now_ms()
                             ELSE raquel_clock('raquel_prune', raquel_prune.now) END;
    v_default bigint := (SELECT d.retention_ms FROM raquel_retention_default d);
    v_least   bigint;
    v_count   bigint;
BEGIN
    IF raquel_prune.batch_size IS NULL OR raquel_prune.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_prune', 'batch_size',
            format('must be >= 1, got %s', coalesce(raquel_prune.batch_size::text, 'NULL')));
    END IF;
    -- Lists of queues no worker registered for 7 days: a running worker
    -- registers its list every hour, so these are gone workers' lists.
    DELETE FROM raquel_queue_lists l WHERE l.used_at < v_now - 604800000;
    -- The shortest retention in force: no job finished after now - v_least
    -- is old enough, so the scan of raquel_jobs_finished_idx stops there.
    v_least := least(v_default, (SELECT min(s.retention_ms) FROM raquel_queue_settings s));
    IF v_least IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT pg_try_advisory_xact_lock(7021557117354893313) THEN  -- the raquel prune lock
        RETURN NULL;
    END IF;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        LEFT JOIN raquel_queue_settings s ON s.queue = j.queue
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.finished_at < v_now - v_least
          AND j.finished_at < v_now - coalesce(s.retention_ms, v_default)
        ORDER BY j.finished_at
        LIMIT raquel_prune.batch_size
        FOR UPDATE OF j SKIP LOCKED
    ), gone AS (
        DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id RETURNING j.queue
    ), counted AS (
        SELECT g.queue, count(*) AS n FROM gone g GROUP BY g.queue
    ), noted AS (
        INSERT INTO raquel_queue_settings AS s (queue, pruned)
        SELECT c.queue, c.n FROM counted c ORDER BY c.queue
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET pruned = s.pruned + excluded.pruned
        RETURNING 1
    )
    SELECT coalesce(sum(c.n), 0) INTO v_count FROM counted c;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_prune(batch_size integer, now bigint) IS 'Deletes at most batch_size finished jobs older than their queue''s retention (raquel_set_retention; else the default), oldest first; returns how many and adds them to the queue''s pruned count. 0 when no retention is set; NULL, nothing done, while another transaction prunes (one sweep at a time). First, whatever the retention, deletes the registered lists of queues (raquel_queue_list) unused for 7 days. 22023 naming batch_size when it is below 1. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_purge(older_than interval, statuses text[] DEFAULT NULL::text[], batch_size integer DEFAULT 1000, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_purge.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_purge', raquel_purge.now) END;
    v_statuses text[] := coalesce(raquel_purge.statuses, ARRAY['success', 'cancelled', 'expired', 'exhausted']);
    v_cutoff   bigint;
    v_count    integer;
BEGIN
    IF raquel_purge.older_than IS NULL OR raquel_purge.older_than < interval '0'
       OR NOT isfinite(raquel_purge.older_than) THEN
        PERFORM raquel_invalid('raquel_purge', 'older_than',
            format('must be a finite interval >= 0, got %s', coalesce(raquel_purge.older_than::text, 'NULL')));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['success', 'cancelled', 'expired', 'exhausted'] THEN
        PERFORM raquel_invalid('raquel_purge', 'statuses',
            format('must be some of success, cancelled, expired, exhausted, got %s', v_statuses));
    END IF;
    IF raquel_purge.batch_size IS NULL OR raquel_purge.batch_size < 1 THEN
        PERFORM raquel_invalid('raquel_purge', 'batch_size',
            format('must be >= 1, got %s', raquel_purge.batch_size));
    END IF;
    v_cutoff := greatest(v_now - floor(extract(epoch FROM raquel_purge.older_than) * 1000),
                         -62135510400000)::bigint;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
          AND j.status = ANY (v_statuses)
          AND j.finished_at < v_cutoff
        ORDER BY j.finished_at
        LIMIT raquel_purge.batch_size
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM raquel_jobs j USING picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_purge(older_than interval, statuses text[], batch_size integer, now bigint) IS 'Deletes at most batch_size finished jobs older than older_than, oldest first; returns how many. older_than must be a finite interval >= 0 (else 22023 naming it).';

CREATE FUNCTION raquel.raquel_queue_controls() RETURNS TABLE(queue text, paused boolean, max_running integer, per_second double precision, retention_ms bigint, pruned bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT * FROM (
        SELECT s.queue::text, s.paused, s.max_running, s.per_second, s.retention_ms, s.pruned
        FROM raquel_queue_settings s
        UNION ALL
        SELECT NULL, false, NULL, NULL, d.retention_ms, NULL
        FROM raquel_retention_default d WHERE d.retention_ms IS NOT NULL
    ) AS c
    ORDER BY c.queue NULLS LAST
$$;

COMMENT ON FUNCTION raquel.raquel_queue_controls() IS 'Per queue with a setting: paused, max_running, per_second, retention_ms (NULL: the default; 315576000000000: forever), pruned (finished jobs raquel_prune deleted), by queue; then, when a default retention is set, a row with queue NULL carrying it. Read-only.';

CREATE FUNCTION raquel.raquel_queue_list(queues text[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := raquel_now_ms();
    v_names  text[];
    v_digest bytea;
    v_id     bigint;
BEGIN
    IF raquel_queue_list.queues IS NULL OR cardinality(raquel_queue_list.queues) = 0 THEN
        PERFORM raquel_invalid('raquel_queue_list', 'queues',
            format('must name at least one queue, got %s', coalesce(raquel_queue_list.queues::text, 'NULL')));
    END IF;
    IF EXISTS (SELECT FROM unnest(raquel_queue_list.queues) AS q(name)
               WHERE q.name IS NULL OR q.name = '' OR octet_length(q.name) > 1000) THEN
        PERFORM raquel_invalid('raquel_queue_list', 'queues',
            'each queue name must be non-empty text of at most 1000 bytes (got NULL, an empty name or a longer one)');
    END IF;
    v_names := ARRAY(SELECT d.name FROM (SELECT DISTINCT q.name FROM unnest(raquel_queue_list.queues) AS q(name)) AS d
                     ORDER BY d.name COLLATE "C");
    v_digest := sha256(convert_to(
        (SELECT string_agg(octet_length(n.name)::text || ':' || n.name, '' ORDER BY n.i)
         FROM unnest(v_names) WITH ORDINALITY AS n(name, i)), 'UTF8'));
    INSERT INTO raquel_queue_lists (digest, size, registered_at, used_at)
    VALUES (v_digest, cardinality(v_names), v_now, v_now)
    ON CONFLICT (digest) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- Registered before (or by a transaction that committed while this
        -- one waited for it): in use again.
        UPDATE raquel_queue_lists l SET used_at = v_now
        WHERE l.digest = v_digest AND l.used_at < v_now - 3600000;
        v_id := (SELECT l.id FROM raquel_queue_lists l WHERE l.digest = v_digest);
        IF v_id IS NULL THEN
            RAISE EXCEPTION 'raquel_queue_list: the list was registered by a transaction this one cannot see yet'
                USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
        END IF;
        RETURN v_id;
    END IF;
    INSERT INTO raquel_queue_list_members (list_id, queue) SELECT v_id, n.name FROM unnest(v_names) AS n(name);
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_queue_list(queues text[]) IS 'The id of the list of these queues (order and repetitions do not matter), registered at the first call: raquel_claim(queue_list => id) claims from it without sending the names. A call for a list registered before marks it in use (used_at, written at most once an hour); raquel_prune deletes the lists unused for 7 days. 22023 naming queues for NULL, an empty list, a NULL name, or a name empty or longer than 1000 bytes.';

CREATE FUNCTION raquel.raquel_queue_overview(now bigint DEFAULT NULL::bigint) RETURNS TABLE(queue text, queued bigint, failed bigint, ready bigint, scheduled bigint, running bigint, lease_expired bigint, oldest_ready_age_ms bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_queue_overview.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_queue_overview', raquel_queue_overview.now) END;
BEGIN
    RETURN QUERY
    WITH waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.status = 'queued') AS queued,
               count(*) FILTER (WHERE j.status = 'failed') AS failed,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(j.scheduled_at) FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), claimed AS (
        SELECT j.queue, count(*) AS running,
               count(*) FILTER (WHERE j.lease_expires_at <= v_now) AS lease_expired
        FROM raquel_jobs j
        -- lease_expires_at IS NOT NULL: reads raquel_jobs_lease_idx (0003_tables), which holds claimed jobs.
        WHERE j.lease_expires_at IS NOT NULL AND j.status = 'claimed' GROUP BY j.queue
    )
    SELECT coalesce(w.queue, c.queue)::text, coalesce(w.queued, 0), coalesce(w.failed, 0),
           coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(c.running, 0),
           coalesce(c.lease_expired, 0), w.oldest_ready_age_ms
    FROM waiting w FULL JOIN claimed c ON c.queue = w.queue
    ORDER BY 1;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_queue_overview(now bigint) IS 'Per queue with waiting or claimed jobs: queued, failed, ready, scheduled, running, lease_expired, oldest_ready_age_ms, read from the partial indexes only. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_reject(job_id uuid, claim_id uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', attempts = least(j.attempts, 2147483646) + 1,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_reject.job_id AND j.claim_id = raquel_reject.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_reject(job_id uuid, claim_id uuid) IS 'Outcome: this worker will not run the job; another may take it at once (raquel''s reject): queued, scheduled_at unchanged, claimed_by/claimed_at cleared, one attempt counted. Fenced: NULL and no change unless still claimed under claim_id.';

CREATE FUNCTION raquel.raquel_release(job_id uuid, claim_id uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_release.job_id AND j.claim_id = raquel_release.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_release(job_id uuid, claim_id uuid) IS 'Hands a claimed job back untouched, as if never claimed: queued, claim cleared, scheduled_at unchanged, no attempt counted. For jobs a worker claimed but did not run (shutdown, cancellation). Fenced: NULL and no change unless still claimed under claim_id.';

CREATE FUNCTION raquel.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL::bigint) RETURNS SETOF uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_renew_leases.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_renew_leases', raquel_renew_leases.now) END;
BEGIN
    IF raquel_renew_leases.job_ids IS NULL OR raquel_renew_leases.claim_ids IS NULL
       OR coalesce(cardinality(raquel_renew_leases.job_ids), 0)
          <> coalesce(cardinality(raquel_renew_leases.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_renew_leases.job_ids), cardinality(raquel_renew_leases.claim_ids)));
    END IF;
    IF raquel_renew_leases.lease IS NULL OR raquel_renew_leases.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('must be > 0 ms, got %s', raquel_renew_leases.lease));
    END IF;
    IF raquel_renew_leases.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_renew_leases.lease));
    END IF;
    -- The pairs, each once, are joined to the table: the planner estimates
    -- them as a few hundred groups, so it probes the primary key per pair
    -- whatever the statistics say of 'claimed' (see the header).
    RETURN QUERY
    WITH held AS (
        SELECT DISTINCT ON (h.id, h.claim_id) h.id, h.claim_id
        FROM unnest(raquel_renew_leases.job_ids, raquel_renew_leases.claim_ids) AS h(id, claim_id)
        ORDER BY h.id, h.claim_id
    )
    UPDATE raquel_jobs j SET lease_expires_at = v_now + raquel_renew_leases.lease
    FROM held
    WHERE j.id = held.id AND j.claim_id = held.claim_id AND j.status = 'claimed'
    RETURNING j.id;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint, now bigint) IS 'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';

CREATE FUNCTION raquel.raquel_reschedule(job_id uuid, claim_id uuid, at bigint DEFAULT NULL::bigint, delay bigint DEFAULT NULL::bigint, now bigint DEFAULT NULL::bigint) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_reschedule.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_reschedule', raquel_reschedule.now) END;
    v_status text;
BEGIN
    IF raquel_reschedule.at NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'at',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', raquel_reschedule.at));
    END IF;
    IF raquel_reschedule.delay < 0 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('must be >= 0 ms, got %s', raquel_reschedule.delay));
    END IF;
    IF raquel_reschedule.delay > 4611686018427387903 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('must be at most 4611686018427387903 ms, got %s', raquel_reschedule.delay));
    END IF;
    IF coalesce(raquel_reschedule.at, v_now) + raquel_reschedule.delay > 253402214399999 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('%s + delay must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   CASE WHEN raquel_reschedule.at IS NULL THEN 'now' ELSE 'at' END,
                   coalesce(raquel_reschedule.at, v_now), raquel_reschedule.delay));
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued',
        attempts = least(j.attempts, 2147483646) + 1,
        scheduled_at = CASE WHEN raquel_reschedule.at IS NULL AND raquel_reschedule.delay IS NULL
                            THEN v_now + least(j.min_retry_delay, 253402214399999 - v_now)
                            ELSE coalesce(raquel_reschedule.at, v_now) + coalesce(raquel_reschedule.delay, 0) END,
        finished_at = NULL,
        lease_expires_at = NULL
    WHERE j.id = raquel_reschedule.job_id AND j.claim_id = raquel_reschedule.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_reschedule(job_id uuid, claim_id uuid, at bigint, delay bigint, now bigint) IS 'Outcome: queued again at coalesce(at, now) + coalesce(delay, 0) (now + min_retry_delay by default), fenced by claim_id; times outside 0001-01-02 .. 9999-12-30 UTC refused with 22023 naming at or delay.';

CREATE FUNCTION raquel.raquel_rescue(queues text[] DEFAULT NULL::text[], now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_rescue.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_rescue', raquel_rescue.now) END;
    v_handed integer;
    v_count  integer;
BEGIN
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now AND j.claimed_at IS NULL
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled' ELSE 'queued' END,
        finished_at = CASE WHEN j.cancel_claim_id = j.claim_id THEN v_now END,
        claimed_by = NULL, lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_handed = ROW_COUNT;
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        attempts = least(j.attempts, 2147483646) + 1,
        status = CASE WHEN j.cancel_claim_id = j.claim_id THEN 'cancelled'
                      WHEN j.max_retry_count IS NOT NULL AND least(j.attempts, 2147483646) + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        error = format('lease expired at %s: worker %s stopped renewing its claim',
                       j.lease_expires_at, coalesce(j.claimed_by, '(unnamed)')),
        error_trace = NULL,
        scheduled_at = v_now,
        finished_at = v_now,
        lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_handed + v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_rescue(queues text[], now bigint) IS 'Every claimed job (of queues, NULL: all) whose lease ran out counts one failed attempt: failed and claimable at once, exhausted after max_retry_count retries, or cancelled when its claim''s cancellation was requested; a job handed to a worker that never took it (claimed_at NULL, 0019_handoff) goes back queued (or cancelled) with no attempt counted. Returns how many. Locked rows are skipped. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_result(job_id uuid) RETURNS TABLE(status text, finished boolean, result jsonb, error text, attempts integer, finished_at bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_xmax text;
BEGIN
    IF raquel_result.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result', 'job_id', 'must not be NULL');
    END IF;
    SELECT j.xmax::text INTO v_xmax FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    IF v_xmax IS NULL THEN
        RETURN;
    END IF;
    IF v_xmax <> '0' THEN
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id
        FOR SHARE;
    ELSE
        RETURN QUERY
        SELECT j.status::text, j.status IN ('success', 'exhausted', 'expired', 'cancelled'),
               j.result, j.error, j.attempts, j.finished_at
        FROM raquel_jobs j WHERE j.id = raquel_result.job_id;
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_result(job_id uuid) IS 'The job''s status, whether it is finished (success, exhausted, expired, cancelled), its result (JSON stored with the success), error, attempts and finished_at; no row when there is no such job. Waits for a transaction changing the job at that moment, so that with raquel_result_watch no end is missed. 22023 naming job_id when NULL.';

CREATE FUNCTION raquel.raquel_result_unwatch(watch_id bigint, job_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_found boolean;
BEGIN
    DELETE FROM raquel_result_waiters w
    WHERE w.id = raquel_result_unwatch.watch_id AND w.job_id = raquel_result_unwatch.job_id
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_result_unwatch(watch_id bigint, job_id uuid) IS 'Deletes the result-wait registration watch_id of job job_id (a waiter that gave up); true if it was there, false if it was already served, never existed or is another job''s (nothing deleted).';

CREATE FUNCTION raquel.raquel_result_watch(job_id uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
BEGIN
    IF raquel_result_watch.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_result_watch', 'job_id', 'must not be NULL');
    END IF;
    INSERT INTO raquel_result_waiters (job_id) VALUES (raquel_result_watch.job_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_result_watch(job_id uuid) IS 'Registers a wait for the job''s end (LISTEN raquel_results first, commit this, then read raquel_result): the statement that finishes the job sends NOTIFY raquel_results with the job id and deletes the registration. Returns the registration id for raquel_result_unwatch. 22023 naming job_id when NULL.';

CREATE FUNCTION raquel.raquel_resume_queue(queue text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_found boolean;
BEGIN
    PERFORM raquel_check_queue('raquel_resume_queue', raquel_resume_queue.queue);
    UPDATE raquel_queue_settings s SET paused = false
    WHERE s.queue = raquel_resume_queue.queue AND s.paused
    RETURNING true INTO v_found;
    IF v_found THEN
        PERFORM raquel_notify_ready(ARRAY[raquel_resume_queue.queue]);
    END IF;
    RETURN coalesce(v_found, false);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_resume_queue(queue text) IS 'Resumes a paused queue: claims take its jobs again, and the idle workers waiting for it are notified at commit (NOTIFY raquel_jobs). True when it was paused, false (nothing written) otherwise. 22023 naming queue for a bad name.';

CREATE FUNCTION raquel.raquel_retry(job_id uuid, now bigint DEFAULT NULL::bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_retry.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_retry', raquel_retry.now) END;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    WHERE j.id = raquel_retry.job_id
      AND j.status IN ('failed', 'exhausted', 'expired', 'cancelled');
    RETURN FOUND;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_retry(job_id uuid, now bigint) IS 'Puts one failed, exhausted, expired or cancelled job back to queued; false when it is in another status. now only from a role that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_retry_delay(attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT greatest(0::float8, least(4611686018427387904::float8,
        raquel_retry_delay.max_retry_delay::float8,
        greatest(
            raquel_retry_delay.min_retry_delay::float8,
            raquel_retry_delay.backoff_base::float8
                * power(2::float8, least(greatest(raquel_retry_delay.attempts - 1, 0), 62))
        )
    ))::bigint
$$;

COMMENT ON FUNCTION raquel.raquel_retry_delay(attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint) IS 'The wait after a job''s n-th failed attempt: backoff_base * 2^(n-1) clamped to [min_retry_delay, max_retry_delay] (1 s, 2 s, 4 s, ... up to 12 h with the defaults), then to [0, 2^62] ms. Pure; never overflows, whatever a row holds.';

CREATE FUNCTION raquel.raquel_retry_jobs(queue text DEFAULT NULL::text, statuses text[] DEFAULT NULL::text[], since timestamp with time zone DEFAULT NULL::timestamp with time zone, now bigint DEFAULT NULL::bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now      bigint := CASE WHEN raquel_retry_jobs.now IS NULL THEN raquel_now_ms()
                              ELSE raquel_clock('raquel_retry_jobs', raquel_retry_jobs.now) END;
    v_statuses text[] := coalesce(raquel_retry_jobs.statuses, ARRAY['failed', 'exhausted', 'expired']);
    v_since    bigint;
    v_count    integer;
BEGIN
    IF NOT isfinite(raquel_retry_jobs.since) THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'since',
            format('must be a finite time, got %s', raquel_retry_jobs.since));
    END IF;
    IF cardinality(v_statuses) = 0
       OR NOT v_statuses <@ ARRAY['failed', 'exhausted', 'expired', 'cancelled'] THEN
        PERFORM raquel_invalid('raquel_retry_jobs', 'statuses',
            format('must be some of failed, exhausted, expired, cancelled, got %s', v_statuses));
    END IF;
    v_since := floor(extract(epoch FROM raquel_retry_jobs.since) * 1000)::bigint;
    WITH picked AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = ANY (v_statuses)
          AND (raquel_retry_jobs.queue IS NULL OR j.queue = raquel_retry_jobs.queue)
          AND (v_since IS NULL OR j.finished_at >= v_since)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        status = 'queued', scheduled_at = v_now, enqueued_at = v_now, finished_at = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL, claim_id = NULL
    FROM picked WHERE j.id = picked.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_retry_jobs(queue text, statuses text[], since timestamp with time zone, now bigint) IS 'raquel_retry for every job matching the filters; returns how many. since must be finite (else 22023 naming since).';

CREATE FUNCTION raquel.raquel_serve_results(job_ids uuid[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_count integer;
BEGIN
    WITH served AS (
        DELETE FROM raquel_result_waiters w
        WHERE w.id IN (SELECT w2.id FROM raquel_result_waiters w2
                       LEFT JOIN raquel_jobs j ON j.id = w2.job_id
                       WHERE w2.job_id = ANY (raquel_serve_results.job_ids)
                         AND (j.id IS NULL OR j.status IN ('success', 'exhausted', 'expired', 'cancelled'))
                       FOR UPDATE OF w2 SKIP LOCKED)
        RETURNING w.job_id
    )
    SELECT count(pg_notify('raquel_results', s.job_id::text))
    INTO v_count
    FROM (SELECT DISTINCT served.job_id FROM served) AS s;
    RETURN v_count;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_serve_results(job_ids uuid[]) IS 'Internal (raquel_complete, raquel_complete_many, raquel_fail, and the trigger raquel_jobs_30_notify_results for every registered job): NOTIFY raquel_results once per job among job_ids that is finished or gone and has registered result waiters, deleting those registrations (by the index on raquel_result_waiters.job_id). Returns the jobs notified.';

CREATE FUNCTION raquel.raquel_set_priority(job_id uuid, priority integer) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF raquel_set_priority.priority IS NULL THEN
        PERFORM raquel_invalid('raquel_set_priority', 'priority', 'must be an integer, got NULL');
    END IF;
    UPDATE raquel_jobs j SET priority = raquel_set_priority.priority
    WHERE j.id = raquel_set_priority.job_id AND j.status IN ('queued', 'failed', 'claimed');
    RETURN FOUND;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_set_priority(job_id uuid, priority integer) IS 'Sets the priority of an unfinished (queued, failed or claimed) job and returns true; false, changing nothing, when the job is missing or finished. Higher runs first.';

CREATE FUNCTION raquel.raquel_set_queue_limits(queue text, max_running integer DEFAULT NULL::integer, per_second double precision DEFAULT NULL::double precision, now bigint DEFAULT NULL::bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_set_queue_limits.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_set_queue_limits', raquel_set_queue_limits.now) END;
BEGIN
    PERFORM raquel_check_queue('raquel_set_queue_limits', raquel_set_queue_limits.queue);
    IF raquel_set_queue_limits.max_running < 1 THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'max_running',
            format('must be >= 1 or NULL (no limit), got %s', raquel_set_queue_limits.max_running));
    END IF;
    IF NOT (raquel_set_queue_limits.per_second > 0 AND raquel_set_queue_limits.per_second < 'Infinity') THEN
        PERFORM raquel_invalid('raquel_set_queue_limits', 'per_second',
            format('must be a finite number > 0 or NULL (no limit), got %s', raquel_set_queue_limits.per_second));
    END IF;
    INSERT INTO raquel_queue_settings AS s (queue, max_running, per_second, tokens, tokens_at)
    VALUES (raquel_set_queue_limits.queue, raquel_set_queue_limits.max_running,
            raquel_set_queue_limits.per_second,
            greatest(1, coalesce(raquel_set_queue_limits.per_second, 0) / 10), v_now)
    ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET
        max_running = excluded.max_running,
        per_second = excluded.per_second,
        -- A new rate starts with a full bucket; the same rate keeps its tokens.
        tokens = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens
                      ELSE excluded.tokens END,
        tokens_at = CASE WHEN s.per_second IS NOT DISTINCT FROM excluded.per_second THEN s.tokens_at
                         ELSE excluded.tokens_at END;
    PERFORM raquel_notify_ready(ARRAY[raquel_set_queue_limits.queue]);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_set_queue_limits(queue text, max_running integer, per_second double precision, now bigint) IS 'Sets a queue''s limits to exactly these (NULL: none): max_running (>= 1) caps its claimed jobs at once across all workers and hosts; per_second (> 0) caps how fast its claims start (token bucket of greatest(1, per_second/10) tokens: over any second at most per_second plus one bucket). Enforced by raquel_claim. 22023 naming the argument for a bad value, nothing written. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_set_retention(queue text, keep interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_ms bigint;
BEGIN
    IF raquel_set_retention.queue IS NOT NULL THEN
        PERFORM raquel_check_queue('raquel_set_retention', raquel_set_retention.queue);
    END IF;
    IF raquel_set_retention.keep < interval '0' OR NOT isfinite(raquel_set_retention.keep) THEN
        PERFORM raquel_invalid('raquel_set_retention', 'keep',
            format('must be a finite interval >= 0 or NULL (keep forever), got %s', raquel_set_retention.keep));
    END IF;
    v_ms := floor(extract(epoch FROM raquel_set_retention.keep) * 1000)::bigint;
    IF raquel_set_retention.queue IS NULL THEN
        UPDATE raquel_retention_default SET retention_ms = v_ms;
    ELSE
        v_ms := coalesce(v_ms, 315576000000000);  -- forever: longer than the time range
        INSERT INTO raquel_queue_settings AS s (queue, retention_ms) VALUES (raquel_set_retention.queue, v_ms)
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET retention_ms = excluded.retention_ms;
    END IF;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_set_retention(queue text, keep interval) IS 'Keeps the finished jobs (success, cancelled, expired, exhausted) of queue (NULL: of every queue without its own setting) for keep after they finished; older ones are deleted by raquel_prune (and the workers'' maintenance). keep NULL keeps them forever (the default), for a queue whatever the default (stored as retention_ms 315576000000000, 0022_retention_forever). 22023 naming keep for a negative or infinite interval, naming queue for a bad name.';

CREATE FUNCTION raquel.raquel_set_schedule(name text, queue text, payload text DEFAULT NULL::text, cron text DEFAULT NULL::text, every bigint DEFAULT NULL::bigint, first_run_at bigint DEFAULT NULL::bigint, priority integer DEFAULT NULL::integer, max_age bigint DEFAULT NULL::bigint, max_retry_count integer DEFAULT NULL::integer, now bigint DEFAULT NULL::bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_set_schedule(name text, queue text, payload text, cron text, every bigint, first_run_at bigint, priority integer, max_age bigint, max_retry_count integer, now bigint) IS 'Creates or updates a schedule; returns its next_run_at. first_run_at within 0001-01-02 .. 9999-12-30 UTC, every and max_age <= 2^62 - 1 ms (else 22023 naming the argument).';

CREATE FUNCTION raquel.raquel_stats(now bigint DEFAULT NULL::bigint) RETURNS TABLE(queue text, total bigint, queued bigint, claimed bigint, success bigint, failed bigint, cancelled bigint, expired bigint, exhausted bigint, ready bigint, scheduled bigint, lease_expired bigint, oldest_ready_age_ms bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_stats.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_stats', raquel_stats.now) END;
BEGIN
    RETURN QUERY
    WITH by_status AS (
        SELECT j.queue, j.status, count(*) AS n FROM raquel_jobs j GROUP BY j.queue, j.status
    ), counts AS (
        SELECT b.queue,
               sum(b.n)::bigint AS total,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'queued'), 0)::bigint AS queued,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'claimed'), 0)::bigint AS claimed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'success'), 0)::bigint AS success,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'failed'), 0)::bigint AS failed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'expired'), 0)::bigint AS expired,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'exhausted'), 0)::bigint AS exhausted
        FROM by_status b GROUP BY b.queue
    ), waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(greatest(j.scheduled_at, -62135510400000))
                       FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), lost AS (
        SELECT j.queue, count(*) AS lease_expired FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now GROUP BY j.queue
    )
    SELECT c.queue::text, c.total, c.queued, c.claimed, c.success, c.failed, c.cancelled, c.expired,
           c.exhausted, coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(l.lease_expired, 0),
           w.oldest_ready_age_ms
    FROM counts c
    LEFT JOIN waiting w ON w.queue = c.queue
    LEFT JOIN lost l ON l.queue = c.queue
    ORDER BY c.queue;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_stats(now bigint) IS 'One row per queue: counts by status, ready, scheduled, lease_expired, oldest_ready_age_ms. Never fails on the times rows hold.';

CREATE FUNCTION raquel.raquel_take(job_id uuid, claim_id uuid, lease bigint DEFAULT 60000, claim_as text DEFAULT NULL::text, queues text[] DEFAULT NULL::text[]) RETURNS SETOF raquel.raquel_jobs
    LANGUAGE plpgsql SECURITY DEFINER ROWS 1
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    IF raquel_take.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_take.claim_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'claim_id', 'must not be NULL');
    END IF;
    IF raquel_take.lease IS NULL OR raquel_take.lease <= 0 OR raquel_take.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_take', 'lease',
            format('must be > 0 ms (and now + lease within the time range), got %s', raquel_take.lease));
    END IF;
    IF raquel_take.claim_as = '' THEN
        PERFORM raquel_invalid('raquel_take', 'claim_as', 'must not be empty (NULL: any worker)');
    END IF;
    IF cardinality(raquel_take.queues) = 0 THEN
        PERFORM raquel_invalid('raquel_take', 'queues', 'must name at least one queue (NULL: any queue)');
    END IF;
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET claimed_at = v_now, lease_expires_at = v_now + raquel_take.lease
    WHERE j.id = raquel_take.job_id AND j.claim_id = raquel_take.claim_id
      AND j.status = 'claimed' AND j.claimed_at IS NULL
      AND (raquel_take.claim_as IS NULL OR j.claimed_by = raquel_take.claim_as)
      AND (raquel_take.queues IS NULL OR j.queue = ANY (raquel_take.queues))
    RETURNING j.*;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_take(job_id uuid, claim_id uuid, lease bigint, claim_as text, queues text[]) IS 'Takes a job handed to a worker (NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''): when still claimed under claim_id, not yet taken, claimed by claim_as (when given) and of one of queues (when given), sets claimed_at, renews its lease to lease ms from now and returns its row; else no row, nothing changed. Its commit does not wait for the WAL flush when the transaction wrote nothing before (the claim is already durable). 22023 for a NULL job_id or claim_id, lease not > 0, an empty claim_as or an empty queues.';

CREATE FUNCTION raquel.raquel_tg_jobs__notify_freed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_tg_jobs__notify_freed() IS 'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE: every queue with a max_running, not paused, below it in claimed jobs, with a waiting job (due now or later) and a live waiter registration goes to raquel_notify_ready (NOTIFY raquel_jobs), so a worker held by the limit claims, or reads raquel_next_due again, when a slot frees. With no max_running set anywhere, one probe of raquel_queue_settings.';

CREATE FUNCTION raquel.raquel_tg_jobs__notify_insert() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_tg_jobs__notify_insert() IS 'Statement trigger after INSERT on raquel_jobs: one notification per distinct queue that got a ready job, only when an idle worker registered for it waits, or that got a job due later when a waiting worker''s registration outlives its due time (0021_notify_scheduled: that worker then reads raquel_next_due again); a lone ready job is instead handed to an idle worker that accepts hand-offs (0019_handoff: its registration taken now, the job claimed for it at commit).';

CREATE FUNCTION raquel.raquel_tg_jobs__notify_results() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF current_setting('raquel.results_served', true) = 'on' THEN
        RETURN NULL;  -- raquel_complete, raquel_complete_many or raquel_fail: it serves its own jobs' waiters
    END IF;
    IF EXISTS (SELECT FROM raquel_result_waiters) THEN
        PERFORM raquel_serve_results(ARRAY(SELECT DISTINCT w.job_id FROM raquel_result_waiters w));
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_tg_jobs__notify_results() IS 'Statement trigger after UPDATE OF finished_at on raquel_jobs (every statement that ends a job sets it; claims do not) and after DELETE (a success deleted at once, a prune): NOTIFY raquel_results with the job id for every registered result waiter whose job is finished or gone, deleting those registrations; with no registration, one probe of an empty table. Skips the statements of raquel_complete, raquel_complete_many and raquel_fail (raquel.results_served on), which serve their own jobs'' waiters (raquel_serve_results).';

CREATE FUNCTION raquel.raquel_tg_jobs__notify_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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

COMMENT ON FUNCTION raquel.raquel_tg_jobs__notify_update() IS 'Row trigger after UPDATE on raquel_jobs (its WHEN clause is evaluated in C): notifies when a job comes back to a waiting state (reject, reschedule, rescue, retry) or is moved earlier, and an idle worker waits for its queue: at once when it is due now, and when it is due later if a waiting worker''s registration outlives that time (0021_notify_scheduled).';

CREATE FUNCTION raquel.raquel_tg_waiters__hand_off() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now   bigint := raquel_now_ms();
    v_claim uuid := gen_random_uuid();
    v_queue text;
BEGIN
    -- The worker's listening session holds the raquel listener lock for its pid
    -- while it lives (raquel_wait_begin): if this shared try gets it, the
    -- worker is gone (its lock released with its session) or never held it.
    IF pg_try_advisory_xact_lock_shared(1903257711, NEW.listener_pid) THEN
        -- Its worker is gone (killed, or stopped while this transaction held
        -- its registration): wake another idle worker of the queue the usual way.
        DELETE FROM raquel_waiters w WHERE w.registration = NEW.registration;
        SELECT j.queue INTO v_queue FROM raquel_jobs j
        WHERE j.id = NEW.handed_job AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now;
        IF FOUND THEN
            PERFORM raquel_notify_ready(ARRAY[v_queue]);
        END IF;
        RETURN NULL;
    END IF;
    UPDATE raquel_jobs j SET
        status = 'claimed', claimed_by = NEW.claim_as, claimed_at = NULL,
        lease_expires_at = v_now + NEW.lease_ms, claim_id = v_claim
    WHERE j.id = NEW.handed_job
      AND j.status = 'queued' AND j.scheduled_at <= v_now
      AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
      AND NOT EXISTS (SELECT FROM raquel_queue_settings s
                      WHERE s.queue = j.queue
                        AND (s.paused OR s.max_running IS NOT NULL OR s.per_second IS NOT NULL));
    IF FOUND THEN
        PERFORM pg_notify('raquel_handoff', format('%s %s %s', NEW.worker, NEW.handed_job, v_claim));
        DELETE FROM raquel_waiters w WHERE w.registration = NEW.registration;
    ELSE
        -- Nobody can claim the job now (gone, claimed, not due, expired, or its
        -- queue held): the registration stands again, as if never taken.
        UPDATE raquel_waiters w SET expires_at = OLD.expires_at, handed_job = NULL
        WHERE w.registration = NEW.registration;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_tg_waiters__hand_off() IS 'Deferred constraint trigger after a registration of raquel_waiters is taken for a hand-off (0019_handoff): at commit, claims the job for its worker (claimed_at NULL until raquel_take), sends NOTIFY raquel_handoff ''<worker> <job id> <claim_id>'' and deletes the registration; when the job is no longer claimable, gives the registration back as it was; when the worker''s LISTEN session is gone (no longer holding the raquel listener lock of its pid), deletes the registration and notifies the job''s queue the usual way.';

CREATE FUNCTION raquel.raquel_throughput(since bigint, now bigint DEFAULT NULL::bigint) RETURNS TABLE(minute bigint, queue text, status text, jobs bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_now    bigint := CASE WHEN raquel_throughput.now IS NULL THEN raquel_now_ms()
                            ELSE raquel_clock('raquel_throughput', raquel_throughput.now) END;
    v_since  bigint := raquel_throughput.since - raquel_throughput.since % 60000;
    -- Minutes that ended a minute ago or more: no outcome is still on its way into them.
    v_closed bigint := v_now - v_now % 60000 - 60000;
    v_horizon bigint := v_closed - 2 * 86400000;
    v_kept   bigint;
BEGIN
    IF raquel_throughput.since IS NULL OR raquel_throughput.since < v_now - 2 * 86400000
       OR raquel_throughput.since > v_now THEN
        PERFORM raquel_invalid('raquel_throughput', 'since',
            format('must lie within the last two days (ms since the epoch), got %s',
                   coalesce(raquel_throughput.since::text, 'NULL')));
    END IF;
    SELECT s.kept_until INTO v_kept FROM raquel_throughput_state s;
    IF v_kept < v_closed THEN
        SELECT s.kept_until INTO v_kept FROM raquel_throughput_state s FOR UPDATE;
        IF v_kept < v_closed THEN
            v_kept := greatest(v_kept, v_horizon);
            INSERT INTO raquel_throughput_minutes (minute, queue, status, jobs)
            SELECT j.finished_at - j.finished_at % 60000, j.queue, j.status, count(*)
            FROM raquel_jobs j
            WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
              AND j.finished_at >= v_kept AND j.finished_at < v_closed
            GROUP BY 1, 2, 3
            ON CONFLICT ON CONSTRAINT raquel_throughput_minutes_pkey DO NOTHING;
            DELETE FROM raquel_throughput_minutes m WHERE m.minute < v_horizon;
            UPDATE raquel_throughput_state SET kept_until = v_closed;
            v_kept := v_closed;
        END IF;
    END IF;
    RETURN QUERY
    SELECT m.minute, m.queue::text, m.status::text, m.jobs
    FROM raquel_throughput_minutes m
    WHERE m.minute >= v_since AND m.minute < v_kept
    UNION ALL
    SELECT j.finished_at - j.finished_at % 60000, j.queue::text, j.status::text, count(*)
    FROM raquel_jobs j
    WHERE j.status IN ('success', 'cancelled', 'expired', 'exhausted')
      AND j.finished_at >= greatest(v_kept, v_since) AND j.finished_at < v_now
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_throughput(since bigint, now bigint) IS 'Jobs finished per minute, queue and final status since "since" (within two days); closed minutes are counted once and kept. "now" only from roles that may update raquel_jobs.';

CREATE FUNCTION raquel.raquel_ts(ms bigint) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$ SELECT to_timestamp(raquel_ts.ms / 1000.0) $$;

COMMENT ON FUNCTION raquel.raquel_ts(ms bigint) IS 'A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading raquel_jobs by hand.';

CREATE FUNCTION raquel.raquel_unclaim(job_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_found boolean;
BEGIN
    IF raquel_unclaim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_unclaim', 'job_id', 'must not be NULL');
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_unclaim.job_id AND j.status = 'claimed'
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;

COMMENT ON FUNCTION raquel.raquel_unclaim(job_id uuid) IS 'Puts a claimed job back as queued, whoever holds it (raquel''s unclaim): no attempt counted, claim cleared; true if the job was claimed, false (nothing written) otherwise. The holder''s later outcome calls are refused (their claim is no longer current) and its lease renewals stop. SQLSTATE 22023 naming job_id when it is NULL.';

CREATE FUNCTION raquel.raquel_unexpose(install_schema text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r record;
BEGIN
    IF raquel_unexpose.install_schema = 'raquel' THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = raquel_unexpose.install_schema AND c.relkind = 'v' AND c.relname LIKE 'raquel\_%'
          AND obj_description(c.oid, 'pg_class') LIKE '%raquel_pg stand-in: %'
    LOOP
        BEGIN
            EXECUTE format('DROP VIEW %s', r.name);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            NULL;  -- a user's view reads it: kept (a change of the columns it reads then fails)
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_unexpose(install_schema text) IS 'For the migration runner (before each migration but the first, as the owner): drops the install schema''s stand-in views (not the functions), each unless another object depends on it, so that a migration may change the engine tables'' columns; raquel_expose makes them again. Not executable by PUBLIC.';

CREATE FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT raquel_wait_begin(raquel_wait_begin.worker, raquel_wait_begin.queues, raquel_wait_begin.ttl_ms,
                             NULL::text, NULL::bigint, NULL::integer)
$$;

COMMENT ON FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) IS 'Registers worker as idle, waiting for jobs of queues (NULL: all) for ttl_ms, so producers NOTIFY raquel_jobs for them; the registration is consumed by the first notification it causes. Returns false while a producer that may have missed the registration is still open (claim again shortly instead of waiting). Never waits for a lock. 22023 for a NULL worker or ttl_ms not > 0.';

CREATE FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
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
    IF raquel_wait_begin.listener_pid IS NOT NULL
       AND (raquel_wait_begin.lease_ms IS NULL OR raquel_wait_begin.lease_ms <= 0
            OR raquel_wait_begin.lease_ms > 253402214399999 - v_now) THEN
        PERFORM raquel_invalid('raquel_wait_begin', 'lease_ms',
            format('must be > 0 ms (and now + lease_ms within the time range) when listener_pid is given, got %s',
                   raquel_wait_begin.lease_ms));
    END IF;
    DELETE FROM raquel_waiters w
    WHERE w.registration IN (
        SELECT x.registration FROM raquel_waiters x
        WHERE x.worker = raquel_wait_begin.worker OR x.expires_at <= v_now
        FOR UPDATE SKIP LOCKED);
    INSERT INTO raquel_waiters (worker, queues, expires_at, claim_as, lease_ms, listener_pid)
    VALUES (raquel_wait_begin.worker, raquel_wait_begin.queues, v_now + raquel_wait_begin.ttl_ms,
            raquel_wait_begin.claim_as,
            CASE WHEN raquel_wait_begin.listener_pid IS NOT NULL THEN raquel_wait_begin.lease_ms END,
            raquel_wait_begin.listener_pid);
    RETURN pg_try_advisory_xact_lock(7021557117354893312);  -- the raquel wake-up lock
END;
$$;

COMMENT ON FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) IS 'Registers worker as idle, as raquel_wait_begin(worker, queues, ttl_ms); with a listener_pid (the backend pid of its LISTEN connection, which holds pg_advisory_lock(1903257711, pg_backend_pid()) while it listens) it also accepts hand-offs: the enqueue of a job of its queues may claim it for the worker as claim_as with a lease of lease_ms at commit and NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''; take it with raquel_take. Never waits for a lock. 22023 for a NULL worker, ttl_ms not > 0, or lease_ms not > 0 with a listener_pid.';

CREATE FUNCTION raquel.raquel_wait_end(worker uuid) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    WITH gone AS (
        DELETE FROM raquel_waiters w
        WHERE w.registration IN (SELECT x.registration FROM raquel_waiters x
                                 WHERE x.worker = raquel_wait_end.worker
                                 FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*) > 0 FROM gone
$$;

COMMENT ON FUNCTION raquel.raquel_wait_end(worker uuid) IS 'Removes worker''s registrations (rows a producer is consuming are skipped, never waited for); returns whether it deleted any.';

CREATE FUNCTION raquel.raquel_waits_past(queue text, at bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
    SELECT EXISTS (SELECT FROM raquel_waiters w
                   WHERE w.expires_at > raquel_waits_past.at
                     AND (w.queues IS NULL OR raquel_waits_past.queue = ANY (w.queues)));
$$;

COMMENT ON FUNCTION raquel.raquel_waits_past(queue text, at bigint) IS 'Internal (the notification triggers): whether a live waiter registration for queue expires after at, i.e. a worker may be asleep past a job due then.';

CREATE FUNCTION raquel.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'raquel', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    SELECT ARRAY(SELECT s.queue::text FROM raquel_queue_settings s WHERE s.retention_ms = 0),
           coalesce((SELECT d.retention_ms = 0 FROM raquel_retention_default d), false),
           ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                 WHERE s.retention_ms IS NOT NULL AND s.retention_ms <> 0)
    INTO raquel_zero_retention.queues, raquel_zero_retention.default_zero, raquel_zero_retention.kept;
END;
$$;

COMMENT ON FUNCTION raquel.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) IS 'The queues whose successes raquel_complete / raquel_complete_many delete at once (retention 0): queues (their own retention 0) and, when default_zero (the default retention is 0), every queue but kept (a retention of its own, not 0). Read-only.';

CREATE VIEW raquel.raquel_expired_leases AS
 SELECT j.id,
    j.queue,
    j.claimed_by,
    j.attempts,
    raquel.raquel_ts(j.claimed_at) AS claimed,
    raquel.raquel_ts(j.lease_expires_at) AS lease_expired,
    (((raquel.raquel_now_ms() - j.lease_expires_at))::double precision * '00:00:00.001'::interval) AS expired_for
   FROM raquel.raquel_jobs j
  WHERE (((j.status)::text = 'claimed'::text) AND (j.lease_expires_at <= raquel.raquel_now_ms()))
  ORDER BY j.lease_expires_at, j.id;

COMMENT ON VIEW raquel.raquel_expired_leases IS 'Claimed jobs whose lease ran out: their worker died or hangs. The next claim on their queue rescues them (one failed attempt).';

CREATE VIEW public.raquel_expired_leases AS
 SELECT raquel_expired_leases.id,
    raquel_expired_leases.queue,
    raquel_expired_leases.claimed_by,
    raquel_expired_leases.attempts,
    raquel_expired_leases.claimed,
    raquel_expired_leases.lease_expired,
    raquel_expired_leases.expired_for
   FROM raquel.raquel_expired_leases;

COMMENT ON VIEW public.raquel_expired_leases IS 'Claimed jobs whose lease ran out: their worker died or hangs. The next claim on their queue rescues them (one failed attempt).
raquel_pg stand-in: the columns of raquel.raquel_expired_leases (docs/security.md).';

CREATE VIEW public.raquel_jobs AS
 SELECT raquel_jobs.id,
    raquel_jobs.queue,
    raquel_jobs.payload,
    raquel_jobs.status,
    raquel_jobs.max_age,
    raquel_jobs.max_retry_count,
    raquel_jobs.min_retry_delay,
    raquel_jobs.max_retry_delay,
    raquel_jobs.backoff_base,
    raquel_jobs.enqueued_at,
    raquel_jobs.scheduled_at,
    raquel_jobs.attempts,
    raquel_jobs.error,
    raquel_jobs.error_trace,
    raquel_jobs.claimed_by,
    raquel_jobs.claimed_at,
    raquel_jobs.finished_at,
    raquel_jobs.lease_expires_at,
    raquel_jobs.claim_id,
    raquel_jobs.priority,
    raquel_jobs.unique_key,
    raquel_jobs.result,
    raquel_jobs.timeout,
    raquel_jobs.cancel_claim_id,
    raquel_jobs.trace_context
   FROM raquel.raquel_jobs;

COMMENT ON VIEW public.raquel_jobs IS 'raquel_pg jobs, one row per job, with raquel''s columns and meanings plus lease_expires_at and claim_id. Times are ms since the epoch (raquel_ts(ms) reads one as timestamptz). Change rows through the raquel_* functions; one-column rules are domains, the two that span columns are CHECK constraints.
raquel_pg stand-in: the columns of raquel.raquel_jobs (docs/security.md).';

CREATE TABLE public.raquel_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.raquel_migrations IS 'raquel_pg migrations applied to this schema: version, name, SHA-256 checksum of the file and when it was applied. Written by raquel-pg migrate; an applied migration whose file changed is refused.';

CREATE VIEW raquel.raquel_problem_jobs AS
 SELECT j.id,
    j.queue,
    j.status,
    j.attempts,
    j.max_retry_count,
    j.error,
    raquel.raquel_ts(j.finished_at) AS finished,
    raquel.raquel_ts(j.enqueued_at) AS enqueued,
        CASE
            WHEN ((j.status)::text = 'failed'::text) THEN raquel.raquel_ts(j.scheduled_at)
            ELSE NULL::timestamp with time zone
        END AS next_attempt,
    j.claimed_by AS last_worker
   FROM raquel.raquel_jobs j
  WHERE ((j.status)::text = ANY (ARRAY['failed'::text, 'exhausted'::text, 'expired'::text]))
  ORDER BY j.finished_at DESC NULLS LAST, j.id;

COMMENT ON VIEW raquel.raquel_problem_jobs IS 'Failed, exhausted and expired jobs with their last error and attempts, newest first; finished as timestamptz.';

CREATE VIEW public.raquel_problem_jobs AS
 SELECT raquel_problem_jobs.id,
    raquel_problem_jobs.queue,
    raquel_problem_jobs.status,
    raquel_problem_jobs.attempts,
    raquel_problem_jobs.max_retry_count,
    raquel_problem_jobs.error,
    raquel_problem_jobs.finished,
    raquel_problem_jobs.enqueued,
    raquel_problem_jobs.next_attempt,
    raquel_problem_jobs.last_worker
   FROM raquel.raquel_problem_jobs;

COMMENT ON VIEW public.raquel_problem_jobs IS 'Failed, exhausted and expired jobs with their last error and attempts, newest first; finished as timestamptz.
raquel_pg stand-in: the columns of raquel.raquel_problem_jobs (docs/security.md).';

CREATE TABLE raquel.raquel_queue_list_members (
    list_id bigint NOT NULL,
    queue raquel.raquel_name NOT NULL
);

COMMENT ON TABLE raquel.raquel_queue_list_members IS 'The queues of each list of raquel_queue_lists; a claim of a list looks the queue of each job it reads up here.';

CREATE VIEW public.raquel_queue_list_members AS
 SELECT raquel_queue_list_members.list_id,
    raquel_queue_list_members.queue
   FROM raquel.raquel_queue_list_members;

COMMENT ON VIEW public.raquel_queue_list_members IS 'The queues of each list of raquel_queue_lists; a claim of a list looks the queue of each job it reads up here.
raquel_pg stand-in: the columns of raquel.raquel_queue_list_members (docs/security.md).';

CREATE TABLE raquel.raquel_queue_lists (
    id bigint NOT NULL,
    digest bytea NOT NULL,
    size integer NOT NULL,
    registered_at bigint NOT NULL,
    used_at bigint NOT NULL
);

COMMENT ON TABLE raquel.raquel_queue_lists IS 'Lists of queues registered by raquel_queue_list: one row per distinct list (digest: SHA-256 of its names, sorted and deduplicated, each prefixed by its length in bytes); raquel_claim(queue_list => id) claims from one.';

COMMENT ON COLUMN raquel.raquel_queue_lists.used_at IS 'When a worker last registered the list (ms since the epoch): raquel_queue_list writes it at most once an hour, and a running worker registers its list every hour; raquel_prune deletes the lists unused for 7 days.';

CREATE VIEW public.raquel_queue_lists AS
 SELECT raquel_queue_lists.id,
    raquel_queue_lists.digest,
    raquel_queue_lists.size,
    raquel_queue_lists.registered_at,
    raquel_queue_lists.used_at
   FROM raquel.raquel_queue_lists;

COMMENT ON VIEW public.raquel_queue_lists IS 'Lists of queues registered by raquel_queue_list: one row per distinct list (digest: SHA-256 of its names, sorted and deduplicated, each prefixed by its length in bytes); raquel_claim(queue_list => id) claims from one.
raquel_pg stand-in: the columns of raquel.raquel_queue_lists (docs/security.md).';

CREATE TABLE raquel.raquel_queue_settings (
    queue raquel.raquel_name NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    max_running integer,
    per_second double precision,
    tokens double precision DEFAULT 0 NOT NULL,
    tokens_at bigint DEFAULT 0 NOT NULL,
    retention_ms bigint,
    pruned bigint DEFAULT 0 NOT NULL,
    CONSTRAINT raquel_queue_settings_max_running_check CHECK ((max_running >= 1)),
    CONSTRAINT raquel_queue_settings_per_second_check CHECK (((per_second > (0)::double precision) AND (per_second < 'Infinity'::double precision))),
    CONSTRAINT raquel_queue_settings_retention_ms_check CHECK ((retention_ms >= 0))
);

COMMENT ON TABLE raquel.raquel_queue_settings IS 'raquel_pg per-queue controls: paused, max_running (claimed jobs at once), per_second (claims started per second, a token bucket: tokens as of tokens_at), retention_ms (finished jobs kept; NULL: the default; 315576000000000: forever, 0022_retention_forever) and pruned (finished jobs raquel_prune deleted). Change it through raquel_pause_queue, raquel_resume_queue, raquel_set_queue_limits and raquel_set_retention.';

CREATE VIEW public.raquel_queue_settings AS
 SELECT raquel_queue_settings.queue,
    raquel_queue_settings.paused,
    raquel_queue_settings.max_running,
    raquel_queue_settings.per_second,
    raquel_queue_settings.tokens,
    raquel_queue_settings.tokens_at,
    raquel_queue_settings.retention_ms,
    raquel_queue_settings.pruned
   FROM raquel.raquel_queue_settings;

COMMENT ON VIEW public.raquel_queue_settings IS 'raquel_pg per-queue controls: paused, max_running (claimed jobs at once), per_second (claims started per second, a token bucket: tokens as of tokens_at), retention_ms (finished jobs kept; NULL: the default; 315576000000000: forever, 0022_retention_forever) and pruned (finished jobs raquel_prune deleted). Change it through raquel_pause_queue, raquel_resume_queue, raquel_set_queue_limits and raquel_set_retention.
raquel_pg stand-in: the columns of raquel.raquel_queue_settings (docs/security.md).';

CREATE VIEW raquel.raquel_queue_stats AS
 SELECT s.queue,
    s.total,
    s.queued,
    s.claimed,
    s.success,
    s.failed,
    s.cancelled,
    s.expired,
    s.exhausted,
    s.ready,
    s.scheduled,
    s.lease_expired,
    ((s.oldest_ready_age_ms)::double precision * '00:00:00.001'::interval) AS oldest_ready_age,
    COALESCE(c.paused, false) AS paused,
    c.max_running,
    c.per_second
   FROM (raquel.raquel_stats() s(queue, total, queued, claimed, success, failed, cancelled, expired, exhausted, ready, scheduled, lease_expired, oldest_ready_age_ms)
     LEFT JOIN raquel.raquel_queue_settings c ON (((c.queue)::text = s.queue)));

COMMENT ON VIEW raquel.raquel_queue_stats IS 'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired (claimed, lease run out: a dead or hung worker), oldest_ready_age (interval, NULL when nothing is ready), and its controls: paused, max_running, per_second (NULL: no limit). The same numbers as raquel_stats().';

CREATE VIEW public.raquel_queue_stats AS
 SELECT raquel_queue_stats.queue,
    raquel_queue_stats.total,
    raquel_queue_stats.queued,
    raquel_queue_stats.claimed,
    raquel_queue_stats.success,
    raquel_queue_stats.failed,
    raquel_queue_stats.cancelled,
    raquel_queue_stats.expired,
    raquel_queue_stats.exhausted,
    raquel_queue_stats.ready,
    raquel_queue_stats.scheduled,
    raquel_queue_stats.lease_expired,
    raquel_queue_stats.oldest_ready_age,
    raquel_queue_stats.paused,
    raquel_queue_stats.max_running,
    raquel_queue_stats.per_second
   FROM raquel.raquel_queue_stats;

COMMENT ON VIEW public.raquel_queue_stats IS 'One row per queue: counts by status, ready (claimable now), scheduled (due later), lease_expired (claimed, lease run out: a dead or hung worker), oldest_ready_age (interval, NULL when nothing is ready), and its controls: paused, max_running, per_second (NULL: no limit). The same numbers as raquel_stats().
raquel_pg stand-in: the columns of raquel.raquel_queue_stats (docs/security.md).';

CREATE UNLOGGED TABLE raquel.raquel_result_waiters (
    id bigint NOT NULL,
    job_id uuid NOT NULL,
    registered_at bigint DEFAULT raquel.raquel_now_ms() NOT NULL
);

COMMENT ON TABLE raquel.raquel_result_waiters IS 'raquel_pg clients waiting on LISTEN raquel_results for a job to finish (UNLOGGED): one row per registration (raquel_result_watch), deleted by the notification it causes (trigger raquel_jobs_30_notify_results) or by raquel_result_unwatch.';

CREATE VIEW public.raquel_result_waiters AS
 SELECT raquel_result_waiters.id,
    raquel_result_waiters.job_id,
    raquel_result_waiters.registered_at
   FROM raquel.raquel_result_waiters;

COMMENT ON VIEW public.raquel_result_waiters IS 'raquel_pg clients waiting on LISTEN raquel_results for a job to finish (UNLOGGED): one row per registration (raquel_result_watch), deleted by the notification it causes (trigger raquel_jobs_30_notify_results) or by raquel_result_unwatch.
raquel_pg stand-in: the columns of raquel.raquel_result_waiters (docs/security.md).';

CREATE TABLE raquel.raquel_retention_default (
    single boolean DEFAULT true NOT NULL,
    retention_ms bigint,
    CONSTRAINT raquel_retention_default_retention_ms_check CHECK ((retention_ms >= 0)),
    CONSTRAINT raquel_retention_default_single_check CHECK (single)
);

COMMENT ON TABLE raquel.raquel_retention_default IS 'raquel_pg: the retention of finished jobs of queues without their own (one row; NULL keeps them forever, the default). Set by raquel_set_retention(NULL, ...).';

CREATE VIEW public.raquel_retention_default AS
 SELECT raquel_retention_default.single,
    raquel_retention_default.retention_ms
   FROM raquel.raquel_retention_default;

COMMENT ON VIEW public.raquel_retention_default IS 'raquel_pg: the retention of finished jobs of queues without their own (one row; NULL keeps them forever, the default). Set by raquel_set_retention(NULL, ...).
raquel_pg stand-in: the columns of raquel.raquel_retention_default (docs/security.md).';

CREATE TABLE raquel.raquel_schedules (
    name text NOT NULL,
    queue text NOT NULL,
    payload text,
    cron text,
    every bigint,
    priority integer DEFAULT 0 NOT NULL,
    max_age bigint,
    max_retry_count integer,
    next_run_at bigint,
    last_run_at bigint,
    last_job_id uuid,
    created_at bigint DEFAULT raquel.raquel_now_ms() NOT NULL,
    CONSTRAINT raquel_schedules_interval_next_check CHECK (((every IS NULL) OR (next_run_at IS NOT NULL))),
    CONSTRAINT raquel_schedules_job_check CHECK ((((max_age IS NULL) OR (max_age > 0)) AND ((max_retry_count IS NULL) OR (max_retry_count >= 0)))),
    CONSTRAINT raquel_schedules_name_check CHECK (((name <> ''::text) AND (octet_length(name) <= 1000))),
    CONSTRAINT raquel_schedules_queue_check CHECK (((queue <> ''::text) AND (octet_length(queue) <= 1000))),
    CONSTRAINT raquel_schedules_timing_check CHECK ((((cron IS NULL) <> (every IS NULL)) AND ((every IS NULL) OR (every > 0))))
);

COMMENT ON TABLE raquel.raquel_schedules IS 'raquel_pg periodic jobs: one job per tick. Change with raquel_set_schedule() / raquel_drop_schedule().';

CREATE VIEW public.raquel_schedules AS
 SELECT raquel_schedules.name,
    raquel_schedules.queue,
    raquel_schedules.payload,
    raquel_schedules.cron,
    raquel_schedules.every,
    raquel_schedules.priority,
    raquel_schedules.max_age,
    raquel_schedules.max_retry_count,
    raquel_schedules.next_run_at,
    raquel_schedules.last_run_at,
    raquel_schedules.last_job_id,
    raquel_schedules.created_at
   FROM raquel.raquel_schedules;

COMMENT ON VIEW public.raquel_schedules IS 'raquel_pg periodic jobs: one job per tick. Change with raquel_set_schedule() / raquel_drop_schedule().
raquel_pg stand-in: the columns of raquel.raquel_schedules (docs/security.md).';

CREATE TABLE raquel.raquel_throughput_minutes (
    minute bigint NOT NULL,
    queue raquel.raquel_name NOT NULL,
    status raquel.raquel_status NOT NULL,
    jobs bigint NOT NULL
);

COMMENT ON TABLE raquel.raquel_throughput_minutes IS 'raquel_pg: finished jobs per closed minute, kept by raquel_throughput(); derived, safe to truncate.';

CREATE VIEW public.raquel_throughput_minutes AS
 SELECT raquel_throughput_minutes.minute,
    raquel_throughput_minutes.queue,
    raquel_throughput_minutes.status,
    raquel_throughput_minutes.jobs
   FROM raquel.raquel_throughput_minutes;

COMMENT ON VIEW public.raquel_throughput_minutes IS 'raquel_pg: finished jobs per closed minute, kept by raquel_throughput(); derived, safe to truncate.
raquel_pg stand-in: the columns of raquel.raquel_throughput_minutes (docs/security.md).';

CREATE TABLE raquel.raquel_throughput_state (
    single boolean DEFAULT true NOT NULL,
    kept_until bigint NOT NULL,
    CONSTRAINT raquel_throughput_state_single_check CHECK (single)
);

COMMENT ON TABLE raquel.raquel_throughput_state IS 'raquel_pg: one row, kept_until (ms since the epoch, exclusive): the minutes before it are counted in raquel_throughput_minutes. Written only by raquel_throughput(); derived, safe to reset to 0 with the minutes truncated.';

CREATE VIEW public.raquel_throughput_state AS
 SELECT raquel_throughput_state.single,
    raquel_throughput_state.kept_until
   FROM raquel.raquel_throughput_state;

COMMENT ON VIEW public.raquel_throughput_state IS 'raquel_pg: one row, kept_until (ms since the epoch, exclusive): the minutes before it are counted in raquel_throughput_minutes. Written only by raquel_throughput(); derived, safe to reset to 0 with the minutes truncated.
raquel_pg stand-in: the columns of raquel.raquel_throughput_state (docs/security.md).';

CREATE UNLOGGED TABLE raquel.raquel_waiters (
    worker uuid NOT NULL,
    queues text[],
    expires_at bigint NOT NULL,
    registration bigint NOT NULL,
    claim_as text,
    lease_ms bigint,
    listener_pid integer,
    handed_job uuid
);

COMMENT ON TABLE raquel.raquel_waiters IS 'raquel_pg idle workers waiting on LISTEN raquel_jobs (UNLOGGED): one row per registration, consumed by the first NOTIFY it causes, or by the hand-off of a job (handed_job, 0019_handoff). Written by raquel_wait_begin / raquel_wait_end and the enqueue triggers only.';

COMMENT ON COLUMN raquel.raquel_waiters.listener_pid IS 'The backend pid of the worker''s LISTEN connection when it accepts hand-offs (NULL: notifications only); a hand-off needs that session to hold the raquel listener lock, pg_advisory_lock(1903257711, pid), at the enqueue''s commit.';

COMMENT ON COLUMN raquel.raquel_waiters.handed_job IS 'The job an enqueue is handing to this worker, claimed for it when that enqueue commits (the registration is then deleted).';

CREATE VIEW public.raquel_waiters AS
 SELECT raquel_waiters.worker,
    raquel_waiters.queues,
    raquel_waiters.expires_at,
    raquel_waiters.registration,
    raquel_waiters.claim_as,
    raquel_waiters.lease_ms,
    raquel_waiters.listener_pid,
    raquel_waiters.handed_job
   FROM raquel.raquel_waiters;

COMMENT ON VIEW public.raquel_waiters IS 'raquel_pg idle workers waiting on LISTEN raquel_jobs (UNLOGGED): one row per registration, consumed by the first NOTIFY it causes, or by the hand-off of a job (handed_job, 0019_handoff). Written by raquel_wait_begin / raquel_wait_end and the enqueue triggers only.
raquel_pg stand-in: the columns of raquel.raquel_waiters (docs/security.md).';

ALTER TABLE raquel.raquel_queue_lists ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME raquel.raquel_queue_lists_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE raquel.raquel_result_waiters ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME raquel.raquel_result_waiters_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE raquel.raquel_waiters ALTER COLUMN registration ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME raquel.raquel_waiters_registration_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY public.raquel_migrations
    ADD CONSTRAINT raquel_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY raquel.raquel_jobs
    ADD CONSTRAINT raquel_jobs_pkey PRIMARY KEY (id) WITH (fillfactor='50');

ALTER TABLE ONLY raquel.raquel_queue_list_members
    ADD CONSTRAINT raquel_queue_list_members_pkey PRIMARY KEY (list_id, queue);

ALTER TABLE ONLY raquel.raquel_queue_lists
    ADD CONSTRAINT raquel_queue_lists_digest_key UNIQUE (digest);

ALTER TABLE ONLY raquel.raquel_queue_lists
    ADD CONSTRAINT raquel_queue_lists_pkey PRIMARY KEY (id);

ALTER TABLE ONLY raquel.raquel_queue_settings
    ADD CONSTRAINT raquel_queue_settings_pkey PRIMARY KEY (queue);

ALTER TABLE ONLY raquel.raquel_result_waiters
    ADD CONSTRAINT raquel_result_waiters_pkey PRIMARY KEY (id);

ALTER TABLE ONLY raquel.raquel_retention_default
    ADD CONSTRAINT raquel_retention_default_pkey PRIMARY KEY (single);

ALTER TABLE ONLY raquel.raquel_schedules
    ADD CONSTRAINT raquel_schedules_pkey PRIMARY KEY (name);

ALTER TABLE ONLY raquel.raquel_throughput_minutes
    ADD CONSTRAINT raquel_throughput_minutes_pkey PRIMARY KEY (minute, queue, status);

ALTER TABLE ONLY raquel.raquel_throughput_state
    ADD CONSTRAINT raquel_throughput_state_pkey PRIMARY KEY (single);

ALTER TABLE ONLY raquel.raquel_waiters
    ADD CONSTRAINT raquel_waiters_pkey PRIMARY KEY (registration);

CREATE INDEX raquel_jobs_error_idx ON raquel.raquel_jobs USING btree (id) WHERE (error IS NOT NULL);

CREATE INDEX raquel_jobs_expiry_idx ON raquel.raquel_jobs USING btree (((enqueued_at + (max_age)::bigint))) WHERE (((status)::text = ANY (ARRAY['queued'::text, 'failed'::text])) AND (max_age IS NOT NULL));

CREATE INDEX raquel_jobs_finished_idx ON raquel.raquel_jobs USING btree (finished_at) WHERE ((status)::text = ANY (ARRAY['success'::text, 'cancelled'::text, 'expired'::text, 'exhausted'::text]));

CREATE INDEX raquel_jobs_lease_idx ON raquel.raquel_jobs USING btree (lease_expires_at) WHERE (lease_expires_at IS NOT NULL);

CREATE INDEX raquel_jobs_ready_priority_idx ON raquel.raquel_jobs USING btree (priority DESC, scheduled_at) WHERE ((status)::text = ANY (ARRAY['queued'::text, 'failed'::text]));

CREATE INDEX raquel_jobs_ready_queue_priority_idx ON raquel.raquel_jobs USING btree (queue, priority DESC, scheduled_at) WHERE ((status)::text = ANY (ARRAY['queued'::text, 'failed'::text]));

CREATE UNIQUE INDEX raquel_jobs_unique_key_idx ON raquel.raquel_jobs USING btree (unique_key) WHERE ((unique_key IS NOT NULL) AND ((status)::text = ANY (ARRAY['queued'::text, 'failed'::text, 'claimed'::text])));

CREATE INDEX raquel_queue_settings_controlled_idx ON raquel.raquel_queue_settings USING btree (queue) WHERE (paused OR (max_running IS NOT NULL) OR (per_second IS NOT NULL));

CREATE INDEX raquel_result_waiters_job_id_idx ON raquel.raquel_result_waiters USING btree (job_id);

CREATE INDEX raquel_waiters_worker_idx ON raquel.raquel_waiters USING btree (worker);

CREATE TRIGGER raquel_jobs_10_notify_insert AFTER INSERT ON raquel.raquel_jobs REFERENCING NEW TABLE AS raquel_new_jobs FOR EACH STATEMENT EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_insert();

CREATE TRIGGER raquel_jobs_20_notify_update AFTER UPDATE ON raquel.raquel_jobs FOR EACH ROW WHEN ((((new.status)::text = ANY (ARRAY['queued'::text, 'failed'::text])) AND (((old.status)::text <> ALL (ARRAY['queued'::text, 'failed'::text])) OR (new.scheduled_at < old.scheduled_at)))) EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_update();

CREATE TRIGGER raquel_jobs_30_notify_results AFTER UPDATE OF finished_at ON raquel.raquel_jobs FOR EACH STATEMENT EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_results();

CREATE TRIGGER raquel_jobs_31_notify_results_deleted AFTER DELETE ON raquel.raquel_jobs FOR EACH STATEMENT EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_results();

CREATE TRIGGER raquel_jobs_40_notify_freed AFTER UPDATE OF finished_at ON raquel.raquel_jobs FOR EACH STATEMENT EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_freed();

CREATE TRIGGER raquel_jobs_41_notify_freed_deleted AFTER DELETE ON raquel.raquel_jobs FOR EACH STATEMENT EXECUTE FUNCTION raquel.raquel_tg_jobs__notify_freed();

CREATE CONSTRAINT TRIGGER raquel_waiters_10_hand_off AFTER UPDATE OF handed_job ON raquel.raquel_waiters DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.handed_job IS NOT NULL)) EXECUTE FUNCTION raquel.raquel_tg_waiters__hand_off();

ALTER TABLE ONLY raquel.raquel_queue_list_members
    ADD CONSTRAINT raquel_queue_list_members_list_id_fkey FOREIGN KEY (list_id) REFERENCES raquel.raquel_queue_lists(id) ON DELETE CASCADE;

GRANT USAGE ON SCHEMA raquel TO PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_delay FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_max_age FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_name FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_retry_count FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_status FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_timeout FROM PUBLIC;

REVOKE ALL ON TYPE raquel.raquel_trace_context FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_attempt_claim(job_id uuid, attempt_num integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_cancel(job_id uuid, claim_id uuid, now bigint, running boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_check_queue(fn text, queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_claim(queues text[], claim_as text, batch integer, lease bigint, now bigint, durable boolean, before bigint, queue_list bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_claim_outcome(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_claimers(queues text[], other_than text, sample integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_clock(p_function text, p_now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_complete(job_id uuid, claim_id uuid, now bigint, result jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint, results jsonb[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_drop_schedule(name text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_enqueue(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_enqueue_job(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_enqueue_many(queue text, payloads text[], at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_keys text[], unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_enqueue_row(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_expire(queues text[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_fail(job_id uuid, claim_id uuid, error text, error_trace text, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_next_due(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_notify_ready(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_pause_queue(queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_prune(batch_size integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_purge(older_than interval, statuses text[], batch_size integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_queue_controls() FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_queue_list(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_queue_overview(now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_reject(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_release(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_reschedule(job_id uuid, claim_id uuid, at bigint, delay bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_rescue(queues text[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_result(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_result_unwatch(watch_id bigint, job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_result_watch(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_resume_queue(queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_retry(job_id uuid, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_retry_jobs(queue text, statuses text[], since timestamp with time zone, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_serve_results(job_ids uuid[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_set_priority(job_id uuid, priority integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_set_queue_limits(queue text, max_running integer, per_second double precision, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_set_retention(queue text, keep interval) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_set_schedule(name text, queue text, payload text, cron text, every bigint, first_run_at bigint, priority integer, max_age bigint, max_retry_count integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_stats(now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_take(job_id uuid, claim_id uuid, lease bigint, claim_as text, queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_throughput(since bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_unclaim(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_wait_end(worker uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_waits_past(queue text, at bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_attempt_claim(job_id uuid, attempt_num integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_cancel(job_id uuid, claim_id uuid, now bigint, running boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_check_queue(fn text, queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_claim(queues text[], claim_as text, batch integer, lease bigint, now bigint, durable boolean, before bigint, queue_list bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_claim_listed(queues text[], claim_as text, batch integer, claimed_at bigint, upto bigint, until bigint, claim uuid, queue_list bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_claim_outcome(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_claimers(queues text[], other_than text, sample integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_clock(p_function text, p_now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_complete(job_id uuid, claim_id uuid, now bigint, result jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_complete_many(job_ids uuid[], claim_ids uuid[], now bigint, results jsonb[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_drop_schedule(name text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_enqueue_row(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_enqueue(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_enqueue_job(queue text, payload text, at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, priority integer, unique_key text, unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_enqueue_many(queue text, payloads text[], at bigint, delay bigint, max_age bigint, max_retry_count integer, min_retry_delay bigint, max_retry_delay bigint, backoff_base bigint, now bigint, priority integer, unique_keys text[], unique_mode text, timeout bigint, trace_context text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_expire(queues text[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_expose(install_schema text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_fail(job_id uuid, claim_id uuid, error text, error_trace text, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_fire_schedules(names text[], ticks bigint[], next_run_ats bigint[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_next_due(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_notify_ready(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_pause_queue(queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_prune(batch_size integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_purge(older_than interval, statuses text[], batch_size integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_queue_controls() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_queue_list(queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_queue_overview(now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_reject(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_release(job_id uuid, claim_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_renew_leases(job_ids uuid[], claim_ids uuid[], lease bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_reschedule(job_id uuid, claim_id uuid, at bigint, delay bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_rescue(queues text[], now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_result(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_result_unwatch(watch_id bigint, job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_result_watch(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_resume_queue(queue text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_retry(job_id uuid, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_retry_jobs(queue text, statuses text[], since timestamp with time zone, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_serve_results(job_ids uuid[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_set_priority(job_id uuid, priority integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_set_queue_limits(queue text, max_running integer, per_second double precision, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_set_retention(queue text, keep interval) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_set_schedule(name text, queue text, payload text, cron text, every bigint, first_run_at bigint, priority integer, max_age bigint, max_retry_count integer, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_stats(now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_take(job_id uuid, claim_id uuid, lease bigint, claim_as text, queues text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_tg_jobs__notify_freed() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_tg_jobs__notify_insert() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_tg_jobs__notify_results() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_tg_jobs__notify_update() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_tg_waiters__hand_off() FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_throughput(since bigint, now bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_unclaim(job_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_unexpose(install_schema text) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_wait_begin(worker uuid, queues text[], ttl_ms bigint, claim_as text, lease_ms bigint, listener_pid integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_wait_end(worker uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_waits_past(queue text, at bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION raquel.raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[]) FROM PUBLIC;
