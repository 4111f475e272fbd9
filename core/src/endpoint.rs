//! What an SSM endpoint override (`ssm_db_config.endpoint_url`, the
//! monitor's `endpoint_url`) may be: an `https://` URL, or `http://` to a
//! loopback address only (a local emulator or proxy), since a decrypted
//! SecureString must not cross a network in clear; and no user or password
//! in it, as the URL is shown in phpinfo() and logs.

/// Checks an endpoint URL; the error says what to write, never the URL.
pub fn check(url: &str) -> Result<(), &'static str> {
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err("it must be an https:// URL (http:// only to a loopback address)"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || url.contains(char::is_whitespace) || url.contains(char::is_control) {
        return Err("it must be an https:// URL with a host");
    }
    if authority.contains('@') {
        return Err(
            "it must not hold a user or password (the URL is shown in status output and logs)",
        );
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return Err("http:// is allowed only to a loopback address (a local emulator or proxy); use https://, as SSM's decrypted values would cross the network in clear");
    }
    Ok(())
}

/// The environment variables through which the AWS SDK takes the SSM
/// endpoint (the general one and SSM's own), which bypass the directive.
pub const SSM_ENVIRONMENT: [&str; 2] = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"];

/// Checks the endpoint variables `names` as `get` reads them (the
/// environment the SDK will be given), by the rules of [`check`], unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` makes the SDK ignore them. The
/// error names the variable and says what to write, never its value.
pub fn check_environment(
    get: impl Fn(&str) -> Option<String>,
    names: &[&str],
) -> Result<(), String> {
    if get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Ok(());
    }
    for name in names {
        if let Some(url) = get(name).filter(|u| !u.is_empty()) {
            check(&url).map_err(|why| {
                format!("the environment variable {name} is refused (value not shown): {why}")
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_follow_the_same_rules_and_are_never_quoted() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(check_environment(env(&[]), &SSM_ENVIRONMENT), Ok(()));
        assert_eq!(
            check_environment(
                env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]),
                &SSM_ENVIRONMENT
            ),
            Ok(())
        );
        for (pairs, says) in [
            (
                &[("AWS_ENDPOINT_URL", "http://u:Canary-Pw@127.0.0.1:1")][..],
                "AWS_ENDPOINT_URL is refused",
            ),
            (
                &[("AWS_ENDPOINT_URL_SSM", "http://10.0.0.1")][..],
                "AWS_ENDPOINT_URL_SSM is refused",
            ),
        ] {
            let e = check_environment(env(pairs), &SSM_ENVIRONMENT).unwrap_err();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("Canary-Pw") && !e.contains("10.0.0.1"), "{e}");
        }
        // The SDK ignores them then: so does the check.
        assert_eq!(
            check_environment(
                env(&[
                    ("AWS_ENDPOINT_URL", "http://10.0.0.1"),
                    ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
                ]),
                &SSM_ENVIRONMENT
            ),
            Ok(())
        );
    }

    #[test]
    fn https_anywhere_http_only_to_loopback_never_userinfo() {
        for url in [
            "https://ssm.eu-west-1.amazonaws.com",
            "https://vpce-1.ssm.eu-west-1.vpce.amazonaws.com:443/",
            "http://127.0.0.1:5000",
            "http://[::1]:5000/",
            "http://localhost:4566",
        ] {
            assert_eq!(check(url), Ok(()), "{url}");
        }
        for (url, says) in [
            ("ftp://x", "https://"),
            ("localhost:4566", "https://"),
            ("http://ssm.example.com", "loopback"),
            ("http://10.0.0.5:4566", "loopback"),
            ("http://127.0.0.1.evil.example", "loopback"),
            ("https://user:Canary@ssm.example.com", "user or password"),
            ("https://", "host"),
        ] {
            let e = check(url).unwrap_err();
            assert!(e.contains(says) && !e.contains("Canary"), "{url}: {e}");
        }
    }
}
