-- no-transaction
-- An event's set (same created_at) for readers, and retention by age.
CREATE INDEX CONCURRENTLY outbox_sets_by_age ON outbox_sets (created_at);
