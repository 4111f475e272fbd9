//! The URL grammar: RFC 3986's, narrowed to what a connection string needs,
//! and refusing what could be read two ways.
//!
//! ```text
//! scheme://[user[:password]@]host[:port]/dbname[?name=value[&name=value]...]
//! ```
//!
//! - The authority ends at the first `/` or `?` after `scheme://`, and the
//!   user info at the one `@` in it; the user ends at the first `:`, so a
//!   password may hold a raw `:`. A second `@` in the authority, any `@` in
//!   the path, and an option value with an `@` followed by a `/` are what a
//!   password with a raw `@`, `/` or `?` looks like, and are refused; `#`
//!   would start a fragment, so it is refused anywhere.
//! - User, password, database name and option values are percent-decoded
//!   (`+` stays `+`, it is not a space); a `%` must start a valid escape, the
//!   result must be UTF-8 and may hold no control character. Raw non-ASCII
//!   characters are read as written.
//! - The host is a DNS name (letters, digits, `-`, `.`, `_`), an IPv4
//!   address, an IPv6 address in brackets without a zone id, or a Unix
//!   socket path percent-encoded (`%2Frun%2Fmysqld%2Fmysqld.sock`). The port,
//!   if the `:` is there, is 1 to 65535 in digits.
//! - The path is exactly one segment, the database name.
//! - Each option is `name=value`, names of `[A-Za-z0-9_.-]`, each name once.
//!   A Unix socket is also written as an option: `socket=` or `unix_socket=`
//!   for MySQL (the names MySQL's connectors and SQLAlchemy use), `host=` for
//!   PostgreSQL (libpq's). Options that would override the URL's own
//!   host, port, user or database, and any option about a password, are
//!   refused.
//!
//! - `auth=iam` (or `auth=password`, the default) says how the client logs
//!   in; with `iam` the user info is `user@` without a password, and
//!   `iam_host=` may name the RDS endpoint to sign the token for when the
//!   host is a CNAME. Both are read here and not passed on as options.
//!
//! No whitespace and no control character may appear anywhere.

use std::collections::HashSet;

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

use super::{
    check_host_name, check_iam, check_mysql, check_password, check_postgresql, check_sign_host,
    check_socket, check_text, is_ipv6, parse_auth, parse_port, Auth, DbConfig, EndpointSpan,
    Engine, Parsed, Spelling, ValueFormat,
};
use crate::{Error, SecretString};

const UNKNOWN_SCHEME: &str =
    "the URL scheme is not postgresql://, postgres://, mysql:// or mariadb://";
const SPACE_OR_CONTROL: &str =
    "the URL contains whitespace or a control character: percent-encode a space as %20 (line breaks and tabs are not allowed)";
const RAW_HASH: &str = "the URL contains a raw '#', which would start a fragment: percent-encode '#' in the password as %23";
const TWO_ATS: &str = "the URL has more than one '@' before the host: percent-encode '@' in the user or password as %40";
const AT_AFTER_HOST: &str = "the URL has a raw '@' after the host, as when a password contains '/' or '?': percent-encode them in the user and password ('/' as %2F, '?' as %3F, '@' as %40)";
const NO_USER: &str = "the URL has no user (expected scheme://user:password@host/dbname; for a value that holds only the endpoint, set ssm_db_config.credentials_parameter to the parameter with the user and password)";
const NO_USER_AT_LATER: &str = "the URL has no user before the host but an '@' after it, as when a password contains '/' or '?': percent-encode them in the password ('/' as %2F, '?' as %3F)";
const NO_PASSWORD: &str = "the URL has no password (expected user:password@ before the host)";
const USER_EMPTY: &str = "the URL's user is empty";
const NO_HOST: &str = "the URL has no host (for a Unix socket write ?socket=/path for MySQL or ?host=/directory for PostgreSQL)";
const NO_CLOSING_BRACKET: &str = "the URL's IPv6 host has no closing ']'";
const BAD_IPV6: &str =
    "the URL's host in brackets is not an IPv6 address (zone ids such as %eth0 are not supported)";
const AFTER_IPV6: &str =
    "unexpected characters after the URL's IPv6 host (expected ':port', '/' or '?')";
const IPV6_NEEDS_BRACKETS: &str = "an IPv6 host must be in brackets, e.g. [2001:db8::1]:5432";
const SEVERAL_COLONS: &str = "the URL has more than one ':' after the host, and host:port takes one: write the port as digits after a single ':' (an IPv6 host goes in brackets, e.g. [2001:db8::1]:5432)";
const SEVERAL_HOSTS: &str =
    "the URL names several hosts (host1,host2): name one, the writer's endpoint (ssm-db-monitor keeps it current after a failover)";
