-- no-transaction
-- Retention: refund history by age.
CREATE INDEX CONCURRENTLY refund_history_by_age ON refund_history (at);
