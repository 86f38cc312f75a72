-- pgbench: claim one job (one transaction), then record its success (another).
UPDATE sql_jobs SET status = 'claimed', claimed_at = clock_timestamp()
WHERE id = (SELECT id FROM sql_jobs
            WHERE queue = 'bench' AND status = 'queued' AND scheduled_at <= clock_timestamp()
            ORDER BY scheduled_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id \gset
UPDATE sql_jobs SET status = 'done', finished_at = clock_timestamp() WHERE id = :id;
