//! Arbitrary parts, made valid, rendered as a URL and as JSON: each parses
//! back to exactly those parts (`check_roundtrip`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ssm_db_config_core::Engine;

#[path = "../../core/tests/common/mod.rs"]
mod common;

use common::{HostPart, Parts};

#[derive(Arbitrary, Debug)]
enum Host {
    Name(String),
    V4([u8; 4]),
    V6([u16; 8]),
}

#[derive(Arbitrary, Debug)]
struct Input {
    mysql: bool,
    user: String,
    password: String,
    host: Host,
    port: Option<u16>,
    dbname: String,
    options: Vec<(String, String)>,
    socket: Option<String>,
    style: u32,
}

fuzz_target!(|i: Input| {
    let parts = Parts {
        engine: if i.mysql {
            Engine::Mysql
        } else {
            Engine::Postgresql
        },
        user: i.user,
        password: i.password,
        host: match i.host {
            Host::Name(n) => HostPart::Name(n),
            Host::V4(o) => HostPart::V4(o),
            Host::V6(s) => HostPart::V6(s),
        },
        port: i.port,
        dbname: i.dbname,
        options: i.options,
        socket: i.socket,
        style: i.style,
    }
    .sanitize();
    common::check_roundtrip(&parts);
});
