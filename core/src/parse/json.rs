//! The JSON grammar: one object in the shape RDS and Secrets Manager use.
//!
//! - Top-level keys appear once: `serde_json` silently keeps the last of two,
//!   so a duplicate is found by scanning the object's fields ([`fields`],
//!   which also gives the rewriter the spans of `host` and `port`).
//!   A key that differs from one of ours only in case (`Host`) is refused
//!   too: it would be ignored, silently.
//! - `host`, `username`, `dbname`: strings without control characters or
//!   leading or trailing whitespace. `host` is a DNS name, an IPv4 address,
//!   or an IPv6 address with or without brackets, never `host:port`.
//! - `port`: a JSON integer or a string of digits, 1 to 65535 (`3306.0` is
//!   refused rather than rounded).
//! - `password`: a string, possibly empty, without control characters.
//! - `socket`: a Unix socket, an absolute path; `host` is then absent,
//!   empty or `localhost`.
//! - `auth`: `"iam"` or `"password"` (the default), as a URL's `?auth=`;
//!   with `"iam"`, `iam_host` may name the RDS endpoint to sign for, and
//!   `password` must be absent.
//! - `sslmode`: PostgreSQL's (or MySQL's) TLS mode, passed on as the URL
//!   form's option of that name is; `"auth": "iam"` on PostgreSQL needs it.
//! - Other keys are ignored: RDS secrets carry `dbInstanceIdentifier` and
//!   the like.
//!
//! `null` counts as absent, as it did before duplicates were refused.

use serde_json::{Map, Value};

use super::{
    check_host_name, check_iam, check_mysql, check_password, check_postgresql, check_sign_host,
    check_socket, check_text, is_ipv6, parse_auth, parse_port, Auth, DbConfig, EndpointSpan,
    Engine, Parsed, Spelling, ValueFormat,
};
use crate::{Error, SecretString};

/// The keys this module reads (a duplicate of another key is reported without its name).
const KNOWN_FIELDS: [&str; 10] = [
    "engine", "host", "port", "username", "password", "dbname", "socket", "auth", "iam_host",
    "sslmode",
];

const NOT_AN_OBJECT: &str = "the JSON value is not an object";
const SCANNER_DISAGREES: &str = "the JSON object could not be split into its fields";
const DUPLICATE_KEY: &str =
    "a top-level key appears more than once (only one of them would be read): write each key once";
const UNKNOWN_ENGINE: &str =
    "field \"engine\" is not a supported engine (postgres, postgresql, aurora-postgresql, mysql, mariadb, aurora, aurora-mysql)";
const CREDENTIALS_ONLY: &str = "the value holds a user and a password and no endpoint, as the secret RDS manages does: name it in ssm_db_config.credentials_parameter, and keep the endpoint (e.g. mysql://db.internal:3306/wordpress) in ssm_db_config.parameter";
const NO_ENGINE: &str = "field \"engine\" is missing (and the port does not imply one)";
const PORT_RANGE: &str = "field \"port\" is not a number from 1 to 65535";
const PORT_NOT_INTEGER: &str =
    "field \"port\" must be a whole number written without a fraction or exponent, e.g. 3306";
const PORT_STRING: &str = "field \"port\" is a string but not a number from 1 to 65535 in digits";
const PORT_TYPE: &str = "field \"port\" must be a number or a numeric string";
const HOST_MISSING: &str = "field \"host\" is missing or empty";
const HOST_PORT: &str = "field \"host\" holds a port: put the port in \"port\" and only the host name or address in \"host\"";
const HOST_SOCKET: &str = "field \"host\" holds a path: put a Unix socket's path in \"socket\"";
const HOST_BAD_IPV6: &str =
    "field \"host\" contains ':' or '[' but is not an IPv6 address (zone ids such as %eth0 are not supported)";
