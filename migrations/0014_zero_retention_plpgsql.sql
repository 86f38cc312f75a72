-- 0014_zero_retention_plpgsql: raquel_zero_retention keeps its plan for the
-- session.
--
-- Guarantees: 0007_outcomes' raquel_zero_retention, unchanged (the queues
-- whose successes are deleted at once: queues, with a retention 0 of their
-- own, and when default_zero every queue but kept; read-only).
--
-- Measured reason (PostgreSQL 15; issue 23). raquel_complete (each success
-- recorded at once) and raquel_complete_many (each batch) call it once per
-- call. As a SQL-language function with a SET clause it is never inlined, and
-- PostgreSQL before 18 parses and plans a SQL function's body anew for each
-- statement that calls it: 228-281 us per call of a PL/pgSQL caller, against
-- 159-171 us with this body in PL/pgSQL, which plans it once per session
-- (alternating runs of 2,000 calls, the round trip included). A worker's
-- profile of claims and batched successes (perf) showed the parser
-- (base_yyparse) at 1% of the backend.

CREATE OR REPLACE FUNCTION raquel_zero_retention(OUT queues text[], OUT default_zero boolean, OUT kept text[])
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT ARRAY(SELECT s.queue::text FROM raquel_queue_settings s WHERE s.retention_ms = 0),
           coalesce((SELECT d.retention_ms = 0 FROM raquel_retention_default d), false),
           ARRAY(SELECT s.queue::text FROM raquel_queue_settings s
                 WHERE s.retention_ms IS NOT NULL AND s.retention_ms <> 0)
    INTO raquel_zero_retention.queues, raquel_zero_retention.default_zero, raquel_zero_retention.kept;
END;
$$;
COMMENT ON FUNCTION raquel_zero_retention() IS
    'The queues whose successes raquel_complete / raquel_complete_many delete at once (retention 0): queues (their own retention 0) and, when default_zero (the default retention is 0), every queue but kept (a retention of its own, not 0). Read-only.';
