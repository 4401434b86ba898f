-- The relay's queue by the statement that wrote the events, not by event.
-- A settle writes a thousand events at once and the relay publishes them
-- at once; queueing, locking, deleting and marking each one cost the
-- database more than writing it. Now the statement that writes events
-- also writes one set naming them; the relay claims sets, and marks a set
-- published once the broker confirmed every event in it. After its insert
-- an event row is never written again. Decision record: docs/decisions.md,
-- "2026-12-08: result events stored as facts".
--
-- An event and its set are written in one transaction, so they share
-- created_at (now()): that is how a reader finds an event's set
-- (outbox_sets_by_age, then event_ids). An event is unpublished while an
-- unpublished set names it; one in no set (its set pruned) was published.
-- Events the broker would not take move to a new set with the same
-- created_at, tried again later.
CREATE TABLE outbox_sets (
    id              BIGSERIAL PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    event_ids       UUID[] NOT NULL CHECK (cardinality(event_ids) > 0),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at    TIMESTAMPTZ
);

-- What was due moves into sets: one per moment of writing, at most 1 000
-- events each (the relay publishes a set whole).
INSERT INTO outbox_sets (created_at, event_ids, attempts, next_attempt_at)
SELECT created_at, array_agg(event_id ORDER BY event_id), max(attempts), max(next_attempt_at)
FROM (SELECT d.*, (row_number() OVER (PARTITION BY created_at ORDER BY event_id) - 1) / 1000 AS chunk
      FROM outbox_due d) AS due
GROUP BY created_at, chunk
ORDER BY created_at, chunk;

-- outbox_due is no longer written or read. Its trigger goes now (it would
-- fill the table for ever); the table, empty, waits for a later release,
-- as a removed table must (docs/operations.md). No earlier release uses it
-- meanwhile: migration 32 fences them off the outbox.
DROP TRIGGER outbox_due_insert ON outbox;
DROP FUNCTION outbox_due_insert();
DELETE FROM outbox_due;
