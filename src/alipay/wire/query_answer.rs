//! The answer to `refund_fastpay_query`, which is `key=value&…`, not XML —
//! except when the gateway itself refuses the query (`ILLEGAL_SIGN`,
//! `HAS_NO_PRIVILEGE`, …): that comes as the mapi XML answer, sometimes
//! declared GBK, and is read for its `<error>` code.
//!
//! Owns reading `is_success=T&result_details=ITEM#…` (each item read by
//! [`super::item`] with the `batch_no` in front: the fee, royalty and
//! sub-trade tails cut off before the head is split) and
//! `is_success=F&error_code=REFUND_NOT_EXIST`. Parsing is lenient about what
//! does not matter (unknown keys, whitespace, empty items) and strict about
//! what decides money: [`QueryAnswer::NotFound`] comes only from an
//! unambiguous form `F` with `REFUND_NOT_EXIST`; an item that cannot be read
//! is kept aside with its reason, never dropped in silence. The raw text is
//! always kept.

use thiserror::Error;

use super::answer::{SyncAnswer, parse_sync_answer};
use super::item::read_item;
use super::result_details::{ResultItem, UnreadableItem};

/// The code that says Alipay holds no such refund.
const REFUND_NOT_EXIST: &str = "REFUND_NOT_EXIST";

/// A parsed query answer with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryReply {
    /// The body as received, for the audit trail.
    pub raw: String,
    /// What it says.
    pub answer: QueryAnswer,
    /// Items of a `T` answer that could not be read.
    pub unreadable: Vec<UnreadableItem>,
}

/// What Alipay knows about the batch or trade asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// Refunds Alipay holds.
    Found(Vec<QueryItem>),
    /// `REFUND_NOT_EXIST`: Alipay has no such refund (yet: see
    /// alipay-mapi.md on what this proves).
    NotFound,
    /// Another `F` code, in the form or the XML answer: the query itself
    /// failed; nothing is proven.
    Failed {
        /// Alipay's error code.
        code: String,
    },
}

/// One refund as the query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryItem {
    /// Our `batch_no`.
    pub batch_no: String,
    /// The item's trade, amount, code and raw tails, as in a notification.
    pub item: ResultItem,
}

/// Why a query answer could not be read; nothing is proven by it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryAnswerError {
    /// The body is not `key=value&…`.
    #[error("query answer is not a form: {0}")]
    NotAForm(String),
    /// An XML body that is not the mapi answer.
    #[error("query answer is XML but not the gateway's answer: {0}")]
    NotAnAnswer(String),
    /// No `is_success`.
    #[error("query answer has no is_success")]
    MissingIsSuccess,
    /// `is_success` other than `T` or `F`.
    #[error("query answer has is_success {0:?}")]
    UnknownIsSuccess(String),
    /// A key that decides the outcome appears twice.
    #[error("query answer repeats {0}")]
    Repeated(String),
    /// `T` without any item that could be read.
    #[error("query answer is T without readable result_details")]
    MissingResultDetails,
    /// `F` without an error code.
    #[error("query answer is F without error_code")]
    MissingErrorCode,
}

