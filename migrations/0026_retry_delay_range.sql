-- 0026_retry_delay_range: raquel_retry_delay stays within [0, 2^62] ms
-- whatever a row holds, so that raquel_fail never overflows.
--
-- Found by a probe of rows written by hand (2026-12-07). raquel_enqueue takes
-- retry delays and a backoff base of at most 2^62 - 1 ms, but the columns are
-- bigints: a row written around the functions with max_retry_delay,
-- min_retry_delay and backoff_base at 9223372036854775807 made the delay, computed
-- in float8, round up to 2^63, whose cast back to bigint raised 22003. Every
-- raquel_fail of that job then failed ("bigint out of range"): the job stayed
-- claimed, was rescued when its lease ran out, ran and failed again, without
-- end. A delay is now clamped to [0, 2^62] ms (2^62 is exact in float8, and
-- every caller clamps now + delay to the time range, which ends at
-- 253402214399999, long before); a negative delay, which only a row written by
-- hand can give, is 0 (the next attempt is due at once) instead of a time
-- before the range.

-- Guarantees: as 0002_clock_and_ids' raquel_retry_delay (backoff_base *
-- 2^(n-1) clamped to [min_retry_delay, max_retry_delay]), then to
-- [0, 2^62] ms: never overflows, whatever its arguments are.
CREATE OR REPLACE FUNCTION raquel_retry_delay(
    attempts integer, backoff_base bigint, min_retry_delay bigint, max_retry_delay bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT greatest(0::float8, least(4611686018427387904::float8,
        raquel_retry_delay.max_retry_delay::float8,
        greatest(
            raquel_retry_delay.min_retry_delay::float8,
            raquel_retry_delay.backoff_base::float8
                * power(2::float8, least(greatest(raquel_retry_delay.attempts - 1, 0), 62))
        )
    ))::bigint
$$;
COMMENT ON FUNCTION raquel_retry_delay(integer, bigint, bigint, bigint) IS
    'The wait after a job''s n-th failed attempt: backoff_base * 2^(n-1) clamped to [min_retry_delay, max_retry_delay] (1 s, 2 s, 4 s, ... up to 12 h with the defaults), then to [0, 2^62] ms. Pure; never overflows, whatever a row holds.';
