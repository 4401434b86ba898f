//! The cuttable TCP proxy of the soak, for outage tests.

pub use refund_worker::soak::proxy::Proxy;
