-- Room on each page of batch items for the settled version of every item
-- written there, so that settling a batch is HOT (pages written from now on).
ALTER TABLE batch_items SET (fillfactor = 40);
