//! `refund-worker refund show ID [--json]`.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Settings;
use crate::storage::{self, refunds::RefundView};

pub async fn show(settings: &Settings, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let pool = storage::connect(&settings.database_url, 1).await?;
    let found = storage::refunds::find(&pool, id).await?;
    super::print_found(
        found,
        || format!("refund {id} is unknown"),
        json,
        write_text,
    )
}

/// The human form: the refund, then its history, oldest first.
pub fn write_text(out: &mut impl Write, v: &RefundView) -> std::io::Result<()> {
    writeln!(out, "refund   {}", v.refund_id)?;
    writeln!(out, "status   {}", v.status)?;
    writeln!(out, "trade    {} (partner {})", v.trade_no, v.partner)?;
    writeln!(out, "amount   {} {}", v.amount, v.currency)?;
    if let Some(total) = &v.trade_amount {
        writeln!(out, "of trade {total}")?;
    }
    writeln!(out, "reason   {}", v.reason)?;
    writeln!(out, "batch    {}", v.batch_no.as_deref().unwrap_or("-"))?;
    if let Some(code) = &v.result_code {
        let source = v.result_source.as_deref().unwrap_or("?");
        writeln!(
            out,
            "result   {code} ({source}) {}",
            v.result_message.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "received {}", v.received_at.to_rfc3339())?;
    writeln!(out, "history")?;
    for h in &v.history {
        let from = h.from_status.as_deref().unwrap_or("-");
        let extra = [h.batch_no.as_deref(), h.code.as_deref(), h.note.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(
            out,
            "  {}  {from} -> {}  by {}  {extra}",
            h.at.to_rfc3339(),
            h.to_status,
            h.actor
        )?;
    }
    for e in &v.events {
        let published = e
            .published_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "not yet published".into());
        writeln!(out, "event    {} {} {published}", e.routing_key, e.event_id)?;
    }
    Ok(())
}
