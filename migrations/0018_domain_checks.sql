-- 0018_domain_checks: the one-column rules of raquel_jobs move from table
-- CHECK constraints into domains, so that a statement that writes a few jobs
-- no longer pays for reading every rule again.
--
-- At the start of every statement that inserts or updates rows of a table,
-- PostgreSQL reads each of the table's CHECK constraints back from its stored
-- text and plans it again (ExecRelCheck), however few rows the statement
-- writes. raquel_jobs had five, about 7,400 characters of stored text, and
-- that was half the server's work of a raquel_enqueue call (callgrind,
-- PostgreSQL 18: 237k of 462k instructions). A domain's constraints are read
-- once per session and kept in its type cache.
--
-- The rules are the same; only where they live changes:
--   status                        raquel_status      one of the seven statuses
--   queue, unique_key             raquel_name        non-empty, at most 1000 bytes
--   min_retry_delay, backoff_base raquel_delay       >= 0 ms
--   max_age                       raquel_max_age     > 0 ms
--   max_retry_count               raquel_retry_count >= 0
-- Two rules span several columns and stay table constraints:
-- raquel_jobs_delays_check (now max_retry_delay >= min_retry_delay, its
-- other parts being domains) and raquel_jobs_claim_check, unchanged.
-- A value that breaks a rule still raises check_violation (SQLSTATE 23514),
-- now naming the domain's constraint, e.g. raquel_status_check. Clients see
-- the columns' base types (text, bigint, integer): PostgreSQL reports a
-- domain column as its base type.
--
-- Upgrading: the columns change type without a table rewrite (the domains
-- get their constraints only after the change); the partial indexes whose
-- key or predicate reads them are rebuilt. Each domain constraint, and the
-- new delays check, is then validated by one scan of the table. Beside 1M
-- finished jobs (PostgreSQL 18 embedded) this migration took 1.7 s. The two views that read these columns, and the update
-- trigger whose WHEN clause does, are dropped and created again as they
-- were; grants on the views are carried over. raquel_stats returns its
-- queue column as text again.

CREATE DOMAIN raquel_status AS text;
CREATE DOMAIN raquel_name AS text;
CREATE DOMAIN raquel_delay AS bigint;
CREATE DOMAIN raquel_max_age AS bigint;
CREATE DOMAIN raquel_retry_count AS integer;

CREATE TEMPORARY TABLE raquel_0018_view_grants ON COMMIT DROP AS
SELECT c.relname, a.grantee, a.privilege_type, a.is_grantable
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.oid IN ('raquel_problem_jobs'::regclass, 'raquel_expired_leases'::regclass)
  AND a.grantee <> c.relowner;

DROP VIEW raquel_problem_jobs, raquel_expired_leases;
DROP TRIGGER raquel_jobs_20_notify_update ON raquel_jobs;

ALTER TABLE raquel_jobs
    ALTER COLUMN status TYPE raquel_status,
    ALTER COLUMN queue TYPE raquel_name,
    ALTER COLUMN unique_key TYPE raquel_name,
    ALTER COLUMN min_retry_delay TYPE raquel_delay,
    ALTER COLUMN backoff_base TYPE raquel_delay,
    ALTER COLUMN max_age TYPE raquel_max_age,
    ALTER COLUMN max_retry_count TYPE raquel_retry_count;

ALTER DOMAIN raquel_status ADD CONSTRAINT raquel_status_check CHECK (VALUE IN (
    'queued', 'claimed', 'success', 'failed', 'cancelled', 'expired', 'exhausted'));
-- Queue names travel as NOTIFY payloads (8000 bytes at most) and sit in a
-- btree index (about 2700 bytes at most): 1000 bytes leaves room for both.
ALTER DOMAIN raquel_name ADD CONSTRAINT raquel_name_check CHECK (VALUE <> '' AND octet_length(VALUE) <= 1000);
ALTER DOMAIN raquel_delay ADD CONSTRAINT raquel_delay_check CHECK (VALUE >= 0);
ALTER DOMAIN raquel_max_age ADD CONSTRAINT raquel_max_age_check CHECK (VALUE > 0);
ALTER DOMAIN raquel_retry_count ADD CONSTRAINT raquel_retry_count_check CHECK (VALUE >= 0);

COMMENT ON DOMAIN raquel_status IS 'A job status: queued, claimed, success, failed, cancelled, expired, exhausted.';
COMMENT ON DOMAIN raquel_name IS 'A queue name or unique key: non-empty, at most 1000 bytes.';
COMMENT ON DOMAIN raquel_delay IS 'A retry delay or backoff base, in ms: >= 0.';
COMMENT ON DOMAIN raquel_max_age IS 'A job''s max_age, in ms: > 0.';
COMMENT ON DOMAIN raquel_retry_count IS 'A job''s max_retry_count: >= 0.';

