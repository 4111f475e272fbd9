//! Any bytes: no parser entry point panics, and what is accepted obeys the
//! grammar's output rules (`check_parse`). Seeds are plain values.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../core/tests/common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::check_parse(text);
    }
});