const HOST_AND_SOCKET: &str = "fields \"host\" and \"socket\" name both a TCP host and a Unix socket: for a socket leave out \"host\" or write localhost";
const MYSQL_SOCKET_PORT: &str = "fields \"socket\" and \"port\" name a MySQL Unix socket and a port, and a socket has no port: remove \"port\"";
const USERNAME_MISSING: &str = "field \"username\" is missing or empty";
const PASSWORD_MISSING: &str = "field \"password\" is missing";
const IAM_HOST_WITHOUT_IAM: &str = "field \"iam_host\" names the endpoint an IAM token is signed for, and the value does not say \"auth\": \"iam\": add it or remove \"iam_host\"";
const DBNAME_MISSING: &str = "field \"dbname\" is missing or empty";

/// Parses `text` (starting with `{`), which starts at byte `base` of the value as given.
pub(super) fn parse(
    parameter: &str,
    text: &str,
    base: usize,
    credentials_required: bool,
) -> Result<Parsed, Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    let (map, fields) = object(parameter, text, "the value")?;
    let string = |name: &str| string_field(parameter, &map, name);
    let iam = match string("auth")? {
        Some(auth) => parse_auth(parameter, auth, "field \"auth\"")?,
        None => false,
    };

    let port = match map.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => Some(
                u16::try_from(n)
                    .ok()
                    .filter(|&n| n != 0)
                    .ok_or_else(|| invalid(PORT_RANGE))?,
            ),
            None if n.is_f64() => return Err(invalid(PORT_NOT_INTEGER)),
            None => return Err(invalid(PORT_RANGE)),
        },
        Some(Value::String(s)) => Some(parse_port(s).ok_or_else(|| invalid(PORT_STRING))?),
        Some(_) => return Err(invalid(PORT_TYPE)),
    };
    let credentials_only = ["engine", "host", "socket", "port", "dbname"]
        .iter()
        .all(|k| !map.contains_key(*k))
        && map.contains_key("username");
    if credentials_only {
        return Err(invalid(CREDENTIALS_ONLY));
    }
    let engine = match string("engine")? {
        Some(name) => Engine::from_rds_name(name).ok_or_else(|| invalid(UNKNOWN_ENGINE))?,
        // RDS secrets always carry "engine"; hand-written ones may not, and the
        // port then tells, or nothing does.
        None => match port {
            Some(5432) => Engine::Postgresql,
            Some(3306) => Engine::Mysql,
            _ => return Err(invalid(NO_ENGINE)),
        },
    };

    let socket = match string("socket")? {
        Some(path) => {
            check_socket(parameter, "field \"socket\"", path)?;
            Some(path.to_owned())
        }
        None => None,
    };
    let host = match (string("host")?, &socket) {
        (None | Some(""), Some(_)) => "localhost".to_owned(),
        (Some(host), Some(_)) if host.eq_ignore_ascii_case("localhost") => "localhost".to_owned(),
        (Some(_), Some(_)) => return Err(invalid(HOST_AND_SOCKET)),
        (None | Some(""), None) => return Err(invalid(HOST_MISSING)),
        (Some(host), None) => check_host(parameter, host)?,
    };
    if socket.is_some() && engine == Engine::Mysql && port.is_some() {
        return Err(invalid(MYSQL_SOCKET_PORT));
    }

    let user = match string("username")? {
        Some(user) => {
            check_text(parameter, "field \"username\"", user)?;
            user.to_owned()
        }
        None => String::new(),
    };
    if user.is_empty() && credentials_required && !iam {
        return Err(invalid(USERNAME_MISSING));
    }
    let sign_host = match string("iam_host")? {
        Some(host) if iam => Some(check_sign_host(parameter, host, "field \"iam_host\"")?),
        Some(_) => return Err(invalid(IAM_HOST_WITHOUT_IAM)),
        None => None,
    };
    // A "password" key, even null, says the owner meant a password: with
    // auth=iam that is refused rather than dropped.
    let has_password = map.contains_key("password");
    let password = match string("password")? {
        Some(password) => SecretString::from(password.to_owned()),
        None if !credentials_required || iam => SecretString::default(),
        None => return Err(invalid(PASSWORD_MISSING)),
    };
    check_password(parameter, "field \"password\"", &password)?;
    let dbname = match string("dbname")? {
        Some(dbname) if !dbname.is_empty() => dbname.to_owned(),
        _ => return Err(invalid(DBNAME_MISSING)),
    };
    check_text(parameter, "field \"dbname\"", &dbname)?;

    let endpoint = if socket.is_some() {
        EndpointSpan::Socket
    } else {
        let span = |name: &str| {
            fields
                .iter()
                .find(|f| f.key == name)
                .map(|f| base + f.start..base + f.end)
        };
        EndpointSpan::Json {
            host: span("host").ok_or_else(|| invalid(SCANNER_DISAGREES))?,
            port: span("port"),
            last_value_end: base + fields.last().map_or(0, |f| f.end),
            engine_named: map.contains_key("engine"),
        }
    };
    let mut options = Vec::new();
    if let Some(mode) = string("sslmode")? {
        check_text(parameter, "field \"sslmode\"", mode)?;
        options.push(("sslmode".to_owned(), mode.to_owned()));
    }
    let config = DbConfig {
        engine,
        port: port.unwrap_or(engine.default_port()),
        host,
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
        format: ValueFormat::Json,
    };
    check_postgresql(parameter, &config, Spelling::Json)?;
    check_mysql(parameter, &config, Spelling::Json)?;
    if iam {
        check_iam(parameter, &config, has_password, Spelling::Json)?;
    }
    Ok(Parsed { config, endpoint })
}

