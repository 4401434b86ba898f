//! The error codes the sandbox answers, and why it answered them.
//!
//! Owns the spelling of every code, so the checks, the ledger and the
//! answers cannot disagree on one. Invariant: a [`Refusal`] carries the code
//! the client sees and a detail only the sandbox's log shows (the detail may
//! name the expected signing string, never a key).

use std::fmt;

use thiserror::Error;

/// A code Alipay answers with `is_success=F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Bad signature, or URL and body disagree on `_input_charset`.
    IllegalSign,
    /// A charset the sandbox cannot read (it reads UTF-8 only).
    IllegalCharset,
    /// No such service.
    IllegalService,
    /// No such partner.
    IllegalPartner,
    /// `sign_type` other than `MD5`.
    IllegalSignType,
    /// The partner has no contract for this interface (nopwd).
    IllegalPartnerExterface,
    /// A missing or malformed parameter without a code of its own.
    IllegalArgument,
    /// `batch_no` is not a date plus a serial.
    BatchNoFormatError,
    /// The dates of `batch_no`, `refund_date` and today disagree.
    RefundDateError,
    /// `batch_num` outside 1..=1000.
    BatchNumExceedLimit,
    /// `batch_num` is not a number.
    BatchNumError,
    /// `detail_data` cannot be read.
    DetailDataFormatError,
    /// `batch_num` differs from the items in `detail_data`.
    BatchNumNotEqualTotal,
    /// One trade twice in one batch.
    DublTradeNoInSameBatch,
    /// A reason above 256 bytes.
    BatchMemoLengthExceedLimit,
    /// This partner sent this `batch_no` before.
    DuplicateBatchNo,
    /// Injected: Alipay had a bad moment.
    SystemError,
    /// `refund_fastpay_query` found nothing.
    RefundNotExist,
    /// Injected: a coupon-paid trade in the batch cannot be refunded in part,
    /// which sinks the whole batch.
    ReasonRefundAmountLessThanCouponFee,
}

impl Code {
    /// The code as Alipay spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::IllegalSign => "ILLEGAL_SIGN",
            Code::IllegalCharset => "ILLEGAL_CHARSET",
            Code::IllegalService => "ILLEGAL_SERVICE",
            Code::IllegalPartner => "ILLEGAL_PARTNER",
            Code::IllegalSignType => "ILLEGAL_SIGN_TYPE",
            Code::IllegalPartnerExterface => "ILLEGAL_PARTNER_EXTERFACE",
            Code::IllegalArgument => "ILLEGAL_ARGUMENT",
            Code::BatchNoFormatError => "BATCH_NO_FORMAT_ERROR",
            Code::RefundDateError => "REFUND_DATE_ERROR",
            Code::BatchNumExceedLimit => "BATCH_NUM_EXCEED_LIMIT",
            Code::BatchNumError => "BATCH_NUM_ERROR",
            Code::DetailDataFormatError => "DETAIL_DATA_FORMAT_ERROR",
            Code::BatchNumNotEqualTotal => "BATCH_NUM_NOT_EQUAL_TOTAL",
            Code::DublTradeNoInSameBatch => "DUBL_TRADE_NO_IN_SAME_BATCH",
            Code::BatchMemoLengthExceedLimit => "BATCH_MEMO_LENGTH_EXCEED_LIMIT",
            Code::DuplicateBatchNo => "DUPLICATE_BATCH_NO",
            Code::SystemError => "SYSTEM_ERROR",
            Code::RefundNotExist => "REFUND_NOT_EXIST",
            Code::ReasonRefundAmountLessThanCouponFee => {
                "REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE"
            }
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request the sandbox refused: the code answered and the reason logged.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{code}: {detail}")]
pub struct Refusal {
    /// What the client is told.
    pub code: Code,
    /// Why, for the sandbox's log.
    pub detail: String,
}

impl Refusal {
    /// A refusal with its reason.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}
