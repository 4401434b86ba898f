-- `batch show` reads a batch's refund transitions by batch_no.
CREATE INDEX refund_history_by_batch ON refund_history (batch_no) WHERE batch_no IS NOT NULL;
