-- 0014_serial_sweeps: the claim and its sweeps never start parallel workers.
--
-- raquel_expire first probes for a waiting job past its max_age through
-- raquel_jobs_expiry_idx, a partial index that is empty unless jobs have a
-- max_age. The planner has no statistics for an empty index's expression
-- and guesses that a third of the table matches; beside a backlog of 300,000
-- jobs that guess priced the probe above parallel_setup_cost, and with
-- enable_seqscan off (0011, inherited from raquel_claim) it chose a Gather
-- over a parallel bitmap heap scan. The probe itself took 0.007 ms; starting
-- its two workers took 7 to 30 ms, once a second on every worker connection
-- (raquel_claim calls raquel_expire at most once a second per connection),
-- with the claim's transaction open and its caller waiting.
--
-- These functions touch a handful of rows through indexes and run on many
-- connections at once: parallel query cannot pay there. Each now runs with
-- max_parallel_workers_per_gather = 0 for the duration of the call, and so
-- do the functions it calls.
--
-- Guarantees: unchanged; only the plans change.
ALTER FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean) SET max_parallel_workers_per_gather = 0;
ALTER FUNCTION raquel_expire(text[], bigint) SET max_parallel_workers_per_gather = 0;
ALTER FUNCTION raquel_rescue(text[], bigint) SET max_parallel_workers_per_gather = 0;
ALTER FUNCTION raquel_next_due(text[]) SET max_parallel_workers_per_gather = 0;
