//! Pointing a parameter value at another endpoint, and nothing else.
//!
//! The failover monitor must change the host and port of a value it did not
//! write, and keep the rest exactly as its owner wrote it: the credentials, the
//! database name, the URL's query options, the format, and for JSON the key
//! order, the spacing and every other key. So this module edits the text in
//! place instead of parsing into a structure and serialising it again
//! (serde_json's map would sort the keys and drop formatting).
//!
//! The spans it edits are the ones the parser read the host and port from
//! ([`crate::parse`] reports them), so the rewriter follows the very same
//! grammar and cannot replace a different part of the text than the one the
//! extension reads as the endpoint. Every rewrite is still checked by parsing
//! the result: everything but the host and port must come out equal to what
//! the original parsed to.

use crate::parse::{check_host_name, is_ipv6, parse_spanned, Auth, DbConfig, EndpointSpan, Engine};
use crate::{Error, ExposeSecret};

/// Returns `value` with its host and port replaced by `host` and `port`.
///
/// `host` may be a name, an IPv4 address or an IPv6 address (with or without
/// brackets; URLs get brackets, JSON gets the bare address). A URL that named
/// no port keeps naming none when `port` is the engine's default. A JSON value
/// keeps the type of its `port` field (number or string) and gains a numeric
/// one after its last key if it had none and `port` is not the default.
///
/// Errors are [`Error::InvalidValue`] when `value` does not parse (the message
/// says why, never the value) or names a Unix socket, and
/// [`Error::BadConfiguration`] when `host` or `port` cannot be written.
pub fn with_endpoint(parameter: &str, value: &str, host: &str, port: u16) -> Result<String, Error> {
    rewrite(parameter, value, host, port, true)
}

/// [`with_endpoint`] for the value of a parameter whose user and password come
/// from a separate credentials parameter (the grammar of
/// [`crate::parse_endpoint_value`]): user and password may be missing, as in
/// `postgresql://writer.internal:5432/shop`. Whatever the value does hold is
/// kept exactly as with [`with_endpoint`].
pub fn with_endpoint_credentials_optional(
    parameter: &str,
    value: &str,
    host: &str,
    port: u16,
) -> Result<String, Error> {
    rewrite(parameter, value, host, port, false)
}

fn rewrite(
    parameter: &str,
    value: &str,
    host: &str,
    port: u16,
    credentials_required: bool,
) -> Result<String, Error> {
    let host = validate_host(host)?;
    if port == 0 {
        return Err(Error::BadConfiguration(
            "the new endpoint's port is 0".into(),
        ));
    }
    let before = parse_spanned(parameter, value, credentials_required)?;
    let config = &before.config;
    check_rewritable(parameter, config)?;
    let rewritten = match before.endpoint {
        EndpointSpan::Socket => return Err(Error::invalid(parameter, REWRITE_SOCKET)),
        EndpointSpan::Url {
            host: host_span,
            port: port_span,
        } => {
            let mut authority = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            if port_span.is_some() || port != config.engine.default_port() {
                authority.push_str(&format!(":{port}"));
            }
            let end = port_span.map_or(host_span.end, |p| p.end);
            splice(value, vec![(host_span.start, end, authority)])
        }
        EndpointSpan::Json {
            host: host_span,
            port: port_span,
            last_value_end,
            engine_named,
        } => {
            let mut edits = vec![(host_span.start, host_span.end, json_string(host))];
            let default = port == config.engine.default_port();
            if !engine_named && !default {
                // The old port implied the engine; the new one does not.
                let engine = match config.engine {
                    Engine::Postgresql => "postgres",
                    Engine::Mysql => "mysql",
                };
                edits.push((
                    last_value_end,
                    last_value_end,
                    format!(",\"engine\":\"{engine}\""),
                ));
            }
            match port_span {
                Some(p) if value[p.clone()].starts_with('"') => {
                    edits.push((p.start, p.end, format!("\"{port}\"")))
                }
                Some(p) if &value[p.clone()] == "null" && default => {}
                Some(p) => edits.push((p.start, p.end, port.to_string())),
                None if default => {}
                None => edits.push((last_value_end, last_value_end, format!(",\"port\":{port}"))),
            }
            splice(value, edits)
        }
    };
    let after = parse_spanned(parameter, &rewritten, credentials_required)?.config;
    if after.host != host || after.port != port || !same_apart_from_endpoint(config, &after) {
        return Err(Error::invalid(parameter, REWRITE_CHANGED_MORE));
    }
    Ok(rewritten)
}

