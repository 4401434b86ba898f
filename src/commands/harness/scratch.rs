//! A tool's scratch resources: a fresh database beside the configured one
//! and fresh broker names, removed again after the run.

use sqlx::AssertSqlSafe;

use crate::amqp::Topology;
use crate::config::Settings;
use crate::storage;

/// The same URL with another database name (the query string is kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// Drops a scratch database, even with connections still open.
pub async fn drop_database(url: &str, name: &str) {
    let Ok(admin) = storage::connect(&with_database(url, "postgres"), 1).await else {
        return;
    };
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::query(AssertSqlSafe(sql)).execute(&admin).await.ok();
    admin.close().await;
}

/// Deletes the queues and exchanges of a tool's run.
pub async fn delete_topology(settings: &Settings, prefix: &str) {
    let Ok(conn) = crate::amqp::connect(&settings.amqp.url, "refund-worker bench cleanup").await
    else {
        return;
    };
    if let Ok(channel) = conn.create_channel().await {
        Topology::new(prefix, true).delete(&channel).await;
    }
    crate::amqp::liveness::close(&conn, "cleaned").await;
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn another_database_keeps_host_and_options() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/rw?sslmode=require", "x"),
            "postgres://u:p@h:5432/x?sslmode=require"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
