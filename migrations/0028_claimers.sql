-- 0028_claimers: raquel_claimers tells a worker whether other workers hold
-- jobs of its queues, so that it keeps a second claim in flight only while
-- it claims them alone (issue 23).
--
-- A worker with a prefetch sends a second claim while its first is in flight
-- and there is a backlog, so that its runners do not wait for the first
-- claim's reply. One worker process alone drains 7-19% faster with it. But
-- claims of one queue in flight together read the same head of its ready
-- index: each skips the jobs the others hold locked, and walks the entries of
-- the jobs they claimed a moment before, not yet dead to every transaction.
-- With four processes, up to eight claims were in flight instead of four, and
-- the drain was 4-9% slower with the second claim than without it (fast
-- mode, 4 x 24, bench/RESULTS.md, 2026-12-06 and 2026-12-07). Nothing a
-- worker sees of its own claims tells the two cases apart; its queue's
-- leases do.

-- Guarantees: reads only; never waits for a lock; reads at most `sample`
-- claimed jobs (the newest leases, every queue's), so its cost does not grow
-- with the table or with the jobs claimed. A worker other than other_than
-- that holds jobs of the queues but none among the sample is not counted.
CREATE FUNCTION raquel_claimers(
    queues     text[]  DEFAULT NULL,
    other_than text    DEFAULT NULL,
    sample     integer DEFAULT 1000
) RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
SET max_parallel_workers_per_gather = 0
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
COMMENT ON FUNCTION raquel_claimers(text[], text, integer) IS
    'How many workers (distinct claimed_by) other than other_than hold claimed jobs of queues (NULL: any queue) among the sample newest leases of every queue. Reads at most sample claimed jobs; never waits for a lock. A worker with a prefetch keeps a second claim in flight only while this is 0 (0028_claimers). 22023 for a sample not between 1 and 1000000.';
REVOKE EXECUTE ON FUNCTION raquel_claimers(text[], text, integer) FROM PUBLIC;
