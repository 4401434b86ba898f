//! The 充退 push the sandbox sends, `alipay.trade.refund.depositback.completed`:
//! a form signed with the key the sandbox plays Alipay with.
//!
//! Owns the push's parameters. They are exactly what the worker's
//! `alipay::openapi::push::read` accepts: the refund's fields
//! (`trade_no`, `out_trade_no`, `out_request_no`, `dback_status`,
//! `dback_amount`, `bank_ack_time`) stand at the top level of the form,
//! not inside a `biz_content` JSON, because that is where `push::read`
//! looks for them; and the signature covers the sorted parameters without
//! `sign` and `sign_type`, as `push::read` verifies it. Pure.

use chrono::{DateTime, Utc};

use super::ledger::DepositBackFacts;
use crate::alipay::openapi::push::DEPOSITBACK_COMPLETED;
use crate::alipay::openapi::sign::{AppKey, KeyError, content_to_sign};
use crate::alipay::wire::batch_no::beijing_now;
use crate::domain::format_fen;

/// The signed form of the push for `facts`, sent at `now` (`utc_timestamp`
/// in epoch milliseconds, `bank_ack_time` in Beijing time), `sign` last.
pub fn depositback_form(
    facts: &DepositBackFacts,
    notify_id: &str,
    now: DateTime<Utc>,
    key: &AppKey,
) -> Result<Vec<(String, String)>, KeyError> {
    let bank_ack_time = beijing_now(now).format("%Y-%m-%d %H:%M:%S").to_string();
    let mut params: Vec<(String, String)> = [
        ("notify_id", notify_id.to_owned()),
        ("utc_timestamp", now.timestamp_millis().to_string()),
        ("msg_method", DEPOSITBACK_COMPLETED.to_owned()),
        ("app_id", facts.app_id.clone()),
        ("version", "1.1".to_owned()),
        ("charset", "utf-8".to_owned()),
        ("trade_no", facts.trade_no.clone()),
        ("out_trade_no", facts.out_trade_no.clone()),
        ("out_request_no", facts.out_request_no.clone()),
        ("dback_status", facts.status.clone()),
        ("dback_amount", format_fen(facts.amount_fen)),
        ("bank_ack_time", bank_ack_time),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let sign = key.sign(&content_to_sign(&params, &["sign", "sign_type"]))?;
    params.push(("sign_type".to_owned(), "RSA2".to_owned()));
    params.push(("sign".to_owned(), sign));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::push::{PushError, read};
    use crate::alipay::wire::form;
    use crate::alipay::wire::notify::NotifyForm;
    use crate::sandbox::openapi::test_keys::{alipay_key, alipay_public, app_key};

    fn facts(status: &str) -> DepositBackFacts {
        DepositBackFacts {
            app_id: "2021000000000001".into(),
            trade_no: "T1".into(),
            out_trade_no: "O-1".into(),
            out_request_no: "R-1".into(),
            status: status.into(),
            amount_fen: 1050,
        }
    }

    /// The form as it travels: encoded, then decoded as the worker decodes it.
    fn sent(params: Vec<(String, String)>) -> NotifyForm {
        let body = form::encode(&params);
        NotifyForm {
            params: form::decode(body.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn the_push_is_read_by_the_workers_reader_into_its_refund_and_status() {
        for (status, succeeded) in [("S", true), ("F", false)] {
            let params =
                depositback_form(&facts(status), "n-1", Utc::now(), &alipay_key()).unwrap();
            let push = read(&sent(params), &alipay_public()).unwrap();
            assert_eq!(push.trade_no, "T1");
            assert_eq!(push.out_request_no, "R-1");
            assert_eq!(push.succeeded, succeeded);
            assert_eq!(push.dback_amount.as_deref(), Some("10.50"));
            assert_eq!(push.notify_id.as_deref(), Some("n-1"));
            assert_eq!(push.app_id.as_deref(), Some("2021000000000001"));
        }
    }

    #[test]
    fn a_push_signed_with_another_key_or_changed_on_the_way_is_refused() {
        let forged = depositback_form(&facts("S"), "n-1", Utc::now(), &app_key()).unwrap();
        assert_eq!(
            read(&sent(forged), &alipay_public()),
            Err(PushError::Forged)
        );
        let mut changed = depositback_form(&facts("S"), "n-1", Utc::now(), &alipay_key()).unwrap();
        for (k, v) in &mut changed {
            if k == "dback_amount" {
                *v = "99.00".into();
            }
        }
        assert_eq!(
            read(&sent(changed), &alipay_public()),
            Err(PushError::Forged)
        );
    }
}
