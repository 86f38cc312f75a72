-- The dashboard benchmark's history (bench/dashboard.py, which runs these
-- statements one by one with %(jobs)s bound): that many finished jobs spread
-- evenly over the last 24 hours (about 700 a minute for 1M) in four queues:
-- 97% success, 2% exhausted with an error and its trace, about 0.5% each
-- cancelled and expired; then 2,000 queued jobs, 100 of them made failed
-- (waiting for a retry). Ids are time-ordered like raquel_new_id()'s (the
-- enqueue time's ms first), as the engine makes them.
INSERT INTO raquel_jobs (id, queue, payload, status, enqueued_at, scheduled_at, attempts, error,
                         error_trace, claimed_by, claimed_at, finished_at)
SELECT (lpad(to_hex(t - 500), 12, '0') || '7' || substr(gen_random_uuid()::text, 16))::uuid,
       (ARRAY['emails', 'reports', 'billing', 'default'])[1 + mod(i, 4)],
       '{"n": ' || i || '}',
       CASE WHEN mod(i, 50) = 0 THEN 'exhausted' WHEN mod(i, 199) = 0 THEN 'cancelled'
            WHEN mod(i, 197) = 0 THEN 'expired' ELSE 'success' END,
       t - 500, t - 500, 1,
       CASE WHEN mod(i, 50) = 0 THEN 'ValueError: invalid address ' || i END,
       CASE WHEN mod(i, 50) = 0 THEN E'Traceback (most recent call last):\n  File "tasks.py", line 3, in send\nValueError: invalid address ' || i END,
       'bench:1', t - 100, t
FROM (SELECT i, raquel_now_ms() - (i::bigint * 86400000 / %(jobs)s) AS t
      FROM generate_series(1, %(jobs)s) i) s;
SELECT count(*) FROM raquel_enqueue_many('emails', array_fill('{"to": "a@b.c"}'::text, ARRAY[1000]));
SELECT count(*) FROM raquel_enqueue_many('reports', array_fill('{"id": 1}'::text, ARRAY[1000]));
UPDATE raquel_jobs SET status = 'failed', attempts = 1, error = 'TimeoutError: smtp', finished_at = raquel_now_ms()
WHERE id IN (SELECT id FROM raquel_jobs WHERE status = 'queued' LIMIT 100);
VACUUM ANALYZE raquel_jobs;