/// Whether a parsed value is one whose endpoint can be replaced and still
/// mean what its owner meant: it names a TCP host (a Unix socket has no
/// endpoint to replace), and no `iam_host`, which names the endpoint tokens
/// are signed for and would go on naming the old one after the host moved
/// (RDS refuses a token signed for another endpoint). Without `iam_host`,
/// tokens are signed for the host the value names, so they follow it.
///
/// Errors: [`Error::InvalidValue`] saying which and what to write instead.
/// A monitor checks this when it reads a parameter, so that `--plan` finds
/// what a write would refuse.
pub fn check_rewritable(parameter: &str, config: &DbConfig) -> Result<(), Error> {
    if config.socket.is_some() {
        return Err(Error::invalid(parameter, REWRITE_SOCKET));
    }
    if let Auth::Iam { sign_host: Some(_) } = config.auth {
        return Err(Error::invalid(parameter, REWRITE_IAM_HOST));
    }
    Ok(())
}

const REWRITE_IAM_HOST: &str = "the value names iam_host (the endpoint IAM tokens are signed for), which would still name the old endpoint once the monitor replaced the host: remove iam_host, so that tokens are signed for the RDS endpoint the monitor publishes";
const REWRITE_CHANGED_MORE: &str =
    "rewriting the endpoint would change more than the host and port (the value's layout is not one the rewriter understands)";
const REWRITE_SOCKET: &str =
    "the value names a Unix socket, not a host and port, so there is no endpoint to replace: write it with a TCP host for the monitor to manage it";

/// The new host without brackets, checked against the parser's host grammar.
fn validate_host(host: &str) -> Result<&str, Error> {
    let bad = |why: &str| Error::BadConfiguration(format!("the new endpoint's host {why}"));
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let bare = bracketed.unwrap_or(host);
    if bare.is_empty() {
        return Err(bad("is empty"));
    }
    if bracketed.is_some() || bare.contains(':') {
        return if is_ipv6(bare) {
            Ok(bare)
        } else {
            Err(bad("contains ':' or brackets but is not an IPv6 address"))
        };
    }
    check_host_name(bare).map_err(bad)?;
    Ok(bare)
}

fn same_apart_from_endpoint(a: &DbConfig, b: &DbConfig) -> bool {
    a.engine == b.engine
        && a.socket == b.socket
        && a.user == b.user
        && a.password.expose_secret() == b.password.expose_secret()
        && a.dbname == b.dbname
        && a.options == b.options
        && a.auth == b.auth
        && a.format == b.format
}

