//! Turning a parameter's value into a [`DbConfig`].
//!
//! Two shapes are accepted (the grammars are in `parse/url.rs` and `parse/json.rs`):
//! - a URL, `postgresql://user:pass@host:5432/dbname?sslmode=require` (also
//!   `postgres://`, `mysql://`, `mariadb://`);
//! - a JSON object in the shape RDS and Secrets Manager use: `engine`, `host`,
//!   `port`, `username`, `password`, `dbname`, and `socket` for a Unix socket.
//!
//! The rule is that a value is read exactly as its owner meant it, or refused:
//! never a silently different host, port, user, password or database name.
//! Where a value could be read two ways (a raw `@` after the host, a `host`
//! field holding a port, a key given twice), it is refused with a reason that
//! names the field and says how to write it instead.
//!
//! Before either grammar, a leading byte-order mark (which Windows editors
//! write) and surrounding whitespace (a stray line break from a copy and
//! paste) are stripped.
//!
//! Error messages never quote the value nor any part of it: `serde_json`'s own
//! messages quote the offending input, so they are replaced by the line and
//! column only, and a URL option's name is not repeated either (in a password
//! with a raw `?`, what looks like an option name is part of the password).
//!
//! The parser also reports where the host and port are in the text, so that
//! the rewriter ([`crate::rewrite`]) edits exactly the span this grammar read.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::{Error, ExposeSecret, SecretString};

mod json;
mod url;

pub use url::SECRET_OPTION_WORDS;

/// The database engine, which decides the default port and how health checks talk to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL (and Aurora PostgreSQL).
    Postgresql,
    /// MySQL and MariaDB (and Aurora MySQL).
    Mysql,
}

impl Engine {
    /// The name exposed to PHP as `DB_ENGINE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgresql => "postgresql",
            Engine::Mysql => "mysql",
        }
    }

    /// The engine's usual port, used when the value names none.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgresql => 5432,
            Engine::Mysql => 3306,
        }
    }

    fn from_scheme(scheme: &str) -> Option<Engine> {
        match scheme.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" => Some(Engine::Postgresql),
            "mysql" | "mariadb" => Some(Engine::Mysql),
            _ => None,
        }
    }

    /// The `engine` field of RDS and Secrets Manager secrets.
    fn from_rds_name(name: &str) -> Option<Engine> {
        match name.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "aurora-postgresql" => Some(Engine::Postgresql),
            "mysql" | "mariadb" | "aurora" | "aurora-mysql" => Some(Engine::Mysql),
            _ => None,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which shape the value had, so that a writer (the monitor) can keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A `scheme://` URL.
    Url,
    /// A JSON object.
    Json,
}

/// Database settings parsed from one parameter value.
///
/// `Debug` is safe to print: the password is a [`SecretString`], and a value with
/// an option whose name mentions a password is refused.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The engine.
    pub engine: Engine,
    /// Host name or address, without brackets for IPv6; `localhost` when the
    /// value names a Unix socket.
    pub host: String,
    /// TCP port; for a socket, the engine's default unless the value names
    /// one (PostgreSQL derives the socket file's name from it).
    pub port: u16,
    /// The Unix socket, an absolute path: MySQL's socket file, or the
    /// directory PostgreSQL keeps its socket in (libpq's `host=/dir`).
    pub socket: Option<String>,
    /// User name.
    pub user: String,
    /// Password.
    pub password: SecretString,
    /// Database name.
    pub dbname: String,
    /// URL query options (e.g. `sslmode`), in order, percent-decoded; never a
    /// password, and without the socket options, which are read into `socket`.
    pub options: Vec<(String, String)>,
    /// The shape the value had.
    pub format: ValueFormat,
}

/// Equal when every setting is, the password included (`SecretString` has
/// no `PartialEq` of its own, so it is compared here, exposed for that only).
impl PartialEq for DbConfig {
    fn eq(&self, other: &Self) -> bool {
        let DbConfig {
            engine,
            host,
            port,
            socket,
            user,
            password,
            dbname,
            options,
            format,
        } = self;
        *engine == other.engine
            && *host == other.host
            && *port == other.port
            && *socket == other.socket
            && *user == other.user
            && password.expose_secret() == other.password.expose_secret()
            && *dbname == other.dbname
            && *options == other.options
            && *format == other.format
    }
}

impl Eq for DbConfig {}

