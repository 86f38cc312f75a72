-- 0022_retention_forever: a queue set to keep its finished jobs forever keeps
-- them, whatever the default retention.
--
-- Guarantees (changed): raquel_set_retention(queue, NULL) for a named queue
-- stores retention_ms = 315576000000000 (10,000 years, longer than the whole
-- time range of raquel_pg's clock, 0001-01-02 .. 9999-12-30): no finished job
-- is ever past it, so raquel_prune never deletes one, and
-- raquel_zero_retention counts the queue among those kept (its successes are
-- never deleted at once, even under a default of 0). retention_ms NULL keeps
-- its meaning: no retention of the queue's own, the default applies (a queue
-- paused or limited and never given a retention). The default's own NULL
-- (raquel_set_retention(NULL, NULL)) still means: every queue without its own
-- setting keeps its jobs forever. Everything else as 0009_operations.
--
-- Why (found by an operator's probe of docs/guides/operating-queues.md,
-- 2026-12-06). The docs, the CLI ("audit: finished jobs kept forever") and the
-- function's comment promise that a queue set to NULL keeps its jobs forever,
-- but NULL was also "no setting: use the default", so with a default of 30
-- days set, raquel_prune deleted the audit queue's job finished 40 days ago;
-- with a default of 0, that queue's successes were deleted as they were
-- recorded.
--
-- A queue set to forever before this migration is stored as NULL and cannot
-- be told from one never given a retention: it still follows the default.
-- Set it again (raquel_set_retention('audit', NULL)).

-- Guarantees: see the migration header; otherwise as 0009_operations'
-- raquel_set_retention (a negative or infinite keep raises 22023 naming it,
-- a bad queue name 22023 naming queue; nothing written then).
CREATE OR REPLACE FUNCTION raquel_set_retention(queue text, keep interval)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    v_ms bigint;
BEGIN
    IF raquel_set_retention.queue IS NOT NULL THEN
        PERFORM raquel_check_queue('raquel_set_retention', raquel_set_retention.queue);
    END IF;
    IF raquel_set_retention.keep < interval '0' OR NOT isfinite(raquel_set_retention.keep) THEN
        PERFORM raquel_invalid('raquel_set_retention', 'keep',
            format('must be a finite interval >= 0 or NULL (keep forever), got %s', raquel_set_retention.keep));
    END IF;
    v_ms := floor(extract(epoch FROM raquel_set_retention.keep) * 1000)::bigint;
    IF raquel_set_retention.queue IS NULL THEN
        UPDATE raquel_retention_default SET retention_ms = v_ms;
    ELSE
        v_ms := coalesce(v_ms, 315576000000000);  -- forever: longer than the time range
        INSERT INTO raquel_queue_settings AS s (queue, retention_ms) VALUES (raquel_set_retention.queue, v_ms)
        ON CONFLICT ON CONSTRAINT raquel_queue_settings_pkey DO UPDATE SET retention_ms = excluded.retention_ms;
    END IF;
END;
$$;
COMMENT ON FUNCTION raquel_set_retention(text, interval) IS
    'Keeps the finished jobs (success, cancelled, expired, exhausted) of queue (NULL: of every queue without its own setting) for keep after they finished; older ones are deleted by raquel_prune (and the workers'' maintenance). keep NULL keeps them forever (the default), for a queue whatever the default (stored as retention_ms 315576000000000, 0022_retention_forever). 22023 naming keep for a negative or infinite interval, naming queue for a bad name.';

COMMENT ON TABLE raquel_queue_settings IS
    'raquel_pg per-queue controls: paused, max_running (claimed jobs at once), per_second (claims started per second, a token bucket: tokens as of tokens_at), retention_ms (finished jobs kept; NULL: the default; 315576000000000: forever, 0022_retention_forever) and pruned (finished jobs raquel_prune deleted). Change it through raquel_pause_queue, raquel_resume_queue, raquel_set_queue_limits and raquel_set_retention.';

COMMENT ON FUNCTION raquel_queue_controls() IS
    'Per queue with a setting: paused, max_running, per_second, retention_ms (NULL: the default; 315576000000000: forever), pruned (finished jobs raquel_prune deleted), by queue; then, when a default retention is set, a row with queue NULL carrying it. Read-only.';
