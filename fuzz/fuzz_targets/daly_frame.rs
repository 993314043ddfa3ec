#![no_main]

#[path = "common.rs"]
mod common;
#[path = "bms_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::daly_frame(data));
