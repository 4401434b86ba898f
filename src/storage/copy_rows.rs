//! A window's new refunds as `COPY refunds (…) FROM STDIN (FORMAT csv)` data,
//! the cheaper way to insert them (see `intake.rs`).
//!
//! Every text value is quoted with its quotes doubled, so it may hold commas,
//! line breaks, backslashes or a `\.` line and is read back byte for byte; a
//! missing value is an empty unquoted field, which CSV reads as NULL; numbers
//! are bare. Rows end with `\n`.

use crate::domain::RefundRequest;

/// The columns each row gives, in order.
pub const COPY_REFUNDS: &str = "COPY refunds (refund_id, partner, trade_no, amount_fen, reason, \
     trade_amount_fen, metadata, metadata_text, message_id) FROM STDIN (FORMAT csv)";

/// Appends one refund's row; `metadata` goes to both the JSONB column (`{}`
/// when absent, as the column's default) and its exact text (NULL when absent).
pub fn push_row(out: &mut String, r: &RefundRequest, message_id: Option<&str>) {
    push_text(out, Some(&r.refund_id));
    out.push(',');
    push_text(out, Some(&r.partner));
    out.push(',');
    push_text(out, Some(&r.trade_no));
    out.push(',');
    out.push_str(&r.amount.fen().to_string());
    out.push(',');
    push_text(out, Some(&r.reason));
    out.push(',');
    if let Some(total) = r.trade_amount {
        out.push_str(&total.fen().to_string());
    }
    out.push(',');
    push_text(out, Some(r.metadata.as_deref().unwrap_or("{}")));
    out.push(',');
    push_text(out, r.metadata.as_deref());
    out.push(',');
    push_text(out, message_id);
    out.push('\n');
}

fn push_text(out: &mut String, value: Option<&str>) {
    let Some(v) = value else {
        return;
    };
    out.push('"');
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Amount;

    fn request(reason: &str, metadata: Option<&str>, total: Option<i64>) -> RefundRequest {
        RefundRequest {
            refund_id: "R-1".into(),
            trade_no: "2026112522001400001".into(),
            amount: Amount::from_fen(1234).unwrap(),
            reason: reason.into(),
            partner: "2088000000000001".into(),
            trade_amount: total.map(|t| Amount::from_fen(t).unwrap()),
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn a_plain_row_has_fen_bare_and_absent_values_empty() {
        let mut out = String::new();
        push_row(&mut out, &request("damaged", None, None), None);
        assert_eq!(
            out,
            "\"R-1\",\"2088000000000001\",\"2026112522001400001\",1234,\"damaged\",,\"{}\",,\n"
        );
    }

    #[test]
    fn every_value_is_quoted_with_quotes_doubled() {
        let mut out = String::new();
        let meta = r#"{"note":"a \"b\", c\\d"}"#;
        push_row(
            &mut out,
            &request(
                "line one\nline \"two\",\r\n\\.\n退款",
                Some(meta),
                Some(10_000),
            ),
            Some("m-1"),
        );
        assert_eq!(
            out,
            concat!(
                "\"R-1\",\"2088000000000001\",\"2026112522001400001\",1234,",
                "\"line one\nline \"\"two\"\",\r\n\\.\n退款\",10000,",
                "\"{\"\"note\"\":\"\"a \\\"\"b\\\"\", c\\\\d\"\"}\",",
                "\"{\"\"note\"\":\"\"a \\\"\"b\\\"\", c\\\\d\"\"}\",\"m-1\"\n"
            )
        );
    }

    #[test]
    fn an_empty_text_is_quoted_so_it_is_not_read_as_null() {
        let mut out = String::new();
        push_text(&mut out, Some(""));
        push_text(&mut out, None);
        assert_eq!(out, "\"\"");
    }
}
