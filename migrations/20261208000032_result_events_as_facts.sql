-- A result event is stored as its facts, and the relay writes its JSON
-- (src/outbox/body.rs). Building fifteen-key JSONB for every refund of a
-- settled batch cost the database a third of the settle's time, and the
-- relay then stripped and printed it again; the refund's unchanging fields
-- (trade_no, amount, partner, metadata) are read from the refund as the
-- relay publishes. Decision record: docs/decisions.md, "2026-12-08: result
-- events stored as facts".
--
-- The JSON of events written before this migration is kept as
-- legacy_body, and the relay publishes it as it is. The rename is also the
-- fence against an older worker: its relay's claim and its writers name
-- `body`, so they fail whole (nothing published, nothing settled) instead
-- of publishing an event without a body.
ALTER TABLE outbox RENAME COLUMN body TO legacy_body;
ALTER TABLE outbox ALTER COLUMN legacy_body DROP NOT NULL;
ALTER TABLE outbox
    ADD COLUMN status         TEXT,
    ADD COLUMN code           TEXT,
    ADD COLUMN message        TEXT,
    ADD COLUMN source         TEXT,
    ADD COLUMN batch_no       TEXT,
    ADD COLUMN channel        TEXT,
    ADD COLUMN out_request_no TEXT;
-- Every event has its JSON or the facts to write it. Every row written
-- before has legacy_body (it was NOT NULL), so the check is not run over
-- them (NOT VALID: no scan of a large outbox under this migration's lock).
ALTER TABLE outbox ADD CONSTRAINT outbox_event_facts
    CHECK (legacy_body IS NOT NULL OR (status IS NOT NULL AND source IS NOT NULL AND channel IS NOT NULL))
    NOT VALID;
