//! The answer to `refund_fastpay_query`, which is `key=value&…`, not XML.
//!
//! Owns reading `is_success=T&result_details=BATCH^TRADE^AMOUNT^CODE#…` and
//! `is_success=F&error_code=REFUND_NOT_EXIST`. Only third-party sources
//! describe it, so parsing is lenient about what does not matter (unknown
//! keys, whitespace, empty items, extra `^` fields after the code, amounts
//! kept as text) and strict about what decides money: [`QueryAnswer::NotFound`],
//! the proof that Alipay never accepted a batch, comes only from an
//! unambiguous `F` with `REFUND_NOT_EXIST`. The raw text is always kept.

use thiserror::Error;

/// The code that proves Alipay holds no such refund.
const REFUND_NOT_EXIST: &str = "REFUND_NOT_EXIST";

/// A parsed query answer with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryReply {
    /// The body as received, for the audit trail.
    pub raw: String,
    /// What it says.
    pub answer: QueryAnswer,
}

/// What Alipay knows about the batch or trade asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// Refunds Alipay holds.
    Found(Vec<QueryItem>),
    /// `REFUND_NOT_EXIST`: Alipay has no such refund.
    NotFound,
    /// Another `F` code: the query itself failed; nothing is proven.
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
    /// Alipay's trade number.
    pub trade_no: String,
    /// Amount as reported, uninterpreted.
    pub amount: String,
    /// Result code, such as `SUCCESS`.
    pub code: String,
    /// Whatever followed the code (`充退flag^充退result`), without the leading `^`.
    pub rest: String,
}

/// Why a query answer could not be read; nothing is proven by it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryAnswerError {
    /// The body is not `key=value&…`.
    #[error("query answer is not a form: {0}")]
    NotAForm(String),
    /// No `is_success`.
    #[error("query answer has no is_success")]
    MissingIsSuccess,
    /// `is_success` other than `T` or `F`.
    #[error("query answer has is_success {0:?}")]
    UnknownIsSuccess(String),
    /// A key that decides the outcome appears twice.
    #[error("query answer repeats {0}")]
    Repeated(String),
    /// `T` without any item.
    #[error("query answer is T without result_details")]
    MissingResultDetails,
    /// `F` without an error code.
    #[error("query answer is F without error_code")]
    MissingErrorCode,
    /// An item with fewer than four `^`-separated fields.
    #[error("query item {index} is too short: {raw:?}")]
    ShortItem {
        /// Zero-based position among the non-empty items.
        index: usize,
        /// The item as received.
        raw: String,
    },
}

/// Parses a `refund_fastpay_query` answer body.
pub fn parse_query_answer(raw: &str) -> Result<QueryReply, QueryAnswerError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.trim())
        .map_err(|e| QueryAnswerError::NotAForm(e.to_string()))?;
    let is_success = single(&pairs, "is_success")?.ok_or(QueryAnswerError::MissingIsSuccess)?;
    let answer = match is_success {
        "T" => {
            let details =
                single(&pairs, "result_details")?.ok_or(QueryAnswerError::MissingResultDetails)?;
            QueryAnswer::Found(parse_items(details)?)
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

/// Splits `result_details` into items, skipping empty ones.
fn parse_items(details: &str) -> Result<Vec<QueryItem>, QueryAnswerError> {
    let items = details
        .split('#')
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .enumerate()
        .map(|(index, raw)| {
            let mut fields = raw.splitn(5, '^');
            let mut next = || fields.next().map(str::to_owned);
            match (next(), next(), next(), next(), next()) {
                (Some(batch_no), Some(trade_no), Some(amount), Some(code), rest) => Ok(QueryItem {
                    batch_no,
                    trade_no,
                    amount,
                    code,
                    rest: rest.unwrap_or_default(),
                }),
                _ => Err(QueryAnswerError::ShortItem {
                    index,
                    raw: raw.to_owned(),
                }),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if items.is_empty() {
        return Err(QueryAnswerError::MissingResultDetails);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(batch_no: &str, trade_no: &str, amount: &str, code: &str, rest: &str) -> QueryItem {
        QueryItem {
            batch_no: batch_no.into(),
            trade_no: trade_no.into(),
            amount: amount.into(),
            code: code.into(),
            rest: rest.into(),
        }
    }

    #[test]
    fn t_lists_each_item() {
        let raw = "is_success=T&result_details=20160613001^2016061321001004^0.01^SUCCESS#20160613001^2016061321001005^1.50^TRADE_HAS_CLOSED";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(reply.raw, raw);
        assert_eq!(
            reply.answer,
            QueryAnswer::Found(vec![
                item("20160613001", "2016061321001004", "0.01", "SUCCESS", ""),
                item(
                    "20160613001",
                    "2016061321001005",
                    "1.50",
                    "TRADE_HAS_CLOSED",
                    ""
                ),
            ])
        );
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
    fn dback_fields_after_the_code_are_kept_raw() {
        let raw = "is_success=T&result_details=20160613001^2016^0.01^SUCCESS^true^S";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(
            reply.answer,
            QueryAnswer::Found(vec![item(
                "20160613001",
                "2016",
                "0.01",
                "SUCCESS",
                "true^S"
            )])
        );
    }

    #[test]
    fn whitespace_unknown_keys_and_a_trailing_hash_are_tolerated() {
        let raw =
            "\r\nsign=x&is_success=T&result_details=20160613001%5E2016%5E80%5ESUCCESS%23&extra=1\n";
        let reply = parse_query_answer(raw).unwrap();
        assert_eq!(
            reply.answer,
            QueryAnswer::Found(vec![item("20160613001", "2016", "80", "SUCCESS", "")])
        );
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
    fn a_short_item_is_an_error() {
        assert!(matches!(
            parse_query_answer("is_success=T&result_details=20160613001^2016^0.01"),
            Err(QueryAnswerError::ShortItem { index: 0, .. })
        ));
    }

    #[test]
    fn an_xml_or_empty_body_is_an_error() {
        assert!(parse_query_answer("<alipay><is_success>T</is_success></alipay>").is_err());
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
