-- no-transaction
-- The relay's claim: unpublished sets, oldest first.
CREATE INDEX CONCURRENTLY outbox_sets_due ON outbox_sets (id) WHERE published_at IS NULL;
