//! The states of a refund and of a batch (architecture.md, "States"), as
//! types: the one place their names are written.
//!
//! The database stores the names below (CHECK constraints in the
//! migrations); SQL binds them with [`RefundStatus::as_str`] and
//! [`BatchStatus::as_str`] rather than spelling literals anew.

use std::fmt;

/// A refund's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Pending,
    Batched,
    Submitted,
    Succeeded,
    Failed,
}

/// A batch's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchStatus {
    Created,
    Submitting,
    Submitted,
    Completed,
    Rejected,
    AwaitingOperator,
}

impl RefundStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Batched,
        Self::Submitted,
        Self::Succeeded,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Batched => "batched",
            Self::Submitted => "submitted",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// `succeeded` and `failed` are terminal: entering one writes the result event.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

impl BatchStatus {
    pub const ALL: [Self; 6] = [
        Self::Created,
        Self::Submitting,
        Self::Submitted,
        Self::Completed,
        Self::Rejected,
        Self::AwaitingOperator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Submitting => "submitting",
            Self::Submitted => "submitted",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::AwaitingOperator => "awaiting_operator",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_state() {
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        for s in BatchStatus::ALL {
            assert_eq!(BatchStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RefundStatus::parse("Pending"), None);
        assert_eq!(BatchStatus::parse("held"), None);
    }

    #[test]
    fn only_succeeded_and_failed_are_terminal() {
        let terminal: Vec<_> = RefundStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [RefundStatus::Succeeded, RefundStatus::Failed]);
    }
}
