//! `purge --save FILE`: the dead letters about to be removed, written as JSON
//! lines and fsynced before anything is removed.
//!
//! One object per message: `saved_at`, `queue`, `position`, `message_id`,
//! `refund_id`, `code`, `reason`, `dead_lettered_at`, `properties` (the set
//! ones, headers aside), `headers` (AMQP values as plain JSON, see
//! [`super::render::value_json`]), `body_encoding` (`utf8` or `base64`) and
//! `body` (the text, or its base64 when the body is not valid UTF-8).
//! The file is appended to, never truncated, so an earlier save survives.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::letter::Letter;
use super::render::{body_text, properties_json, table_json};

/// The saved form of one dead letter.
pub fn record(letter: &Letter, queue: &str, now: DateTime<Utc>) -> Value {
    let (encoding, body) = body_text(&letter.body);
    json!({
        "saved_at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "queue": queue,
        "position": letter.position,
        "message_id": letter.message_id,
        "refund_id": letter.refund_id,
        "code": letter.code,
        "reason": letter.reason,
        "dead_lettered_at": letter
            .dead_lettered_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "properties": properties_json(&letter.properties),
        "headers": table_json(&letter.headers()),
        "body_encoding": encoding,
        "body": body,
    })
}

/// Appends the records to `path` (created if missing) and fsyncs the file
/// (and, when it was created, its directory) before returning.
pub fn save(
    path: &Path,
    letters: &[&Letter],
    queue: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let existed = path.exists();
    let mut text = String::new();
    for letter in letters {
        text.push_str(&record(letter, queue, now).to_string());
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} to save the dead letters", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {} to disk", path.display()))?;
    if !existed {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the directory of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::letter::tests::worker_letter;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T09:30:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn a_record_holds_headers_and_body() {
        let l = worker_letter("invalid_json", "2026-11-25T08:00:01.123Z", "not json");
        let r = record(&l, "p.refunds.dead", now());
        assert_eq!(r["queue"], "p.refunds.dead");
        assert_eq!(r["message_id"], "m-invalid_json");
        assert_eq!(r["headers"]["x-refund-error-code"], "invalid_json");
        assert_eq!(r["body_encoding"], "utf8");
        assert_eq!(r["body"], "not json");
        let mut bin = l.clone();
        bin.body = vec![0xff, 0xfe];
        let r = record(&bin, "q", now());
        assert_eq!(r["body_encoding"], "base64");
        assert_eq!(r["body"], "//4=");
    }

    #[test]
    fn saving_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saved.jsonl");
        let a = worker_letter("invalid_json", "2026-11-25T08:00:01.123Z", "a");
        let b = worker_letter("missing_field", "2026-11-25T08:00:01.123Z", "{}");
        save(&path, &[&a], "q", now()).unwrap();
        save(&path, &[&b], "q", now()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let codes: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["code"].to_string())
            .collect();
        assert_eq!(codes, vec!["\"invalid_json\"", "\"missing_field\""]);
    }
}
