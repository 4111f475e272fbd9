//! Any value that parses, pointed at another endpoint: refused, or the
//! result parses with only host and port changed (`check_rewrite`, which
//! checks the endpoint-only rewrite too).
//!
//! Input layout, so that seeds stay readable: two bytes of port (big
//! endian), one byte choosing the new host (`hosts`), then the value.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../core/tests/common/mod.rs"]
mod common;

use common::HostPart;

fn hosts(n: u8) -> HostPart {
    match n % 6 {
        0 => HostPart::Name("new-db.c9.eu-central-1.rds.amazonaws.com".into()),
        1 => HostPart::Name("n".into()),
        2 => HostPart::V4([10, 0, 0, 9]),
        3 => HostPart::V6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
        4 => HostPart::V6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]),
        _ => HostPart::Name("localhost".into()),
    }
}

fuzz_target!(|data: &[u8]| {
    let [p0, p1, h, value @ ..] = data else {
        return;
    };
    if let Ok(value) = std::str::from_utf8(value) {
        common::check_rewrite(value, &hosts(*h), u16::from_be_bytes([*p0, *p1]), false);
    }
});
