-- How often the reconciler asked refund_fastpay_query about a submitted batch
-- that had no notification; its next question waits longer each time.
ALTER TABLE batches ADD COLUMN reconcile_queries INT NOT NULL DEFAULT 0;
