-- Result events give `metadata` back exactly as upstream sent it (key order
-- and number text included): JSONB reorders keys and a JSON decoder passes
-- numbers through f64, so the text itself is kept and the relay splices it
-- into the event. NULL for refunds stored before (their JSONB is used).
ALTER TABLE refunds ADD COLUMN metadata_text TEXT;
