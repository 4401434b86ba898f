//! The ledger's record of notifications: which `notify_id`s the sandbox
//! made, for whom, and how their sends went. Invariant: a `notify_id` is
//! registered once, so `notify_verify` answers for exactly one partner.

use super::Ledger;

/// A notification the sandbox sent or will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Unique across the sandbox's life.
    pub notify_id: String,
    /// The partner it is signed for; `notify_verify` checks it.
    pub partner: String,
    /// `batch_refund_notify` or `dback`.
    pub kind: &'static str,
    /// The batch it reports.
    pub batch_no: String,
    /// The trade, for a 充退 notification.
    pub trade_no: Option<String>,
    /// Sends tried, dropped ones included.
    pub attempts: u32,
    /// Sends that reached the receiver.
    pub delivered: u32,
    /// Whether the receiver answered `success`.
    pub acknowledged: bool,
}

impl Ledger {
    /// Records a notification; false if its `notify_id` is taken.
    pub fn register_notification(&mut self, record: NotificationRecord) -> bool {
        if self.by_notify_id.contains_key(&record.notify_id) {
            return false;
        }
        self.by_notify_id
            .insert(record.notify_id.clone(), self.notifications.len());
        self.notifications.push(record);
        true
    }

    /// Counts one send of a notification.
    pub fn record_send(&mut self, notify_id: &str, delivered: bool, acknowledged: bool) {
        if let Some(n) = self
            .by_notify_id
            .get(notify_id)
            .and_then(|i| self.notifications.get_mut(*i))
        {
            n.attempts += 1;
            n.delivered += u32::from(delivered);
            n.acknowledged |= acknowledged;
        }
    }

    /// `notify_verify`: whether the sandbox sent this notification to this partner.
    pub fn is_genuine(&self, partner: &str, notify_id: &str) -> bool {
        self.by_notify_id
            .get(notify_id)
            .and_then(|i| self.notifications.get(*i))
            .is_some_and(|n| n.partner == partner)
    }

    /// Every notification, in the order created.
    pub fn notifications(&self) -> &[NotificationRecord] {
        &self.notifications
    }
}
