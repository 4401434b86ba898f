//! SQL of the system-wide gauges `/metrics` reports (backlogs and ages,
//! whole seconds) and the readiness probe's ping: cheap indexed queries,
//! read at each scrape so every replica reports the same values.

use sqlx::PgPool;

/// The whole system's backlogs and ages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Refunds not yet terminal, by status (`pending`, `batched`, `submitted`).
    pub refunds_by_status: Vec<(String, i64)>,
    pub outbox_backlog: i64,
    pub outbox_oldest_seconds: i64,
    pub oldest_pending_seconds: i64,
    pub oldest_submitted_seconds: i64,
    pub partners_paused: i64,
    pub batches_awaiting_operator: i64,
    /// Items Alipay left open, by class.
    pub open_items_by_class: Vec<(String, i64)>,
    pub batches_held: i64,
    /// OpenAPI requests held for a person (our bug, a code the table lacks,
    /// a query that disagrees).
    pub openapi_held: i64,
    /// Refunds recorded as possibly paid twice (`double_payment_suspects`,
    /// the operator page's list): only grows.
    pub double_payment_suspects: i64,
    /// Batches not yet accepted whose last send had an unknown outcome.
    pub batches_outcome_unknown: i64,
    /// The oldest of those, since it was created.
    pub oldest_outcome_unknown_seconds: i64,
}

/// One round trip: whether the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

pub async fn gauges(pool: &PgPool) -> Result<Gauges, sqlx::Error> {
    let refunds_by_status = sqlx::query_as(
        // A `batched` refund of an accepted batch is `submitted` (migration 30).
        "SELECT CASE WHEN r.status = 'batched' AND b.accepted_at IS NOT NULL THEN 'submitted'
                     ELSE r.status END AS status, count(*)
         FROM refunds r LEFT JOIN batches b ON b.batch_no = r.batch_no AND r.status = 'batched'
         WHERE r.status IN ('pending', 'batched', 'submitted') GROUP BY 1",
    )
    .fetch_all(pool)
    .await?;
    let (outbox_backlog, outbox_oldest_seconds): (i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::int8
         FROM outbox_due",
    )
    .fetch_one(pool)
    .await?;
    let oldest_pending_seconds = sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(oldest)), 0)::int8 FROM pending_partners",
    )
    .fetch_one(pool)
    .await?;
    let oldest_submitted_seconds = sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(submitted_at)), 0)::int8 FROM batches WHERE status = 'submitted'",
    )
    .fetch_one(pool)
    .await?;
    let partners_paused =
        sqlx::query_scalar("SELECT count(*) FROM partner_pauses WHERE paused_until > now()")
            .fetch_one(pool)
            .await?;
    let batches_awaiting_operator =
        sqlx::query_scalar("SELECT count(*) FROM batches WHERE status = 'awaiting_operator'")
            .fetch_one(pool)
            .await?;
    let open_items_by_class = sqlx::query_as(
        "SELECT open_class, count(*) FROM batch_items
         WHERE open_code IS NOT NULL AND result_code IS NULL GROUP BY open_class",
    )
    .fetch_all(pool)
    .await?;
    let batches_held = sqlx::query_scalar(
        "SELECT count(*) FROM batches WHERE held_at IS NOT NULL AND status IN ('created', 'submitting')",
    )
    .fetch_one(pool)
    .await?;
    let openapi_held = sqlx::query_scalar(
        "SELECT count(*) FROM openapi_requests WHERE held_at IS NOT NULL AND settled_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    let double_payment_suspects = double_payment_suspects(pool).await?;
    let (batches_outcome_unknown, oldest_outcome_unknown_seconds) = outcome_unknown(pool).await?;
    Ok(Gauges {
        refunds_by_status,
        outbox_backlog,
        outbox_oldest_seconds,
        oldest_pending_seconds,
        oldest_submitted_seconds,
        partners_paused,
        batches_awaiting_operator,
        open_items_by_class,
        batches_held,
        openapi_held,
        double_payment_suspects,
        batches_outcome_unknown,
        oldest_outcome_unknown_seconds,
    })
}

/// How many refunds were recorded as possibly paid twice.
pub async fn double_payment_suspects(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM double_payment_suspects")
        .fetch_one(pool)
        .await
}

/// Batches not yet accepted (`created`, `submitting`) whose outcome is
/// unknown, and the age of the oldest since it was created (whole seconds).
pub async fn outcome_unknown(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::int8
         FROM batches WHERE status IN ('created', 'submitting') AND outcome_unknown",
    )
    .fetch_one(pool)
    .await
}
