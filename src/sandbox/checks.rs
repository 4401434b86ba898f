//! The checks of a gateway request, in the order the sandbox answers them.
//!
//! Owns the strictness alipay-mapi.md describes, as pure functions of the
//! decoded parameters, the URL's `_input_charset`, the configuration and
//! today's Beijing date. Invariant: the first failed check decides the code,
//! in this order: charset (URL and body the same bytes), service, partner,
//! `sign_type`, signature, then the batch rules. `DUPLICATE_BATCH_NO` needs
//! the ledger and is checked there, last.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};

use super::config::SandboxConfig;
use super::refusal::{Code, Refusal};
use crate::alipay::sign;
use crate::alipay::wire::amount::parse_exact;
use crate::alipay::wire::batch_no::{parse_batch_no, parse_refund_date};
use crate::alipay::wire::detail::{
    BatchItem, DetailError, MAX_BATCH_ITEMS, parse_detail_data, validate_items,
};
use crate::alipay::wire::pwd_form::PWD_SERVICE;
use crate::alipay::wire::request::{NOPWD_SERVICE, QUERY_SERVICE, validate_notify_url};

/// The signed services the gateway serves (`notify_verify` is unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `refund_fastpay_by_platform_nopwd`.
    Nopwd,
    /// `refund_fastpay_by_platform_pwd`, the browser form.
    Pwd,
    /// `refund_fastpay_query`.
    Query,
}

impl Service {
    /// The service of a `service` parameter, if the sandbox serves it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            NOPWD_SERVICE => Some(Service::Nopwd),
            PWD_SERVICE => Some(Service::Pwd),
            QUERY_SERVICE => Some(Service::Query),
            _ => None,
        }
    }

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Service::Nopwd => NOPWD_SERVICE,
            Service::Pwd => PWD_SERVICE,
            Service::Query => QUERY_SERVICE,
        }
    }
}

/// A request whose charset, service, partner and signature are good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// What it asks for.
    pub service: Service,
    /// Who signed it.
    pub partner: String,
}

/// A refund batch that passed every check but the duplicate one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// Who sent it.
    pub partner: String,
    /// Through which service.
    pub service: Service,
    /// Unique per partner.
    pub batch_no: String,
    /// As sent, Beijing time.
    pub refund_date: NaiveDateTime,
    /// Where `batch_refund_notify` goes.
    pub notify_url: String,
    /// Where 充退 notifications go, if asked for.
    pub dback_notify_url: Option<String>,
    /// The refunds, in the order sent.
    pub items: Vec<BatchItem>,
}

/// The value of the first parameter with this name.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter that must be present and non-empty.
fn required<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    param(params, name).filter(|v| !v.is_empty())
}

/// The checks every signed service shares, in Alipay's order.
pub fn check_signed(
    params: &[(String, String)],
    url_charset: Option<&str>,
    config: &SandboxConfig,
) -> Result<Signed, Refusal> {
    let body_charset = param(params, "_input_charset");
    // The seed's pitfall: `UTF-8` in the URL and `utf-8` in the body made
    // Alipay decode and sign with different charsets, failing the signature.
    if url_charset.is_none() || url_charset != body_charset {
        return Err(Refusal::new(
            Code::IllegalSign,
            format!(
                "_input_charset is {url_charset:?} in the URL but {body_charset:?} in the body"
            ),
        ));
    }
    if !body_charset.is_some_and(|c| c.eq_ignore_ascii_case("utf-8")) {
        return Err(Refusal::new(
            Code::IllegalCharset,
            format!("the sandbox reads UTF-8 only, not {body_charset:?}"),
        ));
    }
    let name = param(params, "service").unwrap_or_default();
    let service = Service::from_name(name)
        .ok_or_else(|| Refusal::new(Code::IllegalService, format!("service {name:?}")))?;
    let partner = param(params, "partner").unwrap_or_default();
    let key = config
        .key_of(partner)
        .ok_or_else(|| Refusal::new(Code::IllegalPartner, format!("partner {partner:?}")))?;
    let sign_type = param(params, "sign_type");
    if sign_type != Some("MD5") {
        return Err(Refusal::new(
            Code::IllegalSignType,
            format!("sign_type {sign_type:?} is not MD5"),
        ));
    }
    if !sign::verify(params, key) {
        return Err(Refusal::new(
            Code::IllegalSign,
            format!(
                "the signature does not match the string {:?} plus the key",
                sign::signing_string(params)
            ),
        ));
    }
    // Only now, with the signature good: which of two values would we act on?
    if let Some(name) = repeated_name(params) {
        return Err(Refusal::new(
            Code::IllegalArgument,
            format!("{name} is given twice"),
        ));
    }
    Ok(Signed {
        service,
        partner: partner.to_owned(),
    })
}

