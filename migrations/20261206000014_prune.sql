-- Retention (`refund-worker prune`): a notification whose raw body was
-- pruned keeps its row (its notify_id still deduplicates) and says when.
ALTER TABLE notifications ADD COLUMN raw_pruned_at TIMESTAMPTZ;
