//! The OpenAPI channel's wire (alipay-openapi.md): RSA2 signing and the
//! reading of `alipay.trade.refund` answers. Issue 17 builds the submitter,
//! the query and the 充退 push on these; until then no partner can use the
//! channel (see the README's status).

pub mod answer;
pub mod sign;
