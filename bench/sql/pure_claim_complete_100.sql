-- pgbench: claim up to 100 jobs (one transaction), then record their success (another).
WITH picked AS (
    SELECT id FROM sql_jobs
    WHERE queue = 'bench' AND status = 'queued' AND scheduled_at <= clock_timestamp()
    ORDER BY scheduled_at LIMIT 100 FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE sql_jobs j SET status = 'claimed', claimed_at = clock_timestamp()
    FROM picked WHERE j.id = picked.id RETURNING j.id
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM claimed \gset
UPDATE sql_jobs SET status = 'done', finished_at = clock_timestamp() WHERE id = ANY (:ids::bigint[]);
