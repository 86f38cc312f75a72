-- 0033_take_checks: raquel_take takes a handed job only for the worker it was
-- handed to, of that worker's queues, when the caller says who it is.
--
-- A hand-off is named in NOTIFY raquel_handoff '<worker> <job id> <claim_id>',
-- which any role that may connect can send, or read and replay. 0019's
-- raquel_take checked only the pair (job id, claim_id): a notification sent by
-- hand with another worker's genuine pair made a worker that takes first (a
-- role that may not read raquel_jobs, or a job with less than half its lease
-- left) take that job and run it, although it was claimed for another worker
-- or queue (the workers' read of a handed job checks both; raquel_pg's
-- handoffs_async.py). Now raquel_take refuses it when given claim_as or queues:
-- the job must be claimed by claim_as and of one of queues. Without them it
-- behaves as 0019's (older workers call it so).

-- Its EXECUTE grants are copied to the new signature (raquel-pg grant
-- --worker gave them by name).
CREATE TEMPORARY TABLE raquel_take_grants ON COMMIT DROP AS
SELECT a.grantee, a.is_grantable
FROM pg_proc p, aclexplode(p.proacl) AS a
WHERE p.oid = 'raquel_take(uuid, uuid, bigint)'::regprocedure
  AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;
DROP FUNCTION raquel_take(uuid, uuid, bigint);

-- Guarantees: as 0019_handoff's raquel_take; given claim_as, only a job
-- claimed by claim_as is taken, and given queues, only a job of one of them;
-- else no row, nothing changed. Raises invalid_parameter_value for a NULL
-- job_id or claim_id, a lease not > 0, an empty claim_as, or an empty queues.
CREATE FUNCTION raquel_take(
    job_id   uuid,
    claim_id uuid,
    lease    bigint DEFAULT 60000,
    claim_as text   DEFAULT NULL,
    queues   text[] DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1 SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    IF raquel_take.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_take.claim_id IS NULL THEN
        PERFORM raquel_invalid('raquel_take', 'claim_id', 'must not be NULL');
    END IF;
    IF raquel_take.lease IS NULL OR raquel_take.lease <= 0 OR raquel_take.lease > 253402214399999 - v_now THEN
        PERFORM raquel_invalid('raquel_take', 'lease',
            format('must be > 0 ms (and now + lease within the time range), got %s', raquel_take.lease));
    END IF;
    IF raquel_take.claim_as = '' THEN
        PERFORM raquel_invalid('raquel_take', 'claim_as', 'must not be empty (NULL: any worker)');
    END IF;
    IF cardinality(raquel_take.queues) = 0 THEN
        PERFORM raquel_invalid('raquel_take', 'queues', 'must name at least one queue (NULL: any queue)');
    END IF;
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET claimed_at = v_now, lease_expires_at = v_now + raquel_take.lease
    WHERE j.id = raquel_take.job_id AND j.claim_id = raquel_take.claim_id
      AND j.status = 'claimed' AND j.claimed_at IS NULL
      AND (raquel_take.claim_as IS NULL OR j.claimed_by = raquel_take.claim_as)
      AND (raquel_take.queues IS NULL OR j.queue = ANY (raquel_take.queues))
    RETURNING j.*;
END;
$$;
COMMENT ON FUNCTION raquel_take(uuid, uuid, bigint, text, text[]) IS
    'Takes a job handed to a worker (NOTIFY raquel_handoff ''<worker> <job id> <claim_id>''): when still claimed under claim_id, not yet taken, claimed by claim_as (when given) and of one of queues (when given), sets claimed_at, renews its lease to lease ms from now and returns its row; else no row, nothing changed. Its commit does not wait for the WAL flush when the transaction wrote nothing before (the claim is already durable). 22023 for a NULL job_id or claim_id, lease not > 0, an empty claim_as or an empty queues.';
REVOKE EXECUTE ON FUNCTION raquel_take(uuid, uuid, bigint, text, text[]) FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM raquel_take_grants LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION raquel_take(uuid, uuid, bigint, text, text[]) TO %s%s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END;
$$;