/// The first name that appears twice.
fn repeated_name(params: &[(String, String)]) -> Option<&str> {
    let mut seen = HashSet::new();
    params
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| !seen.insert(*k))
}

/// The batch rules of the nopwd and pwd services, after [`check_signed`].
pub fn check_batch(
    params: &[(String, String)],
    signed: &Signed,
    config: &SandboxConfig,
    beijing_today: NaiveDate,
) -> Result<BatchRequest, Refusal> {
    if signed.service == Service::Nopwd && !config.has_nopwd_contract(&signed.partner) {
        return Err(Refusal::new(
            Code::IllegalPartnerExterface,
            format!("partner {} has no nopwd contract", signed.partner),
        ));
    }
    let (notify_url, dback_notify_url) = check_arguments(params, signed)?;
    let batch_no = required(params, "batch_no").unwrap_or_default();
    let batch_date = parse_batch_no(batch_no)
        .map_err(|e| Refusal::new(Code::BatchNoFormatError, e.to_string()))?;
    let refund_date = check_dates(params, batch_date, beijing_today)?;
    let batch_num = parse_batch_num(param(params, "batch_num").unwrap_or_default())?;
    let items = read_items(param(params, "detail_data").unwrap_or_default(), batch_num)?;
    Ok(BatchRequest {
        partner: signed.partner.clone(),
        service: signed.service,
        batch_no: batch_no.to_owned(),
        refund_date,
        notify_url,
        dback_notify_url,
        items,
    })
}

/// Notify URLs, the pwd form's `seller_user_id` and `use_freeze_amount`.
fn check_arguments(
    params: &[(String, String)],
    signed: &Signed,
) -> Result<(String, Option<String>), Refusal> {
    let bad = |detail: String| Refusal::new(Code::IllegalArgument, detail);
    // Without notify_url Alipay never sends a result; the sandbox refuses
    // rather than pay refunds nobody will hear about.
    let notify_url = required(params, "notify_url").ok_or_else(|| bad("no notify_url".into()))?;
    validate_notify_url(notify_url).map_err(|e| bad(e.to_string()))?;
    let dback = required(params, "dback_notify_url");
    if let Some(url) = dback {
        validate_notify_url(url).map_err(|e| bad(e.to_string()))?;
    }
    if signed.service == Service::Pwd {
        let seller = param(params, "seller_user_id");
        if seller != Some(signed.partner.as_str()) {
            return Err(bad(format!("seller_user_id {seller:?} is not the partner")));
        }
    }
    if let Some(freeze) = param(params, "use_freeze_amount")
        && !["Y", "N"].contains(&freeze)
    {
        return Err(bad(format!("use_freeze_amount {freeze:?} is not Y or N")));
    }
    Ok((notify_url.to_owned(), dback.map(str::to_owned)))
}

/// `batch_no` dated today in Beijing, and `refund_date` on that same date.
fn check_dates(
    params: &[(String, String)],
    batch_date: NaiveDate,
    beijing_today: NaiveDate,
) -> Result<NaiveDateTime, Refusal> {
    let bad = |detail: String| Refusal::new(Code::RefundDateError, detail);
    if batch_date != beijing_today {
        return Err(bad(format!(
            "batch_no is dated {batch_date}, but today in Beijing is {beijing_today}"
        )));
    }
    let text = param(params, "refund_date").unwrap_or_default();
    let refund_date = parse_refund_date(text)
        .ok_or_else(|| bad(format!("refund_date {text:?} is not yyyy-MM-dd HH:mm:ss")))?;
    if refund_date.date() != batch_date {
        return Err(bad(format!(
            "refund_date {text} is not on the batch_no date {batch_date}"
        )));
    }
    Ok(refund_date)
}

