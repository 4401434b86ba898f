//! libFuzzer target: `refund_worker::fuzzing::intake_event`, the check the property
//! tests and the corpus test run too (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| refund_worker::fuzzing::intake_event(data));
