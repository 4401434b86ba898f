-- no-transaction
-- Unpublished events are found in outbox_due now; an index on published_at
-- would make every publish mark a full new row version.
DROP INDEX CONCURRENTLY outbox_unpublished_by_age;
