-- Alipay's acceptance of a batch is recorded once, on the batch
-- (`batches.accepted_at`), not once per refund: a refund stored `batched`
-- whose current batch has `accepted_at` IS `submitted` (accepted_at is only
-- ever set, never cleared). Refunds stored `submitted` (written before this
-- migration, taken back into a reopened batch, or OpenAPI calls) stay valid.
-- Decision record: docs/decisions.md, "2026-12-07: a batch's acceptance
-- written once".

-- A refund's status as every reader must see it.
CREATE FUNCTION refund_status(status TEXT, batch_no TEXT) RETURNS TEXT
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN $1 = 'batched' AND EXISTS (
            SELECT 1 FROM batches b WHERE b.batch_no = $2 AND b.accepted_at IS NOT NULL)
        THEN 'submitted'
        ELSE $1
    END
$$;

-- A worker built before this migration reads a stored `batched` as "not yet
-- held by Alipay": it would miss the results of an accepted batch's refunds
-- and could send them back to pending. It must not write here. Workers that
-- know the new reading say so on every connection (the startup option
-- `refund_worker.accepted_by_batch=on`); anything else that writes to these
-- tables is refused, whole statement, before it changes a row. By hand:
-- `SET refund_worker.accepted_by_batch = on` first, knowing the rule above.
CREATE FUNCTION refuse_older_worker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refund-worker: this database records a batch''s acceptance once per batch (migration 30); a worker that does not know it must not write to %', TG_TABLE_NAME
        USING ERRCODE = '55000',
              HINT = 'upgrade every replica to a release with migration 30; by hand, SET refund_worker.accepted_by_batch = on first';
END
$$;

CREATE TRIGGER refunds_refuse_older_worker
    BEFORE INSERT OR UPDATE OR DELETE ON refunds FOR EACH STATEMENT
    WHEN (current_setting('refund_worker.accepted_by_batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION refuse_older_worker();

CREATE TRIGGER batches_refuse_older_worker
    BEFORE INSERT OR UPDATE OR DELETE ON batches FOR EACH STATEMENT
    WHEN (current_setting('refund_worker.accepted_by_batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION refuse_older_worker();

CREATE TRIGGER batch_items_refuse_older_worker
    BEFORE INSERT OR UPDATE OR DELETE ON batch_items FOR EACH STATEMENT
    WHEN (current_setting('refund_worker.accepted_by_batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION refuse_older_worker();
