-- 0001_core: the jobs table and the functions that decide which job runs and
-- what happens to it.
--
-- Every rule of the queue lives here, so that psql users and the Python client
-- share one implementation. Functions run with a fixed search_path (the schema
-- the migration runner installs into, then pg_temp), so no object created by a
-- user can hijack them.
--
-- Times are milliseconds since the Unix epoch (UTC) and durations are
-- milliseconds, as in raquel, so rows can be copied across.
-- Every function that reads the clock takes an optional "now" argument so that
-- tests (and operators replaying history) can fix time.

-- The clock, in ms since epoch. clock_timestamp() rather than now(): a claim or
-- an outcome inside a long transaction must not see a stale time.
CREATE FUNCTION raquel_now_ms() RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE raquel_jobs (
    -- raquel's columns, same names and meanings.
    id               uuid    PRIMARY KEY DEFAULT gen_random_uuid(),
    queue            text    NOT NULL DEFAULT 'default',
    payload          text,
    status           text    NOT NULL DEFAULT 'queued',
    max_age          bigint,
    max_retry_count  integer,
    min_retry_delay  bigint  NOT NULL DEFAULT 1000,
    max_retry_delay  bigint  NOT NULL DEFAULT 43200000,
    backoff_base     bigint  NOT NULL DEFAULT 1000,
    enqueued_at      bigint  NOT NULL DEFAULT raquel_now_ms(),
    scheduled_at     bigint  NOT NULL DEFAULT raquel_now_ms(),
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    error_trace      text,
    claimed_by       text,
    claimed_at       bigint,
    finished_at      bigint,
    -- raquel_pg additions.
    -- lease_expires_at: a claim is a lease. The worker renews it while the job
    -- runs; once it has run out the worker is presumed dead and the job is
    -- rescued (raquel's "claimed for over a minute and not locked" rule,
    -- without holding a transaction open for the whole job).
    lease_expires_at bigint,
    -- claim_id: a fencing token, new at every claim. Outcome functions act only
    -- when given the claim_id of the current claim, so a slow worker whose job
    -- was rescued and claimed again cannot overwrite the new owner's result.
    claim_id         uuid,
    CONSTRAINT raquel_jobs_status_check CHECK (status IN (
        'queued', 'claimed', 'success', 'failed', 'cancelled', 'expired', 'exhausted')),
    -- Queue names travel as NOTIFY payloads (8000 bytes at most) and sit in a
    -- btree index (about 2700 bytes at most): 1000 bytes leaves room for both.
    CONSTRAINT raquel_jobs_queue_check CHECK (queue <> '' AND octet_length(queue) <= 1000),
    CONSTRAINT raquel_jobs_delays_check CHECK (
        min_retry_delay >= 0 AND max_retry_delay >= min_retry_delay AND backoff_base >= 0
        AND (max_age IS NULL OR max_age > 0)
        AND (max_retry_count IS NULL OR max_retry_count >= 0)),
    CONSTRAINT raquel_jobs_claim_check CHECK (
        status <> 'claimed' OR (lease_expires_at IS NOT NULL AND claim_id IS NOT NULL))
);

COMMENT ON TABLE raquel_jobs IS
    'raquel_pg jobs. Change rows through the raquel_* functions; see README "Operating with psql".';

-- The claim: ready jobs of one queue, oldest scheduled first. Partial, so the
-- index holds only waiting jobs and stays small however much history the
-- table keeps.
CREATE INDEX raquel_jobs_ready_queue_idx ON raquel_jobs (queue, scheduled_at)
    WHERE status IN ('queued', 'failed');
-- The claim across all queues (a worker subscribed to every queue).
CREATE INDEX raquel_jobs_ready_idx ON raquel_jobs (scheduled_at)
    WHERE status IN ('queued', 'failed');
-- Rescue: claimed jobs by lease deadline. Holds only running jobs.
CREATE INDEX raquel_jobs_lease_idx ON raquel_jobs (lease_expires_at)
    WHERE status = 'claimed';
