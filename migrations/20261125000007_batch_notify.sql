-- Wakes submitters (LISTEN batches) when a batch is formed, so a new batch
-- leaves at once instead of at the next poll; one notification per statement.
CREATE FUNCTION batches_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('batches', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER batches_notify AFTER INSERT ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION batches_notify();
