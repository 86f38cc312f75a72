-- 0012_renew_leases_probe: raquel_renew_leases reaches each held job by one
-- primary-key probe, whatever the statistics say.
--
-- Guarantees: 0006_claim's raquel_renew_leases, unchanged (extends the leases
-- of the pairs still held, returns the ids renewed; 22023 naming the
-- argument). Only the plan changes.
--
-- Measured reason (PostgreSQL 15; issue 23): with statistics taken while
-- every job was waiting ('claimed' estimated at 1 row), its UPDATE joined
-- unnest(job_ids, claim_ids) to the table as the inner side of a nested loop
-- whose outer side read the whole primary key, filtered on 'claimed': every
-- claimed row compared with every pair. Renewing 1,000 held jobs in a table
-- of 20,000 took 143 ms (auto_explain), and the cost grows with the table
-- times the pairs held (a worker with prefetch=500 holds over 500). The same
-- shape in a leaner raquel_complete_many, measured in issue 23 and reverted,
-- took 0.2-6.5 s a call in a drain by four processes. raquel_complete_many
-- (0007_outcomes) joins its pairs after a DISTINCT ON, which the planner
-- estimates at a few hundred groups, and probes the primary key per pair;
-- this function now does the same (tests/sql/test_skewed_plans.py checks
-- the index condition for both).

CREATE OR REPLACE FUNCTION raquel_renew_leases(
    job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_now bigint := CASE WHEN raquel_renew_leases.now IS NULL THEN raquel_now_ms()
                         ELSE raquel_clock('raquel_renew_leases', raquel_renew_leases.now) END;
BEGIN
    IF raquel_renew_leases.job_ids IS NULL OR raquel_renew_leases.claim_ids IS NULL
       OR coalesce(cardinality(raquel_renew_leases.job_ids), 0)
          <> coalesce(cardinality(raquel_renew_leases.claim_ids), 0) THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'claim_ids',
            format('must be an array as long as job_ids (%s), got %s',
                   cardinality(raquel_renew_leases.job_ids), cardinality(raquel_renew_leases.claim_ids)));
    END IF;
    IF raquel_renew_leases.lease IS NULL OR raquel_renew_leases.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('must be > 0 ms, got %s', raquel_renew_leases.lease));
    END IF;
    IF raquel_renew_leases.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('now + lease must be at most 253402214399999 ms (9999-12-30 UTC), got %s + %s',
                   v_now, raquel_renew_leases.lease));
    END IF;
    -- The pairs, each once, are joined to the table: the planner estimates
    -- them as a few hundred groups, so it probes the primary key per pair
    -- whatever the statistics say of 'claimed' (see the header).
    RETURN QUERY
    WITH held AS (
        SELECT DISTINCT ON (h.id, h.claim_id) h.id, h.claim_id
        FROM unnest(raquel_renew_leases.job_ids, raquel_renew_leases.claim_ids) AS h(id, claim_id)
        ORDER BY h.id, h.claim_id
    )
    UPDATE raquel_jobs j SET lease_expires_at = v_now + raquel_renew_leases.lease
    FROM held
    WHERE j.id = held.id AND j.claim_id = held.claim_id AND j.status = 'claimed'
    RETURNING j.id;
END;
$$;
COMMENT ON FUNCTION raquel_renew_leases(uuid[], uuid[], bigint, bigint) IS
    'Extends the leases of the (job_ids[i], claim_ids[i]) still held to now + lease; returns the ids renewed. Arrays of different lengths: 22023 naming claim_ids.';
