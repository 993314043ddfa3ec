#![no_main]

#[path = "vendor_json_checks.rs"]
mod checks;
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::frame(data));
