#![no_main]

#[path = "bms_checks.rs"]
mod checks;
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jbd_frame(data));
