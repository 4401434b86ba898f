-- An outbox row is only ever written by the statement that changes its
-- refund, from that refund's row, and refunds are never deleted: the
-- foreign-key check proved nothing and cost a lock record on the refund (a
-- WAL record) and a trigger per event.
ALTER TABLE outbox DROP CONSTRAINT outbox_refund_id_fkey;
