-- The pure-SQL limit (scenario 5): a minimal jobs table whose claim has
-- raquel_jobs's shape: the oldest ready job of a queue, through a partial index
-- on the waiting jobs, FOR UPDATE SKIP LOCKED. No functions, no triggers.
CREATE TABLE sql_jobs (
    id           bigserial   PRIMARY KEY,
    queue        text        NOT NULL,
    payload      text,
    status       text        NOT NULL DEFAULT 'queued',
    scheduled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX sql_jobs_ready_idx ON sql_jobs (queue, scheduled_at) WHERE status = 'queued';
