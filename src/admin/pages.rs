//! The operator page's HTML, rendered from plain values (pure, no I/O).
//! Every value from the database, the broker or the request is escaped.

use crate::alipay::wire::pwd_form::html_escape as esc;
use crate::domain::format_fen;
use crate::storage::attention::{OpenItemRow, SuspectRow};
use crate::storage::batch_view::BatchSummary;
use crate::storage::refunds::RefundView;

/// One dead letter as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRow {
    pub message_id: String,
    pub refund_id: Option<String>,
    pub code: String,
    pub reason: String,
    pub dead_lettered_at: Option<String>,
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} · refund-worker</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}.flash{{background:#ffd;padding:.5em}}</style>\n\
         </head>\n<body>\n<h1>{}</h1>\n{}\n</body>\n</html>\n",
        esc(title),
        esc(title),
        body
    )
}

/// The token form.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"flash\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "{error}<form method=\"post\" action=\"/login\">\n<label>Admin token \
             <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label>\n\
             <button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form>"
        ),
    )
}

/// What a request without the credential gets.
pub fn refused() -> String {
    page(
        "Not signed in",
        "<p>This page needs the admin token: <a href=\"/login\">sign in</a>, or send \
         <code>Authorization: Bearer …</code>.</p>",
    )
}

/// What needs a person beside the dead letters: items Alipay left open and
/// batches held for a code the submitter cannot act on.
pub struct Attention<'a> {
    pub open: &'a [OpenItemRow],
    pub held: &'a [BatchSummary],
    /// Refunds a late result for a rejected batch shows may be paid twice.
    pub suspects: &'a [SuspectRow],
}

/// The open items and held batches, each with the command that settles it.
fn attention(a: &Attention<'_>) -> String {
    let mut body = String::from(
        "<h2>Items Alipay left open</h2>
",
    );
    if a.open.is_empty() {
        body.push_str("<p id=\"no-open\">None.</p>\n");
    } else {
        body.push_str("<table id=\"open\"><tr><th>refund_id</th><th>batch_no</th><th>trade_no</th><th>amount</th><th>code</th><th>why</th><th>since</th><th>what to do</th></tr>\n");
        for i in a.open {
            let class = i.open_class.as_deref().unwrap_or("-");
            let todo = if class == "alipay_retries" {
                "wait: Alipay retries it and reports again".to_owned()
            } else {
                format!(
                    "check the Alipay account, then: refund-worker refund settle {} (--succeeded | --failed CODE) --reason … --by …",
                    i.refund_id
                )
            };
            body.push_str(&format!(
                "<tr class=\"open-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(class),
                esc(&i.refund_id),
                esc(&i.batch_no),
                esc(&i.trade_no),
                format_fen(i.amount_fen),
                esc(&i.open_code),
                esc(i.open_detail.as_deref().unwrap_or(class)),
                esc(&i.open_since.map(|t| t.to_rfc3339()).unwrap_or_default()),
                esc(&todo),
            ));
        }
        body.push_str("</table>\n");
    }
    suspects(&mut body, a.suspects);
    body.push_str("<h2>Held batches</h2>\n");
    if a.held.is_empty() {
        body.push_str("<p id=\"no-held\">None.</p>\n");
    } else {
        body.push_str("<table id=\"held\"><tr><th>batch_no</th><th>partner</th><th>items</th><th>code</th><th>what to do</th></tr>\n");
        for b in a.held {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&b.batch_no),
                esc(&b.partner),
                b.batch_num,
                esc(b.last_code.as_deref().unwrap_or("-")),
                esc(&format!(
                    "nothing of it was accepted: refund-worker batch release {} --reason … --by …",
                    b.batch_no
                )),
            ));
        }
        body.push_str("</table>\n");
    }
    body
}