/// User and password from a credentials parameter's JSON, under the same
/// rules as in a value (both required).
pub(super) fn credentials(parameter: &str, text: &str) -> Result<(String, SecretString), Error> {
    let (map, _) = object(parameter, text, "the credentials value")?;
    let user = string_field(parameter, &map, "username")?.unwrap_or_default();
    if user.is_empty() {
        return Err(Error::invalid(parameter, USERNAME_MISSING));
    }
    check_text(parameter, "field \"username\"", user)?;
    let password = SecretString::from(
        string_field(parameter, &map, "password")?
            .ok_or_else(|| Error::invalid(parameter, PASSWORD_MISSING))?
            .to_owned(),
    );
    check_password(parameter, "field \"password\"", &password)?;
    Ok((user.to_owned(), password))
}

/// Parses one JSON object whose top-level keys are all distinct.
fn object(
    parameter: &str,
    text: &str,
    what: &str,
) -> Result<(Map<String, Value>, Vec<Field>), Error> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        Error::invalid(
            parameter,
            format!(
                "{what} is not valid JSON (error at line {} column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(map) = doc else {
        return Err(Error::invalid(parameter, NOT_AN_OBJECT));
    };
    // serde_json has accepted the text, so the scanner only has valid JSON to split.
    let fields = fields(text).ok_or_else(|| Error::invalid(parameter, SCANNER_DISAGREES))?;
    for (i, field) in fields.iter().enumerate() {
        if fields[..i].iter().any(|f| f.key == field.key) {
            return Err(Error::invalid(
                parameter,
                match KNOWN_FIELDS.iter().find(|k| **k == field.key) {
                    Some(known) => format!("field \"{known}\" appears more than once (only one of them would be read): write it once"),
                    None => DUPLICATE_KEY.to_owned(),
                },
            ));
        }
        // {"Host": ...} is read by nothing, and next to "host" it is a
        // second, different answer.
        if let Some(known) = KNOWN_FIELDS
            .iter()
            .find(|k| **k != field.key && k.eq_ignore_ascii_case(&field.key))
        {
            return Err(Error::invalid(
                parameter,
                format!("a key differs from \"{known}\" only in case: write it as \"{known}\""),
            ));
        }
    }
    Ok((map, fields))
}