const EMPTY_PORT: &str = "the URL's port is empty (a ':' after the host with no digits): write host:port or leave out the ':'; for a Unix socket write ?socket=/path for MySQL or ?host=/directory for PostgreSQL";
const BAD_PORT: &str = "the URL's port is not a number from 1 to 65535";
const NO_DBNAME: &str = "the URL has no database name (expected /dbname after the host)";
const TRAILING_SLASH: &str =
    "the URL's database name is followed by '/': write /dbname with no trailing '/'";
const PATH_SEGMENTS: &str = "the URL's path has more than one segment: the database name is the one segment after the host (/dbname) and cannot contain '/'; for a Unix socket write ?socket=/path for MySQL or ?host=/directory for PostgreSQL";
const DBNAME_SLASH: &str = "the URL's database name contains a percent-encoded '/' (%2F), and a database name cannot contain '/'";
const EMPTY_OPTION: &str =
    "the URL has an empty option (a stray '&'): write name=value pairs joined by '&'";
const OPTION_WITHOUT_EQUALS: &str = "a URL option has no '=' (write name=value; a '?' in the password must be percent-encoded as %3F)";
const OPTION_NAME: &str =
    "a URL option's name is empty or has a character other than letters, digits, '_', '.' and '-'";
const OPTION_VALUE_AT_SLASH: &str = "a URL option's value has a raw '@' followed by '/', as when a password contains '@', '/' and '?': percent-encode them in the password ('@' as %40, '/' as %2F, '?' as %3F), or '@' in the option as %40";
const OPTION_VALUE_EQUALS: &str =
    "a URL option's value contains a raw '=': percent-encode it as %3D";
const DUPLICATE_OPTION: &str = "a URL option appears more than once (names are compared ignoring case): write each option once";
const PASSWORD_OPTION: &str = "a URL option's name looks like a password or other secret (pass, pwd, secret, token): put the password in the URL as user:password@ before the host";
const HOST_AND_SOCKET: &str = "the URL names both a TCP host and a Unix socket: for a socket write localhost or nothing as the host";
const TWO_SOCKETS: &str = "the URL names a Unix socket more than once: keep one";
const MYSQL_SOCKET_PORT: &str =
    "the URL names a MySQL Unix socket and a port, and a socket has no port: remove the port";
const MYSQL_HOST_OPTION: &str = "URL option \"host\" is not how a MySQL URL names a host: write the host before the path, or a Unix socket as ?socket=/path";
const POSTGRES_HOST_OPTION: &str = "URL option \"host\" of a PostgreSQL URL must be a Unix socket directory (an absolute path): write a TCP host before the path";
const IAM_HOST_WITHOUT_IAM: &str =
    "URL option iam_host names the endpoint an IAM token is signed for, and the URL does not say auth=iam: add auth=iam or remove iam_host";
const POSTGRES_SOCKET_OPTION: &str =
    "a PostgreSQL URL names its Unix socket directory as ?host=/directory, not with \"socket\" or \"unix_socket\"";

/// Words that make a URL option's name refused, compared ignoring case.
/// Options are shown in the status array: none may carry a secret, whatever
/// a driver calls it (password, passwd, sslpassword, pwd, PGPASSWORD,
/// passphrase, secret, token).
pub const SECRET_OPTION_WORDS: [&str; 4] = ["pass", "pwd", "secret", "token"];

/// The options that would override a part of the URL; refused rather than
/// left for a driver to apply behind the parsed value's back.
const OVERRIDING_OPTIONS: [(&str, &str); 4] = [
    ("hostaddr", "URL option \"hostaddr\" would override the URL's host: write the host (or address) before the path"),
    ("port", "URL option \"port\" would override the URL's port: write it as host:port"),
    ("user", "URL option \"user\" would override the URL's user: write it as user:password@ before the host"),
    ("dbname", "URL option \"dbname\" would override the URL's database name: write it as /dbname after the host"),
];

/// What the authority names as a host.
enum Host {
    Tcp(String),
    Socket(String),
    Empty,
}

