//! Wire formats of the batch refund interfaces, one file per message.
//!
//! Owns what goes over the wire and how it is read back; signing lives in
//! [`crate::alipay::sign`], the meaning of answers in
//! [`crate::alipay::disposition`].
//!
//! - `amount`: yuan text to integer fen and back
//! - `batch_no`: `batch_no`, `refund_date` and Beijing time
//! - `detail`: the `detail_data` we send and its batch rules
//! - `form`: form encoding and strict decoding
//! - `request`: nopwd refund, query and `notify_verify` requests
//! - `pwd_form`: the password interface's auto-submitting HTML form
//! - `answer`: the synchronous XML answer
//! - `query_answer`: the `refund_fastpay_query` answer
//! - `reason`: the reason text as sent: printable, GBK-encodable
//! - `notify`: `batch_refund_notify` and 充退 notifications
//! - `item`: the item grammar notifications and queries share (head, 充退 fields, tails)
//! - `result_details`: the `result_details` list of notifications

pub(crate) mod amount;
pub(crate) mod answer;
pub mod batch_no;
pub mod detail;
pub mod form;
pub(crate) mod item;
pub mod notify;
pub mod pwd_form;
pub mod query_answer;
pub(crate) mod reason;
pub mod request;
pub(crate) mod result_details;
