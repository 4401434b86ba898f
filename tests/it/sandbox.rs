//! The Alipay gateway simulator over real HTTP: the sandbox in-process on
//! port 0, a notification receiver on port 0, nothing else. Waits are bounded
//! polls; the notification schedule runs at `--time-scale 0.001`.

mod faults;
mod flows;
mod process;
mod refusals;
mod support;