ALTER TABLE raquel_jobs
    DROP CONSTRAINT raquel_jobs_status_check,
    DROP CONSTRAINT raquel_jobs_queue_check,
    DROP CONSTRAINT raquel_jobs_unique_key_check,
    DROP CONSTRAINT raquel_jobs_delays_check;
ALTER TABLE raquel_jobs ADD CONSTRAINT raquel_jobs_delays_check CHECK (max_retry_delay >= min_retry_delay);

-- Guarantees: as in 0002. RETURN QUERY wants the declared column types
-- exactly, so the queue, now a raquel_name, is returned as text. SECURITY
-- DEFINER restated (0007), as CREATE OR REPLACE resets it.
CREATE OR REPLACE FUNCTION raquel_stats(now bigint DEFAULT NULL)
RETURNS TABLE (
    queue               text,
    total               bigint,
    queued              bigint,
    claimed             bigint,
    success             bigint,
    failed              bigint,
    cancelled           bigint,
    expired             bigint,
    exhausted           bigint,
    ready               bigint,
    scheduled           bigint,
    lease_expired       bigint,
    oldest_ready_age_ms bigint
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_stats.now, raquel_now_ms());
BEGIN
    RETURN QUERY
    WITH by_status AS (
        SELECT j.queue, j.status, count(*) AS n FROM raquel_jobs j GROUP BY j.queue, j.status
    ), counts AS (
        SELECT b.queue,
               sum(b.n)::bigint AS total,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'queued'), 0)::bigint AS queued,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'claimed'), 0)::bigint AS claimed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'success'), 0)::bigint AS success,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'failed'), 0)::bigint AS failed,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'expired'), 0)::bigint AS expired,
               coalesce(sum(b.n) FILTER (WHERE b.status = 'exhausted'), 0)::bigint AS exhausted
        FROM by_status b GROUP BY b.queue
    ), waiting AS (
        SELECT j.queue,
               count(*) FILTER (WHERE j.scheduled_at <= v_now) AS ready,
               count(*) FILTER (WHERE j.scheduled_at > v_now) AS scheduled,
               v_now - min(j.scheduled_at) FILTER (WHERE j.scheduled_at <= v_now) AS oldest_ready_age_ms
        FROM raquel_jobs j WHERE j.status IN ('queued', 'failed') GROUP BY j.queue
    ), lost AS (
        SELECT j.queue, count(*) AS lease_expired FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now GROUP BY j.queue
    )
    SELECT c.queue::text, c.total, c.queued, c.claimed, c.success, c.failed, c.cancelled, c.expired,
           c.exhausted, coalesce(w.ready, 0), coalesce(w.scheduled, 0), coalesce(l.lease_expired, 0),
           w.oldest_ready_age_ms
    FROM counts c
    LEFT JOIN waiting w ON w.queue = c.queue
    LEFT JOIN lost l ON l.queue = c.queue
    ORDER BY c.queue;
END;
$$;

-- As in 0002.
CREATE VIEW raquel_problem_jobs AS
SELECT j.id, j.queue, j.status, j.attempts, j.max_retry_count, j.error,
       raquel_ts(j.finished_at) AS finished, raquel_ts(j.enqueued_at) AS enqueued,
       CASE WHEN j.status = 'failed' THEN raquel_ts(j.scheduled_at) END AS next_attempt,
       j.claimed_by AS last_worker
FROM raquel_jobs j
WHERE j.status IN ('failed', 'exhausted', 'expired')
ORDER BY j.finished_at DESC NULLS LAST, j.id;

-- As in 0002.
CREATE VIEW raquel_expired_leases AS
SELECT j.id, j.queue, j.claimed_by, j.attempts,
       raquel_ts(j.claimed_at) AS claimed, raquel_ts(j.lease_expires_at) AS lease_expired,
       (raquel_now_ms() - j.lease_expires_at) * interval '1 millisecond' AS expired_for
FROM raquel_jobs j
WHERE j.status = 'claimed' AND j.lease_expires_at <= raquel_now_ms()
ORDER BY j.lease_expires_at, j.id;

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM raquel_0018_view_grants LOOP
        EXECUTE format('GRANT %s ON %I TO %s%s', g.privilege_type, g.relname,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END;
$$;

-- As in 0001.
CREATE TRIGGER raquel_jobs_20_notify_update
    AFTER UPDATE ON raquel_jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('queued', 'failed')
          AND (OLD.status NOT IN ('queued', 'failed') OR NEW.scheduled_at < OLD.scheduled_at))
    EXECUTE FUNCTION raquel_tg_jobs__notify_update();
