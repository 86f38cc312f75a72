-- 0002_clock_and_ids: the clock, job ids, and the helpers every other function
-- uses to refuse an argument.
--
-- Guarantees. Times are ms since the Unix epoch (UTC) and durations are ms, as
-- in raquel, so rows can be copied across. Every time a raquel_* function
-- writes (enqueued_at, scheduled_at, claimed_at, finished_at,
-- lease_expires_at, next_run_at, last_run_at, created_at) lies within
--     [-62135510400000, 253402214399999] ms since the epoch,
--     0001-01-02 00:00:00.000 .. 9999-12-30 23:59:59.999 UTC:
-- what Python's datetime can represent in any time zone (one day inside
-- datetime's own range, so a time shifted to local time still converts);
-- raquel_pg.params mirrors it (TIME_MIN_MS, TIME_MAX_MS). A time argument
-- outside it is refused with invalid_parameter_value (22023) naming it; a sum
-- that would pass its end (at + delay, now + delay, now + lease, now + every)
-- is refused naming the duration; durations lie within [0, 2^62 - 1] ms
-- (about 146 million years), so no sum the queue computes overflows bigint.
-- A time the queue computes from a stored duration (a retry's now + backoff,
-- a reschedule's now + min_retry_delay, an interval schedule's next tick) is
-- capped at the range's end instead.
--
-- Every function that reads the clock takes an optional "now", so that tests
-- (and operators replaying history) can fix time. A non-NULL now is accepted
-- only from a role that may UPDATE raquel_jobs directly (its owner, a
-- superuser, raquel_pg/roles.sql's operator: moving the clock gives such a
-- role nothing it could not do by hand); any other role gets
-- insufficient_privilege (42501) naming "now", and nothing changes. An error
-- rather than a silent switch to the real clock: a caller that believes it
-- moved the clock must learn that it did not. NULL (the default, what the
-- Python client sends) reads the database clock and costs no check.
--
-- Bad input raises invalid_parameter_value (SQLSTATE 22023) naming the
-- argument in the message and in the error's COLUMN field (raquel_invalid),
-- and nothing is written.

-- Guarantees: the current time in ms since the Unix epoch. clock_timestamp()
-- rather than now(): a claim or an outcome inside a long transaction must not
-- see a stale time. Touches no table.
-- Why a SQL-standard body (RETURN ...) and no SET search_path: PostgreSQL
-- parses such a body when the function is created and stores the objects it
-- names, so it cannot be redirected to a caller's objects; and a function with
-- SET search_path is never inlined. Inlined, reading the clock costs nothing;
-- through the function manager's SET search_path path it cost 3.6 us a call.
CREATE FUNCTION raquel_now_ms() RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL SAFE
RETURN floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
COMMENT ON FUNCTION raquel_now_ms() IS
    'The current time in ms since the Unix epoch, from clock_timestamp(). Inlined into the caller''s statement. Touches no table.';

-- Guarantees: a new job id in the UUID version 7 layout (RFC 9562): the
-- current time in ms (raquel_now_ms) in the first 48 bits, the version 7, then
-- 74 random bits and the variant (binary 10), all from one gen_random_uuid()
-- (a version 4 UUID has the variant bits of version 7 already). Ids drawn in
-- the same ms are in random order among themselves. Touches no table. It is
-- the default of raquel_jobs.id, so every job inserted one at a time
-- (raquel_enqueue, a keyed raquel_enqueue_many element, an INSERT by hand)
-- gets one.
-- Why time-ordered: a new job's primary-key entry lands beside the newest
-- ones, in the few index pages already in memory, instead of at a random
-- place of an index that grows with the history (each random entry dirtied a
-- page of its own, written whole to the WAL after a checkpoint, and so did
-- each claim and outcome). enqueue_many of 10,000 jobs beside 1,000,000
-- finished ones: 83,140 jobs/s with random ids, 142,693 with these
-- (PostgreSQL 18). Why one expression with a SQL-standard body: the planner
-- inlines it into the statement that uses it (about 4 us, as
-- gen_random_uuid()); a function running its own query cost about 100 us a
-- call on PostgreSQL 18 (an INSERT ... SELECT of 100,000 jobs took 12.9 s).
-- From psql: SELECT raquel_new_id();
CREATE FUNCTION raquel_new_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
RETURN (lpad(to_hex(raquel_now_ms() & 281474976710655), 12, '0') || '7'
        || substr(gen_random_uuid()::text, 16))::uuid;
COMMENT ON FUNCTION raquel_new_id() IS
    'A new job id in the UUID version 7 layout (RFC 9562): the current ms in the first 48 bits, then 74 random bits from one gen_random_uuid(). Ids drawn in the same ms are in random order among themselves. The default of raquel_jobs.id, inlined by the planner. Touches no table.';

