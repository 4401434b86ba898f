-- Room on each page of refunds for the versions its refunds' status changes
-- write (batched, submitted, a result). A version that fits on the page of
-- the one before is logged as only the bytes that changed; one that does
-- not is logged whole, with a lock record on the old version first. (Not
-- HOT: every partial index of refunds reads status.) Pages written from now
-- on; at most twice the disk for the table.
ALTER TABLE refunds SET (fillfactor = 50);
