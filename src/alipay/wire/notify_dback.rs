//! The 充退 (dback) notification: money of a refund that could not go back
//! to the buyer's bank card and went to their Alipay balance instead.
//!
//! Owns its typed view. Invariant: only what finds and verifies it is
//! required; one public source describes this message, so a genuine one is
//! never refused for the rest of its shape.

use super::{NotifyError, NotifyForm};

/// Where the money of a 充退 stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbackStatus {
    /// `S`: it reached the buyer's bank card.
    Succeeded,
    /// `F`: it failed and stays in the buyer's Alipay balance.
    Failed,
    /// `I`: still in progress; it stays in the balance meanwhile.
    InProgress,
    /// Anything else, kept: only one public source describes this field.
    Other(String),
}

impl DbackStatus {
    /// Reads the `status` field.
    pub fn parse(text: &str) -> Self {
        match text {
            "S" => Self::Succeeded,
            "F" => Self::Failed,
            "I" => Self::InProgress,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The typed view of a 充退 notification sent to `dback_notify_url`.
///
/// `sign` and `sign_type` stay in the [`NotifyForm`], where verification reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbackNotify {
    /// Alipay's id for this notification.
    pub notify_id: String,
    /// Alipay's trade number, when sent.
    pub trade_no: Option<String>,
    /// Alipay's id of the refund, when sent.
    pub refund_id: Option<String>,
    /// Our `batch_no`, from `refund_batch_no` or, failing that, `batch_no`.
    pub refund_batch_no: String,
    /// The buyer's card, masked by Alipay, when sent.
    pub card_no: Option<String>,
    /// The buyer's bank, when sent.
    pub bank_name: Option<String>,
    /// Where the money stands.
    pub status: DbackStatus,
}

impl DbackNotify {
    /// Builds the typed view from a parsed form. Only what finds and
    /// verifies it is required (the batch, under either name, and
    /// `notify_id`); one public source describes this message, so a genuine
    /// one is never refused for the rest of its shape: a missing status is
    /// [`DbackStatus::Other`], a missing trade is `None` (kept, no event).
    pub fn from_form(form: &NotifyForm) -> Result<Self, NotifyError> {
        let refund_batch_no = form
            .optional("refund_batch_no")
            .or_else(|| form.optional("batch_no"))
            .ok_or(NotifyError::Missing("refund_batch_no"))?;
        Ok(Self {
            notify_id: form.required("notify_id")?.to_owned(),
            trade_no: form.optional("trade_no"),
            refund_id: form.optional("refund_id"),
            refund_batch_no,
            card_no: form.optional("card_no"),
            bank_name: form.optional("bank_name"),
            status: DbackStatus::parse(form.get("status").unwrap_or_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, body};
    use super::*;

    fn dback(status: &'static str) -> Result<DbackNotify, NotifyError> {
        let raw = body(&[
            ("notify_id", "abc"),
            ("trade_no", "2010031906272929"),
            ("refund_id", "r1"),
            ("refund_batch_no", "20100319001"),
            ("card_no", "6222****1234"),
            ("bank_name", "招商银行"),
            ("status", status),
        ]);
        let form = NotifyForm::parse(&raw).unwrap();
        assert!(form.verify_signature(KEY));
        DbackNotify::from_form(&form)
    }

    #[test]
    fn a_dback_notification_reads_every_status() {
        let n = dback("S").unwrap();
        assert_eq!(n.refund_batch_no, "20100319001");
        assert_eq!(n.bank_name.as_deref(), Some("招商银行"));
        assert_eq!(n.status, DbackStatus::Succeeded);
        assert_eq!(dback("F").unwrap().status, DbackStatus::Failed);
        assert_eq!(dback("I").unwrap().status, DbackStatus::InProgress);
        assert_eq!(dback("X").unwrap().status, DbackStatus::Other("X".into()));
    }

    #[test]
    fn a_dback_notification_without_status_is_kept_as_other() {
        assert_eq!(dback("").unwrap().status, DbackStatus::Other(String::new()));
    }

    #[test]
    fn a_dback_notification_naming_batch_no_reads_the_same() {
        let raw = body(&[
            ("notify_id", "abc"),
            ("trade_no", "2010031906272929"),
            ("batch_no", "20100319001"),
            ("status", "S"),
        ]);
        let n = DbackNotify::from_form(&NotifyForm::parse(&raw).unwrap()).unwrap();
        assert_eq!(n.refund_batch_no, "20100319001");
        assert_eq!(n.trade_no.as_deref(), Some("2010031906272929"));
    }
}
