//! The pure core: values and rules with no I/O.

pub mod amount;
pub mod error_code;
pub mod refund_request;
pub mod retry;

pub use amount::{Amount, format_fen};
pub use error_code::{ErrorCode, Rejection};
pub use refund_request::{Partners, RefundRequest};
