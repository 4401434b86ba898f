//! The dead-letter codes of contract §3 and a rejection carrying one.

use std::fmt;

/// Why an inbound event was dead-lettered; the wire names are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidJson,
    MessageTooLarge,
    MissingField,
    InvalidRefundId,
    InvalidTradeNo,
    InvalidAmount,
    InvalidReason,
    UnknownPartner,
    UnsupportedCurrency,
    InvalidMetadata,
    ExceedsTradeAmount,
    ConflictingDuplicate,
}

impl ErrorCode {
    /// Every code, in the contract's order.
    pub const ALL: [ErrorCode; 12] = [
        Self::InvalidJson,
        Self::MessageTooLarge,
        Self::MissingField,
        Self::InvalidRefundId,
        Self::InvalidTradeNo,
        Self::InvalidAmount,
        Self::InvalidReason,
        Self::UnknownPartner,
        Self::UnsupportedCurrency,
        Self::InvalidMetadata,
        Self::ExceedsTradeAmount,
        Self::ConflictingDuplicate,
    ];

    /// The code as it appears in the `x-refund-error-code` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::MessageTooLarge => "message_too_large",
            Self::MissingField => "missing_field",
            Self::InvalidRefundId => "invalid_refund_id",
            Self::InvalidTradeNo => "invalid_trade_no",
            Self::InvalidAmount => "invalid_amount",
            Self::InvalidReason => "invalid_reason",
            Self::UnknownPartner => "unknown_partner",
            Self::UnsupportedCurrency => "unsupported_currency",
            Self::InvalidMetadata => "invalid_metadata",
            Self::ExceedsTradeAmount => "exceeds_trade_amount",
            Self::ConflictingDuplicate => "conflicting_duplicate",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event the worker will not store: its code and one human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