/// Parses a `refund_fastpay_query` answer body.
pub fn parse_query_answer(raw: &str) -> Result<QueryReply, QueryAnswerError> {
    let text = raw.trim();
    if text.starts_with('<') {
        return parse_xml(raw, text);
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(text).map_err(|e| QueryAnswerError::NotAForm(e.to_string()))?;
    let is_success = single(&pairs, "is_success")?.ok_or(QueryAnswerError::MissingIsSuccess)?;
    let mut unreadable = Vec::new();
    let answer = match is_success {
        "T" => {
            let details =
                single(&pairs, "result_details")?.ok_or(QueryAnswerError::MissingResultDetails)?;
            let (items, bad) = parse_items(details);
            if items.is_empty() {
                return Err(QueryAnswerError::MissingResultDetails);
            }
            unreadable = bad;
            QueryAnswer::Found(items)
        }
        "F" => match single(&pairs, "error_code")? {
            Some(REFUND_NOT_EXIST) => QueryAnswer::NotFound,
            Some(code) if !code.is_empty() => QueryAnswer::Failed {
                code: code.to_owned(),
            },
            _ => return Err(QueryAnswerError::MissingErrorCode),
        },
        other => return Err(QueryAnswerError::UnknownIsSuccess(other.to_owned())),
    };
    Ok(QueryReply {
        raw: raw.to_owned(),
        answer,
        unreadable,
    })
}

/// The gateway's XML refusal: its code is a failed query. Even
/// `REFUND_NOT_EXIST` in this form is only a failed query: the proof of
/// absence is read from the query service's own form answer alone.
fn parse_xml(raw: &str, text: &str) -> Result<QueryReply, QueryAnswerError> {
    let code = match parse_sync_answer(text) {
        Ok(SyncAnswer::Failed { code }) => code,
        Ok(other) => return Err(QueryAnswerError::NotAnAnswer(format!("{other:?}"))),
        Err(e) => return Err(QueryAnswerError::NotAnAnswer(e.to_string())),
    };
    Ok(QueryReply {
        raw: raw.to_owned(),
        answer: QueryAnswer::Failed { code },
        unreadable: Vec::new(),
    })
}

/// The trimmed value of a key that must appear at most once.
fn single<'a>(
    pairs: &'a [(String, String)],
    key: &str,
) -> Result<Option<&'a str>, QueryAnswerError> {
    let mut found = pairs.iter().filter(|(k, _)| k.trim() == key);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v.trim())),
        (Some(_), Some(_)) => Err(QueryAnswerError::Repeated(key.to_owned())),
    }
}