/// The rejected-batch alarm: refunds Alipay may have paid twice, each
/// with the batch that proved the rejection wrong and where the refund is now.
fn suspects(body: &mut String, rows: &[SuspectRow]) {
    if rows.is_empty() {
        return;
    }
    body.push_str("<h2>Possibly paid twice</h2>\n");
    body.push_str("<table id=\"suspects\"><tr><th>refund_id</th><th>rejected batch Alipay holds</th><th>batch it is in now</th><th>code</th><th>detail</th><th>noticed</th><th>what to do</th></tr>\n");
    for r in rows {
        let e = &r.entry;
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&e.refund_id),
            esc(&r.batch_no),
            esc(e.other_batch.as_deref().unwrap_or("-")),
            esc(&e.code),
            esc(&e.detail),
            esc(&e.noticed_at.to_rfc3339()),
            esc("check both batches in the Alipay account (docs/item-codes.md: a refund may have been paid twice)"),
        ));
    }
    body.push_str("</table>\n");
}

/// The overview: what needs a person (open items, held batches), batches
/// awaiting an operator, dead letters by code, and the refund search.
pub fn overview(
    flash: Option<&str>,
    needs: &Attention<'_>,
    awaiting: &[BatchSummary],
    dead: Result<&[DeadRow], &str>,
    csrf: &str,
) -> String {
    let mut body = String::new();
    if let Some(f) = flash {
        body.push_str(&format!("<p class=\"flash\" id=\"flash\">{}</p>\n", esc(f)));
    }
    body.push_str(
        "<h2>Find a refund</h2>\n<form method=\"get\" action=\"/refunds\">\
         <input name=\"id\" id=\"refund-id\" placeholder=\"refund_id\"> \
         <button type=\"submit\" id=\"find\">Show</button></form>\n",
    );
    body.push_str(&attention(needs));
    body.push_str("<h2>Batches awaiting an operator</h2>\n");
    if awaiting.is_empty() {
        body.push_str("<p id=\"no-awaiting\">None.</p>\n");
    } else {
        body.push_str("<table id=\"awaiting\"><tr><th>batch_no</th><th>partner</th><th>items</th><th>created</th><th>last code</th><th></th></tr>\n");
        for b in awaiting {
            body.push_str(&format!(
                "<tr><td>{no}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"/batches/{no}/form\" target=\"_blank\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">Open the password form</button></form></td></tr>\n",
                esc(&b.partner),
                b.batch_num,
                esc(&b.created_at.to_rfc3339()),
                esc(b.last_code.as_deref().unwrap_or("-")),
                no = esc(&b.batch_no),
                csrf = esc(csrf),
            ));
        }
        body.push_str("</table>\n");
    }
    body.push_str("<h2>Dead letters</h2>\n");
    match dead {
        Err(why) => body.push_str(&format!(
            "<p class=\"flash\">Cannot read the dead-letter queue: {}</p>\n",
            esc(why)
        )),
        Ok([]) => body.push_str("<p id=\"no-dead\">None.</p>\n"),
        Ok(rows) => {
            let mut codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                let of: Vec<&DeadRow> = rows.iter().filter(|r| r.code == code).collect();
                body.push_str(&format!(
                    "<h3>{} ({})</h3>\n<table class=\"dead\"><tr><th>message_id</th><th>refund_id</th><th>reason</th><th>dead-lettered</th><th></th></tr>\n",
                    esc(code),
                    of.len()
                ));
                for r in of {
                    body.push_str(&format!(
                        "<tr id=\"dead-{id}\"><td>{id}</td><td>{}</td><td>{}</td><td>{}</td><td>\
                         <form method=\"post\" action=\"/dlq/replay\">\
                         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                         <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                         <button type=\"submit\" class=\"replay\">Replay</button></form></td></tr>\n",
                        esc(r.refund_id.as_deref().unwrap_or("-")),
                        esc(&r.reason),
                        esc(r.dead_lettered_at.as_deref().unwrap_or("-")),
                        id = esc(&r.message_id),
                        csrf = esc(csrf),
                    ));
                }
                body.push_str("</table>\n");
            }
        }
    }
    page("refund-worker operations", &body)
}

