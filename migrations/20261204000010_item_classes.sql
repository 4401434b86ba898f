-- Item codes by class (alipay-mapi.md, "Item codes"; architecture.md, States).
--
-- An item a notification or query reports with a code Alipay retries itself,
-- `REFUND_FAIL`, an unknown code or an amount other than the one sent stays
-- unresolved: `result_code` stays NULL (so the batch stays `submitted` and a
-- later notification or query can settle it), and the code Alipay gave, why
-- it is open and since when are kept on the item.
ALTER TABLE batch_items ADD COLUMN open_code TEXT;
ALTER TABLE batch_items ADD COLUMN open_class TEXT
    CHECK (open_class IN ('alipay_retries', 'needs_person', 'amount_mismatch'));
ALTER TABLE batch_items ADD COLUMN open_detail TEXT;
ALTER TABLE batch_items ADD COLUMN open_since TIMESTAMPTZ;
-- The operator page and the gauge list open items without scanning every item.
CREATE INDEX batch_items_open ON batch_items (open_since) WHERE open_code IS NOT NULL AND result_code IS NULL;

-- A refund whose item code can pass in a new batch goes back to pending and
-- waits until `not_before` (ITEM_RETRY_BASE_MS, doubling per retry), at most
-- ITEM_RETRY_LIMIT times: the count was `lock_error_returns`, which counted
-- only BATCH_REFUND_LOCK_ERROR.
ALTER TABLE refunds RENAME COLUMN lock_error_returns TO item_retries;
ALTER TABLE refunds ADD COLUMN not_before TIMESTAMPTZ;

-- An operator settles what Alipay left unresolved: its result source.
ALTER TABLE refunds DROP CONSTRAINT refunds_result_source_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_result_source_check
    CHECK (result_source IN ('notify', 'query', 'submit', 'worker', 'operator'));

-- A batch held for an F code the answer table does not know (or our bug):
-- when it was held and why, so `batch release` finds it and the operator page lists it.
ALTER TABLE batches ADD COLUMN held_at TIMESTAMPTZ;

-- Notification verdicts are free text; `verify_invalid` (notify_verify
-- answered `invalid`: our configuration) joins them without a schema change.
