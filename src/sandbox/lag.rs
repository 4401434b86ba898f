//! Alipay's backlog (`--lag-rate`, `--lag-ms`): a nopwd batch Alipay takes
//! but answers `F SYSTEM_ERROR`, as its rules warn ("有可能请求已经提交到支付宝").
//!
//! Owns taking a batch into the backlog and processing it when its lag is
//! over. While lagged, the ledger holds its `batch_no` but a resend is
//! answered `SYSTEM_ERROR` and a query finds nothing of it
//! (`REFUND_NOT_EXIST`); once the lag (scaled) has passed, it is processed
//! by the ledger's usual rules and notified, and from then on a resend is a
//! `DUPLICATE_BATCH_NO` and a query shows it. Invariants: the lag ends once
//! and the batch is processed once, under the sandbox's lock; its draws come
//! from a generator of its own, seeded in request order (see
//! `realism::draw_request`), so the sandbox's one generator is never drawn
//! from at a moment a timer chose; nothing is processed after the sandbox
//! is stopped.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::batches::NotifyJob;
use super::checks::BatchRequest;
use super::ledger::BatchId;
use super::refusal::Refusal;
use super::{Inner, Sandbox};
use crate::delays::sleep_or_stop;

/// A batch in the backlog, and when and how it is processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lagged {
    pub batch: BatchId,
    pub batch_no: String,
    /// How long it stays in the backlog; already scaled.
    pub after: Duration,
    /// Seed of the generator its processing draws from.
    pub seed: u64,
}

impl Sandbox {
    /// Takes a checked nopwd batch into the backlog: its number is taken,
    /// nothing is processed. Refused as [`Sandbox::accept`] refuses (poison,
    /// a number taken, or still lagged); counts the lag.
    pub(super) fn accept_lagged(
        &self,
        request: BatchRequest,
        seed: u64,
    ) -> Result<Lagged, Refusal> {
        let mut inner = self.lock();
        self.refuse_poison(&mut inner, &request)?;
        let batch_no = request.batch_no.clone();
        let batch = inner.ledger.accept_lagged(request)?;
        inner.realism.counts.lagged += 1;
        let config = &self.shared.config;
        Ok(Lagged {
            batch,
            batch_no,
            after: config.time_scale.scale(config.realism.lag),
            seed,
        })
    }

    /// In the background: waits out the lag, then processes the batch and
    /// sends its notifications (unless the sandbox stopped meanwhile).
    pub(super) fn end_lag_later(&self, lagged: Lagged) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            if !sleep_or_stop(&sandbox.shared.stop, lagged.after).await {
                return;
            }
            let jobs = sandbox.end_lag(&lagged);
            tracing::info!(batch_no = %lagged.batch_no, notifications = jobs.len(), "lag over: the batch is processed");
            sandbox.send(jobs);
        });
    }

    /// Ends the lag now: processes the batch with its own generator and
    /// returns the notifications to send; none when the lag had ended.
    pub(super) fn end_lag(&self, lagged: &Lagged) -> Vec<NotifyJob> {
        let mut inner = self.lock();
        let Inner {
            ledger, realism, ..
        } = &mut *inner;
        if !ledger.end_lag(lagged.batch) {
            return Vec::new();
        }
        let mut rng = StdRng::seed_from_u64(lagged.seed);
        self.process(ledger, &mut rng, realism, lagged.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::checks::QueryKey;
    use crate::sandbox::config::{Faults, PartnerKey, Rate, Realism, SandboxConfig};
    use crate::sandbox::refusal::Code;
    use rand::Rng;

    const P: &str = "2088101122136241";

    fn sandbox(seed: u64) -> Sandbox {
        let mut config = SandboxConfig::new(
            vec![PartnerKey {
                id: P.into(),
                key: "k".into(),
            }],
            seed,
        );
        config.time_scale = "0.001".parse().unwrap();
        config.realism = Realism {
            lag_rate: Rate::ALWAYS,
            ..Realism::default()
        };
        config.faults = Faults {
            item_failure_rate: "0.5".parse().unwrap(),
            ..Faults::default()
        };
        Sandbox::new(config).unwrap()
    }

    fn request(batch_no: &str, trades: &[&str]) -> BatchRequest {
        crate::sandbox::test_support::request(P, batch_no, trades)
    }

    use crate::sandbox::test_support::details;

    fn query(s: &Sandbox, batch_no: Option<&str>, trade_no: Option<&str>) -> usize {
        let key = QueryKey {
            batch_no: batch_no.map(Into::into),
            trade_no: trade_no.map(Into::into),
        };
        s.lock().ledger.query(P, &key).len()
    }

    #[test]
    fn a_lagged_batch_is_taken_then_processed_and_notified_once_when_its_lag_ends() {
        let s = sandbox(7);
        let lagged = s
            .accept_lagged(request("20240310001", &["T1"]), 99)
            .unwrap();
        // 3 s at the time scale of 0.001.
        assert_eq!(lagged.after, Duration::from_millis(3));
        let view = s.ledger();
        assert_eq!(view.batches[0].state, "lagged");
        assert_eq!(view.realism.lagged, 1);
        assert_eq!((view.paid_total_fen, view.notifications.len()), (0, 0));
        assert_eq!(
            (
                query(&s, Some("20240310001"), None),
                query(&s, None, Some("T1"))
            ),
            (0, 0)
        );
        let resend = s.accept(request("20240310001", &["T1"]), false);
        assert_eq!(
            resend.map(|_| ()).map_err(|r| r.code),
            Err(Code::SystemError)
        );

        let jobs = s.end_lag(&lagged);
        assert_eq!(jobs.len(), 1);
        let view = s.ledger();
        assert_eq!(view.batches[0].state, "processed");
        let paid = view.paid_total_fen;
        assert_eq!(details(&jobs[0]) == "T1^1.00^SUCCESS", paid == 100);
        assert_eq!(query(&s, Some("20240310001"), None), 1);
        let resend = s.accept(request("20240310001", &["T1"]), false);
        assert_eq!(
            resend.map(|_| ()).map_err(|r| r.code),
            Err(Code::DuplicateBatchNo)
        );
        // A second end (a timer fired twice) processes and notifies nothing.
        assert!(s.end_lag(&lagged).is_empty());
        assert_eq!(s.ledger().paid_total_fen, paid);
        assert_eq!(s.ledger().realism.lagged, 1);
    }

    #[test]
    fn processing_a_lagged_batch_draws_from_its_own_seed_never_from_the_sandboxs_generator() {
        let outcome = |seed: u64| {
            let s = sandbox(1);
            let trades: Vec<String> = (0..20).map(|i| format!("T{i}")).collect();
            let trades: Vec<&str> = trades.iter().map(String::as_str).collect();
            let lagged = s
                .accept_lagged(request("20240310001", &trades), seed)
                .unwrap();
            let next = s.lock().rng.clone().random::<u64>();
            let jobs = s.end_lag(&lagged);
            assert_eq!(s.lock().rng.clone().random::<u64>(), next);
            details(&jobs[0])
        };
        assert_eq!(outcome(5), outcome(5));
        assert_ne!(outcome(5), outcome(6));
    }
}
