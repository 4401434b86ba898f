-- no-transaction
-- Open items by age, keyed without result_code: settling an item (which
-- clears open_code, so it leaves this index either way) then changes no
-- indexed column, and with room on its page (0026) is a HOT update.
CREATE INDEX CONCURRENTLY batch_items_open_since ON batch_items (open_since) WHERE open_code IS NOT NULL;