/// One refund's story, or that it is unknown.
pub fn refund(id: &str, view: Option<&RefundView>) -> String {
    let Some(v) = view else {
        return page(
            "Refund not found",
            &format!(
                "<p id=\"unknown\">No refund {}.</p><p><a href=\"/\">Back</a></p>",
                esc(id)
            ),
        );
    };
    let mut body = format!(
        "<table id=\"refund\">\
         <tr><th>refund_id</th><td>{}</td></tr><tr><th>status</th><td id=\"status\">{}</td></tr>\
         <tr><th>trade</th><td>{}</td></tr><tr><th>amount</th><td>{} {}</td></tr>\
         <tr><th>reason</th><td>{}</td></tr><tr><th>batch</th><td>{}</td></tr>\
         <tr><th>result</th><td>{} {}</td></tr></table>\n<h2>History</h2>\n<table>",
        esc(&v.refund_id),
        esc(&v.status),
        esc(&v.trade_no),
        esc(&v.amount),
        esc(&v.currency),
        esc(&v.reason),
        esc(v.batch_no.as_deref().unwrap_or("-")),
        esc(v.result_code.as_deref().unwrap_or("-")),
        esc(v.result_message.as_deref().unwrap_or("")),
    );
    for h in &v.history {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.at.to_rfc3339()),
            esc(h.from_status.as_deref().unwrap_or("-")),
            esc(&h.to_status),
            esc(&h.actor),
            esc(&[h.code.as_deref(), h.note.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")),
        ));
    }
    body.push_str("</table>\n<h2>Result events</h2>\n<ul>");
    for e in &v.events {
        body.push_str(&format!(
            "<li>{} {} {}</li>",
            esc(&e.routing_key),
            e.event_id,
            e.published_at
                .map(|t| format!("published {}", t.to_rfc3339()))
                .unwrap_or_else(|| "not yet published".into())
        ));
    }
    body.push_str("</ul><p><a href=\"/\">Back</a></p>");
    page(&format!("Refund {}", v.refund_id), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_everywhere() {
        let rows = [DeadRow {
            message_id: "m\"1".into(),
            refund_id: Some("<script>x</script>".into()),
            code: "invalid_amount".into(),
            reason: "a < b & c".into(),
            dead_lettered_at: None,
        }];
        let none = Attention {
            open: &[],
            held: &[],
            suspects: &[],
        };
        let html = overview(Some("<b>done</b>"), &none, &[], Ok(&rows), "c\"s");
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("a &lt; b &amp; c"));
        assert!(html.contains("value=\"m&quot;1\""));
        assert!(html.contains("&lt;b&gt;done&lt;/b&gt;"));
        assert!(html.contains("<h3>invalid_amount (1)</h3>"));
        assert!(refund("<i>", None).contains("No refund &lt;i&gt;."));
    }

    #[test]
    fn open_items_say_what_to_do_by_why_they_are_open() {
        let row = |refund_id: &str, class: &str| OpenItemRow {
            batch_no: "20261204000001".into(),
            refund_id: refund_id.into(),
            trade_no: "<t>".into(),
            amount_fen: 1050,
            open_code: "REFUND_FAIL".into(),
            open_class: Some(class.into()),
            open_detail: None,
            open_since: None,
        };
        let open = [row("R-1", "needs_person"), row("R-2", "alipay_retries")];
        let html = attention(&Attention {
            open: &open,
            held: &[],
            suspects: &[],
        });
        assert!(html.contains("refund settle R-1"));
        assert!(!html.contains("refund settle R-2"));
        assert!(html.contains("10.50") && html.contains("&lt;t&gt;"));
        assert!(html.contains("id=\"no-held\""));
        assert!(!html.contains("Possibly paid twice"));
    }

    #[test]
    fn suspects_of_a_double_payment_are_shown_to_the_operator() {
        let suspects = [SuspectRow {
            batch_no: "20261204000001".into(),
            entry: crate::storage::batch_view::SuspectEntry {
                refund_id: "R-<1>".into(),
                other_batch: Some("20261204000002".into()),
                code: "SUCCESS".into(),
                detail: "paid".into(),
                noticed_at: chrono::DateTime::UNIX_EPOCH,
            },
        }];
        let html = attention(&Attention {
            open: &[],
            held: &[],
            suspects: &suspects,
        });
        assert!(html.contains("Possibly paid twice"), "{html}");
        assert!(html.contains("R-&lt;1&gt;") && html.contains("20261204000002"));
    }
}
