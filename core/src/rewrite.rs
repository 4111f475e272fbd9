//! Pointing a parameter value at another endpoint, and nothing else.
//!
//! The failover monitor must change the host and port of a value it did not
//! write, and keep the rest exactly as its owner wrote it: the credentials, the
//! database name, the URL's query options, the format, and for JSON the key
//! order, the spacing and every other key. So this module edits the text in
//! place instead of parsing into a structure and serialising it again
//! (serde_json's map would sort the keys and drop formatting).
//!
//! Every rewrite is checked by parsing the result: everything but the host and
//! port must come out equal to what the original parsed to.

use crate::parse::{parse_value, DbConfig, ValueFormat};
use crate::Error;

/// Returns `value` with its host and port replaced by `host` and `port`.
///
/// `host` may be a name, an IPv4 address or an IPv6 address (with or without
/// brackets; URLs get brackets, JSON gets the bare address). A URL that named
/// no port keeps naming none when `port` is the engine's default. A JSON value
/// keeps the type of its `port` field (number or string) and gains a numeric
/// one after its last key if it had none and `port` is not the default.
///
/// Errors are [`Error::InvalidValue`] when `value` does not parse (the message
/// says why, never the value) and [`Error::BadConfiguration`] when `host` or
/// `port` cannot be written.
pub fn with_endpoint(parameter: &str, value: &str, host: &str, port: u16) -> Result<String, Error> {
    let host = validate_host(host)?;
    if port == 0 {
        return Err(Error::BadConfiguration("the new endpoint's port is 0".into()));
    }
    let before = parse_value(parameter, value)?;
    let rewritten = match before.format {
        ValueFormat::Url => rewrite_url(parameter, value, &before, host, port)?,
        ValueFormat::Json => rewrite_json(parameter, value, &before, host, port)?,
    };
    let after = parse_value(parameter, &rewritten)?;
    if after.host != host || after.port != port || !same_apart_from_endpoint(&before, &after) {
        return Err(Error::invalid(parameter, REWRITE_CHANGED_MORE));
    }
    Ok(rewritten)
}

const REWRITE_CHANGED_MORE: &str =
    "rewriting the endpoint would change more than the host and port (the value's layout is not one the rewriter understands)";

fn validate_host(host: &str) -> Result<&str, Error> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let bad = |why: &str| Error::BadConfiguration(format!("the new endpoint's host {why}"));
    if bare.is_empty() {
        return Err(bad("is empty"));
    }
    if bare.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#@[]\"\\%".contains(c)) {
        return Err(bad("contains a character that is not allowed in a host name or address"));
    }
    if bare.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(bad("contains ':' but is not an IPv6 address"));
    }
    Ok(bare)
}

fn same_apart_from_endpoint(a: &DbConfig, b: &DbConfig) -> bool {
    a.engine == b.engine
        && a.user == b.user
        && a.password == b.password
        && a.dbname == b.dbname
        && a.options == b.options
        && a.format == b.format
}

fn rewrite_url(parameter: &str, value: &str, before: &DbConfig, host: &str, port: u16) -> Result<String, Error> {
    // The same split as the parser: the user info ends at the last '@', the
    // authority at the first '/' or '?' after it.
    let start = value.rfind('@').ok_or_else(|| Error::invalid(parameter, "the URL has no user"))? + 1;
    let end = value[start..].find(['/', '?']).map_or(value.len(), |i| start + i);
    let authority = &value[start..end];
    let had_port = if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    };
    let mut new_authority = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if had_port || port != before.engine.default_port() {
        new_authority.push_str(&format!(":{port}"));
    }
    Ok(format!("{}{}{}", &value[..start], new_authority, &value[end..]))
}

