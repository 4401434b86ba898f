//! The pure Alipay mapi layer: signing, wire formats and the retry table.
//!
//! Owns everything about talking to `mapi.alipay.com` that needs no I/O, so
//! the HTTP client and the callback handler only move bytes. Invariants: no
//! float touches money (amounts are integer fen) and no clock is read here
//! (callers pass `now`).
//!
//! - `sign`: MD5 signing string, sign and constant-time verify
//! - `wire`: requests, answers and notifications on the wire
//! - `disposition`: what each synchronous answer means for the batch
//! - `exchange`: every answer and transport error of a call, judged in one place
//! - `client`: the HTTP client (the only I/O here)
//! - `openapi`: the second channel's wire (RSA2, `alipay.trade.refund` answers)

pub mod client;
pub mod disposition;
pub(crate) mod exchange;
pub mod openapi;
pub mod sign;
pub mod wire;
