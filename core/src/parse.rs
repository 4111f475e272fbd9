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
//! A value may say that the client logs in with an IAM database
//! authentication token instead of a password ([`Auth::Iam`]): `?auth=iam`
//! in a URL, `"auth": "iam"` in JSON. It then has a user and no password,
//! names a TCP host, and asks for TLS where the value can (PostgreSQL's
//! `sslmode`; MySQL's TLS flag is set by the extension).
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

    /// The engine RDS names (an instance's or cluster's `Engine`, a secret's
    /// `engine` field: `mysql`, `mariadb`, `aurora-mysql`, `postgres`,
    /// `aurora-postgresql`, ...); `None` for the engines this tool does not
    /// serve (Oracle, SQL Server, ...).
    pub fn from_rds_name(name: &str) -> Option<Engine> {
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

/// How the client logs in to the database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// With the value's password.
    #[default]
    Password,
    /// With an IAM database authentication token as the password, made from
    /// the host's AWS credentials (see `iam`).
    Iam {
        /// The RDS endpoint to sign for when the value's host is another
        /// name for it (a CNAME): RDS checks the token against its own name.
        /// `None`: the value's host.
        sign_host: Option<String>,
    },
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
    /// How the client logs in; with [`Auth::Iam`] the password is empty.
    pub auth: Auth,
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
            auth,
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
            && *auth == other.auth
            && *format == other.format
    }
}

impl Eq for DbConfig {}

impl DbConfig {
    /// The host an IAM token is signed for: `iam_host` if the value names
    /// one, else the host. `None` unless the value says `auth=iam`.
    pub fn iam_sign_host(&self) -> Option<&str> {
        match &self.auth {
            Auth::Password => None,
            Auth::Iam { sign_host } => Some(sign_host.as_deref().unwrap_or(&self.host)),
        }
    }

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
    if config.auth != Auth::Password {
        return Err(Error::invalid(parameter, IAM_WITH_CREDENTIALS));
    }
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
    /// last field's value, where a missing `port` can be added; whether it
    /// names its `engine` (else its port implies it, and a port that does not
    /// needs the engine added).
    Json {
        host: Range<usize>,
        port: Option<Range<usize>>,
        last_value_end: usize,
        engine_named: bool,
    },
    /// The value names a Unix socket: there is no host and port to replace.
    Socket,
}

const IAM_WITH_CREDENTIALS: &str = "the database value says auth=iam (an IAM token is the password), so a credentials parameter's password would not be used: remove ssm_db_config.credentials_parameter and name the user in the value";

/// How a value spells its IAM options, for the messages that say how to write them.
#[derive(Clone, Copy)]
enum Spelling {
    Url,
    Json,
}

/// The PostgreSQL `sslmode`s that make libpq refuse a connection without TLS.
const TLS_SSLMODES: [&str; 3] = ["require", "verify-ca", "verify-full"];

/// libpq's `sslmode` values. libpq refuses any other spelling (they are
/// case-sensitive), so a value that names another is refused here, when it
/// is read, rather than at the first connection after a deploy.
pub const SSLMODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Checks what mysqli would read otherwise than the grammar did: it reaches
/// `localhost` through the default Unix socket whatever the port, so a
/// `localhost` with another port than MySQL's (meant as TCP) and an IAM
/// value on `localhost` (which needs TCP to an RDS endpoint) are refused;
/// `127.0.0.1` is TCP. `localhost` on port 3306 reads as WordPress's usual
/// `localhost`, the local server.
fn check_mysql(parameter: &str, config: &DbConfig, spelling: Spelling) -> Result<(), Error> {
    if config.engine != Engine::Mysql
        || config.socket.is_some()
        || !config.host.eq_ignore_ascii_case("localhost")
    {
        return Ok(());
    }
    let url = matches!(spelling, Spelling::Url);
    if matches!(config.auth, Auth::Iam { .. }) {
        return Err(Error::invalid(
            parameter,
            "the host is localhost, which MySQL clients (mysqli) reach through the Unix socket, and auth=iam needs TCP to the RDS endpoint: write 127.0.0.1 (a local tunnel) or the endpoint's name",
        ));
    }
    if config.port != Engine::Mysql.default_port() {
        let port = config.port;
        return Err(Error::invalid(
            parameter,
            if url {
                format!("the URL names localhost with port {port}, and MySQL clients (mysqli) reach localhost through the default Unix socket, ignoring the port: write 127.0.0.1:{port} for TCP, or ?socket=/path for a socket")
            } else {
                format!("field \"host\" is localhost and field \"port\" {port}, and MySQL clients (mysqli) reach localhost through the default Unix socket, ignoring the port: write \"host\": \"127.0.0.1\" for TCP, or \"socket\" for a socket")
            },
        ));
    }
    Ok(())
}

