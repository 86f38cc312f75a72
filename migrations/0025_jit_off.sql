-- 0025_jit_off: the functions that disfavour sequential scans never JIT.
--
-- enable_seqscan = off (0011) does not forbid a sequential scan: before
-- PostgreSQL 18 it adds 10^10 to the cost of one. A statement reached inside
-- these functions that has no other path then carries that cost, far past
-- jit_above_cost (100,000 by default), and is compiled by LLVM with inlining
-- and optimisation at every execution. The statement that did it was the
-- wake-up check of raquel_notify_ready (a scan of the small raquel_waiters
-- table), run by the row trigger on every job a claim's rescue put back:
-- 460-600 ms of JIT per job, so a claim that rescued 100 expired leases took
-- 17.5 s instead of 7 ms (PostgreSQL 15, jit = on as shipped). JIT never
-- pays for the few-row statements of the engine, so these functions turn it
-- off for the duration of the call (nested calls and triggers included).
--
-- Guarantees: unchanged; only how the plans are executed changes. A function
-- restated later with enable_seqscan = off must keep jit = off
-- (tests/test_skewed_plans.py checks the catalog).
ALTER FUNCTION raquel_claim(text[], text, integer, bigint, bigint, boolean, bigint) SET jit = off;
ALTER FUNCTION raquel_complete_many(uuid[], uuid[], bigint) SET jit = off;
ALTER FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) SET jit = off;
