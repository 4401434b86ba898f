//! The OpenAPI channel's wire (alipay-openapi.md): RSA2 signing, the
//! signed forms of `alipay.trade.refund` and its query, and the reading of
//! their answers. Issue 17 builds the submitter,
//! the query and the 充退 push on these; until then no partner can use the
//! channel (see the README's status).

pub mod answer;
pub mod push;
pub mod query;
pub mod request;
pub mod sign;