fn rewrite_json(parameter: &str, value: &str, before: &DbConfig, host: &str, port: u16) -> Result<String, Error> {
    let fields = top_level_fields(value).ok_or_else(|| Error::invalid(parameter, REWRITE_CHANGED_MORE))?;
    let find = |name: &str| -> Result<Option<&Field>, Error> {
        let mut hits = fields.iter().filter(|f| f.key == name);
        let first = hits.next();
        if hits.next().is_some() {
            return Err(Error::invalid(parameter, format!("field \"{name}\" appears more than once")));
        }
        Ok(first)
    };
    let host_field = find("host")?.ok_or_else(|| Error::invalid(parameter, "field \"host\" is missing"))?;
    let port_field = find("port")?;

    // Edits are applied from the end of the text backwards so that earlier
    // spans stay valid.
    let mut edits: Vec<(usize, usize, String)> = vec![(host_field.start, host_field.end, json_string(host))];
    match port_field {
        Some(f) if value[f.start..f.end].starts_with('"') => edits.push((f.start, f.end, format!("\"{port}\""))),
        Some(f) if value[f.start..f.end] == *"null" && port == before.engine.default_port() => {}
        Some(f) => edits.push((f.start, f.end, port.to_string())),
        None if port == before.engine.default_port() => {}
        None => {
            let last = fields.last().expect("host was found, so there is a field");
            edits.push((last.end, last.end, format!(",\"port\":{port}")));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = value.to_owned();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    Ok(out)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// One `"key": value` pair of the top-level object: the decoded key and the
/// byte span of the value's text.
struct Field {
    key: String,
    start: usize,
    end: usize,
}

/// Finds the top-level fields of a JSON object, with the spans of their values.
/// `None` if the text is not one object (the parser has already accepted it,
/// so that would mean this scanner and serde_json disagree).
fn top_level_fields(text: &str) -> Option<Vec<Field>> {
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
        let key: String = serde_json::from_str(&text[i..key_end]).ok()?;
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
                        depth -= 1;
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
    use super::*;
    use crate::ErrorKind;

    const P: &str = "/test/db";

    fn rw(value: &str, host: &str, port: u16) -> String {
        with_endpoint(P, value, host, port).unwrap_or_else(|e| panic!("{value:?} should rewrite: {e}"))
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
    fn refuses_raw_special_characters_in_url_password() {
        let e = with_endpoint(P, "mysql://u:p@ss/w?rd#x@h:3307/d", "m2", 3307).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn omits_the_default_port_only_if_the_url_did() {
        assert_eq!(rw("postgres://u:p@h/d", "n", 5432), "postgres://u:p@n/d");
        assert_eq!(rw("postgres://u:p@h/d", "n", 5433), "postgres://u:p@n:5433/d");
        assert_eq!(rw("postgres://u:p@h:5432/d", "n", 5432), "postgres://u:p@n:5432/d");
        assert_eq!(rw("mysql://u:p@h/d?x=1", "n", 3306), "mysql://u:p@n/d?x=1");
    }

    #[test]
    fn brackets_ipv6_hosts_in_urls() {
        assert_eq!(rw("postgresql://u:p@h:5432/d", "2001:db8::1", 5432), "postgresql://u:p@[2001:db8::1]:5432/d");
        assert_eq!(rw("postgresql://u:p@[::1]:5432/d", "[fd00::2]", 5433), "postgresql://u:p@[fd00::2]:5433/d");
        assert_eq!(rw("postgresql://u:p@[::1]/d", "db.internal", 5432), "postgresql://u:p@db.internal/d");
    }

    #[test]
    fn rewrites_json_keeping_key_order_spacing_and_other_keys() {
        let v = "{\n  \"username\": \"wp\",\n  \"password\": \"p@ss:/?#% '\\\"ä\",\n  \"engine\": \"postgres\",\n  \"host\": \"old.internal\",\n  \"port\": 5432,\n  \"dbname\": \"shop\",\n  \"dbInstanceIdentifier\": \"shop-db\",\n  \"extra\": {\"host\": \"nested\", \"list\": [1, \"]\"]}\n}";
        let out = rw(v, "new.internal", 6432);
        assert_eq!(out, v.replace("old.internal", "new.internal").replace("5432", "6432"));
    }

    #[test]
    fn keeps_a_string_port_a_string_in_json() {
        let v = r#"{"engine":"mysql","host":"h","port":"3306","username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(rw(v, "m", 3307), v.replace(r#""h""#, r#""m""#).replace("\"3306\"", "\"3307\""));
    }

    #[test]
    fn adds_a_port_to_json_only_when_it_is_not_the_default() {
        let v = r#"{"engine":"postgres","host":"h","username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(rw(v, "n", 5432), v.replace(r#""h""#, r#""n""#));
        assert_eq!(rw(v, "n", 5433), r#"{"engine":"postgres","host":"n","username":"u","password":"p","dbname":"d","port":5433}"#);
    }

    #[test]
    fn writes_bare_ipv6_hosts_in_json() {
        let v = r#"{"engine":"postgres","host":"h","port":5432,"username":"u","password":"p","dbname":"d"}"#;
        assert_eq!(rw(v, "[2001:db8::5]", 5432), v.replace(r#""h""#, r#""2001:db8::5""#));
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
        for v in ["postgresql://u@h/d", r#"{"password":"Canary-Pa55-zz","host":"h"}"#, "Canary-Pa55-zz"] {
            let e = with_endpoint(P, v, "n", 5432).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue);
            assert!(e.to_string().contains(P));
            assert!(!e.to_string().contains("Canary"), "{e}");
        }
    }

    #[test]
    fn refuses_hosts_that_cannot_be_written() {
        let v = "postgresql://u:p@h/d";
        for host in ["", "a b", "evil/path", "u@h", "1:2:zz", "[]"] {
            let e = with_endpoint(P, v, host, 5432).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadConfiguration, "{host:?}");
        }
        assert_eq!(with_endpoint(P, v, "n", 0).unwrap_err().kind(), ErrorKind::BadConfiguration);
    }

    #[test]
    fn rewriting_twice_is_stable() {
        let v = "postgresql://u:p@h:5432/d?sslmode=require";
        let once = rw(v, "n", 5433);
        assert_eq!(rw(&once, "n", 5433), once);
        assert_eq!(rw(&once, "h", 5432), v);
    }
}
