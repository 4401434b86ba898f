-- The relay's queue apart from the events. An outbox row is written once
-- and, when the broker confirms it, only its published_at changes: with no
-- index on that column and room on its page (fillfactor 50) the change is a
-- HOT update, a few bytes of WAL, instead of a new copy of the whole event
-- and an entry in every index. What is still to publish, and when to try
-- again, lives in this small table: a row per unpublished event, written by
-- the trigger below as the event is (so a worker of the previous release,
-- writing events during a rolling deploy, fills it too) and deleted when
-- the event is published. Its key leads with created_at: the relay claims
-- the oldest first and deletes by the key it claimed.
CREATE TABLE outbox_due (
    created_at      TIMESTAMPTZ NOT NULL,
    event_id        UUID NOT NULL,
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (created_at, event_id)
);

CREATE FUNCTION outbox_due_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_due (created_at, event_id, attempts, next_attempt_at)
    SELECT created_at, event_id, attempts, next_attempt_at FROM new_events
    WHERE published_at IS NULL;
    RETURN NULL;
END
$$;

-- First the trigger (its lock waits for writers in flight and holds off new
-- ones until this commits), then what is already waiting.
CREATE TRIGGER outbox_due_insert AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_due_insert();

INSERT INTO outbox_due (created_at, event_id, attempts, next_attempt_at)
SELECT created_at, event_id, attempts, next_attempt_at FROM outbox WHERE published_at IS NULL;

ALTER TABLE outbox SET (fillfactor = 50);
