-- no-transaction
-- Retention: OpenAPI raw answers by age.
CREATE INDEX CONCURRENTLY openapi_answers_by_age ON openapi_answers (at);