-- Expiry: waiting jobs that have a max_age, by deadline.
CREATE INDEX raquel_jobs_expiry_idx ON raquel_jobs ((enqueued_at + max_age))
    WHERE status IN ('queued', 'failed') AND max_age IS NOT NULL;

-- Raises invalid_parameter_value (SQLSTATE 22023) naming the bad argument in
-- both the message and the error's COLUMN field, which clients read to say
-- which argument was wrong.
CREATE FUNCTION raquel_invalid(p_function text, p_argument text, p_problem text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    RAISE EXCEPTION '%: invalid argument "%": %', p_function, p_argument, p_problem
        USING ERRCODE = 'invalid_parameter_value', COLUMN = p_argument;
END;
$$;

-- Guarantees: the delay before the next attempt after a job's n-th failed
-- attempt is backoff_base * 2^(n-1), clamped to [min_retry_delay,
-- max_retry_delay]: 1 s, 2 s, 4 s, ... 12 h with the defaults. Never
-- overflows, whatever n is.
CREATE FUNCTION raquel_retry_delay(
    attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT least(
        raquel_retry_delay.max_retry_delay::float8,
        greatest(
            raquel_retry_delay.min_retry_delay::float8,
            raquel_retry_delay.backoff_base::float8
                * power(2::float8, least(greatest(raquel_retry_delay.attempts - 1, 0), 62))
        )
    )::bigint
$$;

-- Guarantees: inserts one queued job and returns its id, or raises
-- invalid_parameter_value naming the bad argument and writes nothing.
-- NULL for any option means its default. The job is scheduled at
-- coalesce(at, now) + coalesce(delay, 0) (raquel: the delay is added to "at").
-- From psql: SELECT raquel_enqueue('emails', '{"to": "a@b.c"}');
--            SELECT raquel_enqueue(queue => 'q', payload => 'x', delay => 5000);
CREATE FUNCTION raquel_enqueue(
    queue           text    DEFAULT 'default',
    payload         text    DEFAULT NULL,
    at              bigint  DEFAULT NULL,
    delay           bigint  DEFAULT NULL,
    max_age         bigint  DEFAULT NULL,
    max_retry_count integer DEFAULT NULL,
    min_retry_delay bigint  DEFAULT NULL,
    max_retry_delay bigint  DEFAULT NULL,
    backoff_base    bigint  DEFAULT NULL,
    now             bigint  DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now       bigint := coalesce(raquel_enqueue.now, raquel_now_ms());
    v_min_delay bigint := coalesce(raquel_enqueue.min_retry_delay, 1000);
    v_max_delay bigint := coalesce(raquel_enqueue.max_retry_delay, 43200000);
    v_id        uuid;
BEGIN
    IF raquel_enqueue.queue IS NULL OR raquel_enqueue.queue = '' THEN
        PERFORM raquel_invalid('raquel_enqueue', 'queue', 'must be a non-empty string');
    END IF;
    IF octet_length(raquel_enqueue.queue) > 1000 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'queue',
            format('must be at most 1000 bytes, got %s', octet_length(raquel_enqueue.queue)));
    END IF;
    IF raquel_enqueue.delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'delay', format('must be >= 0 ms, got %s', raquel_enqueue.delay));
    END IF;
    IF raquel_enqueue.max_age <= 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_age', format('must be > 0 ms, got %s', raquel_enqueue.max_age));
    END IF;
    IF raquel_enqueue.max_retry_count < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_count',
            format('must be >= 0, got %s', raquel_enqueue.max_retry_count));
    END IF;
    IF v_min_delay < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'min_retry_delay', format('must be >= 0 ms, got %s', v_min_delay));
    END IF;
    IF v_max_delay < v_min_delay THEN
        PERFORM raquel_invalid('raquel_enqueue', 'max_retry_delay',
            format('must be >= min_retry_delay (%s ms), got %s', v_min_delay, v_max_delay));
    END IF;
    IF raquel_enqueue.backoff_base < 0 THEN
        PERFORM raquel_invalid('raquel_enqueue', 'backoff_base',
            format('must be >= 0 ms, got %s', raquel_enqueue.backoff_base));
    END IF;

    INSERT INTO raquel_jobs AS j (
        queue, payload, max_age, max_retry_count, min_retry_delay, max_retry_delay,
        backoff_base, enqueued_at, scheduled_at)
    VALUES (
        raquel_enqueue.queue, raquel_enqueue.payload, raquel_enqueue.max_age,
        raquel_enqueue.max_retry_count, v_min_delay, v_max_delay,
        coalesce(raquel_enqueue.backoff_base, 1000), v_now,
        coalesce(raquel_enqueue.at, v_now) + coalesce(raquel_enqueue.delay, 0))
    RETURNING j.id INTO v_id;
    RETURN v_id;
