//! The Alipay gateway simulator over real HTTP: the sandbox in-process on
//! port 0, a notification receiver on port 0, nothing else. Waits are bounded
//! polls; the notification schedule runs at `--time-scale 0.001`. `realism`
//! covers the real gateway's shapes and cases, read raw; `lag` its backlog.

mod faults;
mod flows;
mod lag;
mod process;
mod realism;
mod refusals;
mod support;
