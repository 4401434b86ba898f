//! The pure core: values and rules with no I/O.

pub mod absence;
pub mod actor;
pub mod amount;
pub mod batch;
pub mod error_code;
pub mod item_code;
pub mod item_outcome;
pub mod refund_request;
pub mod rejected;
pub mod retry;
pub mod settle;
pub mod status;

pub use amount::{Amount, format_fen};
pub use error_code::{ErrorCode, Rejection};
pub use item_code::ItemClass;
pub use refund_request::{Partners, RefundRequest};
pub use status::{BatchStatus, RefundStatus};
