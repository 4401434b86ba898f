-- The OpenAPI channel (issue 17; alipay-openapi.md): one alipay.trade.refund
-- per refund, idempotent by out_request_no.

-- The channel a refund was sent on (the partner's at the time it was first
-- claimed), and for OpenAPI the out_request_no of its current round. An
-- OpenAPI refund never has a batch_no.
ALTER TABLE refunds ADD COLUMN channel TEXT NOT NULL DEFAULT 'mapi'
    CHECK (channel IN ('mapi', 'openapi'));
ALTER TABLE refunds ADD COLUMN out_request_no TEXT
    CHECK (out_request_no IS NULL OR length(out_request_no) BETWEEN 1 AND 64);

-- One request per refund and round. Its out_request_no never changes: every
-- resend of a request whose outcome is unknown carries the same number.
-- `next_at` is both when it is due and its lease: a claim moves it past the
-- call's time-out, so one worker calls at a time and a crashed worker's
-- request comes due again by itself.
CREATE TABLE openapi_requests (
    refund_id      TEXT NOT NULL REFERENCES refunds (refund_id),
    round          INT NOT NULL,
    out_request_no TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    -- What the next call is: the refund call (again) or the refund query.
    next_call      TEXT NOT NULL DEFAULT 'refund' CHECK (next_call IN ('refund', 'query')),
    next_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Calls started (an attempt cut off mid-call counts: it may have arrived).
    calls          INT NOT NULL DEFAULT 0,
    first_call_at  TIMESTAMPTZ,
    last_call_at   TIMESTAMPTZ,
    last_code      TEXT,
    held_at        TIMESTAMPTZ,
    held_reason    TEXT,
    settled_at     TIMESTAMPTZ,
    PRIMARY KEY (refund_id, round),
    UNIQUE (app_id, out_request_no)
);
CREATE INDEX openapi_requests_due ON openapi_requests (next_at)
    WHERE settled_at IS NULL AND held_at IS NULL;

-- Every answer Alipay gave (or did not give) to a call, raw, with what the
-- worker made of it: the audit trail of the channel.
CREATE TABLE openapi_answers (
    id          BIGSERIAL PRIMARY KEY,
    refund_id   TEXT NOT NULL,
    round       INT NOT NULL,
    method      TEXT NOT NULL,
    http_status INT,
    body        TEXT,
    disposition TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (refund_id, round) REFERENCES openapi_requests (refund_id, round)
);
CREATE INDEX openapi_answers_by_request ON openapi_answers (refund_id, round);

-- The OpenAPI 充退 push is kept raw with its verdict like every notification.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('batch_refund', 'dback', 'query', 'openapi_dback'));
