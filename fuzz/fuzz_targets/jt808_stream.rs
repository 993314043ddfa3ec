#![no_main]

#[path = "common.rs"]
mod common;
#[path = "jt808_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::stream(data));
