//! The parser's and the rewriter's properties, shared by `tests/properties.rs`
//! (a seeded generator, run by `cargo test`) and the fuzz targets in
//! `fuzz/fuzz_targets/` (which include this file by path).
//!
//! [`Parts`] are what a value means; [`Parts::url`] and [`Parts::json`]
//! render them the way an operator would write them, and [`check_roundtrip`]
//! asserts that parsing gives exactly those parts back. The rules that make
//! parts valid are restated in [`Parts::sanitize`] independently of the
//! parser, so that the two have to agree.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ssm_db_config_core::{
    apply_credentials, parse_endpoint_value, parse_value, with_endpoint,
    with_endpoint_credentials_optional, Auth, DbConfig, Engine, ExposeSecret, ValueFormat,
    SECRET_OPTION_WORDS, SSLMODES,
};

pub const P: &str = "/prop/db";

/// A host as the generators produce it.
#[derive(Debug, Clone)]
pub enum HostPart {
    Name(String),
    V4([u8; 4]),
    V6([u16; 8]),
}

impl HostPart {
    /// What the parser reports as the host (IPv6 without brackets).
    pub fn text(&self) -> String {
        match self {
            HostPart::Name(n) => n.clone(),
            HostPart::V4(o) => Ipv4Addr::from(*o).to_string(),
            HostPart::V6(s) => Ipv6Addr::from(*s).to_string(),
        }
    }

    /// How a URL writes it.
    pub fn in_url(&self) -> String {
        match self {
            HostPart::V6(_) => format!("[{}]", self.text()),
            _ => self.text(),
        }
    }

    /// A valid host: a name keeps only the characters of DNS names, in
    /// non-empty dot-separated parts that neither start nor end with '-', the
    /// last of which starts with a letter (else it would have to be a dotted quad).
    pub fn sanitize(self) -> HostPart {
        match self {
            HostPart::Name(n) => {
                let n: String = n
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                    .take(60)
                    .collect();
                let mut labels: Vec<String> = n
                    .split('.')
                    .map(|l| l.trim_matches('-').to_owned())
                    .filter(|l| !l.is_empty())
                    .collect();
                match labels.last_mut() {
                    Some(last) if !last.starts_with(|c: char| c.is_ascii_digit()) => {}
                    Some(last) => last.insert(0, 'h'),
                    None => labels.push("h".into()),
                }
                HostPart::Name(labels.join("."))
            }
            other => other,
        }
    }
}

/// What a value means, plus how to write it (the `style` bits).
#[derive(Debug, Clone)]
pub struct Parts {
    pub engine: Engine,
    pub user: String,
    pub password: String,
    pub host: HostPart,
    pub port: Option<u16>,
    pub dbname: String,
    pub options: Vec<(String, String)>,
    pub socket: Option<String>,
    /// Bits choosing among equivalent spellings: scheme alias, raw
    /// non-ASCII, socket form, JSON port as a string, bracketed IPv6 in JSON;
    /// bit 5 makes it an `auth=iam` value (see [`Parts::iam`]).
    pub style: u32,
}

/// Options the grammar reads itself or refuses; generated names avoid them.
const RESERVED_OPTIONS: [&str; 9] = [
    "auth",
    "iam_host",
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "socket",
    "unix_socket",
];

