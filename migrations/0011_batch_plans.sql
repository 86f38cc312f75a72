-- 0011_batch_plans: the functions that act on a batch of jobs by id reach
-- each job through its primary key, whatever the statistics say.
--
-- A queue's statistics are stale by nature: ANALYZE ran when the table held
-- other jobs in other states. Taken while every job was queued, they say no
-- job is 'claimed'. raquel_complete_many then joined its 1,000 (id,
-- claim_id) pairs to a sequential scan of the table filtered on 'claimed'
-- (estimated: 1 row), as the inner side of a nested loop: a million pair
-- comparisons, 372 ms for a batch of 1,000 successes against 12.6 ms through
-- the primary key (PostgreSQL 15, 20,000 jobs in the table).
-- raquel_renew_leases has the same join. raquel_claim joined the jobs it
-- picked back to the table with a hash join over a sequential scan once its
-- batch reached the hundreds (a claim of 1,000: 14 ms against 12 ms).
--
-- Each of these statements is meant to touch only the rows it names or
-- picks: a sequential scan of raquel_jobs is never the plan wanted there,
-- and the planner is told so for these functions alone (enable_seqscan =
-- off for the duration of the call: it disfavours, never forbids, a
-- sequential scan, so a statement with no other path still runs). Nested
-- calls (raquel_claim's rescue and expiry) see the same setting; they probe
-- partial indexes made for them.
--
-- Guarantees: unchanged; only the plans change.
ALTER FUNCTION raquel_complete_many(uuid[], uuid[], bigint) SET enable_seqscan = off;
ALTER FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) SET enable_seqscan = off;
ALTER FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean) SET enable_seqscan = off;
