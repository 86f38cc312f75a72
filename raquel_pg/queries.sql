-- Runtime queries of the raquel_pg clients. Each is a call to a raquel_*
-- function (which holds the queue's rules) or a plain read. Loaded once by
-- queries.py; a query starts at its "-- name: <name>" line.
-- Every name is qualified with the engine's schema, raquel (migration 0001_engine_schema,
-- docs/security.md): the client never goes through the install schema's
-- stand-ins, and no object in the caller's search_path can stand in for ours.

-- name: enqueue
-- The job's row comes back with it (raquel's enqueue returns the Job), in
-- the same call: raquel_enqueue_row's INSERT ... RETURNING (migration
-- enqueue_speed), no second read. now is left to its default (the database
-- clock).
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key, result, timeout
FROM raquel.raquel_enqueue_row(
    queue => %(queue)s::text, payload => %(payload)s::text, at => %(at)s::bigint,
    delay => %(delay)s::bigint, max_age => %(max_age)s::bigint,
    max_retry_count => %(max_retry_count)s::integer, min_retry_delay => %(min_retry_delay)s::bigint,
    max_retry_delay => %(max_retry_delay)s::bigint, backoff_base => %(backoff_base)s::bigint,
    priority => %(priority)s::integer, unique_key => %(unique_key)s::text,
    unique_mode => %(unique_mode)s::text, timeout => %(timeout)s::bigint,
    trace_context => %(trace_context)s::text)

