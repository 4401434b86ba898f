//! What a final 充退 status (the money went on from the buyer's Alipay
//! balance to the bank card, or did not) becomes in the
//! `refund.bank_returned` event (contract §4), for both channels.

/// What a final 充退 status becomes in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankReturn {
    /// The event's `status`.
    pub status: &'static str,
    /// The event's `code`: Alipay's raw status letter.
    pub code: &'static str,
    pub message: &'static str,
}

impl BankReturn {
    pub const SUCCEEDED: Self = Self {
        status: "bank_succeeded",
        code: "S",
        message: "the refund reached the buyer's bank card",
    };
    pub const FAILED: Self = Self {
        status: "bank_failed",
        code: "F",
        message: "the refund did not reach the bank card; it stays in the buyer's Alipay balance",
    };
}
