-- 0015_result_unwatch: a result-wait registration is deleted only by a caller
-- who names its job as well as its id.
--
-- Why: registration ids are a sequence, so raquel_result_unwatch(watch_id)
-- let any role that may wait for results (the worker, and since roles.sql
-- grants it, the enqueuer) delete another client's registration by guessing
-- its id; that client then waited for a notification that never came, until
-- its timeout. Naming the job too (74 of a job id's bits are random) limits
-- it to the jobs whose ids the caller has. raquel_result_unwatch's signature
-- grows, so it is created anew, the old one's EXECUTE grants are carried over
-- to it, and the old one is dropped.

-- Carries the EXECUTE grants of p_old over to p_new, then drops p_old (a new
-- function is executable by PUBLIC; PUBLIC keeps EXECUTE only if it had it).
CREATE OR REPLACE FUNCTION pg_temp.raquel_replace_function(p_old regprocedure, p_new regprocedure)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_grantee text;
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', p_new);
    FOR v_grantee IN
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
        FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) AS a
        WHERE p.oid = p_old AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', p_new, v_grantee);
    END LOOP;
    EXECUTE format('DROP FUNCTION %s', p_old);
END;
$$;

-- Guarantees: deletes the registration watch_id if it is job_id's; true if
-- it was there, false if it was already served, never existed or is another
-- job's (then nothing is deleted).
CREATE FUNCTION raquel_result_unwatch(watch_id bigint, job_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_found boolean;
BEGIN
    DELETE FROM raquel_result_waiters w
    WHERE w.id = raquel_result_unwatch.watch_id AND w.job_id = raquel_result_unwatch.job_id
    RETURNING true INTO v_found;
    RETURN coalesce(v_found, false);
END;
$$;
SELECT pg_temp.raquel_replace_function('raquel_result_unwatch(bigint)'::regprocedure,
                                       'raquel_result_unwatch(bigint, uuid)'::regprocedure);
COMMENT ON FUNCTION raquel_result_unwatch(bigint, uuid) IS
'Deletes the result-wait registration watch_id of job job_id (a waiter that gave up); true if it was there, false if it was already served, never existed or is another job''s (nothing deleted).';