/// Checks what libpq would read otherwise than the grammar did. `sslmode`:
/// spelled as libpq spells the option (lower case, which is what the health
/// probe and the drop-ins look up) and one of [`SSLMODES`]. A socket
/// directory: no `,`, which libpq reads as a list of hosts (as a URL's
/// `host1,host2`, refused too), and no `:`, which WordPress-side readers of
/// `DB_HOST` (the health probe, drop-ins) take for `host:port`. MySQL values
/// are left alone: their TLS options are not libpq keywords, and a MySQL
/// socket is one path.
fn check_postgresql(parameter: &str, config: &DbConfig, spelling: Spelling) -> Result<(), Error> {
    if config.engine != Engine::Postgresql {
        return Ok(());
    }
    let url = matches!(spelling, Spelling::Url);
    if config.socket.as_deref().is_some_and(|s| s.contains(',')) {
        return Err(Error::invalid(
            parameter,
            "the socket directory contains ',', which libpq reads as a list of hosts: name one directory, without ','",
        ));
    }
    if config.socket.as_deref().is_some_and(|s| s.contains(':')) {
        return Err(Error::invalid(
            parameter,
            "the socket directory contains ':', which DB_HOST readers take for a port separator: name a directory without ':' (a port goes after the host, and names the socket file)",
        ));
    }
    for (name, value) in &config.options {
        if !name.eq_ignore_ascii_case("sslmode") {
            continue;
        }
        if name != "sslmode" {
            return Err(Error::invalid(
                parameter,
                "URL option sslmode is not in lower case, and libpq's option names are case-sensitive: write sslmode",
            ));
        }
        if !SSLMODES.contains(&value.as_str()) {
            return Err(Error::invalid(
                parameter,
                if url {
                    "URL option sslmode is not one of libpq's values: write disable, allow, prefer, require, verify-ca or verify-full (lower case)"
                } else {
                    "field \"sslmode\" is not one of libpq's values: write \"disable\", \"allow\", \"prefer\", \"require\", \"verify-ca\" or \"verify-full\" (lower case)"
                },
            ));
        }
    }
    Ok(())
}