-- Guarantees: an array of n distinct new job ids (none for n < 1 or NULL), in
-- raquel_new_id's layout: the current time in ms in the first 48 bits, the
-- version (7), 12 random bits, the variant (binary 10) and 62 bits that are
-- random for the first id and counted up from it for the others. The random
-- bits come from one gen_random_uuid() per call. Two calls in the same ms
-- collide only if their 74 random bits fall within n of each other (odds
-- below 1 in 10^17 for n = 10,000); the primary key refuses a collision, so
-- it can fail a call, never merge two jobs. Touches no table.
-- Why drawn in bulk: gen_random_uuid() reads the operating system's random
-- source once per id (4.1 us a call on a server built without OpenSSL, 1.7 us
-- with it); a batch (raquel_enqueue_many, raquel_fire_schedules) draws once.
-- The first 16 hex digits (time, version, 12 random bits) are the same for
-- every id of a call and are formatted once: 4.7k instructions per id
-- (callgrind, PostgreSQL 18) against 6.1k formatting each id whole.
-- From psql: SELECT raquel_new_ids(3);
CREATE FUNCTION raquel_new_ids(n integer) RETURNS uuid[]
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT ARRAY(
        SELECT (s.head || to_hex(((s.rand_b + g) & 4611686018427387903) | (-9223372036854775807 - 1)))::uuid
        FROM generate_series(0, raquel_new_ids.n - 1) AS g)
    FROM (SELECT lpad(to_hex(((raquel_now_ms() & 281474976710655) << 16) | 28672
                             | ('x' || substr(r.hex, 14, 3))::bit(12)::bigint), 16, '0') AS head,
                 ('x' || substr(r.hex, 17, 16))::bit(64)::bigint & 4611686018427387903 AS rand_b
          FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS hex) AS r) AS s
$$;
COMMENT ON FUNCTION raquel_new_ids(integer) IS
    'n distinct new job ids in raquel_new_id''s layout that sort by creation time, the random bits drawn once per call (for a batch); none for n < 1 or NULL.';

-- Guarantees: a ms-since-epoch time as a timestamptz (NULL stays NULL), for
-- people reading rows (the views of 0009_operations use it).
CREATE FUNCTION raquel_ts(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT to_timestamp(raquel_ts.ms / 1000.0) $$;
COMMENT ON FUNCTION raquel_ts(bigint) IS
    'A ms-since-epoch time as a timestamptz (NULL stays NULL), for reading raquel_jobs by hand.';

-- Guarantees: raises invalid_parameter_value (SQLSTATE 22023) naming the bad
-- argument in both the message and the error's COLUMN field, which clients
-- read to say which argument was wrong (raquel_pg.InvalidArgument).
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
COMMENT ON FUNCTION raquel_invalid(text, text, text) IS
    'Raises invalid_parameter_value (SQLSTATE 22023) saying that function p_function refused argument p_argument because of p_problem; the argument is also in the error''s COLUMN field.';

-- Guarantees: returns p_now when the role the session acts as (SET ROLE,
-- else the session user) may UPDATE raquel_jobs and p_now lies in the time
-- range. Otherwise raises insufficient_privilege (42501) or
-- invalid_parameter_value (22023), naming "now" and p_function. Called by the
-- queue's functions only when a caller passed now, so calls without now pay
-- nothing. SECURITY DEFINER like every function the queue's functions call;
-- it reads no table.
CREATE FUNCTION raquel_clock(p_function text, p_now bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_role text := CASE current_setting('role') WHEN 'none' THEN session_user::text
                        ELSE current_setting('role') END;
BEGIN
    IF NOT has_table_privilege(v_role, 'raquel_jobs', 'UPDATE') THEN
        RAISE EXCEPTION '%: argument "now" may be given only by a role that may update raquel_jobs (% may not); leave it NULL to use the database clock',
            p_function, v_role
            USING ERRCODE = 'insufficient_privilege', COLUMN = 'now';
    END IF;
    IF p_now NOT BETWEEN -62135510400000 AND 253402214399999 THEN
        PERFORM raquel_invalid(p_function, 'now',
            format('must be a time within [-62135510400000, 253402214399999] ms since the epoch'
                   ' (0001-01-02 .. 9999-12-30 UTC), got %s', p_now));
    END IF;
    RETURN p_now;
END;
$$;
COMMENT ON FUNCTION raquel_clock(text, bigint) IS
    'Returns a caller-given now when the session''s role may UPDATE raquel_jobs and now is within the time range; else 42501 or 22023 naming "now".';
REVOKE EXECUTE ON FUNCTION raquel_clock(text, bigint) FROM PUBLIC;

-- Guarantees: the delay before the next attempt after a job's n-th failed
-- attempt is backoff_base * 2^(n-1), clamped to [min_retry_delay,
-- max_retry_delay]: 1 s, 2 s, 4 s, ... 12 h with the defaults. Never
-- overflows, whatever n is (computed in float8, the exponent capped at 62).
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
COMMENT ON FUNCTION raquel_retry_delay(integer, bigint, bigint, bigint) IS
    'The wait after a job''s n-th failed attempt: backoff_base * 2^(n-1) clamped to [min_retry_delay, max_retry_delay] (1 s, 2 s, 4 s, ... up to 12 h with the defaults). Pure; never overflows.';
