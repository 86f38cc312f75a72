-- 0013_inline_ids: one job id costs a few microseconds again.
--
-- 0012 gave the id column the default (raquel_new_ids(1))[1]. A call of
-- raquel_new_ids runs its own small query (a subquery, an ARRAY() over
-- generate_series): about 100 us per call on PostgreSQL 18 and 60 us on 15,
-- against 4 us for gen_random_uuid(). That is paid once per call of
-- raquel_new_ids, so enqueue_many (one call per array) kept its speed, but
-- every job inserted one at a time paid it: raquel_enqueue, a keyed
-- raquel_enqueue_many element, a hand-written INSERT (an INSERT ... SELECT
-- of 100,000 finished jobs took 12.9 s).
--
-- 1. raquel_new_id(): one id in the same UUIDv7 layout, as a single
--    expression the planner inlines into the statement that uses it: the ms
--    clock in the first 48 bits, then the version 7, then the random bits,
--    variant and hyphens of one gen_random_uuid() (a version 4 UUID has the
--    variant bits of version 7 already). It becomes the column default.
-- 2. raquel_now_ms() gets the same kind of body, so that it is inlined too
--    (it ran through the function manager's SET search_path path: 3.6 us a
--    call, for reading a clock).
--
-- Both are SQL-standard bodies (RETURN ...): PostgreSQL parses them when they
-- are created and stores the objects they name, so, like the functions that
-- pin their search_path, they cannot be redirected to a caller's own
-- objects. A function with SET search_path is never inlined, which is why
-- these two set none.

-- Guarantees: as in 0001 (ms since the Unix epoch, from clock_timestamp()).
-- Touches no table.
CREATE OR REPLACE FUNCTION raquel_now_ms() RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL SAFE
RETURN floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;

-- Guarantees: a new job id in the layout of raquel_new_ids (RFC 9562
-- version 7): the current time in ms (raquel_now_ms) in the first 48 bits,
-- the version 7, then 74 random bits and the variant (binary 10), all from
-- one gen_random_uuid(). Ids drawn in the same ms are in random order among
-- themselves. Touches no table.
-- From psql: SELECT raquel_new_id();
CREATE FUNCTION raquel_new_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
RETURN (lpad(to_hex(raquel_now_ms() & 281474976710655), 12, '0') || '7'
        || substr(gen_random_uuid()::text, 16))::uuid;

-- Every job inserted without an id, by raquel_enqueue, by a keyed
-- raquel_enqueue_many element or by hand, gets one of raquel_new_id.
ALTER TABLE raquel_jobs ALTER COLUMN id SET DEFAULT raquel_new_id();
