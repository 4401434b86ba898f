//! The notifications the sandbox posts: `batch_refund_notify` and 充退.
//!
//! Owns their parameters and `result_details` text (each item's text is
//! `items`'s). Invariants: every
//! notification is signed with the partner's key by the same signing code
//! the worker verifies with, and a resend is byte for byte the first send
//! (same `notify_id`, same `notify_time`, same signature), as Alipay's are.

use rand::Rng;

#[cfg(test)]
use super::items;
#[cfg(test)]
use super::ledger::ResultLine;
use crate::alipay::wire::notify::BATCH_REFUND_NOTIFY;
use crate::alipay::wire::request::{pair, signed};

/// The `kind` of a 充退 notification in the ledger.
pub const DBACK: &str = "dback";
/// Length of a `notify_id`.
const NOTIFY_ID_LEN: usize = 40;
/// The characters of a `notify_id`: Alipay's carry `+` and `/`, which a
/// receiver must URL-encode exactly once when it asks `notify_verify`.
const NOTIFY_ID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A fresh `notify_id`; the ledger refuses the rare repeat and the caller draws again.
pub fn new_notify_id(rng: &mut impl Rng) -> String {
    (0..NOTIFY_ID_LEN)
        .map(|_| char::from(NOTIFY_ID_ALPHABET[rng.random_range(0..NOTIFY_ID_ALPHABET.len())]))
        .collect()
}

/// `trade^amount^CODE#…`, amounts as yuan with two decimals.
#[cfg(test)]
pub fn result_details(lines: &[ResultLine]) -> String {
    items::details(lines, &[], "")
}

/// The signed parameters of a `batch_refund_notify` (the sandbox itself
/// builds them with its realism, in `items`).
#[cfg(test)]
pub fn batch_refund_notify(
    notify_time: &str,
    notify_id: &str,
    batch_no: &str,
    lines: &[ResultLine],
    key: &str,
) -> Vec<(String, String)> {
    let success_num = lines.iter().filter(|l| l.is_success()).count();
    batch_refund_notify_written(
        notify_time,
        notify_id,
        batch_no,
        (&result_details(lines), success_num),
        key,
    )
}

/// The signed parameters of a `batch_refund_notify` whose `result_details`
/// and `success_num` were written already (in realistic shapes, or empty).
/// An empty `result_details` is still sent, and left out of the signature
/// as the signing rules drop every empty value.
pub fn batch_refund_notify_written(
    notify_time: &str,
    notify_id: &str,
    batch_no: &str,
    (details, success_num): (&str, usize),
    key: &str,
) -> Vec<(String, String)> {
    signed(
        vec![
            pair("notify_time", notify_time),
            pair("notify_type", BATCH_REFUND_NOTIFY),
            pair("notify_id", notify_id),
            pair("batch_no", batch_no),
            pair("success_num", &success_num.to_string()),
            pair("result_details", details),
        ],
        key,
    )
}

/// What a 充退 notification reports about one refunded trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dback<'a> {
    /// When it is sent, Beijing time.
    pub notify_time: &'a str,
    /// Its id.
    pub notify_id: &'a str,
    /// The trade refunded.
    pub trade_no: &'a str,
    /// The batch that refunded it.
    pub batch_no: &'a str,
    /// The sandbox's id of the refund.
    pub refund_id: &'a str,
}

/// The signed parameters of a 充退 notification: the money reached the card (`S`).
///
/// The fields are the one public source's (honovation/veil); the bank name is
/// Chinese so that a receiver's UTF-8 handling is exercised.
pub fn dback_notify(d: &Dback<'_>, key: &str) -> Vec<(String, String)> {
    signed(
        vec![
            pair("notify_time", d.notify_time),
            pair("notify_id", d.notify_id),
            pair("trade_no", d.trade_no),
            pair("refund_id", d.refund_id),
            pair("refund_batch_no", d.batch_no),
            pair("card_no", "6222****0000"),
            pair("bank_name", "招商银行"),
            pair("status", "S"),
        ],
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::wire::form;
    use crate::alipay::wire::notify::{BatchRefundNotify, DbackNotify, DbackStatus, NotifyForm};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn line(trade_no: &str, amount_fen: i64, code: &str) -> ResultLine {
        ResultLine {
            trade_no: trade_no.into(),
            amount_fen,
            code: code.into(),
        }
    }

    #[test]
    fn a_batch_notification_reads_back_through_the_workers_parser() {
        let lines = [
            line("T1", 1050, "SUCCESS"),
            line("T2", 1, "REFUND_TRADE_FEE_ERROR"),
        ];
        let params =
            batch_refund_notify("2024-03-10 20:00:00", "id+/1", "20240310001", &lines, "k");
        let body = form::encode(&params);
        let form = NotifyForm::parse(body.as_bytes()).unwrap();
        assert!(form.verify_signature("k"));
        let n = BatchRefundNotify::from_form(&form).unwrap();
        assert_eq!(n.notify_id, "id+/1");
        assert_eq!(n.success_num, Some(1));
        assert!(n.success_count_matches());
        assert_eq!(n.result_details[0].amount_fen, 1050);
        assert_eq!(n.result_details[1].code, "REFUND_TRADE_FEE_ERROR");
    }

    #[test]
    fn an_empty_or_shaped_notification_is_still_signed_over_all_its_params() {
        for details in [
            "",
            "T1^1.00^success^false^null$sandbox-seller@alipay.com^2088101122136241^0.01^SUCCESS",
        ] {
            let params = batch_refund_notify_written(
                "2024-03-10 20:00:00",
                "id",
                "20240310001",
                (details, 0),
                "k",
            );
            assert!(
                params
                    .iter()
                    .any(|(k, v)| k == "result_details" && v == details)
            );
            assert!(params.iter().any(|(k, v)| k == "success_num" && v == "0"));
            let form = NotifyForm::parse(form::encode(&params).as_bytes()).unwrap();
            assert!(form.verify_signature("k"));
            assert_eq!(form.get("result_details"), Some(details));
        }
    }

    #[test]
    fn result_details_write_amounts_with_two_decimals() {
        let lines = [line("T1", 8000, "SUCCESS"), line("T2", 1, "SUCCESS")];
        assert_eq!(result_details(&lines), "T1^80.00^SUCCESS#T2^0.01^SUCCESS");
    }

    #[test]
    fn a_dback_notification_reads_back_through_the_workers_parser() {
        let d = Dback {
            notify_time: "2024-03-10 20:00:00",
            notify_id: "n",
            trade_no: "T1",
            batch_no: "20240310001",
            refund_id: "20240310001-1",
        };
        let body = form::encode(&dback_notify(&d, "k"));
        let form = NotifyForm::parse(body.as_bytes()).unwrap();
        assert!(form.verify_signature("k"));
        let n = DbackNotify::from_form(&form).unwrap();
        assert_eq!(n.refund_batch_no, "20240310001");
        assert_eq!(n.status, DbackStatus::Succeeded);
        assert_eq!(n.bank_name.as_deref(), Some("招商银行"));
    }

    #[test]
    fn notify_ids_come_from_the_seed() {
        let a = new_notify_id(&mut StdRng::seed_from_u64(7));
        let b = new_notify_id(&mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 40);
        assert_ne!(a, new_notify_id(&mut StdRng::seed_from_u64(8)));
    }
}
