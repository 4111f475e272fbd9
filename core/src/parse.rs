//! Turning a parameter's value into a [`DbConfig`].
//!
//! Two shapes are accepted:
//! - a URL, `postgresql://user:pass@host:5432/dbname?sslmode=require` (also
//!   `postgres://`, `mysql://`, `mariadb://`), with percent-encoded user and
//!   password, bracketed IPv6 hosts and the engine's default port;
//! - a JSON object in the shape RDS and Secrets Manager use: `engine`, `host`,
//!   `port` (number or string), `username`, `password`, `dbname`.
//!
//! Error messages say what is missing or malformed and never quote the value:
//! `serde_json`'s own messages quote the offending input, so they are replaced
//! by the line and column only.

use std::fmt;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::{Error, Secret};

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
/// `Debug` is safe to print: the password is a [`Secret`], and options whose
/// name mentions a password are dropped while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// The engine.
    pub engine: Engine,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Database name.
    pub dbname: String,
    /// URL query options (e.g. `sslmode`), in order; never a password.
    pub options: Vec<(String, String)>,
    /// The shape the value had.
    pub format: ValueFormat,
}

impl DbConfig {
    /// `host:port` as WordPress's `DB_HOST` expects it; IPv6 hosts in brackets.
    pub fn host_with_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses a parameter value. `parameter` is only used to name the parameter in errors.
pub fn parse_value(parameter: &str, value: &str) -> Result<DbConfig, Error> {
    parse(parameter, value, true)
}

/// Parses the value of a parameter whose user and password come from a
/// separate credentials parameter: they may be missing here (and are
/// replaced by [`apply_credentials`] anyway).
pub fn parse_endpoint_value(parameter: &str, value: &str) -> Result<DbConfig, Error> {
    parse(parameter, value, false)
}

/// Overrides user and password with those of a credentials parameter: the
/// JSON that RDS keeps in Secrets Manager for a managed master password
/// (`{"username": "...", "password": "..."}`, other fields ignored).
pub fn apply_credentials(mut config: DbConfig, parameter: &str, value: &str) -> Result<DbConfig, Error> {
    let doc: Value = serde_json::from_str(value.trim()).map_err(|e| {
        Error::invalid(parameter, format!("the credentials are not valid JSON (error at line {} column {})", e.line(), e.column()))
    })?;
    let field = |name: &str| match doc.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::invalid(parameter, format!("field \"{name}\" must be a string"))),
        None => Err(Error::invalid(parameter, format!("field \"{name}\" is missing"))),
    };
    let user = field("username")?;
    if user.is_empty() {
        return Err(Error::invalid(parameter, "field \"username\" is empty"));
    }
    config.password = Secret::new(field("password")?);
    config.user = user;
    Ok(config)
}

fn parse(parameter: &str, value: &str, credentials_required: bool) -> Result<DbConfig, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(parameter, "the value is empty"));
    }
    if value.starts_with('{') {
        return parse_json(parameter, value, credentials_required);
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let engine = Engine::from_scheme(scheme).ok_or_else(|| {
            Error::invalid(parameter, "the URL scheme is not postgresql://, postgres://, mysql:// or mariadb://")
        })?;
        return parse_url(parameter, engine, rest, credentials_required);
    }
    Err(Error::invalid(
        parameter,
        "expected a postgresql://, postgres:// or mysql:// URL or a JSON object",
    ))
}

fn parse_url(parameter: &str, engine: Engine, rest: &str, credentials_required: bool) -> Result<DbConfig, Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    // The user info ends at the last '@', so that a password someone forgot to
    // percent-encode ("p@ss/word?") still parses as they meant it.
    let (user, password, hostpart) = match rest.rsplit_once('@') {
        None if !credentials_required => (String::new(), Secret::default(), rest),
        None => return Err(invalid("the URL has no user (expected scheme://user:password@host/dbname)")),
        Some((userinfo, hostpart)) => {
            let (raw_user, raw_password) = match userinfo.split_once(':') {
                Some(pair) => pair,
                None if !credentials_required => (userinfo, ""),
                None => return Err(invalid("the URL has no password (expected user:password@ before the host)")),
            };
            let user = decode(parameter, "user", raw_user)?;
            if user.is_empty() && credentials_required {
                return Err(invalid("the URL's user is empty"));
            }
            (user, Secret::new(decode(parameter, "password", raw_password)?), hostpart)
        }
    };

    let (authority, path_and_query) = match hostpart.find(['/', '?']) {
        Some(i) => hostpart.split_at(i),
        None => (hostpart, ""),
    };
    let (host, port) = split_host_port(parameter, authority, engine)?;
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let dbname = decode(parameter, "database name", path.trim_start_matches('/'))?;
    if dbname.is_empty() {
        return Err(invalid("the URL has no database name (expected /dbname after the host)"));
    }
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(parameter, "option name", k)?;
        if k.to_ascii_lowercase().contains("password") {
            continue;
        }
        options.push((k, decode(parameter, "option value", v)?));
    }
    Ok(DbConfig { engine, host, port, user, password, dbname, options, format: ValueFormat::Url })
}

