-- Refunds by batch and status: every batch transition reads or updates its
-- refunds by batch_no and status. Without this index those statements went
-- through the partial index of unfinished refunds and visited every refund in
-- flight, and every dead version of one until a vacuum: 0.6 s a statement at
-- 800 000 refunds in the million-event soak (PostgreSQL with autovacuum off).
-- With the status in the key, the planner has no reason to combine it with
-- that index (an index on batch_no alone was ANDed with it, still 22 ms).
CREATE INDEX refunds_by_batch ON refunds (batch_no, status) WHERE batch_no IS NOT NULL;

-- The relay's due rows in creation order: an ordered scan that stops after a
-- window, instead of a bitmap scan collecting every unpublished row (and every
-- dead entry) to sort them: 1 s a relay step at 700 000 published events.
-- A plain index scan also marks the dead entries it passes, so the next scan
-- skips them even without a vacuum (the relay turns bitmap scans off for its
-- query: a bitmap scan would collect them all again every step).
CREATE INDEX outbox_unpublished_by_age ON outbox (created_at) WHERE published_at IS NULL;
DROP INDEX outbox_unpublished;
