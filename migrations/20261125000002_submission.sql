-- Submission bookkeeping (issue 4).

-- A claimed attempt writes its start here before the request leaves and clears
-- it when the answer is recorded. Found still set by the next claimer, it means
-- the attempt's outcome is unknown (the process died mid-call).
ALTER TABLE batches ADD COLUMN attempt_started_at TIMESTAMPTZ;
-- Set when only refund_fastpay_query may settle the batch now: an F after an
-- unknown outcome, the give-up age passed, or the Beijing date moved on.
ALTER TABLE batches ADD COLUMN needs_query BOOLEAN NOT NULL DEFAULT false;
-- Whether Alipay accepted the batch (T, DUPLICATE_BATCH_NO, or found by the
-- query): the 99-refunds-per-trade count reads it.
ALTER TABLE batches ADD COLUMN accepted_at TIMESTAMPTZ;
-- The batch this one was split from after a per-trade code sank it.
ALTER TABLE batches ADD COLUMN split_from TEXT REFERENCES batches (batch_no);

-- A partner whose configuration or contract Alipay refused: its submissions
-- wait until paused_until, growing with each refusal.
CREATE TABLE partner_pauses (
    partner      TEXT PRIMARY KEY,
    paused_until TIMESTAMPTZ NOT NULL,
    code         TEXT NOT NULL,
    refusals     INT NOT NULL DEFAULT 1,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX batch_items_by_trade ON batch_items (trade_no);

-- Yuan with two decimals from fen, as every event and detail_data writes it.
CREATE FUNCTION fen_to_yuan(fen BIGINT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT (fen / 100)::text || '.' || lpad((fen % 100)::text, 2, '0') $$;

-- The result event of contract section 4 for a refund entering a terminal state,
-- built in SQL so a transition of a thousand refunds is one statement.
CREATE FUNCTION refund_event_body(r refunds, event_id UUID, event TEXT, status TEXT,
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
    $$;