fn split_host_port(parameter: &str, authority: &str, engine: Engine) -> Result<(String, u16), Error> {
    let invalid = |reason: &str| Error::invalid(parameter, reason);
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("the URL's IPv6 host has no closing ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("unexpected characters after the URL's IPv6 host")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(invalid("an IPv6 host must be in brackets, e.g. [2001:db8::1]:5432")),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the URL has no host"));
    }
    let port = match port {
        None | Some("") => engine.default_port(),
        Some(p) => parse_port(p).ok_or_else(|| invalid("the URL's port is not a number from 1 to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

fn decode(parameter: &str, what: &str, raw: &str) -> Result<String, Error> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid(parameter, format!("the URL's {what} is not valid UTF-8 once percent-decoded")))
}

fn parse_json(parameter: &str, value: &str, credentials_required: bool) -> Result<DbConfig, Error> {
    let doc: Value = serde_json::from_str(value).map_err(|e| {
        Error::invalid(
            parameter,
            format!("the value is not valid JSON (error at line {} column {})", e.line(), e.column()),
        )
    })?;
    let Value::Object(map) = doc else {
        return Err(Error::invalid(parameter, "the JSON value is not an object"));
    };
    let text = |field: &str| -> Result<Option<String>, Error> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid(parameter, format!("field \"{field}\" must be a string"))),
        }
    };
    let required = |field: &str| -> Result<String, Error> {
        match text(field)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Error::invalid(parameter, format!("field \"{field}\" is missing or empty"))),
        }
    };
    let port = match map.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n != 0)
                .ok_or_else(|| Error::invalid(parameter, "field \"port\" is not a number from 1 to 65535"))?,
        ),
        Some(Value::String(s)) => Some(
            parse_port(s.trim())
                .ok_or_else(|| Error::invalid(parameter, "field \"port\" is not a number from 1 to 65535"))?,
        ),
        Some(_) => return Err(Error::invalid(parameter, "field \"port\" must be a number or a numeric string")),
    };
    let engine = match text("engine")? {
        Some(name) => Engine::from_rds_name(&name).ok_or_else(|| {
            Error::invalid(
                parameter,
                "field \"engine\" is not a supported engine (postgres, postgresql, aurora-postgresql, mysql, mariadb, aurora-mysql)",
            )
        })?,
        // RDS secrets always carry "engine"; hand-written ones may not, and the
        // port then tells, or nothing does.
        None => match port {
            Some(5432) => Engine::Postgresql,
            Some(3306) => Engine::Mysql,
            _ => return Err(Error::invalid(parameter, "field \"engine\" is missing (and the port does not imply one)")),
        },
    };
    let host = required("host")?;
    let user = if credentials_required { required("username")? } else { text("username")?.unwrap_or_default() };
    let password = match map.get("password") {
        Some(Value::String(s)) => Secret::new(s.clone()),
        None | Some(Value::Null) if !credentials_required => Secret::default(),
        None | Some(Value::Null) => return Err(Error::invalid(parameter, "field \"password\" is missing")),
        Some(_) => return Err(Error::invalid(parameter, "field \"password\" must be a string")),
    };
    let dbname = required("dbname")?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok(DbConfig {
        engine,
        port: port.unwrap_or(engine.default_port()),
        host,
        user,
        password,
        dbname,
        options: Vec::new(),
        format: ValueFormat::Json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/test/db";

    fn ok(value: &str) -> DbConfig {
        parse_value(P, value).unwrap_or_else(|e| panic!("{value:?} should parse: {e}"))
    }

    fn err(value: &str) -> String {
        match parse_value(P, value) {
            Ok(c) => panic!("{value:?} should not parse, got {c:?}"),
            Err(e) => {
                assert_eq!(e.kind(), crate::ErrorKind::InvalidValue);
                let msg = e.to_string();
                assert!(msg.contains(P), "message names the parameter: {msg}");
                msg
            }
        }
    }

    #[test]
    fn parses_postgresql_url_with_every_piece() {
        let c = ok("postgresql://wp:secret@db.example.com:6432/shop?sslmode=require&application_name=wp");
        assert_eq!(c.engine, Engine::Postgresql);
        assert_eq!((c.host.as_str(), c.port), ("db.example.com", 6432));
        assert_eq!((c.user.as_str(), c.password.expose(), c.dbname.as_str()), ("wp", "secret", "shop"));
        assert_eq!(c.options, vec![("sslmode".into(), "require".into()), ("application_name".into(), "wp".into())]);
        assert_eq!(c.host_with_port(), "db.example.com:6432");
        assert_eq!(c.format, ValueFormat::Url);
    }

    #[test]
    fn applies_default_ports_per_engine() {
        assert_eq!(ok("postgres://u:p@h/d").port, 5432);
        assert_eq!(ok("mysql://u:p@h/d").port, 3306);
        assert_eq!(ok("mariadb://u:p@h/d").engine, Engine::Mysql);
        assert_eq!(ok("MySQL://u:p@h:/d").port, 3306);
    }

    #[test]
    fn parses_ipv6_host_with_port() {
        let c = ok("postgresql://u:p@[2001:db8::1]:5433/d");
        assert_eq!(c.host, "2001:db8::1");
        assert_eq!(c.port, 5433);
        assert_eq!(c.host_with_port(), "[2001:db8::1]:5433");
        assert_eq!(ok("mysql://u:p@[::1]/d").host_with_port(), "[::1]:3306");
    }

    #[test]
    fn percent_decodes_passwords_with_special_characters() {
        let table = [
            ("p%40ss", "p@ss"),
            ("p%3Ass", "p:ss"),
            ("p%2Fss", "p/ss"),
            ("p%3Fss", "p?ss"),
            ("p%23ss", "p#ss"),
            ("p%25ss", "p%ss"),
            ("p%20ss", "p ss"),
            ("p%27s%22s", "p's\"s"),
            ("p%C3%A4%E2%82%AC%F0%9F%94%91", "pä€🔑"),
            ("pä€", "pä€"),
        ];
        for (encoded, plain) in table {
            let c = ok(&format!("postgresql://user%40corp:{encoded}@h/d"));
            assert_eq!(c.password.expose(), plain, "{encoded}");
            assert_eq!(c.user, "user@corp");
        }
    }

    #[test]
    fn accepts_raw_at_slash_and_question_mark_in_password() {
        let c = ok("mysql://u:p@ss/w?rd#x@h:3307/d");
        assert_eq!(c.password.expose(), "p@ss/w?rd#x");
        assert_eq!((c.host.as_str(), c.port, c.dbname.as_str()), ("h", 3307, "d"));
    }

    #[test]
    fn drops_password_options_from_url_query() {
        let c = ok("postgresql://u:p@h/d?password=leak&sslpassword=x&sslmode=verify-full");
        assert_eq!(c.options, vec![("sslmode".into(), "verify-full".into())]);
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
        assert!(err("postgresql://u:p@2001:db8::1/d").contains("brackets"));
        assert!(err("postgresql://u:p@[::1/d").contains("']'"));
        assert!(err("postgresql://u:%FF@h/d").contains("UTF-8"));
        assert!(err("").contains("empty"));
        assert!(err("just some text").contains("expected"));
    }

    #[test]
    fn parses_rds_style_json() {
        let c = ok(r#"{"engine":"postgres","host":"db.internal","port":5432,"username":"wp","password":"p@ss:/?#% '\"ä","dbname":"shop"}"#);
        assert_eq!(c.engine, Engine::Postgresql);
        assert_eq!(c.password.expose(), "p@ss:/?#% '\"ä");
        assert_eq!(c.host_with_port(), "db.internal:5432");
        assert_eq!(c.format, ValueFormat::Json);
        let c = ok(r#"{"engine":"mariadb","host":"m","port":"3307","username":"u","password":"","dbname":"d"}"#);
        assert_eq!((c.engine, c.port), (Engine::Mysql, 3307));
        assert_eq!(ok(r#"{"engine":"aurora-mysql","host":"m","username":"u","password":"p","dbname":"d"}"#).port, 3306);
        assert_eq!(ok(r#"{"host":"m","port":5432,"username":"u","password":"p","dbname":"d"}"#).engine, Engine::Postgresql);
        assert_eq!(ok(r#"{"engine":"postgres","host":"::1","username":"u","password":"p","dbname":"d"}"#).host_with_port(), "[::1]:5432");
    }

    #[test]
    fn rejects_json_with_missing_or_mistyped_fields() {
        let base = r#""engine":"postgres","host":"h","port":5432,"username":"u","password":"p","dbname":"d""#;
        assert!(err(&format!("{{{}}}", base.replace(r#""host":"h","#, ""))).contains("\"host\""));
        assert!(err(&format!("{{{}}}", base.replace(r#","password":"p""#, ""))).contains("\"password\" is missing"));
        assert!(err(&format!("{{{}}}", base.replace(r#""password":"p""#, r#""password":5"#))).contains("\"password\" must be a string"));
        assert!(err(&format!("{{{}}}", base.replace("5432", "true"))).contains("\"port\""));
        assert!(err(&format!("{{{}}}", base.replace("5432", "\"70000\""))).contains("\"port\""));
        assert!(err(&format!("{{{}}}", base.replace("postgres", "oracle"))).contains("\"engine\""));
        assert!(err(&format!("{{{}}}", base.replace(r#""username":"u""#, r#""username":["u"]"#))).contains("\"username\""));
        assert!(err(r#"{"host":"h","username":"u","password":"p","dbname":"d"}"#).contains("\"engine\" is missing"));
        assert!(err("[1,2]").contains("not valid JSON") || err("[1,2]").contains("expected"));
    }

    #[test]
    fn invalid_json_error_never_quotes_the_value() {
        let msg = err(r#"{"password": "Canary-Pa55-zz" "#);
        assert!(!msg.contains("Canary"), "{msg}");
        assert!(msg.contains("line 1"));
        let msg = err(r#"{"engine":"postgres","host":"h","username":"u","password":"Canary-Pa55-zz","dbname":7}"#);
        assert!(!msg.contains("Canary"), "{msg}");
    }

    #[test]
    fn endpoint_value_may_omit_credentials_which_the_secret_supplies() {
        let c = parse_endpoint_value(P, "postgresql://db.internal:5432/shop").unwrap();
        assert_eq!((c.host.as_str(), c.user.as_str(), c.password.expose()), ("db.internal", "", ""));
        let c = parse_endpoint_value(P, r#"{"engine":"postgres","host":"h","dbname":"d"}"#).unwrap();
        let c = apply_credentials(c, "/creds", r#"{"username":"master","password":"p@ss:\"x","engine":"postgres"}"#).unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("master", "p@ss:\"x"));
        let c = parse_endpoint_value(P, "mysql://old:oldpw@h/d").unwrap();
        assert_eq!(apply_credentials(c, "/creds", r#"{"username":"new","password":"newpw"}"#).unwrap().user, "new");
        assert!(parse_value(P, "postgresql://db.internal:5432/shop").is_err(), "still required without a credentials parameter");
    }

    #[test]
    fn bad_credentials_name_the_credentials_parameter_without_the_value() {
        let c = parse_endpoint_value(P, "postgresql://h/d").unwrap();
        let e = apply_credentials(c.clone(), "/creds", r#"{"username":"u"}"#).unwrap_err().to_string();
        assert!(e.contains("/creds") && e.contains("\"password\" is missing"), "{e}");
        let e = apply_credentials(c, "/creds", r#"{"username":"u","password":"Canary-Pa55-c" "#).unwrap_err().to_string();
        assert!(!e.contains("Canary"), "{e}");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = ok("postgresql://u:Canary-Pa55-q@h/d");
        assert!(!format!("{c:?}").contains("Canary"));
    }
}
