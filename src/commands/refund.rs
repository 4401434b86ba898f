//! `refund-worker refund show ID [--json]`.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};

use crate::alipay::disposition::PARTNER_MISCONFIGURED;
use crate::config::Settings;
use crate::storage::retries::Retried;
use crate::storage::settlements::{Settled, Settlement};
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
    match (&v.out_request_no, v.channel.as_str()) {
        (Some(no), "openapi") => writeln!(out, "request  {no} (alipay.trade.refund, no batch)")?,
        _ => writeln!(out, "batch    {}", v.batch_no.as_deref().unwrap_or("-"))?,
    }
    if let Some(why) = &v.held {
        writeln!(out, "held     for a person: {why}")?;
    }
    if let Some(code) = &v.result_code {
        let source = v.result_source.as_deref().unwrap_or("?");
        writeln!(
            out,
            "result   {code} ({source}) {}",
            v.result_message.as_deref().unwrap_or("")
        )?;
    }
    write_waiting(out, v)?;
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

/// Why an unfinished refund waits: its open item, or its next try.
fn write_waiting(out: &mut impl Write, v: &RefundView) -> std::io::Result<()> {
    if let Some(o) = &v.open_item {
        writeln!(
            out,
            "open     {} [{}] in batch {} since {}: {}",
            o.code,
            o.class,
            o.batch_no,
            o.since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            o.detail.as_deref().unwrap_or("")
        )?;
        if o.class != "alipay_retries" {
            writeln!(
                out,
                "         a person settles it: refund settle {} (--succeeded | --failed CODE) --reason TEXT --by NAME",
                v.refund_id
            )?;
        }
    }
    if v.status == "pending"
        && let Some(at) = v.not_before
    {
        let why = v
            .history
            .iter()
            .rev()
            .find(|h| h.to_status == "pending")
            .and_then(|h| h.code.clone())
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "next try not before {} (Alipay answered {why}; retry {} so far)",
            at.to_rfc3339(),
            v.item_retries
        )?;
    }
    Ok(())
}

/// `refund retry ID... | --code CODE [--since T] [--by NAME]`: exit 0 when
/// every refund was reopened, 1 when some were refused or unknown, 2 for a
/// bad `--since`.
pub async fn retry(
    settings: &Settings,
    ids: Vec<String>,
    code: Option<String>,
    since: Option<&str>,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let since = match since.map(parse_since).transpose() {
        Ok(s) => s,
        Err(bad) => {
            eprintln!("--since {bad:?} is neither an RFC 3339 time nor a date YYYY-MM-DD");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let who = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let actor = crate::domain::actor::Actor::Operator(who);
    let pool = storage::connect(&settings.database_url, 1).await?;
    let ids = match &code {
        Some(code) => storage::retries::failed_with(&pool, code, since).await?,
        None => ids,
    };
    if ids.is_empty() {
        println!("no failed refund matches: nothing to retry");
        return Ok(ExitCode::SUCCESS);
    }
    let (mut reopened, mut refused) = (0, 0);
    for id in &ids {
        match storage::retries::retry(&pool, id, &actor, PARTNER_MISCONFIGURED).await? {
            Retried::Reopened { code } => {
                reopened += 1;
                println!("{id}: failed ({code}) -> pending, by {actor}");
            }
            Retried::Refused(why) => {
                refused += 1;
                println!("{id}: refused: {why}");
            }
            Retried::Unknown => {
                refused += 1;
                println!("{id}: refused: no such refund");
            }
        }
    }
    println!("{reopened} back to pending, {refused} refused");
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `refund settle ID (--succeeded | --failed CODE) --reason TEXT --by NAME`:
/// exit 0 when settled, 1 when refused or unknown, 2 for an empty reason,
/// name or code.
pub async fn settle(
    settings: &Settings,
    id: &str,
    failed: Option<String>,
    reason: &str,
    by: &str,
) -> anyhow::Result<ExitCode> {
    let code_ok = failed.as_deref().is_none_or(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    if reason.trim().is_empty() || by.trim().is_empty() || !code_ok {
        eprintln!(
            "--reason and --by must not be empty, and --failed takes a code in capitals (A-Z, 0-9, _)"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let how = match failed {
        Some(code) => Settlement::Failed(code),
        None => Settlement::Succeeded,
    };
    let pool = storage::connect(&settings.database_url, 1).await?;
    let (reason, by) = (reason.trim(), by.trim());
    let settled = match storage::openapi::settle_held(&pool, id, &how, reason, by).await? {
        Some(settled) => settled,
        None => storage::settlements::settle(&pool, id, &how, reason, by).await?,
    };
    let to = match &how {
        Settlement::Succeeded => "succeeded".to_owned(),
        Settlement::Failed(code) => format!("failed ({code})"),
    };
    match settled {
        Settled::Done {
            batch_no,
            completed,
        } => {
            let batch = if completed { "; batch completed" } else { "" };
            println!("{id}: submitted -> {to} in batch {batch_no}, by operator:{by}{batch}");
            Ok(ExitCode::SUCCESS)
        }
        Settled::DoneRequest { out_request_no } => {
            println!(
                "{id}: submitted -> {to} (OpenAPI request {out_request_no}), by operator:{by}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Settled::Refused(why) => {
            eprintln!("{id}: refused: {why}");
            Ok(ExitCode::from(1))
        }
        Settled::Unknown => {
            eprintln!("refund {id} is unknown");
            Ok(ExitCode::from(1))
        }
    }
}

/// An RFC 3339 time, or a date taken as its start in UTC.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_is_a_time_or_a_date() {
        assert_eq!(
            parse_since("2026-11-25T08:00:00+08:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-25T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-25").unwrap().to_rfc3339(),
            "2026-11-25T00:00:00+00:00"
        );
        assert!(parse_since("yesterday").is_err());
    }
}