/// Applies `(start, end, replacement)` edits, which must not overlap.
fn splice(value: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    // From the end of the text backwards, so that earlier spans stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = value.to_owned();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const P: &str = "/test/db";

    fn rw(value: &str, host: &str, port: u16) -> String {
        with_endpoint(P, value, host, port)
            .unwrap_or_else(|e| panic!("{value:?} should rewrite: {e}"))
    }

    #[test]
    fn rewrites_url_host_and_port_keeping_everything_else() {
        let v = "postgresql://wp%40corp:p%40ss%2Fw@old.example.com:5432/shop?sslmode=require&application_name=wp";
        assert_eq!(
            rw(v, "new.example.com", 6432),
            "postgresql://wp%40corp:p%40ss%2Fw@new.example.com:6432/shop?sslmode=require&application_name=wp"
        );
    }

    #[test]
    fn rewrites_only_the_authority_when_options_hold_at_signs_and_colons() {
        let v = "postgresql://wp:p%40ss:x@db.internal:5432/shop?application_name=wp@web-1:2&sslmode=require";
        assert_eq!(rw(v, "n", 5433), v.replace("db.internal:5432", "n:5433"));
    }

    #[test]
    fn refuses_what_the_parser_refuses_instead_of_guessing_a_span() {
        for v in [
            "mysql://u:p@ss/w?rd#x@h:3307/d",
            "mysql://u:p@ss@h/d",
            "mysql://u:pa/ss@h/d",
            "mysql://u:p@h:/d",
        ] {
            let e = with_endpoint(P, v, "n", 3306).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue, "{v}");
        }
    }

    #[test]
    fn rewrites_endpoint_only_values_only_when_credentials_are_optional() {
        for (v, want) in [
            (
                "postgresql://writer.internal:5432/shop",
                "postgresql://n:5433/shop",
            ),
            (
                "mysql://h/shop?ssl-mode=REQUIRED",
                "mysql://n:5433/shop?ssl-mode=REQUIRED",
            ),
            (
                r#"{"engine":"postgres","host":"h","dbname":"d"}"#,
                r#"{"engine":"postgres","host":"n","dbname":"d","port":5433}"#,
            ),
        ] {
            assert_eq!(
                with_endpoint_credentials_optional(P, v, "n", 5433).unwrap(),
                want
            );
            let e = with_endpoint(P, v, "n", 5433).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue, "{v}");
        }
        assert_eq!(
            with_endpoint_credentials_optional(P, "postgresql://u:p@h/d", "n", 5432).unwrap(),
            "postgresql://u:p@n/d"
        );
    }

    #[test]
    fn refuses_socket_values() {
        for v in [
            "mysql://u:p@localhost/d?socket=/run/mysqld/mysqld.sock",
            "postgresql://u:p@%2Fvar%2Frun%2Fpostgresql/d",
            r#"{"engine":"mysql","socket":"/s","username":"u","password":"p","dbname":"d"}"#,
        ] {
            let e = with_endpoint(P, v, "n", 3306).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue, "{v}");
            assert!(e.to_string().contains("Unix socket"), "{e}");
        }
    }

    #[test]
    fn a_json_value_whose_port_implied_its_engine_gains_the_engine_with_another_port() {
        let v = r#"{"host":"old.internal","port":3306,"username":"wp","password":"pw","dbname":"shop"}"#;
        assert_eq!(
            with_endpoint(P, v, "new.internal", 3307).unwrap(),
            r#"{"host":"new.internal","port":3307,"username":"wp","password":"pw","dbname":"shop","engine":"mysql"}"#
        );
        let v = r#"{"host":"old.internal","port":"5432","dbname":"shop"}"#;
        assert_eq!(
            with_endpoint_credentials_optional(P, v, "new.internal", 6432).unwrap(),
            r#"{"host":"new.internal","port":"6432","dbname":"shop","engine":"postgres"}"#
        );
        // The default port still implies it: nothing added.
        let v = r#"{"host":"old.internal","port":3306,"dbname":"shop"}"#;
        assert_eq!(
            with_endpoint_credentials_optional(P, v, "new.internal", 3306).unwrap(),
            r#"{"host":"new.internal","port":3306,"dbname":"shop"}"#
        );
    }

    #[test]
    fn refuses_a_value_naming_iam_host() {
        for v in [
            "mysql://wp@old.internal:3306/shop?auth=iam&iam_host=old.internal",
            r#"{"engine":"mysql","host":"old.internal","username":"wp","dbname":"shop","auth":"iam","iam_host":"old.internal"}"#,
        ] {
            let e = with_endpoint("/p", v, "new.internal", 3306).unwrap_err();
            assert!(e.to_string().contains("remove iam_host"), "{e}");
        }
        // Without iam_host the token follows the host: rewritten as usual.
        assert_eq!(
            with_endpoint(
                "/p",
                "mysql://wp@old.internal:3306/shop?auth=iam",
                "new.internal",
                3306
            )
            .unwrap(),
            "mysql://wp@new.internal:3306/shop?auth=iam"
        );
    }

    #[test]
    fn keeps_byte_order_mark_and_surrounding_whitespace() {
        let v = "\u{feff}  postgresql://u:p@h:5432/d\r\n";
        assert_eq!(rw(v, "n", 5433), "\u{feff}  postgresql://u:p@n:5433/d\r\n");
        let v = "\u{feff}{\"engine\":\"postgres\",\"host\":\"h\",\"username\":\"u\",\"password\":\"p\",\"dbname\":\"d\"}\n";
        assert_eq!(
            rw(v, "n", 5433),
            v.replace("\"h\"", "\"n\"")
                .replace("\"d\"}", "\"d\",\"port\":5433}")
        );
    }

    #[test]
    fn omits_the_default_port_only_if_the_url_did() {
        assert_eq!(rw("postgres://u:p@h/d", "n", 5432), "postgres://u:p@n/d");
        assert_eq!(
            rw("postgres://u:p@h/d", "n", 5433),
            "postgres://u:p@n:5433/d"
        );
        assert_eq!(
            rw("postgres://u:p@h:5432/d", "n", 5432),
            "postgres://u:p@n:5432/d"
        );
        assert_eq!(rw("mysql://u:p@h/d?x=1", "n", 3306), "mysql://u:p@n/d?x=1");
    }

    #[test]
    fn brackets_ipv6_hosts_in_urls() {
        assert_eq!(
            rw("postgresql://u:p@h:5432/d", "2001:db8::1", 5432),
            "postgresql://u:p@[2001:db8::1]:5432/d"
        );
        assert_eq!(
            rw("postgresql://u:p@[::1]:5432/d", "[fd00::2]", 5433),
            "postgresql://u:p@[fd00::2]:5433/d"
        );
        assert_eq!(
            rw("postgresql://u:p@[::1]/d", "db.internal", 5432),
            "postgresql://u:p@db.internal/d"
        );
    }

    #[test]
    fn rewrites_json_keeping_key_order_spacing_and_other_keys() {
        let v = "{\n  \"username\": \"wp\",\n  \"password\": \"p@ss:/?#% '\\\"ä\",\n  \"engine\": \"postgres\",\n  \"host\": \"old.internal\",\n  \"port\": 5432,\n  \"dbname\": \"shop\",\n  \"dbInstanceIdentifier\": \"shop-db\",\n  \"extra\": {\"host\": \"nested\", \"list\": [1, \"]\"]}\n}";
        let out = rw(v, "new.internal", 6432);
        assert_eq!(
            out,
            v.replace("old.internal", "new.internal")
                .replace("5432", "6432")
        );
    }

    #[test]
    fn keeps_a_string_port_a_string_in_json() {
        let v = r#"{"engine":"mysql","host":"h","port":"3306","username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(
            rw(v, "m", 3307),
            v.replace(r#""h""#, r#""m""#)
                .replace("\"3306\"", "\"3307\"")
        );
    }

    #[test]
    fn adds_a_port_to_json_only_when_it_is_not_the_default() {
        let v = r#"{"engine":"postgres","host":"h","username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(rw(v, "n", 5432), v.replace(r#""h""#, r#""n""#));
        assert_eq!(
            rw(v, "n", 5433),
            r#"{"engine":"postgres","host":"n","username":"u","password":"p","dbname":"d","port":5433}"#
        );
    }

    #[test]
    fn writes_bare_ipv6_hosts_in_json() {
        let v = r#"{"engine":"postgres","host":"h","port":5432,"username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(
            rw(v, "[2001:db8::5]", 5432),
            v.replace(r#""h""#, r#""2001:db8::5""#)
        );
    }

    #[test]
    fn handles_escaped_keys_in_json() {
        let v = r#"{"engine":"postgres","ho\u0073t":"h","port":5432,"username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(rw(v, "n", 5432), v.replace(r#":"h""#, r#":"n""#));
    }

    #[test]
    fn refuses_json_with_duplicate_host_keys() {
        let v = r#"{"engine":"postgres","host":"h","host":"i","username":"u","password":"p","dbname":"d"}"#;
        let e = with_endpoint(P, v, "n", 5432).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn refuses_malformed_values_without_quoting_them() {
        for v in [
            "postgresql://u@h/d",
            r#"{"password":"Canary-Pa55-zz","host":"h"}"#,
            "Canary-Pa55-zz",
        ] {
            let e = with_endpoint(P, v, "n", 5432).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue);
            assert!(e.to_string().contains(P));
            assert!(!e.to_string().contains("Canary"), "{e}");
        }
    }

    #[test]
    fn refuses_hosts_that_cannot_be_written() {
        let v = "postgresql://u:p@h/d";
        for host in [
            "",
            "a b",
            "evil/path",
            "u@h",
            "1:2:zz",
            "[]",
            "[h]",
            "h:5432",
            "bücher.example",
            "10.1",
            "fe80::1%eth0",
        ] {
            let e = with_endpoint(P, v, host, 5432).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadConfiguration, "{host:?}");
        }
        assert_eq!(
            with_endpoint(P, v, "n", 0).unwrap_err().kind(),
            ErrorKind::BadConfiguration
        );
    }

    #[test]
    fn rewriting_twice_is_stable() {
        let v = "postgresql://u:p@h:5432/d?sslmode=require";
        let once = rw(v, "n", 5433);
        assert_eq!(rw(&once, "n", 5433), once);
        assert_eq!(rw(&once, "h", 5432), v);
    }
}
