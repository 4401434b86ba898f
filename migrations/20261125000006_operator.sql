-- Operator tooling (issue 6).

-- `refund retry` reopens a failed refund whose failure may pass. Its new
-- round ends in a new terminal event: one terminal event per refund and round.
ALTER TABLE refunds ADD COLUMN operator_retries INT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN round INT NOT NULL DEFAULT 0;
DROP INDEX outbox_one_terminal_event_per_refund;
CREATE UNIQUE INDEX outbox_one_terminal_event_per_round
    ON outbox (refund_id, round) WHERE routing_key IN ('refund.succeeded', 'refund.failed');
CREATE INDEX refunds_failed_by_code ON refunds (result_code, finished_at) WHERE status = 'failed';

-- When `batch form` first printed the password form of a batch awaiting an
-- operator: from then on Alipay may hold it, so the reconciler asks about it.
ALTER TABLE batches ADD COLUMN form_printed_at TIMESTAMPTZ;

-- Contract §4's body; a reopened refund's events also carry `retry` (its round).
CREATE OR REPLACE FUNCTION refund_event_body(r refunds, event_id UUID, event TEXT, status TEXT,
                                             code TEXT, message TEXT, source TEXT)
    RETURNS JSONB LANGUAGE sql STABLE
    AS $$
    SELECT jsonb_build_object(
        'event', event,
        'event_id', event_id,
        'refund_id', r.refund_id,
        'status', status,
        'code', code,
        'message', message,
        'trade_no', r.trade_no,
        'amount', fen_to_yuan(r.amount_fen),
        'partner', r.partner,
        'batch_no', r.batch_no,
        'source', source,
        'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'metadata', r.metadata)
        || CASE WHEN r.operator_retries > 0
                THEN jsonb_build_object('retry', r.operator_retries) ELSE '{}'::jsonb END
    $$;
