-- no-transaction
-- Retention finds published events by their age (created_at never changes,
-- so this index does not stand in the way of the HOT publish mark).
CREATE INDEX CONCURRENTLY outbox_by_age ON outbox (created_at);
