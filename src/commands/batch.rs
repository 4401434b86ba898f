//! `refund-worker batch show BATCH_NO [--json]`.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Settings;
use crate::storage::settlements::Released;
use crate::storage::{self, batch_view::BatchView};

pub async fn show(settings: &Settings, batch_no: &str, json: bool) -> anyhow::Result<ExitCode> {
    let pool = storage::connect(&settings.database_url, 1).await?;
    let found = storage::batch_view::find(&pool, batch_no).await?;
    super::print_found(
        found,
        || format!("batch {batch_no} is unknown"),
        json,
        write_text,
    )
}

/// `batch list [--awaiting-operator | --status S] [--limit N] [--json]`.
pub async fn list(
    settings: &Settings,
    status: Option<&str>,
    limit: i64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pool = storage::connect(&settings.database_url, 1).await?;
    let batches = storage::batch_view::list(&pool, status, limit).await?;
    let mut out = std::io::stdout().lock();
    for b in &batches {
        if json {
            writeln!(out, "{}", serde_json::to_string(b)?)?;
        } else {
            writeln!(
                out,
                "{}  {:<17}  {:>4} items  partner {}  created {}  attempts {}  last code {}{}",
                b.batch_no,
                b.status,
                b.batch_num,
                b.partner,
                b.created_at.to_rfc3339(),
                b.attempts,
                b.last_code.as_deref().unwrap_or("-"),
                b.form_printed_at
                    .map(|t| format!("  form printed {}", t.to_rfc3339()))
                    .unwrap_or_default()
            )?;
        }
    }
    if !json && batches.is_empty() {
        writeln!(out, "no batches")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `batch release BATCH_NO --reason TEXT --by NAME`: a held batch's refunds
/// back to pending; exit 1 when refused or unknown, 2 for an empty reason or name.
pub async fn release(
    settings: &Settings,
    batch_no: &str,
    reason: &str,
    by: &str,
) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() || by.trim().is_empty() {
        eprintln!("--reason and --by must not be empty");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let pool = storage::connect(&settings.database_url, 1).await?;
    match storage::settlements::release(&pool, batch_no, reason.trim(), by.trim()).await? {
        Released::Done { refunds } => {
            println!(
                "batch {batch_no}: held -> rejected; {refunds} refunds back to pending, by operator:{by}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Released::Refused(why) => {
            eprintln!("batch {batch_no}: refused: {why}");
            Ok(ExitCode::from(1))
        }
        Released::Unknown => {
            eprintln!("batch {batch_no} is unknown");
            Ok(ExitCode::from(1))
        }
    }
}

/// `batch form BATCH_NO`: the signed auto-submit page of the password
/// interface on stdout, for a batch awaiting an operator; anything else is
/// one line on stderr and exit 1 (2 for a missing setting).
pub async fn form(settings: &Settings, batch_no: &str) -> anyhow::Result<ExitCode> {
    let pool = storage::connect(&settings.database_url, 1).await?;
    match crate::operator::password_form(&pool, settings, batch_no).await? {
        Ok(html) => {
            std::io::stdout().lock().write_all(html.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("{why}");
            let code = if why.is_setting() {
                super::EXIT_USAGE
            } else {
                1
            };
            Ok(ExitCode::from(code))
        }
    }
}

/// Characters of a raw body the human form shows; `--json` has them all.
const BODY_CHARS: usize = 160;

/// The first `max` characters of `text`, with `…` when there were more.
fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The human form: the batch, its results by code, its history, then each
/// notification and query answer with the start of its raw body.
pub fn write_text(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    write_state(out, v)?;
    write_absence(out, v)?;
    write_alarms(out, v)?;
    write_results(out, v)?;
    write_history(out, v)
}

/// What the batch is and where it stands.
fn write_state(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    writeln!(out, "batch     {}", v.batch_no)?;
    writeln!(out, "status    {}", v.status)?;
    writeln!(out, "partner   {}", v.partner)?;
    writeln!(out, "date      {}", v.refund_date)?;
    writeln!(out, "items     {} totalling {}", v.batch_num, v.total)?;
    writeln!(
        out,
        "attempts  {} (last code {})",
        v.attempts,
        v.last_code.as_deref().unwrap_or("-")
    )?;
    if v.outcome_unknown || v.needs_query {
        writeln!(
            out,
            "unsettled outcome unknown: {}, needs query: {}, queries so far: {}",
            v.outcome_unknown, v.needs_query, v.reconcile_queries
        )?;
    }
    if let Some(sent) = &v.last_sent_at {
        writeln!(out, "last sent {}", sent.to_rfc3339())?;
    }
    Ok(())
}

/// For a batch the gateway may never have received: how far the proof of
/// its absence has got.
fn write_absence(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    if v.needs_query && matches!(v.status.as_str(), "created" | "submitting") {
        match &v.absence_first_at {
            Some(first) => writeln!(
                out,
                "absence   first REFUND_NOT_EXIST that counts seen at {}; second query due at {}",
                first.to_rfc3339(),
                v.next_attempt_at.to_rfc3339()
            )?,
            None => writeln!(
                out,
                "absence   not proven: the next query is due at {} (it counts once SUBMIT_ABSENCE_SETTLE_MS has passed since the last send)",
                v.next_attempt_at.to_rfc3339()
            )?,
        }
    }
    Ok(())
}

/// What an operator must look at: possible double payments, a hold, a split.
fn write_alarms(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    if !v.suspects.is_empty() {
        writeln!(
            out,
            "ALARM     Alipay reported results for this batch after we had rejected it; possibly paid twice:"
        )?;
        for x in &v.suspects {
            writeln!(
                out,
                "  {}  {} (now in {}): {}",
                x.refund_id,
                x.code,
                x.other_batch.as_deref().unwrap_or("-"),
                x.detail
            )?;
        }
    }
    if let Some(at) = &v.held_at {
        writeln!(
            out,
            "held      since {} with {}: `batch release` sends its refunds back to pending",
            at.to_rfc3339(),
            v.last_code.as_deref().unwrap_or("-")
        )?;
    }
    if let Some(parent) = &v.split_from {
        writeln!(out, "split from {parent}")?;
    }
    Ok(())
}

/// Its results by code, then each item still open with why.
fn write_results(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    let results = v
        .results
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(out, "results   {results}")?;
    for i in v
        .items
        .iter()
        .filter(|i| i.result_code.is_none() && i.open_code.is_some())
    {
        writeln!(
            out,
            "open      {} (trade {}, {}) {} [{}] since {}: {}",
            i.refund_id,
            i.trade_no,
            i.amount,
            i.open_code.as_deref().unwrap_or("-"),
            i.open_class.as_deref().unwrap_or("-"),
            i.open_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            i.open_detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// Its history, then each notification and query answer with the start of its raw body.
fn write_history(out: &mut impl Write, v: &BatchView) -> std::io::Result<()> {
    writeln!(out, "history")?;
    for h in &v.history {
        let n = h.refunds.map(|n| format!(" x{n}")).unwrap_or_default();
        writeln!(
            out,
            "  {}  {}{n}  by {}",
            h.at.to_rfc3339(),
            h.what,
            h.actor
        )?;
    }
    for n in &v.notifications {
        writeln!(
            out,
            "{} #{} {} {}{}",
            n.kind,
            n.id,
            n.received_at.to_rfc3339(),
            n.verdict,
            n.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )?;
        writeln!(out, "  {}", shortened(&n.body, BODY_CHARS))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shortened;

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        assert_eq!(shortened("abc", 5), "abc");
        assert_eq!(shortened("招商银行", 2), "招商…");
        assert_eq!(shortened("abcdef", 3), "abc…");
    }
}
