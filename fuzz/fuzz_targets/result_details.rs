//! libFuzzer target: `refund_worker::fuzzing::result_details`, the check the property
//! tests and the corpus test run too (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| refund_worker::fuzzing::result_details(data));
