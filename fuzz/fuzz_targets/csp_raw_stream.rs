#![no_main]

#[path = "csp_checks.rs"]
mod checks;
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::raw_stream(data));
