//! What needs a person beside the dead letters: items Alipay left open,
//! refunds that may have been paid twice, and batches held for a code the
//! submitter cannot act on; each with the command that settles it.

use maud::{Markup, html};

use crate::domain::format_fen;
use crate::storage::attention::{OpenItemRow, SuspectRow};
use crate::storage::batch_view::BatchSummary;

/// The rows of the attention part of the overview.
pub struct Attention<'a> {
    pub open: &'a [OpenItemRow],
    pub held: &'a [BatchSummary],
    /// Refunds a late result for a rejected batch shows may be paid twice.
    pub suspects: &'a [SuspectRow],
}

/// What to do about an open item, by why it is open.
fn todo(i: &OpenItemRow, class: &str) -> String {
    if class == "alipay_retries" {
        "wait: Alipay retries it and reports again".to_owned()
    } else {
        format!(
            "check the Alipay account, then: refund-worker refund settle {} (--succeeded | --failed CODE) --reason … --by …",
            i.refund_id
        )
    }
}

/// The open items, suspects and held batches.
pub fn attention(a: &Attention<'_>) -> Markup {
    html! {
        h2 { "Items Alipay left open" }
        @if a.open.is_empty() {
            p id="no-open" { "None." }
        } @else {
            table id="open" {
                tr { th { "refund_id" } th { "batch_no" } th { "trade_no" } th { "amount" } th { "code" } th { "why" } th { "since" } th { "what to do" } }
                @for i in a.open {
                    @let class = i.open_class.as_deref().unwrap_or("-");
                    tr class={ "open-" (class) } {
                        td { (i.refund_id) }
                        td { (i.batch_no) }
                        td { (i.trade_no) }
                        td { (format_fen(i.amount_fen)) }
                        td { (i.open_code) }
                        td { (i.open_detail.as_deref().unwrap_or(class)) }
                        td { (i.open_since.map(|t| t.to_rfc3339()).unwrap_or_default()) }
                        td { (todo(i, class)) }
                    }
                }
            }
        }
        (suspects(a.suspects))
        h2 { "Held batches" }
        @if a.held.is_empty() {
            p id="no-held" { "None." }
        } @else {
            table id="held" {
                tr { th { "batch_no" } th { "partner" } th { "items" } th { "code" } th { "what to do" } }
                @for b in a.held {
                    tr {
                        td { (b.batch_no) }
                        td { (b.partner) }
                        td { (b.batch_num) }
                        td { (b.last_code.as_deref().unwrap_or("-")) }
                        td { "nothing of it was accepted: refund-worker batch release " (b.batch_no) " --reason … --by …" }
                    }
                }
            }
        }
    }
}

/// The rejected-batch alarm: refunds Alipay may have paid twice, each with
/// the batch that proved the rejection wrong and where the refund is now.
fn suspects(rows: &[SuspectRow]) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Possibly paid twice" }
            table id="suspects" {
                tr { th { "refund_id" } th { "rejected batch Alipay holds" } th { "batch it is in now" } th { "code" } th { "detail" } th { "noticed" } th { "what to do" } }
                @for r in rows {
                    @let e = &r.entry;
                    tr {
                        td { (e.refund_id) }
                        td { (r.batch_no) }
                        td { (e.other_batch.as_deref().unwrap_or("-")) }
                        td { (e.code) }
                        td { (e.detail) }
                        td { (e.noticed_at.to_rfc3339()) }
                        td { "check both batches in the Alipay account (docs/item-codes.md: a refund may have been paid twice)" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        })
        .into_string();
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
        })
        .into_string();
        assert!(html.contains("Possibly paid twice"), "{html}");
        assert!(html.contains("R-&lt;1&gt;") && html.contains("20261204000002"));
    }
}
