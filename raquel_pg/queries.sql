-- Runtime queries of the raquel_pg clients. Each is a call to a raquel_*
-- function (which holds the queue's rules) or a plain read. Loaded once by
-- queries.py; a query starts at its "-- name: <name>" line.

-- name: enqueue
SELECT raquel_enqueue(
    queue => %(queue)s::text, payload => %(payload)s::text, at => %(at)s::bigint,
    delay => %(delay)s::bigint, max_age => %(max_age)s::bigint,
    max_retry_count => %(max_retry_count)s::integer, min_retry_delay => %(min_retry_delay)s::bigint,
    max_retry_delay => %(max_retry_delay)s::bigint, backoff_base => %(backoff_base)s::bigint)

-- name: claim
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id
FROM raquel_claim(queues => %(queues)s::text[], claim_as => %(claim_as)s::text,
                  batch => %(batch)s::integer, lease => %(lease)s::bigint)

-- name: next_due
SELECT raquel_next_due(%(queues)s::text[])

-- name: renew_leases
SELECT raquel_renew_leases(%(job_ids)s::uuid[], %(claim_ids)s::uuid[], %(lease)s::bigint)

-- name: complete
SELECT raquel_complete(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: fail
SELECT raquel_fail(%(job_id)s::uuid, %(claim_id)s::uuid, %(error)s::text, %(error_trace)s::text)

-- name: reschedule
SELECT raquel_reschedule(%(job_id)s::uuid, %(claim_id)s::uuid, at => %(at)s::bigint,
                         delay => %(delay)s::bigint)

-- name: reject
SELECT raquel_reject(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: release
SELECT raquel_release(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: cancel
SELECT raquel_cancel(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: get
SELECT id, queue, payload, status, max_age, max_retry_count, min_retry_delay, max_retry_delay,
       backoff_base, enqueued_at, scheduled_at, attempts, error, error_trace, claimed_by,
       claimed_at, finished_at, lease_expires_at, claim_id
FROM raquel_jobs WHERE id = %(job_id)s::uuid

-- name: queues
SELECT DISTINCT queue FROM raquel_jobs ORDER BY queue

-- name: count
SELECT count(*) FROM raquel_jobs
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
FROM raquel_jobs
WHERE %(queue)s::text IS NULL OR queue = %(queue)s::text
GROUP BY queue ORDER BY queue

-- name: listen
LISTEN raquel_jobs

-- name: grant_roles
SELECT pg_temp.raquel_grant_roles(%(schema)s::text, %(enqueuer)s::text, %(worker)s::text,
                                  %(operator)s::text)

-- name: claim_outcome
SELECT status, error FROM raquel_claim_outcome(%(job_id)s::uuid, %(claim_id)s::uuid)

-- name: current_schema
SELECT current_schema()
