//! The ledger's backlog: batches Alipay took but has not processed yet
//! (`--lag-rate`). Invariant: a lagged batch holds its `batch_no` (a resend
//! is answered `SYSTEM_ERROR`, never accepted a second time), pays nothing
//! and shows in no query until `end_lag`; after that it is an ordinary
//! batch, processed once.

use super::{BatchId, BatchRequest, BatchState, Ledger, Refusal};

impl Ledger {
    /// Records a checked batch into the backlog, or refuses its `batch_no`
    /// as [`Ledger::accept`] does.
    pub fn accept_lagged(&mut self, request: BatchRequest) -> Result<BatchId, Refusal> {
        self.record(request, BatchState::Lagged)
    }

    /// Ends a batch's lag, so that it can be processed; false when it was
    /// not lagged (unknown, or ended before), so a lag ends once.
    pub fn end_lag(&mut self, id: BatchId) -> bool {
        match self.batches.get_mut(id) {
            Some(batch) if batch.state == BatchState::Lagged => {
                batch.state = BatchState::Processed;
                true
            }
            _ => false,
        }
    }
}
