//! A refund-approved event (contract §3) read from the raw delivery body.
//!
//! Rules are checked in the contract's order: size, JSON object, then each field
//! in table order; the first broken rule names the [`ErrorCode`]. JSON numbers are
//! kept as their source text ([`RawValue`]), so an amount is read exactly.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::amount::{Amount, AmountError};
use super::error_code::{ErrorCode, Rejection};

/// Bodies above 64 KiB are refused before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// `metadata` is at most 4 KiB of JSON text.
pub const MAX_METADATA_BYTES: usize = 4 * 1024;
/// `reason` is at most 256 bytes of UTF-8 (Alipay's `BATCH_MEMO_LENGTH_EXCEED_LIMIT`).
pub const MAX_REASON_BYTES: usize = 256;
/// The reason sent to Alipay when the event gives none.
pub const DEFAULT_REASON: &str = "refund";

/// A valid event, ready to be stored as a pending refund.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    pub refund_id: String,
    pub trade_no: String,
    pub amount: Amount,
    pub reason: String,
    /// Always resolved: an absent `partner` is the default one.
    pub partner: String,
    pub trade_amount: Option<Amount>,
    /// The `metadata` object as its JSON text, echoed in the result event.
    pub metadata: Option<String>,
}

impl RefundRequest {
    /// Two events are the same refund when these are equal (contract §3).
    pub fn same_refund_as(&self, partner: &str, trade_no: &str, amount_fen: i64) -> bool {
        self.partner == partner && self.trade_no == trade_no && self.amount.fen() == amount_fen
    }
}

/// The partners this worker may refund for, and the default one.
pub trait Partners {
    fn default_partner(&self) -> Option<&str>;
    fn is_configured(&self, partner: &str) -> bool;
}

/// Field names borrowed as raw JSON, so numbers keep their text and a field's
/// type is judged by its own rule, not by serde.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    refund_id: Option<&'a RawValue>,
    #[serde(borrow)]
    trade_no: Option<&'a RawValue>,
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
    #[serde(borrow)]
    reason: Option<&'a RawValue>,
    #[serde(borrow)]
    partner: Option<&'a RawValue>,
    #[serde(borrow)]
    currency: Option<&'a RawValue>,
    #[serde(borrow)]
    trade_amount: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

/// Reads and checks one delivery body.
pub fn parse(body: &[u8], partners: &impl Partners) -> Result<RefundRequest, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        Rejection::new(
            ErrorCode::InvalidJson,
            format!("the body is not UTF-8: {e}"),
        )
    })?;
    let value: &RawValue = serde_json::from_str(text).map_err(|e| {
        Rejection::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}"))
    })?;
    if !value.get().starts_with('{') {
        return Err(Rejection::new(
            ErrorCode::InvalidJson,
            "the body is JSON but not an object",
        ));
    }
    let f: Fields = serde_json::from_str(value.get()).map_err(|e| {
        Rejection::new(
            ErrorCode::InvalidJson,
            format!("the body is not a valid event object: {e}"),
        )
    })?;

    let refund_id = required_string(f.refund_id, "refund_id", ErrorCode::InvalidRefundId)?;
    if !valid_refund_id(&refund_id) {
        return Err(Rejection::new(
            ErrorCode::InvalidRefundId,
            "refund_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    let trade_no = required_string(f.trade_no, "trade_no", ErrorCode::InvalidTradeNo)?;
    if !(16..=64).contains(&trade_no.len()) || !trade_no.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::new(
            ErrorCode::InvalidTradeNo,
            "trade_no must be Alipay's trade number: 16 to 64 digits",
        ));
    }
    let amount = match f.amount {
        None => return Err(missing("amount")),
        Some(raw) => amount_field(raw, "amount")?,
    };
    let reason = reason_field(f.reason)?;
    let partner = partner_field(f.partner, partners)?;
    if let Some(raw) = f
        .currency
        .filter(|raw| as_string(raw).as_deref() != Some("CNY"))
    {
        return Err(Rejection::new(
            ErrorCode::UnsupportedCurrency,
            format!("currency must be \"CNY\", not {}", raw.get()),
        ));
    }
    let trade_amount = f
        .trade_amount
        .map(|raw| amount_field(raw, "trade_amount"))
        .transpose()?;
    let metadata = metadata_field(f.metadata)?;
    if let Some(total) = trade_amount.filter(|total| amount > *total) {
        return Err(Rejection::new(
            ErrorCode::ExceedsTradeAmount,
            format!("amount {amount} is above the trade's total {total}"),
        ));
    }
    Ok(RefundRequest {
        refund_id,
        trade_no,
        amount,
        reason,
        partner,
        trade_amount,
        metadata,
    })
}