/// `batch_num`: digits, 1..=1000.
fn parse_batch_num(text: &str) -> Result<usize, Refusal> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::new(
            Code::BatchNumError,
            format!("batch_num {text:?} is not a number"),
        ));
    }
    // Digits that overflow are far above the limit, not malformed.
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_ITEMS).contains(&n) => Ok(n),
        _ => Err(Refusal::new(
            Code::BatchNumExceedLimit,
            format!("batch_num {text} is not within 1..=1000"),
        )),
    }
}

/// Reads `detail_data` and answers its first broken rule, in the order
/// format, count, duplicate trade, reason length.
///
/// `parse_detail_data` is the authority on what is acceptable; it checks
/// item by item, so a batch with several faults would get whichever comes
/// first in the list. This reads each item on its own to rank the faults.
fn read_items(detail: &str, batch_num: usize) -> Result<Vec<BatchItem>, Refusal> {
    if let Ok(items) = parse_detail_data(detail) {
        return count_matches(items, batch_num);
    }
    let format = |detail: String| Refusal::new(Code::DetailDataFormatError, detail);
    let mut items = Vec::new();
    let mut long_reason = None;
    for (index, raw) in detail.split('#').enumerate() {
        match parse_detail_data(raw) {
            Ok(mut one) => items.append(&mut one),
            Err(DetailError::ReasonTooLong { bytes, .. }) => {
                items.push(item_with_long_reason(raw).ok_or_else(|| {
                    format(format!(
                        "item {index} has a bad amount besides a long reason"
                    ))
                })?);
                long_reason.get_or_insert((index, bytes));
            }
            Err(e) => return Err(format(format!("item {index}: {e}"))),
        }
    }
    let items = count_matches(items, batch_num)?;
    let mut seen = HashSet::new();
    if let Some(dup) = items.iter().find(|i| !seen.insert(i.trade_no.as_str())) {
        return Err(Refusal::new(
            Code::DublTradeNoInSameBatch,
            format!("trade {} appears twice", dup.trade_no),
        ));
    }
    if let Some((index, bytes)) = long_reason {
        return Err(Refusal::new(
            Code::BatchMemoLengthExceedLimit,
            format!("item {index} has a reason of {bytes} bytes"),
        ));
    }
    // parse_detail_data refused the whole, yet no item alone is at fault.
    Err(format(match validate_items(&items) {
        Err(e) => e.to_string(),
        Ok(()) => "detail_data is unreadable".into(),
    }))
}

/// `batch_num` must count the items exactly.
fn count_matches(items: Vec<BatchItem>, batch_num: usize) -> Result<Vec<BatchItem>, Refusal> {
    if items.len() == batch_num {
        Ok(items)
    } else {
        Err(Refusal::new(
            Code::BatchNumNotEqualTotal,
            format!("batch_num {batch_num} but {} items", items.len()),
        ))
    }
}

/// An item `parse_detail_data` refused only for its reason's length; the
/// amount check comes after the length check there, so it is repeated here.
fn item_with_long_reason(raw: &str) -> Option<BatchItem> {
    let mut fields = raw.split('^');
    let (trade_no, amount, reason) = (fields.next()?, fields.next()?, fields.next()?);
    let amount_fen = parse_exact(amount).ok().filter(|fen| *fen > 0)?;
    Some(BatchItem {
        trade_no: trade_no.to_owned(),
        amount_fen,
        reason: reason.to_owned(),
    })
}

/// The `batch_no` and/or `trade_no` of a `refund_fastpay_query`.
pub fn check_query(params: &[(String, String)]) -> Result<QueryKey, Refusal> {
    let key = QueryKey {
        batch_no: required(params, "batch_no").map(str::to_owned),
        trade_no: required(params, "trade_no").map(str::to_owned),
    };
    if key.batch_no.is_none() && key.trade_no.is_none() {
        return Err(Refusal::new(
            Code::IllegalArgument,
            "a query needs batch_no or trade_no",
        ));
    }
    Ok(key)
}

/// What a query asks about; at least one is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryKey {
    /// Only refunds of this batch.
    pub batch_no: Option<String>,
    /// Only refunds of this trade.
    pub trade_no: Option<String>,
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
