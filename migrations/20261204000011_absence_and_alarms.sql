-- Never pay twice when Alipay is slow (issue 15; alipay-mapi.md, "What
-- REFUND_NOT_EXIST proves"; architecture.md invariants 5 and 5a).

-- When the batch was last sent (or may have been: an attempt cut off
-- mid-call counts), and when the first REFUND_NOT_EXIST that counts toward
-- proving absence was seen (at least SUBMIT_ABSENCE_SETTLE_MS after the last
-- send). A second one at least as long after the first proves absence.
ALTER TABLE batches ADD COLUMN last_sent_at TIMESTAMPTZ;
ALTER TABLE batches ADD COLUMN absence_first_at TIMESTAMPTZ;
UPDATE batches SET last_sent_at = COALESCE(submitted_at, updated_at) WHERE attempts > 0;

-- A genuine result for a batch we had rejected is applied under its own
-- verdict, once per notify_id like any applied notification.
DROP INDEX notifications_applied_once;
CREATE UNIQUE INDEX notifications_applied_once
    ON notifications (kind, notify_id) WHERE verdict IN ('applied', 'applied_to_rejected');

-- Refunds a rejected batch's result shows may be paid twice: already sent
-- again in another batch (or settled from one) when the result arrived.
CREATE TABLE double_payment_suspects (
    id           BIGSERIAL PRIMARY KEY,
    batch_no     TEXT NOT NULL REFERENCES batches (batch_no),
    refund_id    TEXT NOT NULL REFERENCES refunds (refund_id),
    -- The batch the refund was in when the result arrived.
    other_batch  TEXT,
    code         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    noticed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (batch_no, refund_id)
);