fn no_controls(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn field(s: &str, fallback: &str) -> String {
    let s = no_controls(s).trim().to_owned();
    if s.is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

impl Parts {
    /// Makes generated parts valid by the grammar's rules, restated here:
    /// no control characters anywhere; user, database name, option values and
    /// socket paths without surrounding whitespace; user and database name not
    /// empty; no '/' in a database name; option names of `[A-Za-z0-9_.-]`,
    /// each once, none with a secret's word in its name or overriding the URL's parts, a
    /// PostgreSQL `sslmode` in lower case with one of libpq's values; a port
    /// from 1; a socket absolute (a PostgreSQL one without ',' or ':'), and a MySQL socket
    /// without a port; no MySQL TCP host named localhost.
    pub fn sanitize(mut self) -> Parts {
        self.user = field(&self.user, "u");
        self.password = no_controls(&self.password);
        self.host = self.host.sanitize();
        self.port = self.port.filter(|&p| p != 0);
        self.dbname = field(&self.dbname.replace('/', ""), "d");
        let mut seen = Vec::new();
        self.options = std::mem::take(&mut self.options)
            .into_iter()
            .filter_map(|(k, v)| {
                let mut k: String = k
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                    .take(20)
                    .collect();
                if k.is_empty() || RESERVED_OPTIONS.contains(&k.to_ascii_lowercase().as_str()) {
                    k.insert(0, 'x');
                }
                let lower = k.to_ascii_lowercase();
                if SECRET_OPTION_WORDS.iter().any(|w| lower.contains(w)) || seen.contains(&lower) {
                    return None;
                }
                seen.push(lower);
                if self.engine == Engine::Postgresql && k.eq_ignore_ascii_case("sslmode") {
                    // libpq's spelling and one of its values.
                    return Some((
                        "sslmode".to_owned(),
                        SSLMODES[v.len() % SSLMODES.len()].to_owned(),
                    ));
                }
                Some((k, no_controls(&v).trim().to_owned()))
            })
            .collect();
        let engine = self.engine;
        self.socket = self.socket.map(|s| {
            // libpq reads ',' in a socket directory as a list of hosts, and
            // DB_HOST's readers a ':' as a port separator.
            let s = if engine == Engine::Postgresql {
                s.replace([',', ':'], "")
            } else {
                s
            };
            let s = field(&s, "s");
            if s.starts_with('/') {
                s
            } else {
                format!("/{s}")
            }
        });
        if self.socket.is_some() && self.engine == Engine::Mysql {
            self.port = None;
        }
        // mysqli reaches localhost through its socket: a MySQL TCP host is
        // never named localhost here.
        if let HostPart::Name(n) = &self.host {
            if self.engine == Engine::Mysql && n.eq_ignore_ascii_case("localhost") {
                self.host = HostPart::Name(format!("db.{n}"));
            }
        }
        if self.bit(5) {
            // auth=iam: a TCP host, no password, TLS asked for (PostgreSQL)
            // or at least not turned off (MySQL).
            self.socket = None;
            self.password.clear();
            let tls = ["sslmode", "ssl-mode", "ssl_mode", "ssl"];
            self.options
                .retain(|(k, _)| !tls.contains(&k.to_ascii_lowercase().as_str()));
            if self.engine == Engine::Postgresql {
                let mode = ["require", "verify-ca", "verify-full"][(self.style >> 6) as usize % 3];
                self.options.push(("sslmode".into(), mode.into()));
            }
        }
        self
    }

    /// Whether the value says `auth=iam`.
    pub fn iam(&self) -> bool {
        self.bit(5)
    }

    fn bit(&self, n: u32) -> bool {
        self.style & (1 << n) != 0
    }

    /// The URL an operator would write, percent-encoding what must be.
    pub fn url(&self) -> String {
        let raw = self.bit(1);
        let scheme = match (self.engine, self.bit(0)) {
            (Engine::Mysql, false) => "mysql",
            (Engine::Mysql, true) => "mariadb",
            (Engine::Postgresql, false) => "postgresql",
            (Engine::Postgresql, true) => "postgres",
        };
        let mut query: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v, raw, "")))
            .collect();
        let host = match (&self.socket, self.engine, self.bit(2), self.bit(3)) {
            (None, ..) => self.host.in_url(),
            (Some(path), _, true, _) => encode(path, false, ""),
            (Some(path), Engine::Mysql, false, b) => {
                query.push(format!(
                    "{}={}",
                    if b { "unix_socket" } else { "socket" },
                    encode(path, raw, "/")
                ));
                if b {
                    String::new()
                } else {
                    "localhost".into()
                }
            }
            (Some(path), Engine::Postgresql, false, b) => {
                query.insert(0, format!("host={}", encode(path, raw, "/")));
                if b {
                    "localhost".into()
                } else {
                    String::new()
                }
            }
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let userinfo = if self.iam() {
            query.push(if self.bit(7) { "auth=IAM" } else { "auth=iam" }.into());
            encode(&self.user, raw, "")
        } else {
            format!(
                "{}:{}",
                encode(&self.user, raw, ""),
                encode(&self.password, raw, ":")
            )
        };
        let mut url = format!(
            "{scheme}://{userinfo}@{host}{port}/{}",
            encode(&self.dbname, raw, "")
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// The JSON object an operator (or RDS) would write, with an unknown key.
    pub fn json(&self) -> String {
        let mut o = serde_json::Map::new();
        let engine = match (self.engine, self.bit(0)) {
            (Engine::Mysql, false) => "mysql",
            (Engine::Mysql, true) => "aurora-mysql",
            (Engine::Postgresql, false) => "postgres",
            (Engine::Postgresql, true) => "aurora-postgresql",
        };
        o.insert("engine".into(), engine.into());
        match &self.socket {
            Some(path) => {
                o.insert("socket".into(), path.clone().into());
                if self.bit(2) {
                    o.insert("host".into(), "localhost".into());
                }
            }
            None => {
                let host = match &self.host {
                    HostPart::V6(_) if self.bit(4) => self.host.in_url(),
                    h => h.text(),
                };
                o.insert("host".into(), host.into());
            }
        }
        if let Some(p) = self.port {
            o.insert(
                "port".into(),
                if self.bit(3) {
                    p.to_string().into()
                } else {
                    p.into()
                },
            );
        }
        o.insert("username".into(), self.user.clone().into());
        if self.iam() {
            o.insert("auth".into(), "iam".into());
            if let Some((_, mode)) = self.options.iter().find(|(k, _)| k == "sslmode") {
                o.insert("sslmode".into(), mode.clone().into());
            }
        } else {
            o.insert("password".into(), self.password.clone().into());
        }
        o.insert("dbname".into(), self.dbname.clone().into());
        o.insert("dbInstanceIdentifier".into(), "prop-db".into());
        serde_json::Value::Object(o).to_string()
    }

    /// Asserts that `c` holds exactly these parts.
    pub fn assert_parsed(&self, c: &DbConfig, format: ValueFormat, value: &str) {
        let host = if self.socket.is_some() {
            "localhost".to_owned()
        } else {
            self.host.text()
        };
        assert_eq!(c.engine, self.engine, "engine of {value:?}");
        assert_eq!(c.host, host, "host of {value:?}");
        assert_eq!(
            c.port,
            self.port.unwrap_or(self.engine.default_port()),
            "port of {value:?}"
        );
        assert_eq!(c.socket, self.socket, "socket of {value:?}");
        assert_eq!(c.user, self.user, "user of {value:?}");
        assert!(
            c.password.expose_secret() == self.password,
            "password of {value:?}"
        );
        assert_eq!(c.dbname, self.dbname, "dbname of {value:?}");
        let options = if format == ValueFormat::Url {
            self.options.clone()
        } else {
            self.options
                .iter()
                .filter(|(k, _)| self.iam() && k == "sslmode")
                .cloned()
                .collect()
        };
        assert_eq!(c.options, options, "options of {value:?}");
        let auth = if self.iam() {
            Auth::Iam { sign_host: None }
        } else {
            Auth::Password
        };
        assert_eq!(c.auth, auth, "auth of {value:?}");
        assert_eq!(c.format, format);
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and
/// `keep`; non-ASCII characters other than whitespace are left raw when
/// `raw_non_ascii`.
pub fn encode(s: &str, raw_non_ascii: bool, keep: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric()
            || "-._~".contains(c)
            || keep.contains(c)
            || (raw_non_ascii && !c.is_ascii() && !c.is_whitespace())
        {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Renders `parts` both ways and asserts each parses back to exactly them
/// (and keeps doing so after being pointed at another TCP endpoint).
pub fn check_roundtrip(parts: &Parts) {
    for (value, format) in [
        (parts.url(), ValueFormat::Url),
        (parts.json(), ValueFormat::Json),
    ] {
        let c = parse_value(P, &value).unwrap_or_else(|e| panic!("{value:?} should parse: {e}"));
        parts.assert_parsed(&c, format, &value);
        let e = parse_endpoint_value(P, &value)
            .unwrap_or_else(|e| panic!("{value:?} should parse as an endpoint: {e}"));
        parts.assert_parsed(&e, format, &value);
    }
}

/// Parses any text with every entry point: none may panic, and whatever is
/// accepted obeys the grammar's output rules.
pub fn check_parse(text: &str) {
    for (required, result) in [
        (true, parse_value(P, text)),
        (false, parse_endpoint_value(P, text)),
    ] {
        match result {
            Ok(c) => {
                assert_invariants(&c, required, text);
                if let Ok(with) = apply_credentials(c, "/prop/creds", text) {
                    assert!(!with.user.is_empty());
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), ssm_db_config_core::ErrorKind::InvalidValue);
                assert!(e.to_string().contains(P));
            }
        }
    }
    let _ = with_endpoint(P, text, "n.example", 6543);
}

fn assert_invariants(c: &DbConfig, required: bool, text: &str) {
    let controls = |s: &str| s.chars().any(char::is_control);
    assert!(c.port != 0, "{text:?}");
    assert!(!c.host.is_empty() && !controls(&c.host), "{text:?}");
    assert!(!c.dbname.is_empty() && !controls(&c.dbname), "{text:?}");
    assert!(
        !controls(&c.user) && !controls(c.password.expose_secret()),
        "{text:?}"
    );
    assert!(!required || !c.user.is_empty(), "{text:?}");
    if c.auth != Auth::Password {
        assert!(
            !c.user.is_empty() && c.password.expose_secret().is_empty() && c.socket.is_none(),
            "{text:?}"
        );
        assert!(
            c.options.iter().all(
                |(k, _)| !k.eq_ignore_ascii_case("auth") && !k.eq_ignore_ascii_case("iam_host")
            ),
            "{text:?}"
        );
    }
    if c.format == ValueFormat::Url {
        assert!(!c.dbname.contains('/'), "{text:?}");
    }
    if let Some(s) = &c.socket {
        assert!(
            s.starts_with('/') && !controls(s) && c.host == "localhost",
            "{text:?}"
        );
    }
    for (k, v) in &c.options {
        assert!(
            !k.to_ascii_lowercase().contains("password") && !controls(v),
            "{text:?}"
        );
    }
    assert!(!c.host_with_port().is_empty());
}

/// Points any value that parses at `host`:`port`: either refused, or the
/// result parses to the same settings with only host and port changed.
/// `must_succeed` for values with a TCP endpoint rendered from valid parts.
/// Checked twice: with [`with_endpoint`] over [`parse_value`], and with
/// [`with_endpoint_credentials_optional`] over [`parse_endpoint_value`] (the
/// monitor's endpoint-only values), which must keep the same promise.
pub fn check_rewrite(value: &str, host: &HostPart, port: u16, must_succeed: bool) {
    check_rewrite_with(value, host, port, must_succeed, false);
    check_rewrite_with(value, host, port, must_succeed, true);
}

fn check_rewrite_with(
    value: &str,
    host: &HostPart,
    port: u16,
    must_succeed: bool,
    credentials_optional: bool,
) {
    type Parse = fn(&str, &str) -> Result<DbConfig, ssm_db_config_core::Error>;
    type Rewrite = fn(&str, &str, &str, u16) -> Result<String, ssm_db_config_core::Error>;
    let (parse, rewrite): (Parse, Rewrite) = if credentials_optional {
        (parse_endpoint_value, with_endpoint_credentials_optional)
    } else {
        (parse_value, with_endpoint)
    };
    let Ok(before) = parse(P, value) else {
        return;
    };
    let new_host = host.text();
    let written = match host {
        HostPart::V6(_) if port & 1 == 0 => host.in_url(),
        _ => new_host.clone(),
    };
    let after = match rewrite(P, value, &written, port) {
        Ok(after) => after,
        Err(_) if !must_succeed || port == 0 || before.socket.is_some() => return,
        Err(e) => panic!("{value:?} should be rewritable to {written:?}:{port}: {e}"),
    };
    let c = parse(P, &after).unwrap_or_else(|e| panic!("rewritten {after:?} should parse: {e}"));
    assert_eq!(
        (c.host.as_str(), c.port),
        (new_host.as_str(), port),
        "{value:?} -> {after:?}"
    );
    assert_eq!(
        (c.engine, &c.socket, &c.user, &c.dbname, &c.options, &c.auth, c.format),
        (
            before.engine,
            &before.socket,
            &before.user,
            &before.dbname,
            &before.options,
            &before.auth,
            before.format
        ),
        "{value:?} -> {after:?}"
    );
    assert!(
        c.password.expose_secret() == before.password.expose_secret(),
        "password of {value:?} -> {after:?}"
    );
}
