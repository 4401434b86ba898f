-- no-transaction
-- A batch's refunds are found through batch_items' key; this index took an
-- entry at every status change of every refund in a batch.
DROP INDEX CONCURRENTLY refunds_by_batch;
