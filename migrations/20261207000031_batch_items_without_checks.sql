-- A batch's items are written by one statement only (`storage::batches::
-- insert_batch`), right after the batch itself, and in the same
-- transaction every refund named moves into the batch or the whole batch is
-- undone (the count of refunds moved must equal the items); refunds,
-- batches and items are never deleted. The two foreign-key checks proved
-- nothing more and cost two trigger queries per item (2 000 per batch).
ALTER TABLE batch_items
    DROP CONSTRAINT batch_items_batch_no_fkey,
    DROP CONSTRAINT batch_items_refund_id_fkey;
