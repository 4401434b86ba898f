-- no-transaction
-- Retention: notifications whose raw body is still kept, by age.
CREATE INDEX CONCURRENTLY notifications_kept_by_age ON notifications (received_at) WHERE raw_pruned_at IS NULL;
