//! The pure core: values and rules with no I/O.

pub(crate) mod absence;
pub mod actor;
pub mod amount;
pub mod bank_return;
pub mod batch;
pub(crate) mod error_code;
pub(crate) mod item_code;
pub(crate) mod item_outcome;
pub mod refund_request;
pub(crate) mod rejected;
pub(crate) mod retry;
pub(crate) mod settle;
pub(crate) mod status;

pub use amount::{Amount, format_fen};
pub use error_code::{ErrorCode, Rejection};
pub use item_code::ItemClass;
pub use refund_request::{Partners, RefundRequest};
pub use status::{BatchStatus, RefundStatus};
