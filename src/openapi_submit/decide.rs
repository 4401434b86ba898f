//! What follows from one OpenAPI call (alipay-openapi.md): pure, so every
//! case has a row in the tests below.
//!
//! Invariants: only a verified answer settles a refund; an unknown outcome
//! is followed by the same request (the refund call again, or the query no
//! sooner than 10 s after the last call), never by a new `out_request_no`;
//! a code the table does not know holds the refund for a person.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alipay::openapi::answer::{self, Disposition, Read, RefundAnswer};
use crate::alipay::openapi::query::{self, Proof, QueryFields};
use crate::alipay::openapi::request::{REFUND, REFUND_QUERY};
use crate::alipay::openapi::sign::AlipayPublicKey;
use crate::domain::actor::Source;
use crate::domain::format_fen;
use crate::domain::item_outcome::{ItemRetry, retry_delay};

/// Alipay asks for this much time between a refund call and its query.
pub const QUERY_NOT_BEFORE: Duration = Duration::from_secs(10);

/// What came back from a call.
#[derive(Debug, Clone)]
pub enum Came {
    /// No answer: a time-out, a refused connection, a body cut off.
    Nothing { why: String },
    /// An HTTP answer.
    Http { status: u16, body: String },
}

/// The call, as the decision needs it.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    /// `refund` or `query`.
    pub call: &'a str,
    pub out_request_no: &'a str,
    pub amount_fen: i64,
    /// Calls started for this request, this one included.
    pub calls: i32,
    pub first_call_at: Option<DateTime<Utc>>,
    pub item_retries: i32,
    /// The code the last answer to this request gave (a refusal waiting for
    /// the query to confirm it).
    pub last_code: Option<&'a str>,
}

/// The settings the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// First wait after an unknown outcome; doubles per call, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Past this age since the first call, an unknown outcome is queried.
    pub give_up: Duration,
    /// How long after a call its query may come ([`QUERY_NOT_BEFORE`] in service).
    pub query_after: Duration,
    pub item_retry: ItemRetry,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Succeeded { source: Source, note: String },
    Failed { code: String, message: String },
    Later { wait: Duration, note: String },
    Again { call: &'static str, after: Duration },
    Hold { reason: String },
}

/// The decision and what to record of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub next: Next,
    /// `refunded`, `unknown`, `retry_later`, `failed`, `hold`, `not_yet`,
    /// `disagrees`, `unverified`.
    pub disposition: &'static str,
    /// Alipay's `sub_code` (or `code`), or the worker's word for no answer.
    pub code: String,
    /// Whether a person should be told (a signature that failed, a hold).
    pub alert: bool,
    /// Why, in words, for the log.
    pub detail: String,
}

/// Judges what came back for `asked` at `now`.
pub fn judge(
    came: &Came,
    asked: &Asked<'_>,
    alipay: &AlipayPublicKey,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Judged {
    let method = if asked.call == "query" {
        REFUND_QUERY
    } else {
        REFUND
    };
    let read = match came {
        Came::Nothing { why } => return unknown(asked, rules, now, "NO_ANSWER", why, false),
        Came::Http { status, .. } if *status != 200 => {
            let code = format!("HTTP_{status}");
            return unknown(asked, rules, now, &code, "not 200", false);
        }
        Came::Http { body, .. } => answer::read(body, method, alipay),
    };
    let (a, raw) = match read {
        Read::Verified { answer, raw } => (answer, raw),
        Read::Unverified { why } => {
            return unknown(asked, rules, now, "UNVERIFIED", why, true);
        }
        Read::Unreadable { why } => return unknown(asked, rules, now, "UNREADABLE", &why, true),
    };
    if asked.call == "query" {
        judge_query(&a, &raw, asked, rules, now)
    } else {
        judge_refund(&a, asked, rules, now)
    }
}

fn code_of(a: &RefundAnswer) -> String {
    a.sub_code
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| a.code.clone())
}

