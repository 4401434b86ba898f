//! What a `REFUND_NOT_EXIST` answer proves (alipay-mapi.md): little, soon
//! after a send. The pure rule, shared by the submitter (a batch whose
//! outcome is unknown) and the reconciler (a password-form batch past its
//! date).
//!
//! Invariant: a batch is provably absent only when no notification for it
//! was ever received and two `REFUND_NOT_EXIST` answers were seen, the first
//! at least `settle` after the batch's last send attempt, the second at
//! least `settle` after the first.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What one more `REFUND_NOT_EXIST`, seen at `now`, makes of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// Proven: its refunds may go into a new batch.
    Proven,
    /// The first answer that counts: record `now`, ask again in `settle`.
    FirstSeen,
    /// Proves nothing yet; the next answer could count in `ask_in`.
    NotYet { ask_in: Duration },
    /// A notification was received for it: Alipay holds it, whatever the query says.
    Held,
}

/// Judges a `REFUND_NOT_EXIST` seen at `now` for a batch last sent at
/// `last_sent`, whose first counting answer (if any) was `first_seen`.
pub fn judge(
    notified: bool,
    last_sent: DateTime<Utc>,
    first_seen: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    settle: Duration,
) -> Absence {
    if notified {
        return Absence::Held;
    }
    let until = |t: DateTime<Utc>| (t - now).to_std().unwrap_or_default();
    let counts_from = last_sent + settle;
    match first_seen {
        // A first answer from before a later send no longer counts.
        Some(first) if first >= counts_from => {
            if now >= first + settle {
                Absence::Proven
            } else {
                Absence::NotYet {
                    ask_in: until(first + settle),
                }
            }
        }
        _ if now >= counts_from => Absence::FirstSeen,
        _ => Absence::NotYet {
            ask_in: until(counts_from),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn two_answers_each_an_hour_apart_and_after_the_send_prove_absence() {
        let sent = Utc::now();
        let at = |m: i64| sent + chrono::Duration::minutes(m);
        assert_eq!(
            judge(false, sent, None, at(1), H),
            Absence::NotYet {
                ask_in: Duration::from_secs(59 * 60)
            }
        );
        assert_eq!(judge(false, sent, None, at(60), H), Absence::FirstSeen);
        assert_eq!(
            judge(false, sent, Some(at(60)), at(90), H),
            Absence::NotYet {
                ask_in: Duration::from_secs(30 * 60)
            }
        );
        assert_eq!(
            judge(false, sent, Some(at(60)), at(120), H),
            Absence::Proven
        );
    }

    #[test]
    fn a_notification_or_a_later_send_undoes_the_proof() {
        let sent = Utc::now();
        let at = |m: i64| sent + chrono::Duration::minutes(m);
        assert_eq!(judge(true, sent, Some(at(60)), at(500), H), Absence::Held);
        // Sent again at +100: the answer seen at +60 no longer counts.
        assert_eq!(
            judge(false, at(100), Some(at(60)), at(130), H),
            Absence::NotYet {
                ask_in: Duration::from_secs(30 * 60)
            }
        );
        assert_eq!(
            judge(false, at(100), Some(at(60)), at(161), H),
            Absence::FirstSeen
        );
    }
}
