//! The soak's sandbox gateway: the mapi partner and the OpenAPI app the
//! workers are configured with, a time scale a thousand times faster than
//! Alipay's, and the fault rates it injects on both channels (with
//! `--realistic`, its realism preset too). The rates and their description
//! in the report are kept side by side here so they cannot drift apart.

use std::time::Duration;

use super::SoakArgs;
use super::stall::ALIPAY_TIMEOUT;
use super::stream::PAID_FEN;
use crate::commands::harness::PARTNER;
use crate::sandbox::{PartnerKey, Realism, SandboxConfig};

pub(super) const KEY: &str = "soak-key-not-a-secret";
/// How long a lagged batch stays in the sandbox's backlog (`--realistic`),
/// in real time whatever the sandbox's time scale: longer than a few of
/// the workers' resends, shorter than their give-up age.
const GATEWAY_LAG: Duration = Duration::from_secs(3);
/// The workers' `SUBMIT_ABSENCE_SETTLE_MS`: well past the lag, so a
/// `REFUND_NOT_EXIST` that counts toward absence is never one the lag
/// caused (the default hour would outlast the soak).
pub(super) const ABSENCE_SETTLE: Duration = GATEWAY_LAG.saturating_mul(4);

/// The faults [`config`] sets, in words, for the report.
pub(super) const FAULTS: &str = "5xx 3 %, time-out after accepting 3 %, SYSTEM_ERROR 3 %, P 3 %, item failures 2 %, notifications dropped/duplicated/delayed/reordered 10 % each";

/// How long a drawn OpenAPI time-out holds the answer: twice the workers'
/// whole-request time-out, so the worker gives up with the money moved.
const OPENAPI_TIMEOUT_HOLD: Duration = ALIPAY_TIMEOUT.saturating_mul(2);

/// The OpenAPI faults [`config`] sets, in words, for the report.
pub(super) const OPENAPI_FAULTS: &str = "per alipay.trade.refund call: refunded then 20000 unavailable 3 %, refunded then held past the worker's time-out (3 s) 2 %, refunded then a bad signature 2 %, ACQ.SELLER_BALANCE_NOT_ENOUGH (nothing refunded) 2 %";

/// The sandbox's configuration for a soak run.
pub(super) fn config(args: &SoakArgs) -> anyhow::Result<SandboxConfig> {
    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: PARTNER.into(),
            key: KEY.into(),
        }],
        args.seed,
    );
    config.time_scale = "0.001".parse()?;
    config.trade_paid_fen = PAID_FEN;
    let f = &mut config.faults;
    f.http_5xx_rate = "0.03".parse()?;
    f.timeout_after_accept_rate = "0.03".parse()?;
    f.timeout_hold = Duration::from_secs(3);
    f.system_error_rate = "0.03".parse()?;
    f.processing_rate = "0.03".parse()?;
    f.item_failure_rate = "0.02".parse()?;
    f.notify_drop_rate = "0.1".parse()?;
    f.notify_duplicate_rate = "0.1".parse()?;
    f.notify_delay_rate = "0.1".parse()?;
    f.notify_delay = Duration::from_secs(60);
    f.notify_reorder_rate = "0.1".parse()?;
    super::openapi::serve_app(&mut config)?;
    let o = &mut config.openapi_faults;
    o.unavailable_after_refund_rate = "0.03".parse()?;
    o.timeout_after_refund_rate = "0.02".parse()?;
    o.timeout_hold = OPENAPI_TIMEOUT_HOLD;
    o.bad_signature_rate = "0.02".parse()?;
    o.balance_not_enough_rate = "0.02".parse()?;
    if args.realistic {
        config.realism = Realism {
            lag: config.time_scale.unscale(GATEWAY_LAG),
            ..Realism::realistic()
        };
    }
    Ok(config)
}