fn string_field<'a>(
    parameter: &str,
    map: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(
            parameter,
            format!("field \"{name}\" must be a string"),
        )),
    }
}

/// A host field: a name, an IPv4 address, or an IPv6 address with or
/// without brackets (returned without).
fn check_host(parameter: &str, host: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    check_text(parameter, "field \"host\"", host)?;
    if host.starts_with('/') || host.contains(":/") {
        return Err(invalid(HOST_SOCKET));
    }
    if let Some(bracketed) = host.strip_prefix('[') {
        return match bracketed.split_once(']') {
            Some((address, "")) if is_ipv6(address) => Ok(address.to_owned()),
            Some((address, tail)) if is_ipv6(address) && tail.starts_with(':') => {
                Err(invalid(HOST_PORT))
            }
            _ => Err(invalid(HOST_BAD_IPV6)),
        };
    }
    if host.contains(':') {
        return match host.matches(':').count() {
            _ if is_ipv6(host) => Ok(host.to_owned()),
            1 => Err(invalid(HOST_PORT)),
            _ => Err(invalid(HOST_BAD_IPV6)),
        };
    }
    check_host_name(host).map_err(|why| invalid(&format!("field \"host\" {why}")))?;
    Ok(host.to_owned())
}

/// One `"key": value` pair of the top-level object: the decoded key and the
/// byte span of the value's text.
pub(super) struct Field {
    key: String,
    start: usize,
    end: usize,
}

