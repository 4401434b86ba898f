//! Every parser of outside input, fed arbitrary and near-valid input: none
//! may panic, and whatever parses keeps its invariants. The default run is
//! part of the test suite; `deploy/fuzz.sh` runs the same properties with
//! `PROPTEST_CASES` raised (a million each) for release checks. (`cargo fuzz`
//! needs a nightly toolchain, which this project's machines cannot fetch.)

use proptest::prelude::*;

use crate::alipay::wire::answer::parse_sync_answer;
use crate::alipay::wire::notify::{BatchRefundNotify, DbackNotify, NotifyForm};
use crate::alipay::wire::query_answer::parse_query_answer;
use crate::alipay::wire::result_details::parse_result_details;
use crate::domain::refund_request::{Partners, parse};

struct OnePartner;

impl Partners for OnePartner {
    fn default_partner(&self) -> Option<&str> {
        Some("2088101122136241")
    }
    fn is_configured(&self, partner: &str) -> bool {
        partner == "2088101122136241"
    }
}

/// Text from the pieces the formats are made of, so that cases reach past
/// the first syntax check.
fn near(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(pieces).prop_map(str::to_owned),
            "[0-9]{1,30}",
            "[ -~]{0,8}",
            "\\PC{0,4}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

const JSON: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\"refund_id\"",
    "\"trade_no\"",
    "\"amount\"",
    "\"reason\"",
    "\"partner\"",
    "\"currency\"",
    "\"trade_amount\"",
    "\"metadata\"",
    "\"R-1\"",
    "\"2016061321001004790000000001\"",
    "\"10.50\"",
    "1e3",
    "-0",
    "null",
    "true",
    "0.001",
    "99999999.99",
    "\"CNY\"",
    "\"2088101122136241\"",
];
const FORM: &[&str] = &[
    "&",
    "=",
    "%",
    "%2",
    "%E4%B8%AD",
    "+",
    "notify_id",
    "batch_no",
    "result_details",
    "success_num",
    "notify_type",
    "batch_refund_notify",
    "sign",
    "sign_type",
    "MD5",
    "trade_no",
    "refund_batch_no",
    "status",
    "S",
    "F",
    "I",
    "^",
    "#",
    "$",
    "|",
    "$$",
    "SUCCESS",
    "20261125001",
    "1.00",
];
const DETAILS: &[&str] = &[
    "^",
    "#",
    "$",
    "|",
    "$$",
    "SUCCESS",
    "TRADE_HAS_CLOSED",
    "1.00",
    "0.01",
    "-1",
    "1e2",
    "2016061321001004790000000001",
    "2088101122136241",
    "true",
    "false",
    "null",
];
const XML: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<alipay>",
    "</alipay>",
    "<is_success>",
    "</is_success>",
    "T",
    "F",
    "P",
    "<error>",
    "</error>",
    "SYSTEM_ERROR",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&#x",
    ";",
    "<",
    ">",
    "/>",
    "\"",
    "'",
];
const QUERY: &[&str] = &[
    "is_success=",
    "T",
    "F",
    "&",
    "=",
    "result_details=",
    "error_code=",
    "REFUND_NOT_EXIST",
    "^",
    "#",
    "$",
    "|",
    "SUCCESS",
    "20261125001",
    "2016061321001004790000000001",
    "1.00",
];

proptest! {
    #[test]
    fn the_intake_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes, &OnePartner);
    }

    #[test]
    fn the_intake_parser_keeps_its_invariants_on_near_valid_json(text in near(JSON)) {
        if let Ok(r) = parse(text.as_bytes(), &OnePartner) {
            prop_assert!(r.amount.fen() > 0);
            prop_assert!(!r.refund_id.is_empty());
        }
    }

    #[test]
    fn the_notification_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(form) = NotifyForm::parse(&bytes) {
            let _ = BatchRefundNotify::from_form(&form);
            let _ = DbackNotify::from_form(&form);
            let _ = form.verify_signature("k");
        }
    }

    #[test]
    fn near_valid_notification_forms_never_panic(text in near(FORM)) {
        if let Ok(form) = NotifyForm::parse(text.as_bytes()) {
            let _ = BatchRefundNotify::from_form(&form);
            let _ = DbackNotify::from_form(&form);
            let _ = form.verify_signature("k");
        }
    }

    #[test]
    fn result_details_parse_to_items_with_a_trade_and_a_code(text in near(DETAILS)) {
        if let Ok(items) = parse_result_details(&text) {
            for i in items {
                prop_assert!(!i.trade_no.is_empty());
                prop_assert!(!i.code.is_empty());
            }
        }
    }

    #[test]
    fn the_sync_answer_parser_never_panics(text in near(XML)) {
        let _ = parse_sync_answer(&text);
    }

    #[test]
    fn the_query_answer_parser_never_panics(text in near(QUERY)) {
        let _ = parse_query_answer(&text);
    }

    #[test]
    fn arbitrary_text_never_panics_the_text_parsers(text in "\\PC{0,300}") {
        let _ = parse_sync_answer(&text);
        let _ = parse_query_answer(&text);
        let _ = parse_result_details(&text);
    }
}
