-- 0003_tables: the queue's tables, the domains of their columns and their
-- indexes.
--
-- raquel_jobs holds one row per job, with raquel's columns and meanings plus
-- two of raquel_pg's: lease_expires_at (a claim is a lease, renewed while the
-- job runs; once it has run out the worker is presumed dead and the job is
-- rescued: raquel's "claimed for over a minute and not locked" rule, without
-- holding a transaction open for the whole job) and claim_id (a fencing
-- token, new at every claim: outcome functions act only when given the
-- current claim's claim_id, so a slow worker whose job was rescued and
-- claimed again cannot overwrite the new owner's result).
--
-- Why the one-column rules are domains, not CHECK constraints. At the start
-- of every statement that inserts or updates rows of a table, PostgreSQL
-- reads each of the table's CHECK constraints back from its stored text and
-- plans it again (ExecRelCheck), however few rows the statement writes. As
-- five table constraints (about 7,400 characters of stored text) they were
-- half the server's work of a raquel_enqueue call (callgrind, PostgreSQL 18:
-- 237k of 462k instructions). A domain's constraints are read once per
-- session and kept in its type cache. A value that breaks a rule raises
-- check_violation (SQLSTATE 23514) naming the domain's constraint, e.g.
-- raquel_status_check. Clients see the columns' base types (text, bigint,
-- integer): PostgreSQL reports a domain column as its base type. Two rules
-- span several columns and stay table constraints: raquel_jobs_delays_check
-- and raquel_jobs_claim_check. No role but the owner may use the domains in
-- an object of its own (an operator or a function on raquel_status, say):
-- reading and writing their columns needs no such privilege.
--
-- Why the indexes are partial: each holds only the rows its reader wants
-- (waiting, claimed, finished, keyed, failed), so it stays small however much
-- history the table keeps.

CREATE DOMAIN raquel_status AS text
    CONSTRAINT raquel_status_check CHECK (VALUE IN (
        'queued', 'claimed', 'success', 'failed', 'cancelled', 'expired', 'exhausted'));
COMMENT ON DOMAIN raquel_status IS
    'A job status: queued, claimed, success, failed (will be retried), cancelled, expired or exhausted (raquel''s seven).';
REVOKE USAGE ON DOMAIN raquel_status FROM PUBLIC;

-- Queue names travel as NOTIFY payloads (8000 bytes at most) and sit in a
-- btree index (about 2700 bytes at most): 1000 bytes leaves room for both.
CREATE DOMAIN raquel_name AS text
    CONSTRAINT raquel_name_check CHECK (VALUE <> '' AND octet_length(VALUE) <= 1000);
COMMENT ON DOMAIN raquel_name IS
    'A queue name or unique key: non-empty text of at most 1000 bytes.';
REVOKE USAGE ON DOMAIN raquel_name FROM PUBLIC;

CREATE DOMAIN raquel_delay AS bigint
    CONSTRAINT raquel_delay_check CHECK (VALUE >= 0);
COMMENT ON DOMAIN raquel_delay IS
    'A duration in ms that is never negative (min_retry_delay, max_retry_delay, backoff_base).';
REVOKE USAGE ON DOMAIN raquel_delay FROM PUBLIC;

CREATE DOMAIN raquel_max_age AS bigint
    CONSTRAINT raquel_max_age_check CHECK (VALUE > 0);
COMMENT ON DOMAIN raquel_max_age IS
    'A job''s max_age in ms, counted from enqueued_at: positive, or NULL for no limit.';
REVOKE USAGE ON DOMAIN raquel_max_age FROM PUBLIC;

CREATE DOMAIN raquel_retry_count AS integer
    CONSTRAINT raquel_retry_count_check CHECK (VALUE >= 0);
COMMENT ON DOMAIN raquel_retry_count IS
    'A job''s max_retry_count (retries after the first attempt) or attempts: never negative; NULL max_retry_count retries forever.';
REVOKE USAGE ON DOMAIN raquel_retry_count FROM PUBLIC;

CREATE DOMAIN raquel_timeout AS bigint CONSTRAINT raquel_timeout_check CHECK (VALUE > 0);
COMMENT ON DOMAIN raquel_timeout IS
    'A job''s time limit per attempt in ms: positive, or NULL for none (the worker''s default).';
REVOKE USAGE ON DOMAIN raquel_timeout FROM PUBLIC;

CREATE DOMAIN raquel_trace_context AS text
    CONSTRAINT raquel_trace_context_check CHECK (octet_length(VALUE) <= 2048);
