//! What came back from one gateway call, and what it means: the single place
//! where every answer and every transport error gets its [`Disposition`].
//!
//! Invariant: anything that does not prove the batch was refused is
//! `OutcomeUnknown` (retry the same batch, or query), never a new `batch_no`.
//! A time-out, a reset connection, a 5xx, a garbled body or `P` may all follow
//! an accepted batch.

use crate::alipay::disposition::{Disposition, classify_result};
use crate::alipay::wire::answer::{SyncAnswer, parse_sync_answer};

/// A transport failure, sorted by what it tells us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The whole-request time-out passed: the gateway may have acted.
    #[error("the gateway did not answer within the time-out")]
    Timeout,
    /// No connection was made (refused, DNS): the request did not leave.
    #[error("could not connect to the gateway: {0}")]
    Connect(String),
    /// The connection broke during the exchange: the gateway may have acted.
    #[error("the connection to the gateway broke: {0}")]
    Broken(String),
}

/// One exchange with the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// An HTTP answer (any status) with its body as text.
    Answered { status: u16, body: String },
    /// No HTTP answer.
    Failed(TransportError),
}

/// The disposition of a submission and what to record about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub disposition: Disposition,
    /// Alipay's error code (`F`), `P` for processing, or `HTTP_503`-style
    /// and `TIMEOUT`/`CONNECT`/`BROKEN`/`UNREADABLE` for what Alipay never said.
    pub code: Option<String>,
}

/// Judges the answer to a `refund_fastpay_by_platform_nopwd` submission.
pub fn judge_submission(exchange: &Exchange) -> Verdict {
    let verdict = |d: Disposition, code: &str| Verdict {
        disposition: d,
        code: Some(code.to_owned()),
    };
    match exchange {
        // Even a refused connection is only "unknown": resending the same
        // batch is always safe, and it keeps one rule for every failure.
        Exchange::Failed(TransportError::Timeout) => {
            verdict(Disposition::OutcomeUnknown, "TIMEOUT")
        }
        Exchange::Failed(TransportError::Connect(_)) => {
            verdict(Disposition::OutcomeUnknown, "CONNECT")
        }
        Exchange::Failed(TransportError::Broken(_)) => {
            verdict(Disposition::OutcomeUnknown, "BROKEN")
        }
        // Any status but 200 may come from a proxy or firewall that had
        // already forwarded the request (403, 408, 429, 502 …): unknown, so
        // the same batch is sent again and never renumbered on it.
        Exchange::Answered { status, .. } if *status != 200 => {
            verdict(Disposition::OutcomeUnknown, &format!("HTTP_{status}"))
        }
        Exchange::Answered { body, .. } => {
            let parsed = parse_sync_answer(body);
            let code = match &parsed {
                Ok(SyncAnswer::Accepted) => None,
                Ok(SyncAnswer::Processing) => Some("P".to_owned()),
                Ok(SyncAnswer::Failed { code }) => Some(code.clone()),
                Err(_) => Some("UNREADABLE".to_owned()),
            };
            Verdict {
                disposition: classify_result(&parsed),
                code,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::*;

    fn answered(status: u16, body: &str) -> Exchange {
        Exchange::Answered {
            status,
            body: body.to_owned(),
        }
    }

    fn xml(inner: &str) -> String {
        format!(r#"<?xml version="1.0" encoding="utf-8"?><alipay>{inner}</alipay>"#)
    }

    /// A 200 answer `F` with this error code.
    fn refused(code: &str) -> Exchange {
        answered(
            200,
            &xml(&format!("<is_success>F</is_success><error>{code}</error>")),
        )
    }

    #[test]
    fn every_kind_of_exchange_has_one_disposition() {
        let cases = [
            (
                answered(200, &xml("<is_success>T</is_success>")),
                Accepted,
                None,
            ),
            (
                answered(200, &xml("<is_success>P</is_success>")),
                OutcomeUnknown,
                Some("P"),
            ),
            (
                refused("DUPLICATE_BATCH_NO"),
                Accepted,
                Some("DUPLICATE_BATCH_NO"),
            ),
            (
                refused("ILLEGAL_PARTNER_EXTERFACE"),
                PartnerMisconfigured,
                Some("ILLEGAL_PARTNER_EXTERFACE"),
            ),
            (
                refused("REFUND_DATE_ERROR"),
                Rebuild,
                Some("REFUND_DATE_ERROR"),
            ),
            (
                refused("TRADE_HAS_CLOSED"),
                BadItem,
                Some("TRADE_HAS_CLOSED"),
            ),
            (
                refused("DUBL_TRADE_NO_IN_SAME_BATCH"),
                OurBug,
                Some("DUBL_TRADE_NO_IN_SAME_BATCH"),
            ),
            (
                refused("SYSTEM_ERROR"),
                OutcomeUnknown,
                Some("SYSTEM_ERROR"),
            ),
            (
                answered(200, "<html>bad gateway</html>"),
                OutcomeUnknown,
                Some("UNREADABLE"),
            ),
            (answered(200, ""), OutcomeUnknown, Some("UNREADABLE")),
            (answered(502, ""), OutcomeUnknown, Some("HTTP_502")),
            (answered(404, "not found"), OutcomeUnknown, Some("HTTP_404")),
            (answered(302, ""), OutcomeUnknown, Some("HTTP_302")),
            (answered(403, "denied"), OutcomeUnknown, Some("HTTP_403")),
            (answered(408, ""), OutcomeUnknown, Some("HTTP_408")),
            (answered(429, "slow down"), OutcomeUnknown, Some("HTTP_429")),
            // A 4xx with the answer's own XML is still not the answer.
            (
                answered(429, &xml("<is_success>T</is_success>")),
                OutcomeUnknown,
                Some("HTTP_429"),
            ),
            (
                Exchange::Failed(TransportError::Timeout),
                OutcomeUnknown,
                Some("TIMEOUT"),
            ),
            (
                Exchange::Failed(TransportError::Connect("refused".into())),
                OutcomeUnknown,
                Some("CONNECT"),
            ),
            (
                Exchange::Failed(TransportError::Broken("reset".into())),
                OutcomeUnknown,
                Some("BROKEN"),
            ),
        ];
        for (exchange, disposition, code) in cases {
            let v = judge_submission(&exchange);
            assert_eq!(v.disposition, disposition, "{exchange:?}");
            assert_eq!(v.code.as_deref(), code, "{exchange:?}");
        }
    }
}