/// Checks what `auth=iam` needs of the rest of the value: a user, no
/// password (the token is the password), a TCP host (RDS over TLS), and for
/// PostgreSQL an `sslmode` that requires TLS (the token travels in clear in
/// the password message otherwise). A MySQL value may not turn TLS off.
fn check_iam(
    parameter: &str,
    config: &DbConfig,
    has_password: bool,
    spelling: Spelling,
) -> Result<(), Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    let url = matches!(spelling, Spelling::Url);
    if has_password {
        return Err(invalid(if url {
            "the URL says auth=iam, so an IAM token is the password, and it also has a password: remove it (write user@host, no ':password')"
        } else {
            "the value says \"auth\": \"iam\", so an IAM token is the password, and it also has field \"password\": remove it"
        }));
    }
    if config.user.is_empty() {
        return Err(invalid(if url {
            "the URL says auth=iam and has no user: name the database user the token logs in as (scheme://user@host/dbname?auth=iam)"
        } else {
            "the value says \"auth\": \"iam\" and field \"username\" is missing or empty: name the database user the token logs in as"
        }));
    }
    if config.socket.is_some() {
        return Err(invalid("IAM database authentication (auth=iam) needs a TCP connection to an RDS endpoint, and the value names a Unix socket"));
    }
    if let Auth::Iam {
        sign_host: Some(sign_host),
    } = &config.auth
    {
        let host = config.host.trim_end_matches('.');
        if region_from_host(host).is_some()
            && !sign_host.trim_end_matches('.').eq_ignore_ascii_case(host)
        {
            return Err(invalid(if url {
                "the URL's host is an RDS endpoint and iam_host names another, and RDS refuses a token signed for another endpoint: remove iam_host (it is for a host that is a CNAME)"
            } else {
                "field \"host\" is an RDS endpoint and field \"iam_host\" names another, and RDS refuses a token signed for another endpoint: remove \"iam_host\" (it is for a host that is a CNAME)"
            }));
        }
    }
    let option = |names: &[&str]| {
        config
            .options
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    match config.engine {
        Engine::Postgresql => {
            let ok = option(&["sslmode"]).is_some_and(|m| TLS_SSLMODES.contains(&m.as_str()));
            if !ok {
                return Err(invalid(if url {
                    "auth=iam sends the token as the password, which needs TLS: add URL option sslmode=require (or verify-ca, verify-full)"
                } else {
                    "\"auth\": \"iam\" sends the token as the password, which needs TLS: add field \"sslmode\": \"require\" (or \"verify-ca\", \"verify-full\")"
                }));
            }
        }
        Engine::Mysql => {
            // The spellings of "TLS off" in MySQL clients' URLs and options
            // (Connector/J's sslMode and useSSL, PyMySQL's ssl, the mysql
            // client's skip-ssl and ssl-mode, ...), and ssl-mode=PREFERRED,
            // which falls back to plain text where mysqlnd cannot.
            const ON_NAMES: [&str; 8] = [
                "sslmode",
                "ssl-mode",
                "ssl_mode",
                "ssl",
                "usessl",
                "use_ssl",
                "tls",
                "requiressl",
            ];
            const OFF_NAMES: [&str; 6] = [
                "skip-ssl",
                "skip_ssl",
                "ssl-disabled",
                "ssl_disabled",
                "disable-ssl",
                "disable_ssl",
            ];
            const FALSE: [&str; 8] = [
                "disabled",
                "disable",
                "false",
                "0",
                "off",
                "no",
                "none",
                "preferred",
            ];
            const TRUE: [&str; 4] = ["true", "1", "on", "yes"];
            let is = |v: &str, set: &[&str]| set.iter().any(|o| v.eq_ignore_ascii_case(o));
            let off = config.options.iter().find(|(k, v)| {
                (is(k, &ON_NAMES) && is(v, &FALSE))
                    || (is(k, &OFF_NAMES) && (v.is_empty() || is(v, &TRUE)))
            });
            if let Some((name, _)) = off {
                return Err(invalid(&format!("auth=iam sends the token as the password, which needs TLS, and option {} turns TLS off or makes it optional: remove it", name.to_ascii_lowercase())));
            }
        }
    }
    Ok(())
}

/// Reads the value of `auth` (`iam` or `password`, any case).
fn parse_auth(parameter: &str, value: &str, what: &str) -> Result<bool, Error> {
    if value.eq_ignore_ascii_case("iam") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("password") {
        Ok(false)
    } else {
        Err(Error::invalid(
            parameter,
            format!("{what} is neither iam nor password"),
        ))
    }
}

/// Checks `iam_host`: a DNS name or an address, as a host is.
fn check_sign_host(parameter: &str, host: &str, what: &str) -> Result<String, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return Err(Error::invalid(
            parameter,
            format!("{what} is empty: name the RDS endpoint to sign for (e.g. shop.cluster-abc.eu-west-1.rds.amazonaws.com) or leave the option out"),
        ));
    }
    if is_ipv6(bare) {
        return Ok(bare.to_owned());
    }
    check_host_name(bare).map_err(|why| Error::invalid(parameter, format!("{what} {why}")))?;
    Ok(bare.to_owned())
}