fn judge_refund(a: &RefundAnswer, asked: &Asked<'_>, rules: &Rules, now: DateTime<Utc>) -> Judged {
    let code = code_of(a);
    let message = a
        .sub_msg
        .clone()
        .or_else(|| a.msg.clone())
        .unwrap_or_default();
    let judged = |next, disposition, alert| Judged {
        next,
        disposition,
        code: code.clone(),
        alert,
        detail: message.clone(),
    };
    match answer::judge(Some(a)) {
        Disposition::Refunded { fund_moved } => {
            let note = if fund_moved {
                "alipay.trade.refund: 10000, fund_change Y"
            } else {
                "alipay.trade.refund: 10000, fund_change N (refunded before under this number)"
            };
            let next = Next::Succeeded {
                source: Source::Submit,
                note: note.into(),
            };
            Judged {
                code: "SUCCESS".into(),
                ..judged(next, "refunded", false)
            }
        }
        Disposition::Unknown => unknown(asked, rules, now, &code, &message, false),
        Disposition::RetryLater if asked.item_retries < rules.item_retry.limit => {
            let wait = retry_delay(rules.item_retry.base, asked.item_retries);
            let note = format!("{code}: may pass later; the same out_request_no again");
            judged(Next::Later { wait, note }, "retry_later", false)
        }
        // A refusal after an earlier call could be read two ways: the
        // earlier call may have paid. Failing now could report a paid refund
        // as failed, so the query decides first (see `judge_query`).
        Disposition::RetryLater | Disposition::Failed if asked.calls > 1 => {
            let next = Next::Again {
                call: "query",
                after: rules.query_after,
            };
            judged(next, "refused_after_earlier_call", false)
        }
        Disposition::RetryLater | Disposition::Failed => {
            let next = Next::Failed {
                code: code.clone(),
                message: message.clone(),
            };
            judged(next, "failed", false)
        }
        Disposition::Hold => {
            let reason = format!("{} {code}: {message}", a.code);
            judged(Next::Hold { reason }, "hold", true)
        }
    }
}

fn judge_query(
    a: &RefundAnswer,
    raw: &str,
    asked: &Asked<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Judged {
    let fields: QueryFields = serde_json::from_str(raw).unwrap_or_default();
    let amount = format_fen(asked.amount_fen);
    let code = code_of(a);
    match query::prove(Some((a, &fields)), asked.out_request_no, &amount) {
        Proof::Refunded => Judged {
            next: Next::Succeeded {
                source: Source::Query,
                note: "alipay.trade.fastpay.refund.query: refund data for this number".into(),
            },
            disposition: "refunded",
            code: "SUCCESS".into(),
            alert: false,
            detail: String::new(),
        },
        // Not refunded yet: Alipay asks for the same number again.
        // No refund under the number: a refusal that waited for this proof
        // stands.
        Proof::NotYet if asked.last_code.is_some_and(is_refusal) => {
            let code = asked.last_code.unwrap_or_default().to_owned();
            Judged {
                next: Next::Failed {
                    code: code.clone(),
                    message: format!(
                        "Alipay refused with {code}, and the query shows no refund under this number"
                    ),
                },
                disposition: "failed",
                code,
                alert: false,
                detail: "a refusal confirmed by the query".into(),
            }
        }
        Proof::NotYet => Judged {
            next: Next::Again {
                call: "refund",
                after: Duration::ZERO,
            },
            disposition: "not_yet",
            code,
            alert: false,
            detail: "no refund under this number yet".into(),
        },
        Proof::Disagrees { why } => Judged {
            next: Next::Hold {
                reason: why.clone(),
            },
            disposition: "disagrees",
            code,
            alert: true,
            detail: why,
        },
        Proof::Nothing => unknown(asked, rules, now, &code, "the query proved nothing", false),
    }
}

/// A sub-code that refuses the refund (for now or for good).
fn is_refusal(code: &str) -> bool {
    answer::FINAL.contains(&code) || answer::CAN_PASS.contains(&code)
}

/// The same request again: the refund call after the retry delay while the
/// request is young, the query once it is older than `give_up`.
fn unknown(
    asked: &Asked<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
    code: &str,
    why: &str,
    alert: bool,
) -> Judged {
    let age = asked
        .first_call_at
        .and_then(|t| (now - t).to_std().ok())
        .unwrap_or_default();
    let doublings = u32::try_from((asked.calls - 1).clamp(0, 20)).unwrap_or(0);
    let backoff = rules
        .retry_base
        .saturating_mul(1u32 << doublings)
        .min(rules.retry_cap);
    let next = if age >= rules.give_up {
        Next::Again {
            call: "query",
            after: backoff.max(rules.query_after),
        }
    } else {
        Next::Again {
            call: "refund",
            after: backoff,
        }
    };
    Judged {
        next,
        disposition: if alert { "unverified" } else { "unknown" },
        code: code.to_owned(),
        alert,
        detail: why.to_owned(),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
