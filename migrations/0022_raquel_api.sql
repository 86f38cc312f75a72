-- 0022_raquel_api: the two calls raquel's by-id API needs that the engine
-- did not have.
--
-- raquel settles a job claimed with claim() by its id and attempt number:
-- resolve(job_id, attempt_num), reject(job_id, attempt_num) and
-- fail(job, attempt_num, ...). raquel_pg's outcome functions are fenced by
-- the claim's claim_id instead. raquel_attempt_claim turns (job_id,
-- attempt_num) into that claim_id, so the client calls the existing fenced
-- functions with it in one statement, e.g.
--   SELECT raquel_complete(id, raquel_attempt_claim(id, n))
-- and an attempt number that is not the running attempt's changes nothing
-- (the fenced function gets NULL and matches no row). The attempt number is
-- raquel's: the running attempt of a job with `attempts` finished attempts
-- is attempts + 1.
--
-- raquel's unclaim(job_id) puts a claimed job back whoever holds it;
-- raquel_release needs the claim_id, so raquel_unclaim is new.
--
-- Like every migration after 0021, this one runs with search_path = raquel,
-- pg_catalog, pg_temp: both functions are created in schema raquel, pinned
-- to that path, and get their stand-ins in the install schema from the
-- runner (raquel_expose).

CREATE FUNCTION raquel_attempt_claim(job_id uuid, attempt_num integer)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF raquel_attempt_claim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'job_id', 'must not be NULL');
    END IF;
    IF raquel_attempt_claim.attempt_num IS NULL OR raquel_attempt_claim.attempt_num < 1 THEN
        PERFORM raquel_invalid('raquel_attempt_claim', 'attempt_num',
            format('must be >= 1, got %s', coalesce(raquel_attempt_claim.attempt_num::text, 'NULL')));
    END IF;
    RETURN (SELECT j.claim_id FROM raquel_jobs j
            WHERE j.id = raquel_attempt_claim.job_id AND j.status = 'claimed'
              AND j.attempts + 1 = raquel_attempt_claim.attempt_num);
END;
$$;

COMMENT ON FUNCTION raquel_attempt_claim(uuid, integer) IS
'The claim_id of the job''s current claim when the job is claimed and attempt_num is its running attempt (attempts + 1), else NULL; passing it to raquel_complete/raquel_fail/raquel_reject settles exactly that attempt and nothing else. Changes nothing. SQLSTATE 22023 naming the argument for a NULL job_id or an attempt_num below 1.';

REVOKE EXECUTE ON FUNCTION raquel_attempt_claim(uuid, integer) FROM PUBLIC;

CREATE FUNCTION raquel_unclaim(job_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    IF raquel_unclaim.job_id IS NULL THEN
        PERFORM raquel_invalid('raquel_unclaim', 'job_id', 'must not be NULL');
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_unclaim.job_id AND j.status = 'claimed'
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;

COMMENT ON FUNCTION raquel_unclaim(uuid) IS
'Puts a claimed job back as queued, whoever holds it (raquel''s unclaim): no attempt counted, claim cleared; true if the job was claimed, false (nothing written) otherwise. The holder''s later outcome calls are refused (their claim is no longer current) and its lease renewals stop. SQLSTATE 22023 naming job_id when it is NULL.';

REVOKE EXECUTE ON FUNCTION raquel_unclaim(uuid) FROM PUBLIC;