/// Splits `result_details` into items (empty ones skipped), the unreadable
/// ones aside.
fn parse_items(details: &str) -> (Vec<QueryItem>, Vec<UnreadableItem>) {
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    for (index, raw) in details
        .split('#')
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .enumerate()
    {
        match read_item(raw, 1) {
            Ok(mut head) => items.push(QueryItem {
                batch_no: head.prefix.remove(0),
                item: ResultItem::from_head(head, raw),
            }),
            Err(error) => unreadable.push(UnreadableItem {
                index,
                raw: raw.to_owned(),
                error,
            }),
        }
    }
    (items, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::wire::item::ItemError;

    fn codes(reply: &QueryReply) -> Vec<(String, String, i64, String)> {
        let QueryAnswer::Found(items) = &reply.answer else {
            panic!("not found: {reply:?}");
        };
        items
            .iter()
            .map(|i| {
                (
                    i.batch_no.clone(),
                    i.item.trade_no.clone(),
                    i.item.amount_fen,
                    i.item.code.clone(),
                )
            })
            .collect()
    }

    fn row(b: &str, t: &str, fen: i64, c: &str) -> (String, String, i64, String) {
        (b.into(), t.into(), fen, c.into())
    }

    #[test]
    fn t_lists_each_item() {
        let raw = "is_success=T&result_details=20160613001^2016061321001004^0.01^SUCCESS#20160613001^2016061321001005^1.50^TRADE_HAS_CLOSED";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(reply.raw, raw);
        assert_eq!(
            codes(&reply),
            [
                row("20160613001", "2016061321001004", 1, "SUCCESS"),
                row("20160613001", "2016061321001005", 150, "TRADE_HAS_CLOSED"),
            ]
        );
    }

    #[test]
    fn the_official_sample_reads_as_paid_with_its_tails_raw() {
        let raw = "is_success=T&result_details=201012300001^2010123016346858^0.02^SUCCESS|zen_gwen@hotmail.com^2088102210397302^alipay-test03@alipay.com^2088101568345155^0.01^SUCCESS$$10.00^10.00^SUCCESS";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(
            codes(&reply),
            [row("201012300001", "2010123016346858", 2, "SUCCESS")]
        );
        let QueryAnswer::Found(items) = &reply.answer else {
            unreachable!()
        };
        assert!(items[0].item.tail.starts_with("|zen_gwen@hotmail.com"));
        assert!(items[0].item.is_success());
    }

    #[test]
    fn a_fee_tail_lower_case_success_and_dback_fields_read() {
        let raw =
            "is_success=T&result_details=B1^2016^0.01^success^true^S$a@b.com^2088^0.01^SUCCESS";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(codes(&reply), [row("B1", "2016", 1, "SUCCESS")]);
        let QueryAnswer::Found(items) = &reply.answer else {
            unreachable!()
        };
        assert_eq!(items[0].item.dback, "true^S");
        assert_eq!(items[0].item.tail, "$a@b.com^2088^0.01^SUCCESS");
    }

    #[test]
    fn refund_not_exist_is_not_found() {
        let reply = parse_query_answer("is_success=F&error_code=REFUND_NOT_EXIST").unwrap();
        assert_eq!(reply.answer, QueryAnswer::NotFound);
    }

    #[test]
    fn another_f_code_is_a_failed_query_not_a_proof() {
        let reply = parse_query_answer("is_success=F&error_code=ILLEGAL_SIGN").unwrap();
        assert_eq!(
            reply.answer,
            QueryAnswer::Failed {
                code: "ILLEGAL_SIGN".into()
            }
        );
    }

    #[test]
    fn the_gateways_xml_refusal_is_a_failed_query_with_its_code() {
        for decl in ["GBK", "gbk", "utf-8"] {
            let raw = format!(
                r#"<?xml version="1.0" encoding="{decl}"?><alipay><is_success>F</is_success><error>HAS_NO_PRIVILEGE</error></alipay>"#
            );
            let reply = parse_query_answer(&raw).unwrap();
            assert_eq!(
                reply.answer,
                QueryAnswer::Failed {
                    code: "HAS_NO_PRIVILEGE".into()
                },
                "{decl}"
            );
        }
        // Not even REFUND_NOT_EXIST proves absence in this form.
        let raw = "<alipay><is_success>F</is_success><error>REFUND_NOT_EXIST</error></alipay>";
        assert!(matches!(
            parse_query_answer(raw).unwrap().answer,
            QueryAnswer::Failed { .. }
        ));
    }

    #[test]
    fn whitespace_unknown_keys_and_a_trailing_hash_are_tolerated() {
        let raw =
            "\r\nsign=x&is_success=T&result_details=20160613001%5E2016%5E80%5ESUCCESS%23&extra=1\n";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(codes(&reply), [row("20160613001", "2016", 8000, "SUCCESS")]);
    }

    #[test]
    fn t_without_items_proves_nothing() {
        assert_eq!(
            parse_query_answer("is_success=T"),
            Err(QueryAnswerError::MissingResultDetails)
        );
        assert_eq!(
            parse_query_answer("is_success=T&result_details=#"),
            Err(QueryAnswerError::MissingResultDetails)
        );
    }

    #[test]
    fn an_unreadable_item_is_kept_aside_and_never_dropped_in_silence() {
        let reply = parse_query_answer(
            "is_success=T&result_details=B1^2016^0.01#B1^2017^abc^SUCCESS#B1^2018^1^SUCCESS",
        )
        .unwrap();
        assert_eq!(codes(&reply), [row("B1", "2018", 100, "SUCCESS")]);
        assert_eq!(reply.unreadable.len(), 2);
        assert_eq!(reply.unreadable[0].error, ItemError::Truncated(3));
        assert!(matches!(reply.unreadable[1].error, ItemError::Amount(_)));
        assert_eq!(
            parse_query_answer("is_success=T&result_details=20160613001^2016^0.01"),
            Err(QueryAnswerError::MissingResultDetails)
        );
    }

    #[test]
    fn an_xml_answer_that_is_not_a_refusal_or_an_empty_body_is_an_error() {
        assert!(parse_query_answer("<alipay><is_success>T</is_success></alipay>").is_err());
        assert!(parse_query_answer("<html>busy</html>").is_err());
        assert_eq!(
            parse_query_answer(""),
            Err(QueryAnswerError::MissingIsSuccess)
        );
    }

    #[test]
    fn a_repeated_is_success_is_an_error() {
        assert_eq!(
            parse_query_answer("is_success=F&error_code=REFUND_NOT_EXIST&is_success=T"),
            Err(QueryAnswerError::Repeated("is_success".into()))
        );
    }

    #[test]
    fn f_without_a_code_is_an_error() {
        assert_eq!(
            parse_query_answer("is_success=F"),
            Err(QueryAnswerError::MissingErrorCode)
        );
    }
}