COMMENT ON DOMAIN raquel_trace_context IS
    'A job''s stored trace context (propagation carrier as JSON text): at most 2048 bytes, or NULL for none.';
REVOKE USAGE ON DOMAIN raquel_trace_context FROM PUBLIC;

-- priority: higher runs first; the default is 0 and negative values are
-- allowed (background work below the default); FIFO by scheduled_at within
-- one priority. unique_key: while a job holding a key is unfinished (queued,
-- failed or claimed), no other job can hold that key (raquel_enqueue's
-- unique_mode says what a second enqueue does); once it finishes the key is
-- free again. Keys are global, not per queue: put the queue in the key when
-- that is what you mean. result: what the handler returned (JSON), written
-- with the success in the same UPDATE, so a job is never 'success' without
-- its result nor the other way round. timeout: the per-attempt time limit the
-- worker enforces. cancel_claim_id: the claim whose cancellation was asked
-- for (see raquel_cancel in 0007_outcomes). trace_context: the propagation
-- carrier of the trace that enqueued the job, as text (a JSON object of
-- strings, as an OpenTelemetry propagator injects it, e.g. {"traceparent":
-- "00-<trace id>-<span id>-01"}); a worker parents its span for the job on it
-- (raquel_pg/tracing.py). Stored as text, not jsonb: the client hands it back
-- to the propagator as it was written, and the engine only checks it
-- (raquel_enqueue_row); its domain bounds its length for a row written by
-- hand.
--
-- fillfactor = 50, for the table and for its primary key: the table leaves
-- half of each heap page free for the next versions of its rows, the primary
-- key half of each leaf page for the entries those versions add. Guarantees:
-- none depend on it; it decides only where PostgreSQL puts a new row version
-- and how full it fills a page (every statement reads and writes the same
-- rows).
-- Why. A job is written three times: enqueued (INSERT), claimed (UPDATE of
-- status, lease_expires_at, claim_id, claimed_by, claimed_at) and finished
-- (UPDATE of status, finished_at, lease_expires_at, attempts, result). Both
-- updates change indexed columns, so neither can be a HOT update, and a
-- job's row is written as a new version each time. With pages filled to the
-- brim at enqueue (fillfactor 100, the default), no new version fits beside
-- the old one: PostgreSQL puts it on another page (the table's end), and to
-- do so WAL-logs a lock of the old version, then the whole new tuple with
-- references to both pages. Kept on its page, the new version is WAL-logged
-- as the bytes that differ from the old one (prefix and suffix left out),
-- with no lock record, and the page it is on is already dirty. Half of a
-- page holds the claimed version of every row of the other half (a claimed
-- row is 40-70 bytes longer than a queued one), and once the claim commits
-- the queued versions are dead and pruned, making room for the finished
-- ones. The primary key gets a new entry at each non-HOT update; its leaves,
-- filled to 90% by the enqueues, would split at the claim (whose old
-- versions are not dead yet, so bottom-up deletion cannot make room); at 50%
-- they hold the claim's and the completion's entries until the old ones can
-- be deleted.
-- Measured (bench/RESULTS.md, "Issue 23: server cost per job";
-- `python -m bench.run --only servercost`: 20,000 no-op jobs drained by
-- subscribe(concurrency=10 and 50, prefetch=500, durable_claims=False) after
-- a CHECKPOINT, PostgreSQL 15, WAL of the run's database read with
-- pg_walinspect, two interleaved runs), fill 100 / pkey 90 against 50 / 50:
-- 1,013-1,014 -> 846-847 WAL bytes per job; the claim 610 -> 534 (1.97 ->
-- 1.27 lock records per job, the update record 205 -> 183 bytes, no
-- primary-key page splits), the completion 397 -> 303 (its lock record gone,
-- the update record 203 -> 156); server CPU 18.5-19.7 -> 18.0-19.0 us per job
-- (the primary key's setting gives 14 of the 167 bytes and most of the CPU);
-- a third run 16.6-16.7 -> 15.3-15.7.
-- What it trades (`python -m bench.fill_cost`, same server, interleaved):
-- waiting jobs take twice the room. 1,000,000 waiting no-op jobs: heap 128 ->
-- 260 MB, primary key 30 -> 54 MB. Finished jobs do not: a drained table is
-- smaller (its rows no longer move to the table's end: 951 pages for 20,000
-- drained jobs against 1,171). enqueue_many of 10,000 (204,065 against
-- 204,719 jobs/s), a single enqueue (444 against 441 us, 241 against 242 us
-- of server CPU) and a claim of 10 from 1,000,000 waiting jobs (799 against
-- 774 us) are within the noise. A fill of 70 took 1.4x the heap for about
-- half the WAL gain (927 bytes per job) and none of the CPU gain. On a table
-- that already holds rows, a changed fillfactor applies to the pages written
-- from then on (VACUUM FULL or pg_repack rewrites the others).
CREATE TABLE raquel_jobs (
    id               uuid               PRIMARY KEY WITH (fillfactor = 50) DEFAULT raquel_new_id(),
    queue            raquel_name        NOT NULL DEFAULT 'default'::text,
    payload          text,
    status           raquel_status      NOT NULL DEFAULT 'queued'::text,
    max_age          raquel_max_age,
    max_retry_count  raquel_retry_count,
    min_retry_delay  raquel_delay       NOT NULL DEFAULT 1000,
    max_retry_delay  bigint             NOT NULL DEFAULT 43200000,
    backoff_base     raquel_delay       NOT NULL DEFAULT 1000,
    enqueued_at      bigint             NOT NULL DEFAULT raquel_now_ms(),
    scheduled_at     bigint             NOT NULL DEFAULT raquel_now_ms(),
    attempts         integer            NOT NULL DEFAULT 0,
    error            text,
    error_trace      text,
    claimed_by       text,
    claimed_at       bigint,
    finished_at      bigint,
    lease_expires_at bigint,
    claim_id         uuid,
    priority         integer            NOT NULL DEFAULT 0,
    unique_key       raquel_name,
    result           jsonb,
    timeout          raquel_timeout,
    cancel_claim_id  uuid,
    trace_context    raquel_trace_context,
    CONSTRAINT raquel_jobs_delays_check CHECK (max_retry_delay >= min_retry_delay),
    CONSTRAINT raquel_jobs_claim_check CHECK (
        status <> 'claimed' OR (lease_expires_at IS NOT NULL AND claim_id IS NOT NULL))
) WITH (fillfactor = 50);
COMMENT ON TABLE raquel_jobs IS
    'raquel_pg jobs, one row per job, with raquel''s columns and meanings plus lease_expires_at and claim_id. Times are ms since the epoch (raquel_ts(ms) reads one as timestamptz). Change rows through the raquel_* functions; one-column rules are domains, the two that span columns are CHECK constraints.';
COMMENT ON COLUMN raquel_jobs.priority IS
    'Higher runs first (default 0); FIFO by scheduled_at within one priority. Change with raquel_set_priority().';
COMMENT ON COLUMN raquel_jobs.unique_key IS
    'At most one unfinished (queued, failed, claimed) job per key; see raquel_enqueue(unique_key, unique_mode).';
COMMENT ON COLUMN raquel_jobs.result IS
    'What the handler returned (JSON), stored with the success by raquel_complete / raquel_complete_many; NULL when it returned nothing or the job did not succeed. Read it with raquel_result(job_id).';
COMMENT ON COLUMN raquel_jobs.timeout IS
    'Per-job time limit in ms (NULL: the worker''s default, if any), set at enqueue; a worker cancels an attempt running longer and records it failed ("timed out after N ms").';
COMMENT ON COLUMN raquel_jobs.cancel_claim_id IS
    'The claim whose cancellation was requested (raquel_cancel(job_id, running => true)); while it equals claim_id, a failure or rescue of that claim ends the job cancelled.';
COMMENT ON COLUMN raquel_jobs.trace_context IS
    'The enqueuer''s trace context (a JSON object of strings, e.g. {"traceparent": "00-...-...-01"}, at most 2048 bytes), set at enqueue (raquel_enqueue(..., trace_context =>)); a worker with OpenTelemetry parents its span for the job on it. NULL: enqueued outside a trace.';

-- The claim: ready jobs in the claim's order (priority DESC, scheduled_at),
-- so a claim reads the first ready entries and stops; one index for a worker
-- of one queue, one for a worker of every queue (raquel_claim uses either for
-- several queues, whichever the data favours).
CREATE INDEX raquel_jobs_ready_queue_priority_idx ON raquel_jobs (queue, priority DESC, scheduled_at)
    WHERE status IN ('queued', 'failed');
CREATE INDEX raquel_jobs_ready_priority_idx ON raquel_jobs (priority DESC, scheduled_at)
    WHERE status IN ('queued', 'failed');

-- Rescue and raquel_next_due: claimed jobs by lease deadline (every path out
-- of 'claimed' clears lease_expires_at). Why this predicate and not "status =
-- 'claimed'": an outcome's "id = $1 AND claim_id = $2 AND status = 'claimed'"
-- must not imply it. With "status = 'claimed'", statistics taken while few
-- jobs were claimed (say, beside 1M finished ones) made the outcome
-- functions' cached plans scan this small index, dead entries included,
-- filtering on id, instead of one primary-key probe: raquel_complete took
-- 7 ms instead of 0.3 and a worker drained 3x slower (PostgreSQL 15).
-- "lease_expires_at <= x" and min(lease_expires_at) imply it.
CREATE INDEX raquel_jobs_lease_idx ON raquel_jobs (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

-- Expiry: waiting jobs that have a max_age, by deadline (empty unless jobs
-- have a max_age).
CREATE INDEX raquel_jobs_expiry_idx ON raquel_jobs ((enqueued_at + max_age))
    WHERE status IN ('queued', 'failed') AND max_age IS NOT NULL;

-- History: finished jobs by finish time, for purging old ones in batches
-- without scanning the table for each batch.
CREATE INDEX raquel_jobs_finished_idx ON raquel_jobs (finished_at)
    WHERE status IN ('success', 'cancelled', 'expired', 'exhausted');

-- Unique keys: the database enforces them, so concurrent enqueues on one key
-- cannot both insert.
CREATE UNIQUE INDEX raquel_jobs_unique_key_idx ON raquel_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'failed', 'claimed');

-- The dashboard's search for text in the error walks only the jobs that have
-- one (a few per cent of a healthy queue's rows), newest first; enqueue, claim
-- and success of a job that never failed do not touch it.
CREATE INDEX raquel_jobs_error_idx ON raquel_jobs (id) WHERE error IS NOT NULL;

-- Periodic jobs: one row per schedule, so psql shows each one's next tick
-- (next_run_at). Exactly one of cron (evaluated in UTC) and every (ms).
-- next_run_at NULL: a cron schedule whose first tick no scheduler has
-- computed yet (set from psql without first_run_at). last_run_at and
-- last_job_id: the last tick fired and the job enqueued for it.
CREATE TABLE raquel_schedules (
    name            text    PRIMARY KEY,
    queue           text    NOT NULL,
    payload         text,
    -- Exactly one of cron (evaluated in UTC) and every (ms).
    cron            text,
    every           bigint,
    priority        integer NOT NULL DEFAULT 0,
    max_age         bigint,
    max_retry_count integer,
    -- The next tick (ms since epoch). NULL: a cron schedule whose first tick
    -- no scheduler has computed yet (set from psql without first_run_at).
    next_run_at     bigint,
    -- The last tick fired and the job enqueued for it.
    last_run_at     bigint,
    last_job_id     uuid,
    created_at      bigint  NOT NULL DEFAULT raquel_now_ms(),
    CONSTRAINT raquel_schedules_name_check CHECK (name <> '' AND octet_length(name) <= 1000),
    CONSTRAINT raquel_schedules_queue_check CHECK (queue <> '' AND octet_length(queue) <= 1000),
    CONSTRAINT raquel_schedules_timing_check CHECK ((cron IS NULL) <> (every IS NULL) AND (every IS NULL OR every > 0)),
    CONSTRAINT raquel_schedules_job_check CHECK (
        (max_age IS NULL OR max_age > 0) AND (max_retry_count IS NULL OR max_retry_count >= 0)),
    CONSTRAINT raquel_schedules_interval_next_check CHECK (every IS NULL OR next_run_at IS NOT NULL)
);
COMMENT ON TABLE raquel_schedules IS
    'raquel_pg periodic jobs: one job per tick. Change with raquel_set_schedule() / raquel_drop_schedule().';

-- Idle workers: one row per registration (several may exist for one worker
-- for a moment), each waiting for jobs of some queues (NULL: every queue)
-- until expires_at (ms); see 0008_notifications. UNLOGGED: a registration is
-- worth nothing after a crash (workers register again at their next wait) and
-- writing it must not wait for a WAL flush.
CREATE UNLOGGED TABLE raquel_waiters (
    worker       uuid   NOT NULL,
    queues       text[],
    expires_at   bigint NOT NULL,
    registration bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY
);
CREATE INDEX raquel_waiters_worker_idx ON raquel_waiters (worker);
COMMENT ON TABLE raquel_waiters IS
    'raquel_pg idle workers waiting on LISTEN raquel_jobs (UNLOGGED): one row per registration, consumed by the first NOTIFY it causes. Written by raquel_wait_begin / raquel_wait_end and the enqueue triggers only.';

-- Clients waiting for a job's end (raquel_result_watch, 0008_notifications):
-- one row per registration, deleted by the notification it causes.
-- UNLOGGED, as raquel_waiters: a registration is worth nothing after a crash.
CREATE UNLOGGED TABLE raquel_result_waiters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        uuid   NOT NULL,
    registered_at bigint NOT NULL DEFAULT raquel_now_ms()
);

COMMENT ON TABLE raquel_result_waiters IS
    'raquel_pg clients waiting on LISTEN raquel_results for a job to finish (UNLOGGED): one row per registration (raquel_result_watch), deleted by the notification it causes (trigger raquel_jobs_30_notify_results) or by raquel_result_unwatch.';

-- Jobs finished per closed minute, by queue and final status (success,
-- cancelled, expired, exhausted), kept by raquel_throughput (0011_dashboard).
-- "minute" is the minute's start in ms since the epoch. The single row of
-- raquel_throughput_state says up to when (exclusive) minutes are kept.
CREATE TABLE raquel_throughput_minutes (
    minute bigint      NOT NULL,
    queue  raquel_name NOT NULL,
    status raquel_status NOT NULL,
    jobs   bigint      NOT NULL,
    PRIMARY KEY (minute, queue, status)
);
COMMENT ON TABLE raquel_throughput_minutes IS
    'raquel_pg: finished jobs per closed minute, kept by raquel_throughput(); derived, safe to truncate.';

CREATE TABLE raquel_throughput_state (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    kept_until bigint  NOT NULL
);
INSERT INTO raquel_throughput_state (kept_until) VALUES (0);
COMMENT ON TABLE raquel_throughput_state IS
    'raquel_pg: one row, kept_until (ms since the epoch, exclusive): the minutes before it are counted in raquel_throughput_minutes. Written only by raquel_throughput(); derived, safe to reset to 0 with the minutes truncated.';

-- Queue controls (0009_operations): one row per queue an operator set
-- something for (or whose finished jobs raquel_prune deleted: it counts them
-- there): paused, max_running, per_second (a token bucket kept in the row:
-- tokens as of tokens_at), retention_ms. raquel_retention_default: the
-- retention of queues without their own (one row). The partial index holds
-- the queues whose claims are held back or paused: what every claim probes,
-- so a claim none of whose queues is controlled pays one probe of an index of
-- the controlled queues only.
CREATE TABLE raquel_queue_settings (
    queue        raquel_name      PRIMARY KEY,
    paused       boolean          NOT NULL DEFAULT false,
    max_running  integer          CHECK (max_running >= 1),
    per_second   double precision CHECK (per_second > 0 AND per_second < 'Infinity'),
    -- The token bucket of per_second: tokens as of tokens_at (ms).
    tokens       double precision NOT NULL DEFAULT 0,
    tokens_at    bigint           NOT NULL DEFAULT 0,
    retention_ms bigint           CHECK (retention_ms >= 0),
    pruned       bigint           NOT NULL DEFAULT 0
);
-- The queues whose claims are held back or paused: what every claim probes.
CREATE INDEX raquel_queue_settings_controlled_idx ON raquel_queue_settings (queue)
    WHERE paused OR max_running IS NOT NULL OR per_second IS NOT NULL;
COMMENT ON TABLE raquel_queue_settings IS
    'raquel_pg per-queue controls: paused, max_running (claimed jobs at once), per_second (claims started per second, a token bucket: tokens as of tokens_at), retention_ms (finished jobs kept; NULL: the default) and pruned (finished jobs raquel_prune deleted). Change it through raquel_pause_queue, raquel_resume_queue, raquel_set_queue_limits and raquel_set_retention.';

CREATE TABLE raquel_retention_default (
    single       boolean PRIMARY KEY DEFAULT true CHECK (single),
    retention_ms bigint  CHECK (retention_ms >= 0)
);
INSERT INTO raquel_retention_default (retention_ms) VALUES (NULL);
COMMENT ON TABLE raquel_retention_default IS
    'raquel_pg: the retention of finished jobs of queues without their own (one row; NULL keeps them forever, the default). Set by raquel_set_retention(NULL, ...).';
