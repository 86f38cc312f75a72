-- 0019_enqueue_job: raquel_enqueue_job, the enqueue that answers with the
-- job's row.
--
-- raquel's enqueue() returns the Job, and code written for raquel reads it
-- (rq.enqueue(...).id). Reading the row back after raquel_enqueue would cost
-- the client a second round trip, and an enqueuer role may not read
-- raquel_jobs at all (raquel_pg/roles.sql grants it EXECUTE only). So the
-- row comes back from the same call: raquel_enqueue decides everything
-- (arguments, defaults, unique keys), then its job is read by primary key in
-- the same call. For unique_mode 'keep' that is the job already holding
-- the key, as it is: the row is the truth, not the arguments.
--
-- No `now` argument: moving the clock is for the owner, who calls
-- raquel_enqueue directly.

CREATE OR REPLACE FUNCTION raquel_enqueue_job(
    queue           text    DEFAULT 'default',
    payload         text    DEFAULT NULL,
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    priority        integer DEFAULT NULL,
    unique_key      text    DEFAULT NULL,
    unique_mode     text    DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
-- Two statements, not one join: a statement sees the rows committed before
-- it started, so the job raquel_enqueue inserts is visible to the next
-- statement only.
DECLARE
    v_id uuid := raquel_enqueue(
        queue => raquel_enqueue_job.queue, payload => raquel_enqueue_job.payload,
        at => raquel_enqueue_job.at, delay => raquel_enqueue_job.delay,
        max_age => raquel_enqueue_job.max_age, max_retry_count => raquel_enqueue_job.max_retry_count,
        min_retry_delay => raquel_enqueue_job.min_retry_delay,
        max_retry_delay => raquel_enqueue_job.max_retry_delay,
        backoff_base => raquel_enqueue_job.backoff_base, priority => raquel_enqueue_job.priority,
        unique_key => raquel_enqueue_job.unique_key, unique_mode => raquel_enqueue_job.unique_mode);
BEGIN
    RETURN QUERY SELECT * FROM raquel_jobs AS j WHERE j.id = v_id;
END
$$;

COMMENT ON FUNCTION raquel_enqueue_job IS
'Enqueues a job exactly as raquel_enqueue (same arguments but now, same rules and errors) and returns its row in the same call: for unique_mode keep, the row of the job already holding the key.';

REVOKE EXECUTE ON FUNCTION raquel_enqueue_job FROM PUBLIC;
