//! One refund's story: its fields, its history (who moved it where) and its
//! result events.

use maud::html;

use super::page;
use crate::storage::refunds::RefundView;

/// One refund, or that it is unknown.
pub fn refund(id: &str, view: Option<&RefundView>) -> String {
    let Some(v) = view else {
        return page(
            "Refund not found",
            html! {
                p id="unknown" { "No refund " (id) "." }
                p { a href="/" { "Back" } }
            },
        );
    };
    page(
        &format!("Refund {}", v.refund_id),
        html! {
            table id="refund" {
                tr { th { "refund_id" } td { (v.refund_id) } }
                tr { th { "status" } td id="status" { (v.status) } }
                tr { th { "trade" } td { (v.trade_no) } }
                tr { th { "amount" } td { (v.amount) " " (v.currency) } }
                tr { th { "reason" } td { (v.reason) } }
                tr { th { "batch" } td { (v.batch_no.as_deref().unwrap_or("-")) } }
                tr { th { "result" } td { (v.result_code.as_deref().unwrap_or("-")) " " (v.result_message.as_deref().unwrap_or("")) } }
            }
            h2 { "History" }
            table id="history" {
                @for h in &v.history {
                    tr {
                        td { (h.at.to_rfc3339()) }
                        td { (h.from_status.as_deref().unwrap_or("-")) " → " (h.to_status) }
                        td { (h.actor) }
                        td { ([h.code.as_deref(), h.note.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ")) }
                    }
                }
            }
            h2 { "Result events" }
            ul {
                @for e in &v.events {
                    li {
                        (e.routing_key) " " (e.event_id) " "
                        @match e.published_at {
                            Some(t) => { "published " (t.to_rfc3339()) },
                            None => "not yet published",
                        }
                    }
                }
            }
            p { a href="/" { "Back" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_refund_id_is_shown_as_text() {
        assert!(refund("<i>", None).contains("No refund &lt;i&gt;."));
        let html = refund("R-<script>alert(1)</script>", None);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("R-&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_stored_refund_with_scripts_in_its_fields_is_shown_as_text() {
        let at = chrono::DateTime::UNIX_EPOCH;
        let view = RefundView {
            refund_id: "R-<script>alert(1)</script>".into(),
            status: "pending".into(),
            partner: "2088101122136241".into(),
            trade_no: "T-1".into(),
            amount: "1.00".into(),
            reason: "<script>alert(2)</script>".into(),
            currency: "CNY".into(),
            trade_amount: None,
            metadata: serde_json::Value::Null,
            batch_no: None,
            channel: "mapi".into(),
            out_request_no: None,
            held: None,
            result_code: None,
            result_message: Some("<script>alert(3)</script>".into()),
            result_source: None,
            received_at: at,
            updated_at: at,
            finished_at: None,
            item_retries: 0,
            not_before: None,
            open_item: None,
            history: vec![crate::storage::refunds::HistoryEntry {
                at,
                from_status: None,
                to_status: "pending".into(),
                batch_no: None,
                code: None,
                actor: "operator:<script>alert(4)</script>".into(),
                note: Some("<script>alert(5)</script>".into()),
            }],
            events: Vec::new(),
        };
        let html = refund(&view.refund_id, Some(&view));
        assert!(!html.contains("<script"), "{html}");
        for n in 1..=5 {
            assert!(
                html.contains(&format!("&lt;script&gt;alert({n})&lt;/script&gt;")),
                "{n}: {html}"
            );
        }
        assert!(html.contains("<td id=\"status\">pending</td>"));
    }
}
