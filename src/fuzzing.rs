//! What every parser of outside input must survive, one check per parser:
//! it may return an error, never panic, and what it accepts keeps its
//! invariants (a failed check panics). The libFuzzer targets in `fuzz/`, the
//! properties of `parser_robustness` and the corpus test below all run these
//! same checks, so a crash found by one is a regression test for the others.

use crate::alipay::wire::answer::parse_sync_answer;
use crate::alipay::wire::notify::{BatchRefundNotify, DbackNotify, NotifyForm};
use crate::alipay::wire::query_answer::parse_query_answer;
use crate::alipay::wire::result_details::parse_result_details;
use crate::domain::refund_request::{Partners, parse};

/// The key the fuzzing seeds are signed with, so signed paths are reached.
pub const KEY: &str = "k";
/// The one partner the intake check knows.
pub const PARTNER: &str = "2088101122136241";

struct OnePartner;

impl Partners for OnePartner {
    fn default_partner(&self) -> Option<&str> {
        Some(PARTNER)
    }
    fn is_configured(&self, partner: &str) -> bool {
        partner == PARTNER
    }
}

/// A `refund.approved` body: what intake accepts has an id and fen > 0.
pub fn intake_event(data: &[u8]) {
    if let Ok(r) = parse(data, &OnePartner) {
        assert!(r.amount.fen() > 0, "accepted a non-positive amount");
        assert!(!r.refund_id.is_empty(), "accepted an empty refund id");
    }
}

/// A notification body: the form, both views of it and the MD5 check.
pub fn notify_form(data: &[u8]) {
    if let Ok(form) = NotifyForm::parse(data) {
        if let Ok(n) = BatchRefundNotify::from_form(&form) {
            assert!(!n.batch_no.is_empty(), "a notification without a batch");
            let _ = n.success_count_matches();
        }
        let _ = DbackNotify::from_form(&form);
        let _ = form.verify_signature(KEY);
        let _ = form.notify_id();
    }
}

/// `result_details`: every item read names a trade and a result code, no
/// code holds a tail separator, and no item is lost: read and unreadable
/// items together are every `#`-separated item.
pub fn result_details(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let d = parse_result_details(text);
    for item in &d.items {
        assert!(!item.trade_no.is_empty(), "an item without a trade");
        assert!(!item.code.is_empty(), "an item without a code");
        assert!(
            !item.code.contains(['$', '|', '^']),
            "a code with a separator"
        );
    }
    let body = text.strip_suffix('#').unwrap_or(text);
    let expected = if body.is_empty() {
        0
    } else {
        body.split('#').count()
    };
    assert_eq!(
        d.items.len() + d.unreadable.len(),
        expected,
        "an item was lost"
    );
}

/// The form answer of `refund_fastpay_query`.
pub fn query_answer(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_query_answer(text);
    }
}

/// The XML answer to a batch submission.
pub fn sync_answer(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_sync_answer(text);
    }
}

/// A check: panics when the input breaks the parser's promise.
pub type Check = fn(&[u8]);

/// Each check with the name of its fuzz target and corpus directory.
pub const TARGETS: &[(&str, Check)] = &[
    ("intake_event", intake_event),
    ("notify_form", notify_form),
    ("result_details", result_details),
    ("query_answer", query_answer),
    ("sync_answer", sync_answer),
];

#[cfg(test)]
mod tests {
    use super::TARGETS;

    /// Every committed input (the seeds, and each crash once fixed) passes
    /// its check again, without libFuzzer.
    #[test]
    fn every_committed_fuzz_input_passes_its_check() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (name, check) in TARGETS {
            let mut seen = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("a readable corpus directory").path();
                    let data = std::fs::read(&path).expect("a readable corpus file");
                    let outcome = std::panic::catch_unwind(|| check(&data));
                    assert!(outcome.is_ok(), "{} fails its check", path.display());
                    seen += 1;
                }
            }
            assert!(seen > 0, "no committed input for the fuzz target {name}");
        }
    }

    /// The fuzz crate is not built by CI (it takes minutes): at least each
    /// check must have its target, and each target must run its check.
    #[test]
    fn every_check_has_a_fuzz_target_that_runs_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
        for (name, _) in TARGETS {
            assert!(
                manifest.contains(&format!(
                    "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
                )),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
            let path = root.join("fuzz_targets").join(format!("{name}.rs"));
            let target = std::fs::read_to_string(&path).expect("a fuzz target");
            assert!(
                target.contains(&format!("refund_worker::fuzzing::{name}(data)")),
                "{} does not run fuzzing::{name}",
                path.display()
            );
        }
    }
}