/// The region an RDS endpoint's name says it is in:
/// `<name>.<cluster-|proxy-|cluster-ro-|><id>.<region>.rds.amazonaws.com`
/// (and `.com.cn`), in lower case whatever the name's case (DNS names are
/// case-insensitive; region names are lower case). `None` for any other name
/// or an address, whose region is then the extension's own.
pub fn region_from_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    let rds = labels.iter().rposition(|l| l.eq_ignore_ascii_case("rds"))?;
    let after: Vec<&str> = labels[rds + 1..].to_vec();
    let amazon = matches!(after.as_slice(), [a, "com"] | [a, "com", "cn"] if a.eq_ignore_ascii_case("amazonaws"));
    // name, id, region before "rds"
    if !amazon || rds < 3 {
        return None;
    }
    let region = labels[rds - 1].to_ascii_lowercase();
    let looks_like_region = region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    looks_like_region.then_some(region)
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
    use super::testing::{err, ok, P};
    use super::{apply_credentials, parse_endpoint_value, Auth};
    use crate::ExposeSecret;

    #[test]
    fn reads_auth_iam_in_both_forms_without_a_password() {
        let url =
            ok("mysql://wp_iam@shop.cluster-abc.eu-west-1.rds.amazonaws.com:3306/shop?auth=iam");
        let json = ok(
            r#"{"engine":"aurora-mysql","host":"shop.cluster-abc.eu-west-1.rds.amazonaws.com","port":3306,"username":"wp_iam","dbname":"shop","auth":"iam"}"#,
        );
        for c in [&url, &json] {
            assert_eq!(c.auth, Auth::Iam { sign_host: None });
            assert_eq!(
                (c.user.as_str(), c.password.expose_secret()),
                ("wp_iam", "")
            );
            assert_eq!(
                c.iam_sign_host(),
                Some("shop.cluster-abc.eu-west-1.rds.amazonaws.com")
            );
            assert!(c.options.is_empty(), "auth is ours, not the driver's");
        }
        assert_eq!(ok("mysql://u:p@h/d").auth, Auth::Password);
        assert_eq!(ok("mysql://u:p@h/d?auth=password").auth, Auth::Password);
        assert_eq!(ok("mysql://u:p@h/d").iam_sign_host(), None);
        assert!(matches!(
            ok("mysql://u@h/d?auth=IAM").auth,
            Auth::Iam { .. }
        ));
    }

    #[test]
    fn iam_host_names_the_endpoint_to_sign_for() {
        let c = ok("mysql://wp@db.shop.example:3306/shop?auth=iam&iam_host=shop.cluster-abc.eu-west-1.rds.amazonaws.com");
        assert_eq!(c.host, "db.shop.example");
        assert_eq!(
            c.iam_sign_host(),
            Some("shop.cluster-abc.eu-west-1.rds.amazonaws.com")
        );
        let j = ok(
            r#"{"engine":"mysql","host":"db.shop.example","username":"wp","dbname":"shop","auth":"iam","iam_host":"shop.cluster-abc.eu-west-1.rds.amazonaws.com"}"#,
        );
        assert_eq!(j.iam_sign_host(), c.iam_sign_host());
        assert!(err("mysql://u:p@h/d?iam_host=x.example").contains("add auth=iam"));
        assert!(err(r#"{"engine":"mysql","host":"h","username":"u","password":"p","dbname":"d","iam_host":"x"}"#).contains("\"auth\": \"iam\""));
        assert!(err("mysql://u@h/d?auth=iam&iam_host=a..b").contains("iam_host"));
        assert!(err("mysql://u@h/d?auth=iam&iam_host=").contains("URL option iam_host is empty"));
        assert!(err("mysql://h:3306/d").contains("credentials_parameter"));
    }

    #[test]
    fn refuses_a_password_with_auth_iam() {
        for v in [
            "mysql://wp:Canary-Pa55@h/d?auth=iam",
            "mysql://wp:@h/d?auth=iam",
            r#"{"engine":"mysql","host":"h","username":"wp","password":"Canary-Pa55","dbname":"d","auth":"iam"}"#,
            r#"{"engine":"mysql","host":"h","username":"wp","password":"","dbname":"d","auth":"iam"}"#,
            r#"{"engine":"mysql","host":"h","username":"wp","password":null,"dbname":"d","auth":"iam"}"#,
        ] {
            let msg = err(v);
            assert!(
                msg.contains("remove") && msg.contains("password"),
                "{v}: {msg}"
            );
            assert!(!msg.contains("Canary"), "{msg}");
        }
    }

    #[test]
    fn auth_iam_needs_a_user_a_tcp_host_and_a_known_value() {
        assert!(err("mysql://h/d?auth=iam").contains("no user"));
        assert!(err("mysql://@h/d?auth=iam").contains("no user"));
        assert!(
            err(r#"{"engine":"mysql","host":"h","dbname":"d","auth":"iam"}"#).contains("username")
        );
        assert!(
            err("mysql://u@localhost/d?auth=iam&socket=/run/mysqld/mysqld.sock")
                .contains("Unix socket")
        );
        assert!(err("mysql://u@h/d?auth=kerberos").contains("neither iam nor password"));
        assert!(
            err(r#"{"engine":"mysql","host":"h","username":"u","dbname":"d","auth":"x"}"#)
                .contains("neither iam nor password")
        );
        assert!(err("mysql://u@h/d?auth=iam&auth=iam").contains("more than once"));
        // Without auth=iam the password is still required.
        assert!(err("mysql://u@h/d").contains("no password"));
    }

    #[test]
    fn mysql_localhost_is_the_local_socket_so_another_port_or_iam_is_refused() {
        for (v, says) in [
            ("mysql://wp:pw@localhost:3307/wp", "write 127.0.0.1:3307"),
            (
                r#"{"engine":"mysql","host":"localhost","port":3307,"username":"wp","password":"pw","dbname":"wp"}"#,
                "\"host\": \"127.0.0.1\"",
            ),
            ("mysql://wp@localhost/wp?auth=iam", "auth=iam needs TCP"),
            (
                "mysql://wp@LocalHost:3306/wp?auth=iam&iam_host=x.cluster-a.us-east-1.rds.amazonaws.com",
                "auth=iam needs TCP",
            ),
        ] {
            let msg = err(v);
            assert!(msg.contains(says), "{v}: {msg}");
        }
        // WordPress's usual localhost, and TCP to 127.0.0.1 or PostgreSQL's localhost.
        for v in [
            "mysql://wp:pw@localhost/wp",
            "mysql://wp:pw@localhost:3306/wp",
            "mysql://wp:pw@127.0.0.1:3307/wp",
            "postgresql://wp:pw@localhost:6432/wp",
            "mysql://wp@127.0.0.1:3307/wp?auth=iam&iam_host=x.cluster-a.us-east-1.rds.amazonaws.com",
        ] {
            ok(v);
        }
    }

    #[test]
    fn a_postgresql_socket_directory_is_one_directory() {
        for v in [
            "postgresql://wp:pw@/shop?host=/a,/b",
            "postgresql://wp:pw@%2Fa%2C%2Fb/shop",
            r#"{"engine":"postgres","socket":"/a,/b","username":"wp","password":"pw","dbname":"shop"}"#,
        ] {
            let msg = err(v);
            assert!(msg.contains("list of hosts"), "{v}: {msg}");
        }
        for v in [
            "postgresql://wp:pw@/shop?host=/run/pg:6432",
            r#"{"engine":"postgres","socket":"/run/pg:6432","username":"wp","password":"pw","dbname":"shop"}"#,
        ] {
            let msg = err(v);
            assert!(msg.contains("port separator"), "{v}: {msg}");
        }
        // A MySQL socket is one path, ',' and all.
        assert_eq!(
            ok("mysql://wp:pw@localhost/shop?socket=/run/a,b.sock")
                .socket
                .as_deref(),
            Some("/run/a,b.sock")
        );
    }

    #[test]
    fn iam_host_may_not_name_another_rds_endpoint_than_an_rds_host() {
        let a = "shop.cluster-abc.eu-west-1.rds.amazonaws.com";
        let b = "shop.cluster-xyz.us-west-2.rds.amazonaws.com";
        let msg = err(&format!("mysql://wp@{a}:3306/shop?auth=iam&iam_host={b}"));
        assert!(msg.contains("remove iam_host"), "{msg}");
        let msg = err(&format!(
            r#"{{"engine":"mysql","host":"{a}","username":"wp","dbname":"shop","auth":"iam","iam_host":"{b}"}}"#
        ));
        assert!(msg.contains("remove \"iam_host\""), "{msg}");
        // The same endpoint, in another case: accepted; a CNAME host: accepted.
        ok(&format!(
            "mysql://wp@{a}:3306/shop?auth=iam&iam_host={}",
            a.to_ascii_uppercase()
        ));
        ok(&format!(
            "mysql://wp@db.shop.example:3306/shop?auth=iam&iam_host={b}"
        ));
    }

    #[test]
    fn a_postgresql_sslmode_is_one_of_libpqs_values_in_lower_case() {
        for mode in super::SSLMODES {
            let c = ok(&format!("postgresql://wp:pw@h/shop?sslmode={mode}"));
            assert_eq!(c.options, vec![("sslmode".into(), mode.into())]);
            let c = ok(&format!(
                r#"{{"engine":"postgres","host":"h","username":"wp","password":"pw","dbname":"shop","sslmode":"{mode}"}}"#
            ));
            assert_eq!(c.options, vec![("sslmode".into(), mode.into())]);
        }
        for (value, says) in [
            (
                "postgresql://wp:pw@h/shop?sslmode=bogus",
                "write disable, allow",
            ),
            (
                "postgresql://wp:pw@h/shop?sslmode=Require",
                "write disable, allow",
            ),
            ("postgresql://wp:pw@h/shop?sslmode=", "write disable, allow"),
            (
                "postgresql://wp:pw@h/shop?SSLMode=require",
                "case-sensitive",
            ),
            (
                r#"{"engine":"postgres","host":"h","username":"wp","password":"pw","dbname":"shop","sslmode":"on"}"#,
                "field \"sslmode\" is not one of libpq's values",
            ),
        ] {
            let msg = err(value);
            assert!(msg.contains(says), "{value}: {msg}");
        }
        // MySQL's TLS options are its own: not checked against libpq's list.
        assert_eq!(
            ok("mysql://wp:pw@h/shop?ssl-mode=REQUIRED").options,
            vec![("ssl-mode".into(), "REQUIRED".into())]
        );
    }

    #[test]
    fn auth_iam_on_postgresql_needs_sslmode_require_or_stricter() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let c = ok(&format!("postgresql://wp@h/shop?sslmode={mode}&auth=iam"));
            assert_eq!(c.options, vec![("sslmode".into(), mode.into())]);
        }
        let c = ok(
            r#"{"engine":"postgres","host":"h","username":"wp","dbname":"shop","auth":"iam","sslmode":"verify-full"}"#,
        );
        assert_eq!(c.options, vec![("sslmode".into(), "verify-full".into())]);
        for q in ["", "&sslmode=prefer", "&sslmode=disable", "&sslmode=allow"] {
            let msg = err(&format!("postgresql://wp@h/shop?auth=iam{q}"));
            assert!(msg.contains("sslmode=require"), "{q}: {msg}");
        }
        let msg =
            err(r#"{"engine":"postgres","host":"h","username":"wp","dbname":"shop","auth":"iam"}"#);
        assert!(msg.contains("\"sslmode\": \"require\""), "{msg}");
    }

    #[test]
    fn auth_iam_on_mysql_refuses_an_option_turning_tls_off() {
        for (q, name) in [
            ("ssl-mode=DISABLED", "ssl-mode"),
            ("sslmode=disable", "sslmode"),
            ("ssl=false", "ssl"),
            ("ssl=0", "ssl"),
            ("ssl=off", "ssl"),
            ("SSL_MODE=No", "ssl_mode"),
            ("useSSL=false", "usessl"),
            ("tls=false", "tls"),
            ("skip-ssl=1", "skip-ssl"),
            ("skip_ssl=true", "skip_ssl"),
            ("ssl_disabled=TRUE", "ssl_disabled"),
            ("sslmode=none", "sslmode"),
            ("ssl-mode=PREFERRED", "ssl-mode"),
        ] {
            let msg = err(&format!("mysql://wp@h/d?auth=iam&{q}"));
            assert!(
                msg.contains(&format!("option {name} turns TLS off")),
                "{q}: {msg}"
            );
        }
        assert!(
            ok("mysql://wp@h/d?auth=iam&ssl-mode=VERIFY_IDENTITY")
                .options
                .len()
                == 1
        );
    }

    #[test]
    fn auth_iam_takes_no_credentials_parameter() {
        let c = parse_endpoint_value(P, "mysql://wp@h/d?auth=iam").unwrap();
        let e = apply_credentials(c, "/creds", r#"{"username":"u","password":"p"}"#).unwrap_err();
        assert!(e.to_string().contains("credentials_parameter"), "{e}");
    }

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