END;
$$;

-- Guarantees: every waiting (queued or failed) job whose enqueued_at + max_age
-- has passed becomes 'expired' with finished_at = now; returns how many.
-- Rows locked by a concurrent caller are skipped, never waited for.
CREATE FUNCTION raquel_expire(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   bigint := coalesce(raquel_expire.now, raquel_now_ms());
    v_count integer;
BEGIN
    WITH due AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status IN ('queued', 'failed') AND j.max_age IS NOT NULL
          AND j.enqueued_at + j.max_age <= v_now
          AND (raquel_expire.queues IS NULL OR j.queue = ANY (raquel_expire.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET status = 'expired', finished_at = v_now
    FROM due WHERE j.id = due.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: every claimed job whose lease ran out (its worker died or hung)
-- counts one failed attempt with error 'lease expired ...' and becomes
-- 'failed', claimable at once, or 'exhausted' when that attempt was its last.
-- Returns how many. Rows locked by a concurrent caller are skipped.
CREATE FUNCTION raquel_rescue(queues text[] DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now   bigint := coalesce(raquel_rescue.now, raquel_now_ms());
    v_count integer;
BEGIN
    WITH lost AS (
        SELECT j.id FROM raquel_jobs j
        WHERE j.status = 'claimed' AND j.lease_expires_at <= v_now
          AND (raquel_rescue.queues IS NULL OR j.queue = ANY (raquel_rescue.queues))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE raquel_jobs j SET
        attempts = j.attempts + 1,
        status = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        error = format('lease expired at %s: worker %s stopped renewing its claim',
                       j.lease_expires_at, coalesce(j.claimed_by, '(unnamed)')),
        error_trace = NULL,
        scheduled_at = v_now,
        finished_at = v_now,
        lease_expires_at = NULL
    FROM lost WHERE j.id = lost.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Guarantees: claims up to "batch" ready jobs of the given queues (NULL: all
-- queues) and returns them; each returned job is 'claimed' by this call alone
-- (FOR UPDATE SKIP LOCKED: concurrent claimers never get the same job and
-- never wait for each other), with a lease of "lease" ms and a fresh claim_id.
-- Ready means: status queued or failed, scheduled_at <= now, not past max_age.
-- Before claiming, it expires jobs past max_age and rescues jobs whose lease
-- ran out, in the same queues, so no sweeper process is needed.
-- Order: oldest scheduled_at first.
CREATE FUNCTION raquel_claim(
    queues   text[]  DEFAULT NULL,
    claim_as text    DEFAULT NULL,
    batch    integer DEFAULT 1,
    lease    bigint  DEFAULT 60000,
    now      bigint  DEFAULT NULL
) RETURNS SETOF raquel_jobs
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_claim.now, raquel_now_ms());
BEGIN
    IF raquel_claim.batch IS NULL OR raquel_claim.batch < 1 THEN
        PERFORM raquel_invalid('raquel_claim', 'batch', format('must be >= 1, got %s', raquel_claim.batch));
    END IF;
    IF raquel_claim.lease IS NULL OR raquel_claim.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_claim', 'lease', format('must be > 0 ms, got %s', raquel_claim.lease));
    END IF;

    PERFORM raquel_expire(raquel_claim.queues, v_now);
    PERFORM raquel_rescue(raquel_claim.queues, v_now);

    -- Three static statements rather than one with an OR, so that each gets
    -- its own cached plan on the index that matches it.
    IF raquel_claim.queues IS NULL THEN
        RETURN QUERY
        WITH picked AS (
            SELECT j.id FROM raquel_jobs j
            WHERE j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
            ORDER BY j.scheduled_at
            LIMIT raquel_claim.batch
            FOR UPDATE SKIP LOCKED
        )
        UPDATE raquel_jobs j SET
            status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
            lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
        FROM picked WHERE j.id = picked.id
        RETURNING j.*;
    ELSIF cardinality(raquel_claim.queues) = 1 THEN
        RETURN QUERY
        WITH picked AS (
            SELECT j.id FROM raquel_jobs j
            WHERE j.queue = raquel_claim.queues[1]
              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
            ORDER BY j.scheduled_at
            LIMIT raquel_claim.batch
            FOR UPDATE SKIP LOCKED
        )
        UPDATE raquel_jobs j SET
            status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
            lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
        FROM picked WHERE j.id = picked.id
        RETURNING j.*;
    ELSE
        RETURN QUERY
        WITH picked AS (
            SELECT j.id FROM raquel_jobs j
            WHERE j.queue = ANY (raquel_claim.queues)
              AND j.status IN ('queued', 'failed') AND j.scheduled_at <= v_now
              AND (j.max_age IS NULL OR j.enqueued_at + j.max_age > v_now)
            ORDER BY j.scheduled_at
            LIMIT raquel_claim.batch
            FOR UPDATE SKIP LOCKED
        )
        UPDATE raquel_jobs j SET
            status = 'claimed', claimed_by = raquel_claim.claim_as, claimed_at = v_now,
            lease_expires_at = v_now + raquel_claim.lease, claim_id = gen_random_uuid()
        FROM picked WHERE j.id = picked.id
        RETURNING j.*;
    END IF;
END;
$$;

-- Guarantees: the earliest time (ms) at which a job of these queues (NULL:
-- all) becomes claimable: the next scheduled_at of a waiting job or the next
-- lease deadline of a claimed one; NULL when there is none. Workers sleep
-- until then when no notification comes first.
CREATE FUNCTION raquel_next_due(queues text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT min(t) FROM (
        SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                WHERE j.status IN ('queued', 'failed')
                ORDER BY j.scheduled_at LIMIT 1) AS t
        WHERE raquel_next_due.queues IS NULL
        UNION ALL
        SELECT (SELECT j.scheduled_at FROM raquel_jobs j
                WHERE j.queue = q.name AND j.status IN ('queued', 'failed')
                ORDER BY j.scheduled_at LIMIT 1)
        FROM unnest(raquel_next_due.queues) AS q(name)
        UNION ALL
        SELECT min(j.lease_expires_at) FROM raquel_jobs j
        WHERE j.status = 'claimed'
          AND (raquel_next_due.queues IS NULL OR j.queue = ANY (raquel_next_due.queues))
    ) AS due
$$;

-- Guarantees: extends the lease of each (job_id, claim_id) pair still held by
-- that claim to now + lease ms, and returns the ids renewed. A job missing
-- from the result was rescued or finished: its worker no longer owns it.
CREATE FUNCTION raquel_renew_leases(
    job_ids uuid[], claim_ids uuid[], lease bigint DEFAULT 60000, now bigint DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := coalesce(raquel_renew_leases.now, raquel_now_ms());
BEGIN
    IF raquel_renew_leases.lease IS NULL OR raquel_renew_leases.lease <= 0 THEN
        PERFORM raquel_invalid('raquel_renew_leases', 'lease',
            format('must be > 0 ms, got %s', raquel_renew_leases.lease));
    END IF;
    RETURN QUERY
    UPDATE raquel_jobs j SET lease_expires_at = v_now + raquel_renew_leases.lease
    FROM unnest(raquel_renew_leases.job_ids, raquel_renew_leases.claim_ids) AS held(id, claim_id)
    WHERE j.id = held.id AND j.claim_id = held.claim_id AND j.status = 'claimed'
    RETURNING j.id;
END;
$$;

-- The outcome functions below share one contract: they act only on a job that
-- is still 'claimed' under the given claim_id (fencing), and return the job's
-- new status, or NULL when the claim is no longer current (the job was
-- rescued, re-claimed or already finished) — in which case nothing changes.
-- Each outcome but release counts one attempt (attempts + 1), as in raquel.

-- Outcome: the job ran successfully. Status 'success', finished_at = now.
CREATE FUNCTION raquel_complete(job_id uuid, claim_id uuid, now bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := coalesce(raquel_complete.now, raquel_now_ms());
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'success', attempts = j.attempts + 1, finished_at = v_now, lease_expires_at = NULL
    WHERE j.id = raquel_complete.job_id AND j.claim_id = raquel_complete.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Outcome: the attempt failed. Records error and error_trace. With
-- max_retry_count set and this attempt being attempt max_retry_count + 1 (the
-- first run plus max_retry_count retries), the job becomes 'exhausted';
-- otherwise 'failed', scheduled again at now + raquel_retry_delay(...).
CREATE FUNCTION raquel_fail(
    job_id uuid, claim_id uuid, error text DEFAULT NULL, error_trace text DEFAULT NULL,
    now bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := coalesce(raquel_fail.now, raquel_now_ms());
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        attempts = j.attempts + 1,
        status = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                      THEN 'exhausted' ELSE 'failed' END,
        scheduled_at = CASE WHEN j.max_retry_count IS NOT NULL AND j.attempts + 1 > j.max_retry_count
                            THEN j.scheduled_at
                            ELSE v_now + raquel_retry_delay(j.attempts + 1, j.backoff_base,
                                                            j.min_retry_delay, j.max_retry_delay) END,
        error = raquel_fail.error,
        error_trace = raquel_fail.error_trace,
        finished_at = v_now,
        lease_expires_at = NULL
    WHERE j.id = raquel_fail.job_id AND j.claim_id = raquel_fail.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Outcome: run the job again later (raquel's reschedule). Status 'queued',
-- scheduled at coalesce(at, now) + coalesce(delay, 0), or at now +
-- min_retry_delay when neither is given. claimed_by/claimed_at are kept (that
-- is how raquel tells a rescheduled job from a rejected one); finished_at is
-- cleared.
CREATE FUNCTION raquel_reschedule(
    job_id uuid, claim_id uuid, at bigint DEFAULT NULL, delay bigint DEFAULT NULL,
    now bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := coalesce(raquel_reschedule.now, raquel_now_ms());
    v_status text;
BEGIN
    IF raquel_reschedule.delay < 0 THEN
        PERFORM raquel_invalid('raquel_reschedule', 'delay',
            format('must be >= 0 ms, got %s', raquel_reschedule.delay));
    END IF;
    UPDATE raquel_jobs j SET
        status = 'queued',
        attempts = j.attempts + 1,
        scheduled_at = CASE WHEN raquel_reschedule.at IS NULL AND raquel_reschedule.delay IS NULL
                            THEN v_now + j.min_retry_delay
                            ELSE coalesce(raquel_reschedule.at, v_now) + coalesce(raquel_reschedule.delay, 0) END,
        finished_at = NULL,
        lease_expires_at = NULL
    WHERE j.id = raquel_reschedule.job_id AND j.claim_id = raquel_reschedule.claim_id
      AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Outcome: this worker will not run the job; another may take it at once
-- (raquel's reject). Status 'queued', scheduled_at unchanged, claimed_by and
-- claimed_at cleared.
CREATE FUNCTION raquel_reject(job_id uuid, claim_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', attempts = j.attempts + 1,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_reject.job_id AND j.claim_id = raquel_reject.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Outcome: hand the job back untouched, as if it had never been claimed (no
-- attempt counted): status 'queued', claim cleared, scheduled_at unchanged.
-- Workers use it for jobs they claimed but never started (shutdown) and for
-- jobs interrupted by cancellation.
CREATE FUNCTION raquel_release(job_id uuid, claim_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE raquel_jobs j SET
        status = 'queued', claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL
    WHERE j.id = raquel_release.job_id AND j.claim_id = raquel_release.claim_id AND j.status = 'claimed'
    RETURNING j.status INTO v_status;
    RETURN v_status;
END;
$$;

-- Guarantees: cancels a job. With claim_id (from inside the job's handler):
-- the claimed job becomes 'cancelled' (one attempt counted), fenced like every
-- outcome. Without claim_id (an operator or client): only a waiting job
-- (queued or failed) is cancelled; a claimed job is never cancelled out from
-- under its worker. Returns 'cancelled', or NULL when nothing was cancelled.
CREATE FUNCTION raquel_cancel(job_id uuid, claim_id uuid DEFAULT NULL, now bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now    bigint := coalesce(raquel_cancel.now, raquel_now_ms());
    v_status text;
BEGIN
    IF raquel_cancel.claim_id IS NULL THEN
        UPDATE raquel_jobs j SET status = 'cancelled', finished_at = v_now
        WHERE j.id = raquel_cancel.job_id AND j.status IN ('queued', 'failed')
        RETURNING j.status INTO v_status;
    ELSE
        UPDATE raquel_jobs j SET
            status = 'cancelled', attempts = j.attempts + 1, finished_at = v_now,
            lease_expires_at = NULL
        WHERE j.id = raquel_cancel.job_id AND j.claim_id = raquel_cancel.claim_id
          AND j.status = 'claimed'
        RETURNING j.status INTO v_status;
    END IF;
    RETURN v_status;
END;
$$;

-- Wake-up: NOTIFY on channel 'raquel_jobs' with the queue name as payload when
-- jobs become claimable now. Future-scheduled jobs send nothing; workers learn
-- of them from raquel_next_due() and sleep until then.
--
-- Inserts: one statement-level trigger over the transition table, so a
-- 10,000-row INSERT sends one notification per distinct queue, not 10,000.
CREATE FUNCTION raquel_tg_jobs__notify_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now bigint := raquel_now_ms();
BEGIN
    PERFORM pg_notify('raquel_jobs', ready.queue)
    FROM (SELECT DISTINCT n.queue FROM raquel_new_jobs n
          WHERE n.status IN ('queued', 'failed') AND n.scheduled_at <= v_now) AS ready;
    RETURN NULL;
END;
$$;

CREATE TRIGGER raquel_jobs_10_notify_insert
    AFTER INSERT ON raquel_jobs
    REFERENCING NEW TABLE AS raquel_new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION raquel_tg_jobs__notify_insert();

-- Updates: a row trigger whose WHEN clause filters in C, so claims and
-- completions (the hot path) never call PL/pgSQL. It fires when a job moves
-- into a waiting state (reject, reschedule, rescue, an operator's retry) or
-- is moved earlier; PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION raquel_tg_jobs__notify_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.scheduled_at <= raquel_now_ms() THEN
        PERFORM pg_notify('raquel_jobs', NEW.queue);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER raquel_jobs_20_notify_update
    AFTER UPDATE ON raquel_jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('queued', 'failed')
          AND (OLD.status NOT IN ('queued', 'failed') OR NEW.scheduled_at < OLD.scheduled_at))
    EXECUTE FUNCTION raquel_tg_jobs__notify_update();