impl DbConfig {
    /// WordPress's `DB_HOST`: `host:port`, IPv6 hosts in brackets; for a
    /// MySQL socket WordPress's own `localhost:/path/to/socket`, and for a
    /// PostgreSQL socket the directory (what libpq takes as a host).
    pub fn host_with_port(&self) -> String {
        match (&self.socket, self.engine) {
            (Some(path), Engine::Mysql) => format!("localhost:{path}"),
            (Some(path), Engine::Postgresql) => path.clone(),
            (None, _) if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            (None, _) => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Parses a parameter value. `parameter` is only used to name the parameter in errors.
pub fn parse_value(parameter: &str, value: &str) -> Result<DbConfig, Error> {
    parse_spanned(parameter, value, true).map(|p| p.config)
}

/// Parses the value of a parameter whose user and password come from a
/// separate credentials parameter: they may be missing here (and are
/// replaced by [`apply_credentials`] anyway).
pub fn parse_endpoint_value(parameter: &str, value: &str) -> Result<DbConfig, Error> {
    parse_spanned(parameter, value, false).map(|p| p.config)
}

/// Overrides user and password with those of a credentials parameter: the
/// JSON that RDS keeps in Secrets Manager for a managed master password
/// (`{"username": "...", "password": "..."}`, other fields ignored). The
/// fields follow the same rules as in a JSON value.
pub fn apply_credentials(
    mut config: DbConfig,
    parameter: &str,
    value: &str,
) -> Result<DbConfig, Error> {
    let (_, text) = strip(value);
    let (user, password) = json::credentials(parameter, text)?;
    config.user = user;
    config.password = password;
    Ok(config)
}

/// A parsed value and where its endpoint is written in the original text.
pub(crate) struct Parsed {
    pub(crate) config: DbConfig,
    pub(crate) endpoint: EndpointSpan,
}

/// Byte ranges in the value exactly as given (leading byte-order mark and
/// whitespace included), so that a rewrite touches nothing else.
pub(crate) enum EndpointSpan {
    /// A URL's authority: the host (IPv6 brackets included), and the port's
    /// digits if the URL names a port.
    Url {
        host: Range<usize>,
        port: Option<Range<usize>>,
    },
    /// A JSON object: the `host` field's value (a string literal, quotes
    /// included), the `port` field's value if present, and the end of the
    /// last field's value, where a missing `port` can be added.
    Json {
        host: Range<usize>,
        port: Option<Range<usize>>,
        last_value_end: usize,
    },
    /// The value names a Unix socket: there is no host and port to replace.
    Socket,
}

const EMPTY_VALUE: &str = "the value is empty";
const NEITHER_URL_NOR_JSON: &str =
    "expected a postgresql://, postgres://, mysql:// or mariadb:// URL or a JSON object";

/// Parses a value and reports where its endpoint is written (for the rewriter).
pub(crate) fn parse_spanned(
    parameter: &str,
    value: &str,
    credentials_required: bool,
) -> Result<Parsed, Error> {
    let (base, text) = strip(value);
    if text.is_empty() {
        return Err(Error::invalid(parameter, EMPTY_VALUE));
    }
    if text.starts_with('{') {
        return json::parse(parameter, text, base, credentials_required);
    }
    if text.contains("://") {
        return url::parse(parameter, text, base, credentials_required);
    }
    Err(Error::invalid(parameter, NEITHER_URL_NOR_JSON))
}

/// The value without a leading byte-order mark and surrounding whitespace,
/// and the offset where it starts in `value`.
fn strip(value: &str) -> (usize, &str) {
    let start = value.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    (value.len() - start.len(), start.trim_end())
}

/// Checks a decoded user name, database name or host field: no control
/// characters (a `%0D` would end a header or a log line wherever it is
/// printed) and no leading or trailing whitespace (almost always a copy and
/// paste accident, and invisible in every place that shows the value).
fn check_text(parameter: &str, what: &str, s: &str) -> Result<(), Error> {
    if has_control(s) {
        return Err(Error::invalid(parameter, format!("{what} contains a control character (a line break, a tab, ...), which is not allowed")));
    }
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(Error::invalid(
            parameter,
            format!("{what} has leading or trailing whitespace, which is not allowed"),
        ));
    }
    Ok(())
}

/// Checks a password: it may hold any character, whitespace included, but no
/// control character.
fn check_password(parameter: &str, what: &str, password: &SecretString) -> Result<(), Error> {
    if has_control(password.expose_secret()) {
        return Err(Error::invalid(parameter, format!("{what} contains a control character (a line break, a tab, ...), which is not allowed")));
    }
    Ok(())
}

fn check_socket(parameter: &str, what: &str, path: &str) -> Result<(), Error> {
    if !path.starts_with('/') {
        return Err(Error::invalid(
            parameter,
            format!("{what} is not an absolute path (a Unix socket is written as /path/to/it)"),
        ));
    }
    check_text(parameter, what, path)
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A port: ASCII digits only, 1 to 65535.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

/// Why a host name or IPv4 address is refused, completing "the host ...".
const HOST_NON_ASCII: &str =
    "contains non-ASCII characters: write an internationalised name in its punycode (xn--) form";
const HOST_BAD_CHARACTER: &str =
    "contains a character that is not allowed in a host name (letters, digits, '-', '.' and '_')";
const HOST_BAD_IPV4: &str =
    "reads as an IPv4 address but is not a dotted quad (write four numbers from 0 to 255 without leading zeros, e.g. 10.0.0.5; a host name's last part starts with a letter)";
const HOST_BAD_LABEL: &str =
    "has an empty part or a part that starts or ends with '-' (a host name is dot-separated parts of letters, digits, '-' and '_')";

/// Checks a host name or IPv4 address (IPv6 is handled by the callers, which
/// differ in where they allow brackets).
///
/// A name uses the characters of DNS names only. A host of digits and dots
/// must be a dotted quad: resolvers read `10.1` or `010.0.0.1` as other
/// addresses than most people would.
pub(crate) fn check_host_name(host: &str) -> Result<(), &'static str> {
    if !host.is_ascii() {
        return Err(HOST_NON_ASCII);
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(HOST_BAD_CHARACTER);
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(HOST_BAD_IPV4);
    }
    // A trailing dot (an absolute name) is fine; an empty part elsewhere is not.
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    if labels
        .iter()
        .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(HOST_BAD_LABEL);
    }
    // A last label that starts with a digit is no top-level domain: the C
    // resolver reads such names as IPv4 in other notations (0x7f.0.0.1,
    // 0177.1 are 127.0.0.1), so only the dotted quad is accepted.
    if labels
        .last()
        .is_some_and(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        && host.parse::<Ipv4Addr>().is_err()
    {
        return Err(HOST_BAD_IPV4);
    }
    Ok(())
}

/// Whether `s` is an IPv6 address std accepts: no zone id (`%eth0`), which
/// a DNS-style host field has no way to carry.
pub(crate) fn is_ipv6(s: &str) -> bool {
    s.parse::<Ipv6Addr>().is_ok()
}

/// What the grammar's tests (here, in `url` and in `json`) share.
#[cfg(test)]
pub(crate) mod testing {
    use super::{parse_value, DbConfig};
    use crate::ErrorKind;

    /// The parameter name the tests use.
    pub const P: &str = "/test/db";

    /// Parses `value`, which must parse.
    pub fn ok(value: &str) -> DbConfig {
        parse_value(P, value).unwrap_or_else(|e| panic!("{value:?} should parse: {e}"))
    }

    /// Parses `value`, which must be refused as INVALID_VALUE naming the
    /// parameter; returns the message.
    pub fn err(value: &str) -> String {
        match parse_value(P, value) {
            Ok(c) => panic!("{value:?} should not parse, got {c:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidValue);
                let msg = e.to_string();
                assert!(msg.contains(P), "message names the parameter: {msg}");
                msg
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{err, ok};

    #[test]
    fn strips_byte_order_mark_and_surrounding_whitespace() {
        let c = ok("\u{feff}postgresql://u:p@h/d\r\n");
        assert_eq!((c.host.as_str(), c.dbname.as_str()), ("h", "d"));
        let c = ok(" \u{feff}{\"engine\":\"mysql\",\"host\":\"h\",\"username\":\"u\",\"password\":\"p\",\"dbname\":\"d\"}\n");
        assert_eq!(c.host_with_port(), "h:3306");
        assert!(err(" \u{feff} \r\n ").contains("empty"));
    }

    #[test]
    fn host_with_port_is_wordpress_db_host_for_every_form() {
        assert_eq!(
            ok("mysql://u:p@db.internal:3307/d").host_with_port(),
            "db.internal:3307"
        );
        assert_eq!(
            ok("mysql://u:p@[2001:db8::1]/d").host_with_port(),
            "[2001:db8::1]:3306"
        );
        assert_eq!(
            ok("mysql://u:p@localhost/d?socket=/run/mysqld/mysqld.sock").host_with_port(),
            "localhost:/run/mysqld/mysqld.sock"
        );
        assert_eq!(
            ok("postgresql://u:p@/d?host=/var/run/postgresql").host_with_port(),
            "/var/run/postgresql"
        );
    }

    #[test]
    fn error_messages_never_quote_the_value() {
        let canary = "Canary-Pa55";
        for v in [
            format!("mysql://u:{canary}@x@h/d"),
            format!("mysql://u:{canary}/x@h/d"),
            format!("mysql://u:{canary}?x@h/d"),
            format!("mysql://u:{canary}#x@h/d"),
            format!("mysql://u:{canary}%0D@h/d"),
            format!("mysql://u:{canary}%zz@h/d"),
            format!("mysql://u:p@h/d?{canary}"),
            format!("mysql://u:p@h/d?{canary}=1&{canary}=2"),
            format!("mysql://u:p@h/d?{canary}password=1"),
            format!("mysql://u:p@h.{canary}ä/d"),
            format!("mysql://u:p@h/{canary}/"),
            format!(
                r#"{{"engine":"mysql","host":"h","username":"u","password":"{canary}","password":"x","dbname":"d"}}"#
            ),
            format!(
                r#"{{"engine":"mysql","host":"h","username":"u","password":"{canary}\r","dbname":"d"}}"#
            ),
            format!(
                r#"{{"engine":"mysql","host":"h:{canary}","username":"u","password":"p","dbname":"d"}}"#
            ),
            format!(
                r#"{{"engine":"mysql","host":"h","username":"u","password":"p","dbname":"d","{canary}":1,"{canary}":2}}"#
            ),
        ] {
            let msg = err(&v);
            assert!(!msg.contains(canary), "{msg}");
        }
    }
}