/// Parses `text`, which starts at byte `base` of the value as given.
pub(super) fn parse(
    parameter: &str,
    text: &str,
    base: usize,
    credentials_required: bool,
) -> Result<Parsed, Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| invalid(UNKNOWN_SCHEME))?;
    let engine = Engine::from_scheme(scheme).ok_or_else(|| invalid(UNKNOWN_SCHEME))?;
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(SPACE_OR_CONTROL));
    }
    if text.contains('#') {
        return Err(invalid(RAW_HASH));
    }
    let authority_start = scheme.len() + 3;
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_len);
    let (path, query) = match after.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (after, None),
    };
    if path.contains('@') {
        return Err(invalid(AT_AFTER_HOST));
    }

    let (userinfo, hostport) = match authority.split_once('@') {
        Some(_) if authority.matches('@').count() > 1 => return Err(invalid(TWO_ATS)),
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None if !credentials_required => (None, authority),
        None if query.is_some_and(|q| q.contains('@')) => return Err(invalid(NO_USER_AT_LATER)),
        None => return Err(invalid(NO_USER)),
    };
    // Whether a password is written is judged once the options are read:
    // with auth=iam there must be none.
    let (user, password, has_password) = match userinfo {
        None => (String::new(), SecretString::default(), false),
        Some(userinfo) => {
            let (raw_user, raw_password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            let user = decode(parameter, "the URL's user", raw_user)?;
            check_text(parameter, "the URL's user", &user)?;
            let password = SecretString::from(decode(
                parameter,
                "the URL's password",
                raw_password.unwrap_or(""),
            )?);
            check_password(parameter, "the URL's password", &password)?;
            (user, password, raw_password.is_some())
        }
    };

    // The host and port, and their spans within `hostport`.
    let host_start = authority_start + (authority.len() - hostport.len());
    let (host, host_len, raw_port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let close = bracketed
            .find(']')
            .ok_or_else(|| invalid(NO_CLOSING_BRACKET))?;
        let address = &bracketed[..close];
        if !is_ipv6(address) {
            return Err(invalid(BAD_IPV6));
        }
        let raw_port = match &bracketed[close + 1..] {
            "" => None,
            tail => Some(tail.strip_prefix(':').ok_or_else(|| invalid(AFTER_IPV6))?),
        };
        (Host::Tcp(address.to_owned()), close + 2, raw_port)
    } else {
        if hostport.contains(',') {
            return Err(invalid(SEVERAL_HOSTS));
        }
        let (raw_host, raw_port) = match hostport.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid(if is_ipv6(hostport) {
                    IPV6_NEEDS_BRACKETS
                } else {
                    SEVERAL_COLONS
                }))
            }
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        let host = if raw_host.is_empty() {
            Host::Empty
        } else if raw_host.starts_with("%2F") || raw_host.starts_with("%2f") {
            let path = decode(parameter, "the URL's socket path", raw_host)?;
            check_socket(parameter, "the URL's socket path", &path)?;
            Host::Socket(path)
        } else {
            check_host_name(raw_host).map_err(|why| invalid(&format!("the URL's host {why}")))?;
            Host::Tcp(raw_host.to_owned())
        };
        (host, raw_host.len(), raw_port)
    };
    let port = match raw_port {
        None => None,
        Some("") => return Err(invalid(EMPTY_PORT)),
        Some(p) => Some(parse_port(p).ok_or_else(|| invalid(BAD_PORT))?),
    };

    let dbname = match path.strip_prefix('/') {
        None | Some("") => return Err(invalid(NO_DBNAME)),
        Some(segment)
            if segment
                .strip_suffix('/')
                .is_some_and(|s| !s.is_empty() && !s.contains('/')) =>
        {
            return Err(invalid(TRAILING_SLASH))
        }
        Some(segment) if segment.contains('/') => return Err(invalid(PATH_SEGMENTS)),
        Some(segment) => decode(parameter, "the URL's database name", segment)?,
    };
    if dbname.contains('/') {
        return Err(invalid(DBNAME_SLASH));
    }
    check_text(parameter, "the URL's database name", &dbname)?;

    let mut options = Vec::new();
    let mut iam = false;
    let mut sign_host = None;
    let mut option_socket = None;
    let mut seen = HashSet::new();
    for pair in query
        .filter(|q| !q.is_empty())
        .into_iter()
        .flat_map(|q| q.split('&'))
    {
        if pair.is_empty() {
            return Err(invalid(EMPTY_OPTION));
        }
        let (name, raw_value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(OPTION_WITHOUT_EQUALS))?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(invalid(OPTION_NAME));
        }
        // "u:p@ss/w?r=d@db/wordpress" reads as host "ss", database "w" and an
        // option ending in "@db/wordpress"; what follows the '@' is the real
        // host and path. Only this shape is refused, so that
        // application_name=wp@web-1 still reads as written.
        if raw_value
            .find('@')
            .is_some_and(|at| raw_value[at..].contains('/'))
        {
            return Err(invalid(OPTION_VALUE_AT_SLASH));
        }
        if raw_value.contains('=') {
            return Err(invalid(OPTION_VALUE_EQUALS));
        }
        let lower = name.to_ascii_lowercase();
        if SECRET_OPTION_WORDS.iter().any(|word| lower.contains(word)) {
            return Err(invalid(PASSWORD_OPTION));
        }
        if !seen.insert(lower.clone()) {
            return Err(invalid(DUPLICATE_OPTION));
        }
        if let Some((_, why)) = OVERRIDING_OPTIONS.iter().find(|(n, _)| *n == lower) {
            return Err(invalid(why));
        }
        let value = decode(parameter, "a URL option's value", raw_value)?;
        check_text(parameter, "a URL option's value", &value)?;
        match lower.as_str() {
            "auth" => {
                iam = parse_auth(parameter, &value, "URL option auth")?;
                continue;
            }
            "iam_host" => {
                sign_host = Some(check_sign_host(parameter, &value, "URL option iam_host")?);
                continue;
            }
            _ => {}
        }
        let is_socket = match (engine, lower.as_str()) {
            (Engine::Mysql, "socket" | "unix_socket") => true,
            (Engine::Mysql, "host") => return Err(invalid(MYSQL_HOST_OPTION)),
            (Engine::Postgresql, "host") if value.starts_with('/') => true,
            (Engine::Postgresql, "host") => return Err(invalid(POSTGRES_HOST_OPTION)),
            (Engine::Postgresql, "socket" | "unix_socket") => {
                return Err(invalid(POSTGRES_SOCKET_OPTION))
            }
            _ => false,
        };
        if !is_socket {
            options.push((name.to_owned(), value));
        } else if option_socket.is_some() {
            return Err(invalid(TWO_SOCKETS));
        } else {
            check_socket(parameter, "the URL's socket option", &value)?;
            option_socket = Some(value);
        }
    }

    let (host, socket) = match (host, option_socket) {
        (Host::Socket(_), Some(_)) => return Err(invalid(TWO_SOCKETS)),
        (Host::Socket(path), None) | (Host::Empty, Some(path)) => {
            ("localhost".to_owned(), Some(path))
        }
        (Host::Tcp(host), Some(path)) if host.eq_ignore_ascii_case("localhost") => {
            ("localhost".to_owned(), Some(path))
        }
        (Host::Tcp(_), Some(_)) => return Err(invalid(HOST_AND_SOCKET)),
        (Host::Tcp(host), None) => (host, None),
        (Host::Empty, None) => return Err(invalid(NO_HOST)),
    };
    if socket.is_some() && engine == Engine::Mysql && port.is_some() {
        return Err(invalid(MYSQL_SOCKET_PORT));
    }

    if sign_host.is_some() && !iam {
        return Err(invalid(IAM_HOST_WITHOUT_IAM));
    }
    if !iam && credentials_required {
        if !has_password {
            return Err(invalid(NO_PASSWORD));
        }
        if user.is_empty() {
            return Err(invalid(USER_EMPTY));
        }
    }

    let endpoint = if socket.is_some() {
        EndpointSpan::Socket
    } else {
        let host_span = base + host_start..base + host_start + host_len;
        let port_span = raw_port.map(|p| host_span.end + 1..host_span.end + 1 + p.len());
        EndpointSpan::Url {
            host: host_span,
            port: port_span,
        }
    };
    let config = DbConfig {
        engine,
        host,
        port: port.unwrap_or(engine.default_port()),
        socket,
        user,
        password,
        dbname,
        options,
        auth: if iam {
            Auth::Iam { sign_host }
        } else {
            Auth::Password
        },
        format: ValueFormat::Url,
    };
    check_postgresql(parameter, &config, Spelling::Url)?;
    check_mysql(parameter, &config, Spelling::Url)?;
    if iam {
        check_iam(parameter, &config, has_password, Spelling::Url)?;
    }
    Ok(Parsed { config, endpoint })
}