/// Splits a JSON object into its top-level fields, with the spans of their
/// values. `None` if the text is not one object.
fn fields(text: &str) -> Option<Vec<Field>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::new();
    if b.get(i) == Some(&b'}') {
        return Some(fields);
    }
    loop {
        let key_end = scan_string(b, i)?;
        let key: String = serde_json::from_str(text.get(i..key_end)?).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = scan_value(b, start)?;
        fields.push(Field { key, start, end });
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(fields),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string literal starting at `i`.
fn scan_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The end (exclusive) of the JSON value starting at `i`.
fn scan_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => scan_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = scan_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::testing::{err, ok, P};
    use crate::parse::{
        apply_credentials, parse_endpoint_value, parse_spanned, parse_value, EndpointSpan, Engine,
        ValueFormat,
    };
    use crate::ExposeSecret;

    const BASE: &str =
        r#""engine":"postgres","host":"h","port":5432,"username":"u","password":"p","dbname":"d""#;

    /// The base object with `from` replaced by `to`.
    fn with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        format!("{{{}}}", BASE.replace(from, to))
    }

    #[test]
    fn parses_rds_style_json() {
        let c = ok(
            r#"{"engine":"postgres","host":"db.internal","port":5432,"username":"wp","password":"p@ss:/?#% '\"ä","dbname":"shop","dbInstanceIdentifier":"x"}"#,
        );
        assert_eq!(c.engine, Engine::Postgresql);
        assert_eq!(c.password.expose_secret(), "p@ss:/?#% '\"ä");
        assert_eq!(c.host_with_port(), "db.internal:5432");
        assert_eq!(c.format, ValueFormat::Json);
        let c = ok(
            r#"{"engine":"mariadb","host":"m","port":"3307","username":"u","password":"","dbname":"d"}"#,
        );
        assert_eq!((c.engine, c.port), (Engine::Mysql, 3307));
        assert_eq!(
            ok(
                r#"{"engine":"aurora-mysql","host":"m","username":"u","password":"p","dbname":"d"}"#
            )
            .port,
            3306
        );
        assert_eq!(
            ok(r#"{"host":"m","port":5432,"username":"u","password":"p","dbname":"d"}"#).engine,
            Engine::Postgresql
        );
        assert_eq!(
            ok(r#"{"engine":"postgres","host":"::1","username":"u","password":"p","dbname":"d"}"#)
                .host_with_port(),
            "[::1]:5432"
        );
        assert_eq!(
            ok(&with(r#""h""#, r#""[2001:db8::1]""#)).host,
            "2001:db8::1"
        );
        assert_eq!(ok(&with("5432", "null")).port, 5432);
        assert_eq!(ok(&with(r#""d""#, r#""a/b c""#)).dbname, "a/b c");
        assert_eq!(
            ok(&with(r#""p""#, r#""  spaced  ""#))
                .password
                .expose_secret(),
            "  spaced  "
        );
    }

    #[test]
    fn rejects_json_with_missing_or_mistyped_fields() {
        assert!(err(&with(r#""host":"h","#, "")).contains("\"host\""));
        assert!(err(&with(r#","password":"p""#, "")).contains("\"password\" is missing"));
        assert!(err(&with(r#""password":"p""#, r#""password":5"#))
            .contains("\"password\" must be a string"));
        assert!(err(&with("5432", "true")).contains("\"port\""));
        assert!(err(&with("5432", "\"70000\"")).contains("\"port\""));
        assert!(err(&with("5432", "0")).contains("\"port\""));
        assert!(err(&with("5432", "-5432")).contains("\"port\""));
        assert!(err(&with("postgres", "oracle")).contains("\"engine\""));
        assert!(err(&with(r#""username":"u""#, r#""username":["u"]"#)).contains("\"username\""));
        assert!(err(&with(r#""username":"u""#, r#""username":"""#))
            .contains("\"username\" is missing or empty"));
        assert!(err(&with(r#""d""#, r#""""#)).contains("\"dbname\" is missing or empty"));
        assert!(
            err(r#"{"host":"h","username":"u","password":"p","dbname":"d"}"#)
                .contains("\"engine\" is missing")
        );
        assert!(err("{} x").contains("not valid JSON"));
        assert!(err("[1,2]").contains("expected"));
    }

    #[test]
    fn refuses_a_host_field_holding_a_port() {
        let v = r#"{"engine":"mysql","host":"blog-db.c9.eu-central-1.rds.amazonaws.com:3306","port":3306,"username":"wp","password":"pw","dbname":"wordpress"}"#;
        let msg = err(v);
        assert!(
            msg.contains("field \"host\" holds a port") && msg.contains("put the port in \"port\""),
            "{msg}"
        );
        assert!(err(&with(r#""h""#, r#""h:""#)).contains("holds a port"));
        assert!(err(&with(r#""h""#, r#""[::1]:5432""#)).contains("holds a port"));
        assert!(
            err(&with(r#""h""#, r#""localhost:/run/mysqld/mysqld.sock""#)).contains("\"socket\"")
        );
        assert!(err(&with(r#""h""#, r#""/var/run/postgresql""#)).contains("\"socket\""));
        assert!(err(&with(r#""h""#, r#""1:2:zz""#)).contains("not an IPv6 address"));
        assert!(err(&with(r#""h""#, r#""[::1""#)).contains("not an IPv6 address"));
        assert!(err(&with(r#""h""#, r#""fe80::1%eth0""#)).contains("zone ids"));
        assert!(err(&with(r#""h""#, r#""bücher.example""#)).contains("punycode"));
        assert!(err(&with(r#""h""#, r#""h x""#)).contains("not allowed in a host name"));
        assert!(err(&with(r#""h""#, r#""10.1""#)).contains("IPv4"));
    }

    #[test]
    fn refuses_fractional_ports() {
        for port in [
            "3306.0",
            "3306.5",
            "3.306e3",
            "5432e0",
            "\"5432 \"",
            "\" 5432\"",
            "\"5432.0\"",
            "\"\"",
            "99999999999999999999",
        ] {
            assert!(err(&with("5432", port)).contains("\"port\""), "{port}");
        }
        assert!(err(&with("5432", "3306.0")).contains("whole number"));
    }

    #[test]
    fn refuses_duplicate_top_level_keys() {
        assert!(err(&with(r#""host":"h""#, r#""host":"h","host":"i""#))
            .contains("field \"host\" appears more than once"));
        assert!(err(&with(r#""port":5432"#, r#""port":5432,"port":5433"#))
            .contains("field \"port\" appears more than once"));
        assert!(err(&with(
            r#""password":"p""#,
            r#""password":"p","pass\u0077ord":"q""#
        ))
        .contains("\"password\" appears more than once"));
        assert!(err(&with(
            r#""dbname":"d""#,
            r#""dbname":"d","x":1,"x":{"y":2}"#
        ))
        .contains("a top-level key appears more than once"));
        assert_eq!(
            ok(&with(
                r#""dbname":"d""#,
                r#""dbname":"d","x":{"host":1,"nested":{"host":2}}"#
            ))
            .host,
            "h"
        );
        assert!(err(&with(r#""host":"h""#, r#""host":"h","Host":"i""#))
            .contains("only in case: write it as \"host\""));
        assert!(err(&with(r#""dbname":"d""#, r#""DBName":"d""#)).contains("\"dbname\""));
    }

    #[test]
    fn refuses_control_characters_and_outer_whitespace_in_fields() {
        assert!(err(&with(r#""p""#, r#""p\r\n""#))
            .contains("\"password\" contains a control character"));
        assert!(err(&with(r#""u""#, r#""u\u0000""#))
            .contains("\"username\" contains a control character"));
        assert!(err(&with(r#""u""#, r#"" u""#))
            .contains("\"username\" has leading or trailing whitespace"));
        assert!(err(&with(r#""d""#, r#""d ""#))
            .contains("\"dbname\" has leading or trailing whitespace"));
        assert!(err(&with(r#""h""#, r#""h\t""#)).contains("\"host\" contains a control character"));
        assert!(
            err(&with(r#""h""#, r#"" h""#)).contains("\"host\" has leading or trailing whitespace")
        );
    }

    #[test]
    fn reads_a_socket_field() {
        let c = ok(
            r#"{"engine":"mysql","socket":"/run/mysqld/mysqld.sock","username":"wp","password":"pw","dbname":"wordpress"}"#,
        );
        assert_eq!(
            (c.host.as_str(), c.socket.as_deref()),
            ("localhost", Some("/run/mysqld/mysqld.sock"))
        );
        assert_eq!(c.host_with_port(), "localhost:/run/mysqld/mysqld.sock");
        let c = ok(
            r#"{"engine":"postgres","host":"localhost","port":5433,"socket":"/var/run/postgresql","username":"u","password":"p","dbname":"d"}"#,
        );
        assert_eq!(
            (c.port, c.host_with_port().as_str()),
            (5433, "/var/run/postgresql")
        );
        assert_eq!(
            ok(&with(r#""host":"h""#, r#""host":"","socket":"/tmp""#))
                .socket
                .as_deref(),
            Some("/tmp")
        );
        assert!(err(&with(
            r#""host":"h""#,
            r#""host":"db.internal","socket":"/tmp""#
        ))
        .contains("both a TCP host and a Unix socket"));
        assert!(err(&with(r#""host":"h""#, r#""socket":"tmp/s""#)).contains("absolute path"));
        assert!(err(&with(r#""host":"h""#, r#""socket":"""#)).contains("absolute path"));
        assert!(err(&with(r#""host":"h""#, r#""socket":"/tmp\n""#)).contains("control character"));
        assert!(
            err(&with(r#""host":"h""#, r#""socket":5"#)).contains("\"socket\" must be a string")
        );
        let mysql = r#"{"engine":"mysql","socket":"/s","port":3306,"username":"u","password":"p","dbname":"d"}"#;
        assert!(err(mysql).contains("remove \"port\""));
    }

    #[test]
    fn invalid_json_error_never_quotes_the_value() {
        let msg = err(r#"{"password": "Canary-Pa55-zz" "#);
        assert!(!msg.contains("Canary"), "{msg}");
        assert!(msg.contains("line 1"));
        let msg = err(
            r#"{"engine":"postgres","host":"h","username":"u","password":"Canary-Pa55-zz","dbname":7}"#,
        );
        assert!(!msg.contains("Canary"), "{msg}");
    }

    #[test]
    fn endpoint_value_may_omit_credentials_which_the_secret_supplies() {
        let c =
            parse_endpoint_value(P, r#"{"engine":"postgres","host":"h","dbname":"d"}"#).unwrap();
        let c = apply_credentials(c, "/creds", "\u{feff}{\"username\":\"master\",\"password\":\"p@ss:\\\"x\",\"engine\":\"postgres\"}\r\n").unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.expose_secret()),
            ("master", "p@ss:\"x")
        );
        let c = parse_endpoint_value(P, "mysql://old:oldpw@h/d").unwrap();
        assert_eq!(
            apply_credentials(c, "/creds", r#"{"username":"new","password":"newpw"}"#)
                .unwrap()
                .user,
            "new"
        );
        assert!(
            parse_value(P, "postgresql://db.internal:5432/shop").is_err(),
            "still required without a credentials parameter"
        );
        assert!(parse_endpoint_value(
            P,
            r#"{"engine":"postgres","host":"h","dbname":"d","username":" u"}"#
        )
        .is_err());
    }

    #[test]
    fn bad_credentials_name_the_credentials_parameter_without_the_value() {
        let c = parse_endpoint_value(P, "postgresql://h/d").unwrap();
        let cred_err = |v: &str| {
            apply_credentials(c.clone(), "/creds", v)
                .unwrap_err()
                .to_string()
        };
        let e = cred_err(r#"{"username":"u"}"#);
        assert!(
            e.contains("/creds") && e.contains("\"password\" is missing"),
            "{e}"
        );
        let e = cred_err(r#"{"username":"u","password":"Canary-Pa55-c" "#);
        assert!(!e.contains("Canary"), "{e}");
        assert!(cred_err(r#"{"username":"","password":"p"}"#)
            .contains("\"username\" is missing or empty"));
        assert!(
            cred_err(r#"{"username":"u","password":"Canary-Pa55-c","password":"x"}"#)
                .contains("more than once")
        );
        assert!(cred_err(r#"{"username":"u","password":"p\u0007"}"#).contains("control character"));
        assert!(cred_err(r#"{"username":"u ","password":"p"}"#).contains("whitespace"));
        assert!(cred_err(r#"["u","p"]"#).contains("not an object"));
    }

    #[test]
    fn a_credentials_secret_as_the_value_says_where_it_belongs() {
        for v in [
            r#"{"username":"admin","password":"p"}"#,
            r#"{"username":"admin","password":"p","engine_version":"8.0"}"#,
        ] {
            let e = parse_value(P, v).unwrap_err().to_string();
            assert!(e.contains("ssm_db_config.credentials_parameter"), "{e}");
        }
    }

    #[test]
    fn reports_host_and_port_spans_in_the_original_text() {
        let v = "\u{feff}\n{\"engine\":\"postgres\", \"ho\\u0073t\" : \"h\",\"port\": \"5432\" ,\"username\":\"u\",\"password\":\"p\",\"dbname\":\"d\"} ";
        let EndpointSpan::Json {
            host,
            port,
            last_value_end,
            ..
        } = parse_spanned(P, v, true).unwrap().endpoint
        else {
            panic!("not a JSON span")
        };
        assert_eq!(
            (&v[host], &v[port.unwrap()], &v[..last_value_end]),
            ("\"h\"", "\"5432\"", v.trim_end().trim_end_matches('}'))
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = ok(&with(r#""p""#, r#""Canary-Pa55-q""#));
        assert!(!format!("{c:?}").contains("Canary"));
    }
}
