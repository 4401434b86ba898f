-- no-transaction
-- Replaced by batch_items_open_since (0024), which holds the same rows.
DROP INDEX CONCURRENTLY batch_items_open;
