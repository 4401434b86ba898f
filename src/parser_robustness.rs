//! Every parser of outside input, fed arbitrary and near-valid input, must
//! pass its check in [`crate::fuzzing`]. The default run is part of the test
//! suite; `deploy/fuzz.sh` runs the libFuzzer targets of `fuzz/` (coverage
//! guided, the same checks) and these properties with `PROPTEST_CASES`
//! raised, for release checks.

use proptest::prelude::*;

use crate::fuzzing::{intake_event, notify_form, query_answer, result_details, sync_answer};

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
        intake_event(&bytes);
    }

    #[test]
    fn the_intake_parser_keeps_its_invariants_on_near_valid_json(text in near(JSON)) {
        intake_event(text.as_bytes());
    }

    #[test]
    fn the_notification_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        notify_form(&bytes);
    }

    #[test]
    fn near_valid_notification_forms_never_panic(text in near(FORM)) {
        notify_form(text.as_bytes());
    }

    #[test]
    fn result_details_parse_to_items_with_a_trade_and_a_code(text in near(DETAILS)) {
        result_details(text.as_bytes());
    }

    #[test]
    fn the_sync_answer_parser_never_panics(text in near(XML)) {
        sync_answer(text.as_bytes());
    }

    #[test]
    fn the_query_answer_parser_never_panics(text in near(QUERY)) {
        query_answer(text.as_bytes());
    }

    #[test]
    fn arbitrary_text_never_panics_the_text_parsers(text in "\\PC{0,300}") {
        sync_answer(text.as_bytes());
        query_answer(text.as_bytes());
        result_details(text.as_bytes());
    }
}
