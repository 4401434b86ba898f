-- The refund worker's whole state. PostgreSQL is the single source of truth
-- (architecture.md); the invariants listed there are constraints here where a
-- constraint can hold them.

-- Invariant 1: a refund_id is stored once (primary key).
-- Formats are checked by length here, not by regular expression: intake's
-- parser is the authority on them (and is tested), while three regex CHECKs
-- cost more database time per row than the insert and its indexes together.
CREATE TABLE refunds (
    refund_id        TEXT PRIMARY KEY CHECK (length(refund_id) BETWEEN 1 AND 64),
    partner          TEXT NOT NULL CHECK (length(partner) = 16 AND partner LIKE '2088%'),
    trade_no         TEXT NOT NULL CHECK (length(trade_no) BETWEEN 16 AND 64),
    -- Money is integer fen, never a float: 0.01 ..= 99 999 999.99 yuan.
    amount_fen       BIGINT NOT NULL CHECK (amount_fen BETWEEN 1 AND 9999999999),
    reason           TEXT NOT NULL CHECK (octet_length(reason) BETWEEN 1 AND 256),
    currency         TEXT NOT NULL DEFAULT 'CNY' CHECK (currency = 'CNY'),
    trade_amount_fen BIGINT CHECK (trade_amount_fen BETWEEN 1 AND 9999999999),
    metadata         JSONB NOT NULL DEFAULT '{}'::jsonb,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'batched', 'submitted', 'succeeded', 'failed')),
    -- The last batch the refund was put in (null until it is batched).
    batch_no         TEXT,
    result_code      TEXT,
    result_message   TEXT,
    result_source    TEXT CHECK (result_source IN ('notify', 'query', 'submit', 'worker')),
    -- How often Alipay answered BATCH_REFUND_LOCK_ERROR and the refund went back to pending.
    lock_error_returns INT NOT NULL DEFAULT 0,
    -- The AMQP message_id of the delivery that stored it, for tracing.
    message_id       TEXT,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    CHECK ((status IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);

-- Invariant 3: at most one unfinished refund per trade. This also keeps a trade
-- out of a batch twice, which is what lets result_details be matched by trade_no.
CREATE UNIQUE INDEX refunds_one_unfinished_per_trade
    ON refunds (partner, trade_no) WHERE status IN ('batched', 'submitted');
-- The batcher's queue: pending refunds in arrival order. Keyed on the
-- timestamp alone (8 bytes) because intake pays for every index on every row;
-- the batcher filters the partner as it reads.
CREATE INDEX refunds_pending ON refunds (received_at) WHERE status = 'pending';
-- trade_amount checks and the 99-refunds-per-trade count. A trade_no is
-- Alipay's and unique across partners; queries add the partner as a filter.
CREATE INDEX refunds_by_trade ON refunds (trade_no);

-- Every state change of a refund, including its arrival, with who made it.
CREATE TABLE refund_history (
    id          BIGSERIAL PRIMARY KEY,
    refund_id   TEXT NOT NULL REFERENCES refunds (refund_id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    batch_no    TEXT,
    code        TEXT,
    actor       TEXT NOT NULL,
    note        TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refund_history_by_refund ON refund_history (refund_id, id);

-- Invariant 4: one sequence for every partner, never reused.
CREATE SEQUENCE batch_serial NO CYCLE;

CREATE TABLE batches (
    batch_no        TEXT PRIMARY KEY CHECK (batch_no ~ '^[0-9]{8}[0-9A-Za-z]{3,24}$'),
    partner         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'created'
                    CHECK (status IN ('created', 'submitting', 'submitted', 'completed',
                                      'rejected', 'awaiting_operator')),
    -- Fixed when the batch is created: a retry sends the same bytes.
    refund_date     TEXT NOT NULL,
    batch_num       INT NOT NULL CHECK (batch_num BETWEEN 1 AND 1000),
    detail_data     TEXT NOT NULL,
    outcome_unknown BOOLEAN NOT NULL DEFAULT false,
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_code       TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    submitted_at    TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX batches_due ON batches (next_attempt_at) WHERE status IN ('created', 'submitting');

-- Invariant 2: a batch's items never change; every batch a refund was in is kept.
CREATE TABLE batch_items (
    batch_no    TEXT NOT NULL REFERENCES batches (batch_no),
    refund_id   TEXT NOT NULL REFERENCES refunds (refund_id),
    trade_no    TEXT NOT NULL,
    amount_fen  BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    result_code TEXT,
    -- The item's raw result_details text, tails ($ fee, | royalty) included.
    result_raw  TEXT,
    PRIMARY KEY (batch_no, refund_id),
    UNIQUE (batch_no, trade_no)
);
CREATE INDEX batch_items_by_refund ON batch_items (refund_id);

-- Invariant 6: every notification, genuine or not, kept raw with its verdict.
CREATE TABLE notifications (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('batch_refund', 'dback', 'query')),
    notify_id    TEXT,
    batch_no     TEXT,
    partner      TEXT,
    content_type TEXT,
    raw_body     BYTEA NOT NULL,
    verdict      TEXT NOT NULL,
    detail       TEXT,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A notification changes state at most once.
CREATE UNIQUE INDEX notifications_applied_once
    ON notifications (kind, notify_id) WHERE verdict = 'applied';
CREATE INDEX notifications_by_batch ON notifications (batch_no);

-- Result events, written in the transaction that makes a refund terminal.
CREATE TABLE outbox (
    event_id        UUID PRIMARY KEY,
    refund_id       TEXT NOT NULL REFERENCES refunds (refund_id),
    routing_key     TEXT NOT NULL,
    body            JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at    TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (next_attempt_at) WHERE published_at IS NULL;
CREATE INDEX outbox_by_refund ON outbox (refund_id);
-- Every stored refund ends in exactly one terminal event.
CREATE UNIQUE INDEX outbox_one_terminal_event_per_refund
    ON outbox (refund_id) WHERE routing_key IN ('refund.succeeded', 'refund.failed');
