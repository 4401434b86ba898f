//! Who changes a refund (the history's `actor`) and whose word settled it
//! (the result event's `source`, contract §4): the one place their names are
//! written.
//!
//! Invariant: the actor is the role that made the change. A split is the
//! submitter's, a password form renumbered past its date the reconciler's, a
//! report applied by the http role `callback`, by the reconciler `reconciler`.

use std::fmt;

/// The role (or person) that changed a refund's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Intake,
    Batcher,
    Submitter,
    /// The OpenAPI channel's submitter (one call per refund).
    OpenApi,
    /// The http role, applying a notification.
    Callback,
    Reconciler,
    /// A person, by the name they gave (`operator:alice`).
    Operator(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Intake => f.write_str("intake"),
            Self::Batcher => f.write_str("batcher"),
            Self::Submitter => f.write_str("submitter"),
            Self::OpenApi => f.write_str("openapi"),
            Self::Callback => f.write_str("callback"),
            Self::Reconciler => f.write_str("reconciler"),
            Self::Operator(name) => write!(f, "operator:{name}"),
        }
    }
}

/// What settled a refund, as its result event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The worker's own rule (a trade's 100th refund).
    Worker,
    /// The answer to the submission itself.
    Submit,
    /// Alipay's notification.
    Notify,
    /// Alipay's answer to the refund query.
    Query,
    /// A person (`refund settle`).
    Operator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Submit => "submit",
            Self::Notify => "notify",
            Self::Query => "query",
            Self::Operator => "operator",
        }
    }
}

/// Whose report on a batch is applied: a notification (the http role) or a
/// query answer (the reconciler). Fixes both the event's source and the
/// history's actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSource {
    /// `batch_refund_notify`, applied by the http role.
    Notify,
    /// `refund_fastpay_query`, applied by the reconciler.
    Query,
}

impl ReportSource {
    pub fn source(self) -> Source {
        match self {
            Self::Notify => Source::Notify,
            Self::Query => Source::Query,
        }
    }

    pub fn actor(self) -> Actor {
        match self {
            Self::Notify => Actor::Callback,
            Self::Query => Actor::Reconciler,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_and_sources_are_written_as_the_history_and_the_contract_spell_them() {
        assert_eq!(
            Actor::Operator("alice".into()).to_string(),
            "operator:alice"
        );
        assert_eq!(Actor::Callback.to_string(), "callback");
        assert_eq!(ReportSource::Query.actor(), Actor::Reconciler);
        assert_eq!(ReportSource::Notify.source().as_str(), "notify");
        assert_eq!(Source::Worker.as_str(), "worker");
    }
}
