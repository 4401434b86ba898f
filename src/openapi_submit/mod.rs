//! The OpenAPI channel's submitter (placeholder while it is built).
pub mod decide;
