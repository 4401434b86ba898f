-- no-transaction
-- Retention: published outbox rows by age (see 20261206000014_prune.sql).
CREATE INDEX CONCURRENTLY outbox_published_by_age ON outbox (published_at) WHERE published_at IS NOT NULL;