fn missing(field: &str) -> Rejection {
    Rejection::new(
        ErrorCode::MissingField,
        format!("the required field {field} is missing"),
    )
}

/// A JSON string's value, or `None` for any other JSON type.
fn as_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

fn required_string(
    raw: Option<&RawValue>,
    field: &str,
    code: ErrorCode,
) -> Result<String, Rejection> {
    let raw = raw.ok_or_else(|| missing(field))?;
    as_string(raw).ok_or_else(|| {
        Rejection::new(
            code,
            format!("{field} must be a JSON string, not {}", raw.get()),
        )
    })
}

fn valid_refund_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// An amount is a JSON string or number, read from its text.
fn amount_field(raw: &RawValue, field: &str) -> Result<Amount, Rejection> {
    let text = raw.get();
    let (yuan, shown) = if text.starts_with('"') {
        match as_string(raw) {
            Some(s) => (s, text.to_owned()),
            None => return Err(bad_amount(field, text, "is not a valid JSON string")),
        }
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        (text.to_owned(), text.to_owned())
    } else {
        return Err(bad_amount(field, text, "must be a string or a number"));
    };
    Amount::parse_yuan(&yuan).map_err(|e: AmountError| bad_amount(field, &shown, &e.to_string()))
}

fn bad_amount(field: &str, shown: &str, why: &str) -> Rejection {
    let shown: String = shown.chars().take(40).collect();
    Rejection::new(ErrorCode::InvalidAmount, format!("{field} {shown} {why}"))
}

fn reason_field(raw: Option<&RawValue>) -> Result<String, Rejection> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_REASON.to_owned());
    };
    let reason = as_string(raw)
        .ok_or_else(|| Rejection::new(ErrorCode::InvalidReason, "reason must be a JSON string"))?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(Rejection::new(
            ErrorCode::InvalidReason,
            format!(
                "reason is {} bytes of UTF-8; at most {MAX_REASON_BYTES} are allowed",
                reason.len()
            ),
        ));
    }
    if let Some(c) = reason
        .chars()
        .find(|c| matches!(c, '^' | '|' | '$' | '#') || c.is_control())
    {
        return Err(Rejection::new(
            ErrorCode::InvalidReason,
            format!(
                "reason may not contain {c:?}: ^ | $ # and control characters break Alipay's detail_data"
            ),
        ));
    }
    // An empty reason would leave the detail_data item without its third field.
    Ok(if reason.is_empty() {
        DEFAULT_REASON.to_owned()
    } else {
        reason
    })
}

fn partner_field(raw: Option<&RawValue>, partners: &impl Partners) -> Result<String, Rejection> {
    let partner = match raw {
        Some(raw) => as_string(raw).ok_or_else(|| {
            Rejection::new(ErrorCode::UnknownPartner, "partner must be a JSON string")
        })?,
        None => match partners.default_partner() {
            Some(p) => return Ok(p.to_owned()),
            None => {
                return Err(Rejection::new(
                    ErrorCode::UnknownPartner,
                    "the event names no partner and no default partner (ALIPAY_PARTNER) is configured",
                ));
            }
        },
    };
    if partners.is_configured(&partner) {
        Ok(partner)
    } else {
        let shown: String = partner.chars().take(40).collect();
        Err(Rejection::new(
            ErrorCode::UnknownPartner,
            format!("partner {shown:?} is not configured"),
        ))
    }
}

fn metadata_field(raw: Option<&RawValue>) -> Result<Option<String>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(Rejection::new(
            ErrorCode::InvalidMetadata,
            "metadata must be a JSON object",
        ));
    }
    if text.len() > MAX_METADATA_BYTES {
        return Err(Rejection::new(
            ErrorCode::InvalidMetadata,
            format!(
                "metadata is {} bytes of JSON; at most {MAX_METADATA_BYTES} are allowed",
                text.len()
            ),
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
#[path = "refund_request_tests.rs"]
mod tests;
