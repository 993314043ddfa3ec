#![no_main]

#[path = "common.rs"]
mod common;
#[path = "csp_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::authenticate_records(data));