-- name: enqueue_many
-- Payloads travel as a binary text[] (%(payloads)b): measured faster than the
-- text form of a 10,000-element array. The ids come back as one uuid[] (the
-- function's rows in their order), not a row each: 0.76 against 1.07 us of
-- client CPU per job for 10,000.
SELECT ARRAY(SELECT raquel.raquel_enqueue_many(
    queue => %(queue)s::text, payloads => %(payloads)b::text[], at => %(at)s::bigint,
    delay => %(delay)s::bigint, max_age => %(max_age)s::bigint,
    max_retry_count => %(max_retry_count)s::integer, min_retry_delay => %(min_retry_delay)s::bigint,
    max_retry_delay => %(max_retry_delay)s::bigint, backoff_base => %(backoff_base)s::bigint,
    priority => %(priority)s::integer, unique_keys => %(unique_keys)s::text[],
    unique_mode => %(unique_mode)s::text, timeout => %(timeout)s::bigint,
    trace_context => %(trace_context)s::text))

-- name: complete_many
-- The id arrays travel binary (b placeholders): dumping 1,000 pairs measured 0.4 ms
-- against 2.6 ms in the text form. Only recorded comes back (in input order): the
-- worker knows the ids it sent, and loading them again cost a UUID per job.
SELECT recorded FROM raquel.raquel_complete_many(%(job_ids)b::uuid[], %(claim_ids)b::uuid[])

-- name: complete_many_results
-- The results travel as JSON text (NULL for none), cast to jsonb[] here
-- (the results migration, issue 25): stored in the statement that records the successes.
SELECT recorded FROM raquel.raquel_complete_many(%(job_ids)b::uuid[], %(claim_ids)b::uuid[],
                                                 results => %(results)s::text[]::jsonb[])

-- name: wait_begin
SELECT raquel.raquel_wait_begin(%(worker)s::uuid, %(queues)s::text[], %(ttl_ms)s::bigint)

-- name: wait_begin_handoff
SELECT raquel.raquel_wait_begin(%(worker)s::uuid, %(queues)s::text[], %(ttl_ms)s::bigint, %(claim_as)s::text,
                                %(lease)s::bigint, %(listener_pid)s::integer)

-- name: take
-- A handed job taken (0019_handoff): claimed_at set, its lease renewed. Given
-- claim_as and queues (0033_take_checks), only a job handed to that worker of
-- those queues; a job read while handed (handed) passes NULL: checked then.
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key, NULL::jsonb AS result, timeout,
       trace_context
FROM raquel.raquel_take(job_id => %(job_id)s::uuid, claim_id => %(claim_id)s::uuid, lease => %(lease)s::bigint,
                        claim_as => %(claim_as)s::text, queues => %(queues)s::text[])

-- name: handed
-- A job handed to this worker (0019_handoff), read without taking it: its row
-- while it is still claimed under claim_id for this worker (claimed_by its
-- claim_as, a queue of its own) and not yet taken, claimed_at the time it is
-- read (raquel_take sets it so), then how many ms of its lease are left. A
-- read, not a write: the worker starts the job at once and takes it (take) as
-- the job runs (the producer's _take_handed). The worker role reads
-- raquel_jobs (raquel_grant_roles).
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       raquel.raquel_now_ms() AS claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key,
       NULL::jsonb AS result, timeout, trace_context, lease_expires_at - raquel.raquel_now_ms() AS lease_left
FROM raquel.raquel_jobs
WHERE id = %(job_id)s::uuid AND claim_id = %(claim_id)s::uuid AND status = 'claimed' AND claimed_at IS NULL
  AND claimed_by = %(claim_as)s::text AND (%(queues)s::text[] IS NULL OR queue = ANY (%(queues)s::text[]))

-- name: wait_end
SELECT raquel.raquel_wait_end(%(worker)s::uuid)

-- name: set_priority
SELECT raquel.raquel_set_priority(%(job_id)s::uuid, %(priority)s::integer)

-- A worker's claim (name: claim, claim_list). Every row of one raquel_claim
-- call has the same status, claimed_by, claimed_at, lease_expires_at and
-- claim_id (the call's): its first row carries them, the others NULL, and the
-- client reads them from that row (model.CLAIM_WIDE). Issue 23: fetching 500
-- such rows cost the client 1.45 us of CPU a row with the values in every row,
-- 0.83 in one; the claim_id alone 0.51 (a uuid object a row, and the garbage
-- collections those objects set off).

-- name: claim
-- A claimed job has not succeeded: its result is NULL, whatever a row written
-- by hand holds (a jsonb nested too deeply for Python's json would fail the
-- fetch of the whole claim, its jobs claimed).
SELECT id, queue, payload, CASE ordinality WHEN 1 THEN status END, max_age, max_retry_count, min_retry_delay,
       max_retry_delay, backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace,
       CASE ordinality WHEN 1 THEN claimed_by END, CASE ordinality WHEN 1 THEN claimed_at END, finished_at,
       CASE ordinality WHEN 1 THEN lease_expires_at END, CASE ordinality WHEN 1 THEN claim_id END, priority,
       unique_key, NULL::jsonb AS result, timeout, trace_context
FROM raquel.raquel_claim(queues => %(queues)s::text[], claim_as => %(claim_as)s::text,
                         batch => %(batch)s::integer, lease => %(lease)s::bigint,
                         durable => %(durable)s::boolean, before => %(before)s::bigint) WITH ORDINALITY

-- name: claim_list
-- As claim, of a list registered by raquel_queue_list (0030_queue_lists).
SELECT id, queue, payload, CASE ordinality WHEN 1 THEN status END, max_age, max_retry_count, min_retry_delay,
       max_retry_delay, backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace,
       CASE ordinality WHEN 1 THEN claimed_by END, CASE ordinality WHEN 1 THEN claimed_at END, finished_at,
       CASE ordinality WHEN 1 THEN lease_expires_at END, CASE ordinality WHEN 1 THEN claim_id END, priority,
       unique_key, NULL::jsonb AS result, timeout, trace_context
FROM raquel.raquel_claim(queue_list => %(queue_list)s::bigint, claim_as => %(claim_as)s::text,
                         batch => %(batch)s::integer, lease => %(lease)s::bigint,
                         durable => %(durable)s::boolean, before => %(before)s::bigint) WITH ORDINALITY

-- name: queue_list
SELECT raquel.raquel_queue_list(%(queues)s::text[])

-- name: next_due
SELECT raquel.raquel_next_due(%(queues)s::text[])

-- name: claimers
SELECT raquel.raquel_claimers(%(queues)s::text[], %(other_than)s::text)

-- name: renew_leases
SELECT raquel.raquel_renew_leases(%(job_ids)b::uuid[], %(claim_ids)b::uuid[], %(lease)s::bigint)

-- name: complete
SELECT raquel.raquel_complete(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: complete_result
-- The success with the handler's result (JSON text, NULL for none), in one
-- UPDATE (issue 25).
SELECT raquel.raquel_complete(%(job_id)s::uuid, %(claim_id)s::uuid, result => %(result)s::jsonb)

-- name: fail
SELECT raquel.raquel_fail(%(job_id)s::uuid, %(claim_id)s::uuid, %(error)s::text, %(error_trace)s::text)

-- name: reschedule
SELECT raquel.raquel_reschedule(%(job_id)s::uuid, %(claim_id)s::uuid, at => %(at)s::bigint,
                         delay => %(delay)s::bigint)

-- name: reject
SELECT raquel.raquel_reject(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: release
SELECT raquel.raquel_release(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: cancel
SELECT raquel.raquel_cancel(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: get
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key, result, timeout
FROM raquel.raquel_jobs WHERE id = %(job_id)s::uuid

-- name: jobs
-- raquel's jobs(*queues): every job, latest scheduled first.
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key, result, timeout
FROM raquel.raquel_jobs
WHERE %(queues)s::text[] IS NULL OR queue = ANY (%(queues)s::text[])
ORDER BY scheduled_at DESC, id DESC

-- The by-id calls of raquel (resolve, fail, reject by job id and attempt
-- number, migration 0006_claim): the fenced outcome functions, given the claim_id
-- of that attempt (NULL, so no row, when it is not the running one).

-- name: resolve_attempt
SELECT raquel.raquel_complete(%(job_id)s::uuid, raquel.raquel_attempt_claim(%(job_id)s::uuid, %(attempt_num)s::integer),
                       now => %(now)s::bigint)

-- name: fail_attempt
SELECT raquel.raquel_fail(%(job_id)s::uuid, raquel.raquel_attempt_claim(%(job_id)s::uuid, %(attempt_num)s::integer),
                   %(error)s::text, %(error_trace)s::text, now => %(now)s::bigint)

-- name: reject_attempt
SELECT raquel.raquel_reject(%(job_id)s::uuid, raquel.raquel_attempt_claim(%(job_id)s::uuid, %(attempt_num)s::integer))

-- name: unclaim
SELECT raquel.raquel_unclaim(%(job_id)s::uuid)

-- name: cancel_waiting
-- raquel's cancel(job_id): a queued or failed job only (no claim_id given).
SELECT raquel.raquel_cancel(%(job_id)s::uuid)

-- name: cancel_running
-- cancel(job_id, running=True): a waiting job at once, a claimed one asked to
-- stop (its worker hears NOTIFY raquel_cancel; issue 25).
SELECT raquel.raquel_cancel(%(job_id)s::uuid, running => true)

-- name: cancel_requests
-- A worker whose LISTEN connection came back checks its running jobs for
-- cancel requests it may have missed meanwhile (issue 25).
SELECT id::text FROM raquel.raquel_jobs
WHERE id = ANY (%(job_ids)s::uuid[]) AND status = 'claimed' AND cancel_claim_id = claim_id

-- name: result
-- A job's end as raquel_result reads it (issue 25): waits for a transaction
-- changing the row at that moment, so that a registered waiter misses nothing.
SELECT status, finished, result, error FROM raquel.raquel_result(%(job_id)s::uuid)

-- name: result_watch
SELECT raquel.raquel_result_watch(%(job_id)s::uuid)

-- name: result_unwatch
SELECT raquel.raquel_result_unwatch(%(watch_id)s::bigint, %(job_id)s::uuid)

-- name: expire
SELECT raquel.raquel_expire(%(queues)s::text[])

-- name: queues
SELECT DISTINCT queue FROM raquel.raquel_jobs ORDER BY queue

-- name: count
SELECT count(*) FROM raquel.raquel_jobs
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))

-- name: stats
SELECT queue, count(*),
       count(*) FILTER (WHERE status = 'queued'),
       count(*) FILTER (WHERE status = 'claimed'),
       count(*) FILTER (WHERE status = 'success'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'expired'),
       count(*) FILTER (WHERE status = 'exhausted'),
       count(*) FILTER (WHERE status = 'cancelled')
FROM raquel.raquel_jobs
WHERE %(queues)s::text[] IS NULL OR queue = ANY (%(queues)s::text[])
GROUP BY queue ORDER BY queue

-- name: listen_probe
-- The notifier's own channel: the probe (below) proves that notifications
-- sent through the main DSN reach the LISTEN connection. Issued before
-- "listen" (as are listen_results and listen_cancel), so that
-- pg_stat_activity shows LISTEN raquel_jobs.
LISTEN raquel_probe

-- name: listen
LISTEN raquel_jobs

-- name: listen_results
-- Result waiters (issue 25): the payload is the id of a watched job that ended.
LISTEN raquel_results

-- name: listen_cancel
-- Cancel requests for running jobs (issue 25): the payload is the job's id.
LISTEN raquel_cancel

-- name: listen_handoff
-- Jobs handed to an idle worker (0019_handoff): '<worker> <job id> <claim_id>'.
LISTEN raquel_handoff

-- name: listen_alive
-- The raquel listener lock (0019_handoff), held by the LISTEN session for its
-- life: an enqueue hands a job to a worker only while its session holds it.
-- Returns the server's pid of that session, which the worker registers: the
-- client's (libpq's BackendKeyData) is a made-up one behind a pooler.
SELECT pg_backend_pid() FROM pg_advisory_lock(1903257711, pg_backend_pid())

-- name: probe
-- Sent through the pool: a transaction pooler (PgBouncer, pool_mode =
-- transaction) never delivers it to a LISTEN made through the pooler.
SELECT pg_notify('raquel_probe', %(token)s::text)

-- Operations (the raquel-pg CLI): calls to the functions of 0009_operations.

-- With each queue's controls (migration 0009_operations): a paused or limited queue is listed even with no jobs.
-- name: ops_stats
SELECT coalesce(s.queue, c.queue) AS queue, coalesce(s.total, 0) AS total,
       coalesce(s.queued, 0) AS queued, coalesce(s.claimed, 0) AS claimed,
       coalesce(s.success, 0) AS success, coalesce(s.failed, 0) AS failed,
       coalesce(s.cancelled, 0) AS cancelled, coalesce(s.expired, 0) AS expired,
       coalesce(s.exhausted, 0) AS exhausted, coalesce(s.ready, 0) AS ready,
       coalesce(s.scheduled, 0) AS scheduled, coalesce(s.lease_expired, 0) AS lease_expired,
       s.oldest_ready_age_ms, coalesce(c.paused, false) AS paused, c.max_running, c.per_second
FROM raquel.raquel_stats() s
FULL JOIN (SELECT k.queue, k.paused, k.max_running, k.per_second FROM raquel.raquel_queue_controls() k
           WHERE k.paused OR k.max_running IS NOT NULL OR k.per_second IS NOT NULL) c ON c.queue = s.queue
ORDER BY 1

-- name: ops_jobs
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id, priority, unique_key, result, timeout
FROM raquel.raquel_jobs
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
ORDER BY enqueued_at DESC, id
LIMIT %(limit)s::integer

-- name: ops_retry
SELECT raquel.raquel_retry(%(job_id)s::uuid)

-- name: ops_retry_jobs
SELECT raquel.raquel_retry_jobs(queue => %(queue)s::text, statuses => %(statuses)s::text[],
                         since => %(since)s::timestamptz)

-- name: ops_now
SELECT raquel.raquel_now_ms()

-- name: ops_purgeable
SELECT count(*) FROM raquel.raquel_jobs
WHERE status IN ('success', 'cancelled', 'expired', 'exhausted')  -- lets it use raquel_jobs_finished_idx
  AND status = ANY (%(statuses)s::text[])
  AND finished_at < %(now)s::bigint - floor(extract(epoch FROM %(older_than)s::interval) * 1000)::bigint

-- name: ops_purge
SELECT raquel.raquel_purge(%(older_than)s::interval, %(statuses)s::text[], %(batch_size)s::integer,
                    %(now)s::bigint)

-- name: set_schedule
SELECT raquel.raquel_set_schedule(
    name => %(name)s::text, queue => %(queue)s::text, payload => %(payload)s::text,
    cron => %(cron)s::text, every => %(every)s::bigint, first_run_at => %(first_run_at)s::bigint,
    priority => %(priority)s::integer, max_age => %(max_age)s::bigint,
    max_retry_count => %(max_retry_count)s::integer)

-- name: drop_schedule
SELECT raquel.raquel_drop_schedule(%(name)s::text)

-- name: schedules
SELECT name, queue, payload, cron, every, priority, max_age, max_retry_count, next_run_at,
       last_run_at, last_job_id
FROM raquel.raquel_schedules ORDER BY name

-- name: due_schedules
SELECT due.now, s.name, s.cron, s.next_run_at
FROM (SELECT coalesce(%(now)s::bigint, raquel.raquel_now_ms()) AS now) AS due
LEFT JOIN raquel.raquel_schedules s ON s.next_run_at IS NULL OR s.next_run_at <= due.now
ORDER BY s.name

-- name: fire_schedules
SELECT job_id FROM raquel.raquel_fire_schedules(%(names)s::text[], %(ticks)s::bigint[],
                                         %(next_run_ats)s::bigint[], now => %(now)s::bigint)

-- name: next_schedule_in
SELECT min(next_run_at) - raquel.raquel_now_ms() FROM raquel.raquel_schedules

-- name: grant_roles
SELECT pg_temp.raquel_grant_roles(%(schema)s::text, %(enqueuer)s::text, %(worker)s::text,
                                  %(operator)s::text)

-- `raquel-pg grant --sql`: the same call for a psql script, composed with
-- psycopg.sql (each {name} becomes a quoted literal; a NULL schema means the
-- session's current schema).
-- name: grant_roles_script
SELECT pg_temp.raquel_grant_roles(coalesce({schema}, current_schema()), {enqueuer}, {worker}, {operator})

-- name: claim_outcome
SELECT status, error FROM raquel.raquel_claim_outcome(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: current_schema
SELECT current_schema()

-- `raquel-pg import-raquel`: copies a raquel `jobs` table into raquel_jobs
-- (raquel_pg/importer_async.py, raquel_tables.py). First the source table's
-- columns and their types, as the catalog says.
-- name: import_raquel_table
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass(%(table)s)

-- Holds raquel's writers off until the import ends ({table} composed as below).
-- name: import_raquel_lock
LOCK TABLE {table} IN SHARE MODE

-- Maps the source's columns, whichever raquel release made them, to raquel
-- 0.3's names in a temporary view; each {name} is composed with psycopg.sql:
-- {table} the source table, the others a column of it (s."col"), a coalesce
-- of old and new names, or NULL. Ids: a uuid id is kept; any other id (raquel
-- < 0.1's bigserial) becomes the UUID version 3 of its text in the namespace
-- 512128fc-7855-5cbb-89c8-f34b00b8911e, i.e. Python's
-- uuid.uuid3(UUID('512128fc-7855-5cbb-89c8-f34b00b8911e'), str(id)).
-- name: import_raquel_source
CREATE TEMPORARY VIEW raquel_import_source AS
SELECT CASE WHEN {id_is_uuid} THEN s.{id}::text::uuid
            ELSE encode(set_byte(set_byte(k.h, 6, (get_byte(k.h, 6) & 15) | 48),
                                 8, (get_byte(k.h, 8) & 63) | 128), 'hex')::uuid END AS id,
       s.{id}::text AS source_id,
       {queue}::text AS queue, {payload}::text AS payload, {status}::text AS status,
       {max_age}::bigint AS max_age, {max_retry_count}::integer AS max_retry_count,
       {min_retry_delay}::bigint AS min_retry_delay, {max_retry_delay}::bigint AS max_retry_delay,
       {backoff_base}::bigint AS backoff_base, {enqueued_at}::bigint AS enqueued_at,
       {scheduled_at}::bigint AS scheduled_at, {attempts}::integer AS attempts,
       {error}::text AS error, {error_trace}::text AS error_trace,
       {claimed_by}::text AS claimed_by, {claimed_at}::bigint AS claimed_at,
       {finished_at}::bigint AS finished_at
FROM {table} AS s
CROSS JOIN LATERAL (
    SELECT decode(md5('\x512128fc78555cbb89c8f34b00b8911e'::bytea || convert_to(s.{id}::text, 'UTF8')),
                  'hex') AS h) AS k

-- Each source row with the rules of raquel_jobs it breaks ('' when none),
-- its options defaulted as raquel's NULLs mean, and a claimed row (raquel's
-- 'claimed', raquel < 0.1's 'locked') made claimable again as raquel's
-- unclaim() does: status 'queued', claimed_by and claimed_at cleared.
-- name: import_raquel_checked
CREATE TEMPORARY VIEW raquel_import_checked AS
SELECT s.id, s.source_id, s.queue, s.payload,
       CASE WHEN s.status IN ('claimed', 'locked') THEN 'queued' ELSE s.status END AS status,
       s.max_age, s.max_retry_count,
       coalesce(s.min_retry_delay, 1000) AS min_retry_delay,
       coalesce(s.max_retry_delay, 43200000) AS max_retry_delay,
       coalesce(s.backoff_base, 1000) AS backoff_base,
       s.enqueued_at, s.scheduled_at, s.attempts, s.error, s.error_trace,
       CASE WHEN s.status IN ('claimed', 'locked') THEN NULL ELSE s.claimed_by END AS claimed_by,
       CASE WHEN s.status IN ('claimed', 'locked') THEN NULL ELSE s.claimed_at END AS claimed_at,
       CASE WHEN s.status IN ('claimed', 'locked') THEN NULL ELSE s.finished_at END AS finished_at,
       concat_ws('; ',
           CASE WHEN s.status IS NULL OR s.status NOT IN ('queued', 'claimed', 'locked', 'success',
                    'failed', 'cancelled', 'expired', 'exhausted')
                THEN format('unknown status %L', s.status) END,
           CASE WHEN s.queue IS NULL OR s.queue = '' THEN 'empty queue name' END,
           CASE WHEN octet_length(s.queue) > 1000
                THEN format('queue name of %s bytes (at most 1000)', octet_length(s.queue)) END,
           CASE WHEN s.max_age <= 0 THEN format('max_age %s ms (must be > 0)', s.max_age) END,
           CASE WHEN s.max_retry_count < 0
                THEN format('max_retry_count %s (must be >= 0)', s.max_retry_count) END,
           CASE WHEN s.min_retry_delay < 0
                THEN format('min_retry_delay %s ms (must be >= 0)', s.min_retry_delay) END,
           CASE WHEN s.backoff_base < 0 THEN format('backoff_base %s ms (must be >= 0)', s.backoff_base) END,
           CASE WHEN coalesce(s.max_retry_delay, 43200000) < coalesce(s.min_retry_delay, 1000)
                THEN format('max_retry_delay %s ms below min_retry_delay %s ms',
                            coalesce(s.max_retry_delay, 43200000), coalesce(s.min_retry_delay, 1000)) END,
           CASE WHEN s.attempts IS NULL OR s.attempts < 0
                THEN format('attempts %s (must be >= 0)', coalesce(s.attempts::text, 'NULL')) END,
           CASE WHEN s.enqueued_at IS NULL THEN 'no enqueued_at' END,
           CASE WHEN s.scheduled_at IS NULL THEN 'no scheduled_at' END) AS problem
FROM pg_temp.raquel_import_source s

-- name: import_raquel_problems
SELECT source_id, problem FROM pg_temp.raquel_import_checked WHERE problem <> '' ORDER BY source_id

-- name: import_raquel_count
SELECT count(*) FROM pg_temp.raquel_import_source

-- The rows that keep every rule, copied once: an id raquel_jobs already has
-- (a previous import's) is left as it is. Returns how many rows it copied.
-- name: import_raquel_copy
WITH copied AS (
    INSERT INTO raquel_jobs (
        id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
        backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
        claimed_at, finished_at)
    SELECT c.id, c.queue, c.payload, c.status, c.max_age, c.max_retry_count, c.min_retry_delay,
           c.max_retry_delay, c.backoff_base, c.enqueued_at, c.scheduled_at, c.attempts, c.error,
           c.error_trace, c.claimed_by, c.claimed_at, c.finished_at
    FROM pg_temp.raquel_import_checked c
    WHERE c.problem = ''
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM copied

-- name: import_raquel_done
DROP VIEW pg_temp.raquel_import_checked, pg_temp.raquel_import_source

-- The dashboard and the metrics exporter (0011_dashboard). The dashboard's
-- connections plan every statement with its values (prepare_threshold None),
-- so a filter given as NULL drops out of the plan.

-- name: dash_overview
SELECT queue, queued, failed, ready, scheduled, running, lease_expired, oldest_ready_age_ms
FROM raquel.raquel_queue_overview()

-- name: dash_throughput
SELECT minute, queue, status, jobs FROM raquel.raquel_throughput(%(since)s::bigint)

-- The chart's buckets (bucket: ms, a multiple of a minute), one queue or all.
-- name: dash_throughput_buckets
SELECT minute - minute %% %(bucket)s::bigint AS bucket, status, sum(jobs)::bigint
FROM raquel.raquel_throughput(%(since)s::bigint)
WHERE %(queue)s::text IS NULL OR queue = %(queue)s::text
GROUP BY 1, 2

-- name: dash_now
SELECT raquel.raquel_now_ms()

-- Jobs newest first (ids are time-ordered, 0002_clock_and_ids), a page at a time: the next
-- page starts below the last id shown (keyset). statuses: any of them (NULL: any status);
-- finished_after: finished at or after it (ms; the queues table's counts of the last hour).
-- name: dash_jobs
SELECT id, queue, status, attempts, error, enqueued_at, scheduled_at, finished_at, priority
FROM raquel.raquel_jobs
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
  AND (%(finished_after)s::bigint IS NULL OR finished_at >= %(finished_after)s::bigint)
  AND (%(before)s::uuid IS NULL OR id < %(before)s::uuid)
ORDER BY id DESC
LIMIT %(limit)s::integer

-- Text in the error, newest first: reads at most %(scan)s jobs that have an
-- error (raquel_jobs_error_idx, 0003_tables), below %(before)s, and keeps those that
-- match. Every row also says how far the read went (scanned_to: the oldest id
-- read; scanned: how many), so the next search resumes there; with no match
-- there is one row of NULLs but those two.
-- name: dash_jobs_error
WITH scanned AS MATERIALIZED (
    SELECT j.id, j.queue, j.status, j.attempts, j.error, j.enqueued_at, j.scheduled_at, j.finished_at,
           j.priority
    FROM raquel.raquel_jobs j
    WHERE j.error IS NOT NULL AND (%(before)s::uuid IS NULL OR j.id < %(before)s::uuid)
    ORDER BY j.id DESC
    LIMIT %(scan)s::integer
), matched AS (
    SELECT s.* FROM scanned s
    WHERE (%(queue)s::text IS NULL OR s.queue = %(queue)s::text)
      AND (%(statuses)s::text[] IS NULL OR s.status = ANY (%(statuses)s::text[]))
      AND (%(finished_after)s::bigint IS NULL OR s.finished_at >= %(finished_after)s::bigint)
      AND strpos(lower(s.error), lower(%(error)s::text)) > 0
    ORDER BY s.id DESC
    LIMIT %(limit)s::integer
)
SELECT m.id, m.queue, m.status, m.attempts, m.error, m.enqueued_at, m.scheduled_at, m.finished_at,
       m.priority, r.scanned_to, r.scanned
FROM (SELECT (SELECT s.id FROM scanned s ORDER BY s.id LIMIT 1) AS scanned_to,
             (SELECT count(*) FROM scanned s) AS scanned) r
LEFT JOIN matched m ON true
ORDER BY m.id DESC

-- The queues paused or limited (migration 0009_operations), for the queues table.
-- name: dash_controls
SELECT k.queue, k.paused, k.max_running, k.per_second
FROM raquel.raquel_queue_controls() k
WHERE k.paused OR k.max_running IS NOT NULL OR k.per_second IS NOT NULL

-- What the connected role may do, function by function: whether it may execute
-- the engine's function of that name (by name, so a signature that grows keeps the answer;
-- false: no such function).
-- name: dash_privileges
SELECT EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace
               AND p.proname = 'raquel_retry' AND has_function_privilege(p.oid, 'EXECUTE')),
       EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace
               AND p.proname = 'raquel_cancel' AND has_function_privilege(p.oid, 'EXECUTE')),
       EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace
               AND p.proname = 'raquel_purge' AND has_function_privilege(p.oid, 'EXECUTE')),
       current_user,
       EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace
               AND p.proname = 'raquel_pause_queue' AND has_function_privilege(p.oid, 'EXECUTE')),
       EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'raquel'::regnamespace
               AND p.proname = 'raquel_resume_queue' AND has_function_privilege(p.oid, 'EXECUTE'))

-- Queue controls (migration 0009_operations): pause/resume, limits, retention.

-- name: pause_queue
SELECT raquel.raquel_pause_queue(%(queue)s::text)

-- name: resume_queue
SELECT raquel.raquel_resume_queue(%(queue)s::text)

-- name: set_queue_limits
SELECT raquel.raquel_set_queue_limits(%(queue)s::text, max_running => %(max_running)s::integer,
                                      per_second => %(per_second)s::double precision)

-- name: set_retention
SELECT raquel.raquel_set_retention(%(queue)s::text, %(keep_ms)s::bigint * interval '1 millisecond')

-- name: prune
SELECT raquel.raquel_prune(%(batch_size)s::integer)

-- name: queue_controls
SELECT queue, paused, max_running, per_second, retention_ms, pruned FROM raquel.raquel_queue_controls()