/// Percent-decodes one part of the URL. A `%` that does not start an escape
/// is refused: read as itself it would make `%41` in an unencoded password
/// mean `A`, silently.
fn decode(parameter: &str, what: &str, raw: &str) -> Result<String, Error> {
    let b = raw.as_bytes();
    let bad_escape = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Err(Error::invalid(
            parameter,
            format!(
                "{what} has a '%' that does not start a percent-encoded byte: write '%' as %25"
            ),
        ));
    }
    // The decoded bytes may be a password: wiped even when they are refused.
    let bytes = Zeroizing::new(percent_decode_str(raw).collect::<Vec<u8>>());
    std::str::from_utf8(&bytes).map(str::to_owned).map_err(|_| {
        Error::invalid(
            parameter,
            format!("{what} is not valid UTF-8 once percent-decoded"),
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::parse::testing::{err, ok, P};
    use crate::parse::{
        parse_endpoint_value, parse_spanned, parse_value, EndpointSpan, Engine, ValueFormat,
    };
    use crate::ExposeSecret;

    #[test]
    fn parses_postgresql_url_with_every_piece() {
        let c = ok(
            "postgresql://wp:secret@db.example.com:6432/shop?sslmode=require&application_name=wp",
        );
        assert_eq!(c.engine, Engine::Postgresql);
        assert_eq!((c.host.as_str(), c.port), ("db.example.com", 6432));
        assert_eq!(
            (
                c.user.as_str(),
                c.password.expose_secret(),
                c.dbname.as_str()
            ),
            ("wp", "secret", "shop")
        );
        assert_eq!(
            c.options,
            vec![
                ("sslmode".into(), "require".into()),
                ("application_name".into(), "wp".into())
            ]
        );
        assert_eq!(c.host_with_port(), "db.example.com:6432");
        assert_eq!(c.socket, None);
        assert_eq!(c.format, ValueFormat::Url);
    }

    #[test]
    fn applies_default_ports_per_engine() {
        assert_eq!(ok("postgres://u:p@h/d").port, 5432);
        assert_eq!(ok("mysql://u:p@h/d").port, 3306);
        assert_eq!(ok("mariadb://u:p@h/d").engine, Engine::Mysql);
        assert_eq!(ok("MySQL://u:p@h/d").port, 3306);
    }

    #[test]
    fn parses_ipv6_host_with_port() {
        let c = ok("postgresql://u:p@[2001:db8::1]:5433/d");
        assert_eq!(c.host, "2001:db8::1");
        assert_eq!(c.port, 5433);
        assert_eq!(c.host_with_port(), "[2001:db8::1]:5433");
        assert_eq!(ok("mysql://u:p@[::1]/d").host_with_port(), "[::1]:3306");
        assert_eq!(
            ok("mysql://u:p@[::ffff:10.0.0.1]/d").host,
            "::ffff:10.0.0.1"
        );
    }

    #[test]
    fn parses_ipv4_and_name_hosts() {
        assert_eq!(ok("mysql://u:p@10.0.0.5:3307/d").host, "10.0.0.5");
        assert_eq!(
            ok("mysql://u:p@db_1.internal-zone.example./d").host,
            "db_1.internal-zone.example."
        );
        assert_eq!(
            ok("mysql://u:p@xn--bcher-kva.example/d").host,
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn refuses_hosts_the_resolver_would_read_otherwise() {
        for host in [
            "0x7f.0.0.1",
            "0177.1",
            "db.1",
            ".db",
            "db..example",
            "-db",
            "db-.example",
        ] {
            let e = parse_value(P, &format!("mysql://u:p@{host}/d"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("host"), "{host}: {e}");
        }
    }

    #[test]
    fn refuses_options_that_carry_a_secret_under_any_name() {
        for name in [
            "password",
            "passwd",
            "PGPASSWORD",
            "sslpassword",
            "pwd",
            "passphrase",
            "secret",
            "client_secret",
            "token",
            "auth_token",
        ] {
            let e = parse_value(P, &format!("mysql://u:p@h/d?{name}=Canary-Pa55-o"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("secret") && !e.contains("Canary"), "{name}: {e}");
        }
        assert!(
            parse_value(P, "mysql://u@h/d?sslkey=/etc/key.pem&auth=iam").is_ok(),
            "a key file's path and ?auth= are not secrets"
        );
    }

    #[test]
    fn percent_decodes_passwords_with_special_characters() {
        let table = [
            ("p%40ss", "p@ss"),
            ("p%3Ass", "p:ss"),
            ("p:ss", "p:ss"),
            ("p%2Fss", "p/ss"),
            ("p%3Fss", "p?ss"),
            ("p%23ss", "p#ss"),
            ("p%25ss", "p%ss"),
            ("p%20ss", "p ss"),
            ("p+ss", "p+ss"),
            ("p%27s%22s", "p's\"s"),
            ("p[s]s!$&'()*,;=", "p[s]s!$&'()*,;="),
            ("p%C3%A4%E2%82%AC%F0%9F%94%91", "pä€🔑"),
            ("pä€", "pä€"),
            ("", ""),
        ];
        for (encoded, plain) in table {
            let c = ok(&format!("postgresql://user%40corp:{encoded}@h/d"));
            assert_eq!(c.password.expose_secret(), plain, "{encoded}");
            assert_eq!(c.user, "user@corp");
        }
        assert_eq!(ok("mysql://jürgen:p@h/d").user, "jürgen");
    }

    #[test]
    fn refuses_raw_at_slash_question_mark_and_hash_in_password_naming_the_encoding() {
        assert!(err("mysql://u:p@ss/w?rd#x@h:3307/d").contains("%23"));
        assert!(err("mysql://u:p@ss@h:3307/d").contains("%40"));
        assert!(err("mysql://u:pa/ss@h/d").contains("%2F"));
        assert!(err("mysql://u:pa?ss@h/d").contains("%3F"));
        assert!(err("mysql://u:p@h/d?x=1#frag").contains("%23"));
        assert!(err("mysql://u:pa?ss=x@h/d").contains("%3F"));
        assert!(err("mysql://wp:p@ss/w?r=d@db.internal/wordpress").contains("%40"));
        assert!(err("mysql://wp:p@ss/w?r=d@db.internal:3306/wordpress?x=1").contains("%40"));
    }

    #[test]
    fn reads_at_signs_in_option_values() {
        let c = ok(
            "postgresql://wp:pw@db.internal:5432/shop?application_name=wp@web-1&sslmode=require",
        );
        assert_eq!((c.user.as_str(), c.password.expose_secret()), ("wp", "pw"));
        assert_eq!(
            (c.host.as_str(), c.port, c.dbname.as_str()),
            ("db.internal", 5432, "shop")
        );
        assert_eq!(
            c.options,
            vec![
                ("application_name".into(), "wp@web-1".into()),
                ("sslmode".into(), "require".into())
            ]
        );
    }

    #[test]
    fn decodes_option_values_keeping_plus() {
        let c = ok("postgresql://u:p@h/d?options=-c%20search_path%3Dx&tag=a+b&path=/x?y&ssl.ca=%2Fetc%2Fca.pem");
        assert_eq!(
            c.options,
            vec![
                ("options".into(), "-c search_path=x".into()),
                ("tag".into(), "a+b".into()),
                ("path".into(), "/x?y".into()),
                ("ssl.ca".into(), "/etc/ca.pem".into()),
            ]
        );
        assert!(ok("postgresql://u:p@h/d?").options.is_empty());
    }

    #[test]
    fn refuses_password_options_instead_of_dropping_them() {
        for q in [
            "password=leak",
            "sslpassword=x",
            "PassWord=x",
            "db.password=x",
        ] {
            assert!(
                err(&format!("postgresql://u:p@h/d?sslmode=verify-full&{q}"))
                    .contains("user:password@"),
                "{q}"
            );
        }
    }

    #[test]
    fn refuses_ambiguous_options() {
        assert!(err("postgresql://u:p@h/d?sslmode=require&&x=1").contains("stray '&'"));
        assert!(err("postgresql://u:p@h/d?sslmode").contains("no '='"));
        assert!(err("postgresql://u:p@h/d?a=b=c").contains("%3D"));
        assert!(err("postgresql://u:p@h/d?=x").contains("name"));
        assert!(err("postgresql://u:p@h/d?a%20b=x").contains("name"));
        assert!(
            err("postgresql://u:p@h/d?sslmode=require&sslmode=disable").contains("more than once")
        );
        assert!(
            err("postgresql://u:p@h/d?sslmode=require&SSLMODE=disable").contains("more than once")
        );
        assert!(err("postgresql://u:p@h/d?port=6543").contains("host:port"));
        assert!(err("postgresql://u:p@h/d?hostaddr=10.0.0.9").contains("host"));
        assert!(err("postgresql://u:p@h/d?user=admin").contains("user:password@"));
        assert!(err("postgresql://u:p@h/d?dbname=other").contains("/dbname"));
        assert!(err("postgresql://u:p@h/d?host=other.internal").contains("Unix socket directory"));
        assert!(err("mysql://u:p@h/d?host=other.internal").contains("?socket=/path"));
        assert!(err("postgresql://u:p@h/d?x=%0A").contains("control character"));
        assert!(err("postgresql://u:p@h/d?x=%20a").contains("whitespace"));
    }

    #[test]
    fn a_second_colon_is_a_bad_port_unless_the_host_is_ipv6() {
        for v in [
            "mysql://u:p@h:33:06/d",
            "mysql://u:p@db.internal:3306:/d",
            "postgresql://u:p@10.0.0.5::5432/d",
        ] {
            let msg = err(v);
            assert!(msg.contains("more than one ':'"), "{v}: {msg}");
        }
        for v in ["mysql://u:p@2001:db8::1/d", "mysql://u:p@::1:3306/d"] {
            assert!(err(v).contains("IPv6 host must be in brackets"), "{v}");
        }
    }

    #[test]
    fn refuses_an_empty_port() {
        assert!(err("MySQL://u:p@h:/d").contains("port is empty"));
        assert!(err("mysql://u:p@[::1]:/d").contains("port is empty"));
        let msg = err("mysql://wp:pw@localhost:/run/mysqld/mysqld.sock/wordpress");
        assert!(
            msg.contains("port is empty") && msg.contains("?socket="),
            "{msg}"
        );
    }

    #[test]
    fn refuses_a_database_name_with_a_slash_saying_how_to_write_it() {
        assert!(err("mysql://wp:pw@db.internal:3306/wordpress/").contains("no trailing '/'"));
        assert!(err("mysql://wp:pw@db.internal:3306/a/b").contains("one segment"));
        assert!(err("mysql://wp:pw@db.internal:3306//d").contains("one segment"));
        assert!(err("mysql://wp:pw@db.internal:3306/a%2Fb").contains("cannot contain '/'"));
        assert!(err("mysql://wp:pw@db.internal:3306/").contains("no database name"));
        assert!(err("mysql://wp:pw@db.internal:3306?x=1").contains("no database name"));
        assert!(err("mysql://wp:pw@db.internal/%20d").contains("whitespace"));
        assert_eq!(
            ok("mysql://wp:pw@db.internal/word%20press").dbname,
            "word press"
        );
        assert_eq!(
            ok("mysql://wp:pw@db.internal/wördpress").dbname,
            "wördpress"
        );
    }

    #[test]
    fn reads_mysql_sockets_in_both_documented_forms() {
        for v in [
            "mysql://wp:pw@localhost/wordpress?socket=/run/mysqld/mysqld.sock",
            "mysql://wp:pw@localhost/wordpress?unix_socket=/run/mysqld/mysqld.sock",
            "mysql://wp:pw@/wordpress?socket=%2Frun%2Fmysqld%2Fmysqld.sock",
            "mysql://wp:pw@%2Frun%2Fmysqld%2Fmysqld.sock/wordpress",
            "mysql://wp:pw@%2frun%2fmysqld%2fmysqld.sock/wordpress",
        ] {
            let c = ok(v);
            assert_eq!(c.socket.as_deref(), Some("/run/mysqld/mysqld.sock"), "{v}");
            assert_eq!(
                (c.host.as_str(), c.port, c.dbname.as_str()),
                ("localhost", 3306, "wordpress"),
                "{v}"
            );
            assert_eq!(c.host_with_port(), "localhost:/run/mysqld/mysqld.sock");
            assert!(c.options.is_empty(), "the socket option is consumed: {v}");
        }
        let c =
            ok("mysql://wp:pw@localhost/wordpress?charset=utf8mb4&socket=/run/mysqld/mysqld.sock");
        assert_eq!(c.options, vec![("charset".into(), "utf8mb4".into())]);
    }

    #[test]
    fn reads_postgresql_sockets_in_libpq_forms() {
        for v in [
            "postgresql://wp:pw@/shop?host=/var/run/postgresql",
            "postgresql://wp:pw@%2Fvar%2Frun%2Fpostgresql/shop",
        ] {
            let c = ok(v);
            assert_eq!(c.socket.as_deref(), Some("/var/run/postgresql"), "{v}");
            assert_eq!(
                (c.host.as_str(), c.port, c.dbname.as_str()),
                ("localhost", 5432, "shop")
            );
            assert_eq!(c.host_with_port(), "/var/run/postgresql");
        }
        assert_eq!(
            ok("postgresql://wp:pw@%2Fvar%2Frun%2Fpostgresql:5433/shop").port,
            5433
        );
        assert_eq!(ok("postgresql://wp:pw@:5433/shop?host=/tmp").port, 5433);
        assert_eq!(
            ok("postgresql://wp:pw@localhost/shop?host=/tmp")
                .socket
                .as_deref(),
            Some("/tmp")
        );
    }

    #[test]
    fn refuses_ambiguous_sockets() {
        assert!(
            err("mysql://wp:pw@db.internal/wordpress?socket=/run/mysqld/mysqld.sock")
                .contains("both a TCP host and a Unix socket")
        );
        assert!(err("postgresql://wp:pw@10.0.0.1/shop?host=/tmp")
            .contains("both a TCP host and a Unix socket"));
        assert!(err("mysql://wp:pw@localhost:3306/wordpress?socket=/s").contains("remove the port"));
        assert!(err("mysql://wp:pw@%2Fs:3306/wordpress").contains("remove the port"));
        assert!(
            err("mysql://wp:pw@localhost/d?socket=/a&unix_socket=/b").contains("more than once")
        );
        assert!(err("mysql://wp:pw@%2Fa/d?socket=/b").contains("more than once"));
        assert!(err("mysql://wp:pw@localhost/d?socket=run/mysqld.sock").contains("absolute path"));
        assert!(err("mysql://wp:pw@%2Fa%0A/d").contains("control character"));
        assert!(err("postgresql://wp:pw@/shop?socket=/tmp").contains("?host=/directory"));
        assert!(err("postgresql://wp:pw@/shop").contains("no host"));
        assert!(err("postgresql://wp:pw@:5433/shop").contains("no host"));
    }

    #[test]
    fn refuses_hosts_outside_the_grammar() {
        assert!(err("postgresql://u:p@bücher.example/d").contains("punycode"));
        assert!(err("postgresql://u:p@h!x/d").contains("not allowed in a host name"));
        assert!(err("postgresql://u:p@h%2Ex/d").contains("not allowed in a host name"));
        assert!(err("postgresql://u:p@10.1/d").contains("IPv4"));
        assert!(err("postgresql://u:p@010.0.0.1/d").contains("IPv4"));
        assert!(err("postgresql://u:p@256.0.0.1/d").contains("IPv4"));
        assert!(err("postgresql://u:p@3306/d").contains("IPv4"));
        assert!(err("postgresql://u:p@[fe80::1%25eth0]/d").contains("zone ids"));
        assert!(err("postgresql://u:p@[v1.x]/d").contains("not an IPv6 address"));
        assert!(err("postgresql://u:p@[::1]x/d").contains("after the URL's IPv6 host"));
    }

    #[test]
    fn refuses_whitespace_and_control_characters_inside() {
        for v in [
            "postgresql://u:p w@h/d",
            "postgresql://u:p\tw@h/d",
            "postgresql://u:p@h/d\r\n?x=1",
            "postgresql://u:p\u{85}@h/d",
        ] {
            assert!(err(v).contains("%20"), "{v:?}");
        }
        assert!(err("postgresql://u:p%0D@h/d").contains("password contains a control character"));
        assert!(err("postgresql://u%00:p@h/d").contains("user contains a control character"));
        assert!(err("postgresql://u%20:p@h/d").contains("user has leading or trailing whitespace"));
        assert!(
            err("postgresql://u:p@h/d%0A").contains("database name contains a control character")
        );
    }

    #[test]
    fn refuses_malformed_percent_escapes() {
        assert!(err("postgresql://u:p%zz@h/d").contains("%25"));
        assert!(err("postgresql://u:p%4@h/d").contains("%25"));
        assert!(err("postgresql://u:p%@h/d").contains("%25"));
        assert!(err("postgresql://u:p@h/d%?x=1").contains("%25"));
        assert!(err("postgresql://u:p@h/d?x=100%").contains("%25"));
    }

    #[test]
    fn rejects_malformed_urls_naming_the_problem() {
        assert!(err("http://u:p@h/d").contains("scheme"));
        assert!(err("postgresql://h/d").contains("no user"));
        assert!(err("postgresql://u@h/d").contains("no password"));
        assert!(err("postgresql://:p@h/d").contains("user is empty"));
        assert!(err("postgresql://u:p@/d").contains("no host"));
        assert!(err("postgresql://u:p@h").contains("no database name"));
        assert!(err("postgresql://u:p@h:99999/d").contains("port"));
        assert!(err("postgresql://u:p@h:abc/d").contains("port"));
        assert!(err("postgresql://u:p@h:0/d").contains("port"));
        assert!(err("postgresql://u:p@h:+5432/d").contains("port"));
        assert!(err("postgresql://u:p@2001:db8::1/d").contains("brackets"));
        assert!(err("postgresql://u:p@h1:5432,h2:5432/d").contains("several hosts"));
        assert!(err("postgresql://u:p@[::1/d").contains("']'"));
        assert!(err("postgresql://u:%FF@h/d").contains("UTF-8"));
        assert!(err("").contains("empty"));
        assert!(err("just some text").contains("expected"));
        assert!(err("postgresql:/u:p@h/d").contains("expected"));
    }

    #[test]
    fn endpoint_urls_may_omit_the_user_info() {
        let c = parse_endpoint_value(P, "postgresql://db.internal:5432/shop?application_name=a@b")
            .unwrap();
        assert_eq!(
            (c.host.as_str(), c.user.as_str(), c.password.expose_secret()),
            ("db.internal", "", "")
        );
        let c = parse_endpoint_value(P, "postgresql://only-user@db.internal/shop").unwrap();
        assert_eq!(
            (c.user.as_str(), c.host.as_str()),
            ("only-user", "db.internal")
        );
        assert!(parse_endpoint_value(P, "postgresql://u:pa?ss@h/d").is_err());
    }

    #[test]
    fn reports_host_and_port_spans_in_the_original_text() {
        let span = |v: &str| match parse_spanned(P, v, true).unwrap().endpoint {
            EndpointSpan::Url { host, port } => (v[host].to_owned(), port.map(|p| v[p].to_owned())),
            _ => panic!("not a URL span"),
        };
        assert_eq!(
            span("\u{feff} mysql://u:p%40:x@db.internal:3307/d?h=x@y:1\n"),
            ("db.internal".into(), Some("3307".into()))
        );
        assert_eq!(span("mysql://u:p@[::1]/d"), ("[::1]".into(), None));
        assert_eq!(
            span("mysql://u:p@[::1]:1/d"),
            ("[::1]".into(), Some("1".into()))
        );
        assert_eq!(span("mysql://u:p@h/d?x=1").0, "h");
        assert!(matches!(
            parse_spanned(P, "mysql://u:p@%2Fs/d", true)
                .unwrap()
                .endpoint,
            EndpointSpan::Socket
        ));
    }
}
