//! The OpenAPI channel's wire (alipay-openapi.md): RSA2 signing, the
//! signed forms of `alipay.trade.refund` and its query, and the reading of
//! their answers. The submitter (`openapi_submit`), the query and the 充退
//! push (`callback::openapi_push`) are built on these (docs/design.md).

pub mod answer;
pub mod push;
pub mod query;
pub mod request;
pub mod sign;
