-- History written once per set: when one statement moves many refunds of a
-- batch the same way (into the batch, accepted with it, paid by its
-- notification), one row names them all instead of one row each. A refund's
-- history is its own rows and the sets of its batches that name it, in the
-- order of the one id sequence both tables draw from. The primary key leads
-- with the batch, which is how a refund's sets are found (through its
-- batch_items) and how `batch show` counts a batch's moves.
CREATE TABLE refund_history_sets (
    batch_no    TEXT NOT NULL,
    id          BIGINT NOT NULL DEFAULT nextval('refund_history_id_seq'),
    refund_ids  TEXT[] NOT NULL CHECK (cardinality(refund_ids) >= 1),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    code        TEXT,
    actor       TEXT NOT NULL,
    note        TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_no, id)
);
