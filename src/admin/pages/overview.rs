//! The front page: the refund search, what needs a person, batches awaiting
//! an operator (each with the button that opens its password form), and the
//! dead letters by code (each with a replay button).

use maud::{Markup, html};

use super::attention::{Attention, attention};
use super::{Viewer, csrf_field, page, who};
use crate::storage::batch_view::BatchSummary;

/// One dead letter as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRow {
    pub message_id: String,
    pub refund_id: Option<String>,
    pub code: String,
    pub reason: String,
    pub dead_lettered_at: Option<String>,
}

/// The overview; `flash` is what the last action did.
pub fn overview(
    viewer: &Viewer<'_>,
    flash: Option<&str>,
    needs: &Attention<'_>,
    awaiting: &[BatchSummary],
    dead: Result<&[DeadRow], &str>,
) -> String {
    page(
        "refund-worker operations",
        html! {
            @if let Some(f) = flash {
                p class="flash" id="flash" { (f) }
            }
            (who(viewer))
            h2 { "Find a refund" }
            form method="get" action="/refunds" {
                input name="id" id="refund-id" placeholder="refund_id";
                " "
                button type="submit" id="find" { "Show" }
            }
            (attention(needs))
            (awaiting_operator(awaiting, viewer.csrf))
            (dead_letters(dead, viewer.csrf))
        },
    )
}

/// Batches awaiting an operator, each with its password-form button.
fn awaiting_operator(awaiting: &[BatchSummary], csrf: &str) -> Markup {
    html! {
        h2 { "Batches awaiting an operator" }
        @if awaiting.is_empty() {
            p id="no-awaiting" { "None." }
        } @else {
            table id="awaiting" {
                tr { th { "batch_no" } th { "partner" } th { "items" } th { "created" } th { "last code" } th {} }
                @for b in awaiting {
                    tr {
                        td { (b.batch_no) }
                        td { (b.partner) }
                        td { (b.batch_num) }
                        td { (b.created_at.to_rfc3339()) }
                        td { (b.last_code.as_deref().unwrap_or("-")) }
                        td {
                            form method="post" action={ "/batches/" (b.batch_no) "/form" } target="_blank" {
                                (csrf_field(csrf))
                                button type="submit" class="open-form" { "Open the password form" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The dead letters grouped by code, codes in order, letters in queue order.
fn dead_letters(dead: Result<&[DeadRow], &str>, csrf: &str) -> Markup {
    html! {
        h2 { "Dead letters" }
        @match dead {
            Err(why) => p class="flash" { "Cannot read the dead-letter queue: " (why) },
            Ok([]) => p id="no-dead" { "None." },
            Ok(rows) => {
                @for code in codes(rows) {
                    @let of: Vec<&DeadRow> = rows.iter().filter(|r| r.code == code).collect();
                    h3 { (code) " (" (of.len()) ")" }
                    table class="dead" {
                        tr { th { "message_id" } th { "refund_id" } th { "reason" } th { "dead-lettered" } th {} }
                        @for r in of {
                            tr id={ "dead-" (r.message_id) } {
                                td { (r.message_id) }
                                td { (r.refund_id.as_deref().unwrap_or("-")) }
                                td { (r.reason) }
                                td { (r.dead_lettered_at.as_deref().unwrap_or("-")) }
                                td {
                                    form method="post" action="/dlq/replay" {
                                        (csrf_field(csrf))
                                        input type="hidden" name="id" value=(r.message_id);
                                        button type="submit" class="replay" { "Replay" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The distinct codes, sorted.
fn codes(rows: &[DeadRow]) -> Vec<&str> {
    let mut codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Attention<'static> = Attention {
        open: &[],
        held: &[],
        suspects: &[],
    };

    fn viewer() -> Viewer<'static> {
        Viewer {
            name: "alice",
            csrf: "c\"s",
        }
    }

    #[test]
    fn values_are_escaped_everywhere() {
        let rows = [DeadRow {
            message_id: "m\"1".into(),
            refund_id: Some("<script>x</script>".into()),
            code: "invalid_amount".into(),
            reason: "a < b & c".into(),
            dead_lettered_at: None,
        }];
        let html = overview(&viewer(), Some("<b>done</b>"), &NONE, &[], Ok(&rows));
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("a &lt; b &amp; c"));
        assert!(html.contains("value=\"m&quot;1\""));
        assert!(html.contains("&lt;b&gt;done&lt;/b&gt;"));
        assert!(html.contains("<h3>invalid_amount (1)</h3>"));
        assert!(html.contains("value=\"c&quot;s\""));
        assert!(html.contains("<strong id=\"operator\">alice</strong>"));
    }

    #[test]
    fn a_script_in_a_dead_letter_or_its_code_stays_text() {
        let rows = [DeadRow {
            message_id: "\"><script>alert(1)</script>".into(),
            refund_id: Some("R-<script>alert(2)</script>".into()),
            code: "<script>alert(3)</script>".into(),
            reason: "<script>alert(4)</script>".into(),
            dead_lettered_at: Some("<script>alert(5)</script>".into()),
        }];
        let html = overview(&viewer(), None, &NONE, &[], Ok(&rows));
        assert!(!html.contains("<script"), "{html}");
        for n in 1..=5 {
            assert!(
                html.contains(&format!("&lt;script&gt;alert({n})&lt;/script&gt;")),
                "{n}: {html}"
            );
        }
        let why = overview(&viewer(), None, &NONE, &[], Err("<script>x</script>"));
        assert!(!why.contains("<script") && why.contains("&lt;script&gt;x"));
    }

    #[test]
    fn a_batch_awaiting_an_operator_gets_its_form_button() {
        let b = BatchSummary {
            batch_no: "2026120600\"1".into(),
            partner: "2088101122136241".into(),
            status: "awaiting_operator".into(),
            batch_num: 2,
            attempts: 1,
            last_code: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            form_printed_at: None,
        };
        let html = overview(&viewer(), None, &NONE, &[b], Ok(&[]));
        assert!(
            html.contains("action=\"/batches/2026120600&quot;1/form\" target=\"_blank\""),
            "{html}"
        );
        assert!(html.contains("id=\"no-dead\""));
    }
}
