//! What may be passed as an SSM parameter name.
//!
//! Checked before any request, so that a value passed where a name belongs
//! (`ssm_db_config(getenv('DATABASE_URL'))`, an easy mistake) is refused
//! without reaching AWS, a log, a status array or an exception message: a
//! [`NameProblem`] says what is wrong and never quotes the name.
//!
//! The rules are SSM's: a name is letters, digits and `_.-/`, and a name
//! with a `/` in it starts with one; it may end in one `:version` (digits) or
//! `:label` selector (letters, digits, `_.-`), or be given as an ARN
//! (`arn:aws:ssm:region:account:parameter/name`). The secret name of an
//! `/aws/reference/secretsmanager/...` reference may also hold `+=@!`, which
//! Secrets Manager allows (RDS names its managed secrets `rds!db-...`).

use std::fmt;

/// SSM's limit for a parameter name given as an ARN.
pub const MAX_LEN: usize = 2048;

/// The prefix of a Secrets Manager secret read through SSM.
pub const SECRETS_MANAGER_REFERENCE: &str = "/aws/reference/secretsmanager/";

/// Why a string is not a parameter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing but whitespace.
    Empty,
    /// Longer than [`MAX_LEN`].
    TooLong,
    /// Holds `://`: a connection URL, not a name.
    LooksLikeUrl,
    /// Holds a space, a tab or another control character.
    Whitespace,
    /// Holds a character SSM does not allow.
    Character,
    /// Has a `/` but does not start with one.
    Hierarchy,
    /// A `:` that is neither a version or label selector nor part of an ARN.
    Selector,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "it is empty",
            NameProblem::TooLong => "it is longer than 2048 characters",
            NameProblem::LooksLikeUrl => {
                "it looks like a connection URL, not a parameter name: pass the parameter's name (e.g. /prod/wordpress/db), not its value"
            }
            NameProblem::Whitespace => "it contains whitespace or a control character",
            NameProblem::Character => {
                "it contains a character SSM does not allow in a name (letters, digits and _ . - /; + = @ ! only in a Secrets Manager reference)"
            }
            NameProblem::Hierarchy => "a name with '/' in it must start with '/' (e.g. /prod/wordpress/db)",
            NameProblem::Selector => {
                "a ':' may only start a version or label at the end (/prod/db:3, /prod/db:live) or be part of an arn:aws:ssm:...:parameter/... ARN"
            }
        })
    }
}

/// Checks that `name` can be an SSM parameter name (with an optional
/// `:version` or `:label`, or as an ARN).
pub fn check(name: &str) -> Result<(), NameProblem> {
    if name.trim().is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.contains("://") {
        return Err(NameProblem::LooksLikeUrl);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameProblem::Whitespace);
    }
    if name.len() > MAX_LEN {
        return Err(NameProblem::TooLong);
    }
    let name = match name.strip_prefix("arn:") {
        // arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME (the name without its leading '/')
        Some(arn) => {
            let mut parts = arn.splitn(5, ':');
            let (partition, service, region, account, resource) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            );
            let plain = |p: Option<&str>| {
                p.is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            };
            let Some(path) = resource.and_then(|r| r.strip_prefix("parameter/")) else {
                return Err(NameProblem::Selector);
            };
            if !(plain(partition) && service == Some("ssm") && plain(region) && plain(account)) {
                return Err(NameProblem::Selector);
            }
            return check_path(path, false);
        }
        None => name,
    };
    check_path(name, true)
}

/// A name (with its optional selector) outside an ARN.
fn check_path(name: &str, leading_slash: bool) -> Result<(), NameProblem> {
    let (path, selector) = match name.split_once(':') {
        Some((path, selector)) => (path, Some(selector)),
        None => (name, None),
    };
    if let Some(selector) = selector {
        let label = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        if !label(selector) {
            return Err(NameProblem::Selector);
        }
    }
    if path.is_empty() {
        return Err(NameProblem::Empty);
    }
    let (plain, secret) = match path.strip_prefix(SECRETS_MANAGER_REFERENCE) {
        Some(secret) => (&path[..SECRETS_MANAGER_REFERENCE.len()], secret),
        None => (path, ""),
    };
    if !plain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/+=@!".contains(&b))
    {
        return Err(NameProblem::Character);
    }
    if leading_slash && path.contains('/') && !path.starts_with('/') {
        return Err(NameProblem::Hierarchy);
    }
    Ok(())
}

/// Whether a name from php.ini looks cut short by PHP's INI parser, which
/// ends an unquoted value at `!` (and other operators) and drops the rest:
/// `/aws/reference/secretsmanager/rds!db-1234` arrives as
/// `/aws/reference/secretsmanager/rds`. Returns the warning to give.
pub fn looks_cut_in_ini(name: &str) -> Option<&'static str> {
    let secret = name
        .strip_prefix(SECRETS_MANAGER_REFERENCE)
        .or_else(|| (name == SECRETS_MANAGER_REFERENCE.trim_end_matches('/')).then_some(""))?;
    let cut =
        secret.is_empty() || secret.ends_with('/') || secret == "rds" || secret.ends_with("/rds");
    cut.then_some(CUT_IN_INI)
}

const CUT_IN_INI: &str = "looks cut short at an INI special character such as '!' (RDS names its secrets rds!db-... or rds!cluster-...): quote the value, e.g. \"/aws/reference/secretsmanager/rds!db-...\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_selectors_arns_and_secret_references() {
        for name in [
            "/prod/wordpress/db",
            "prod.db_url-2",
            "/prod/db:3",
            "/prod/db:live",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db",
            "/aws/reference/secretsmanager/rds!db-0f1e2d3c-aaaa-bbbb-cccc-123456789abc",
            "/aws/reference/secretsmanager/app/db+creds=1@x",
        ] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_urls_whitespace_and_odd_characters_without_quoting() {
        let table = [
            ("mysql://wp:Canary-Pa55-n@db/wp", NameProblem::LooksLikeUrl),
            ("postgresql://db.internal/shop", NameProblem::LooksLikeUrl),
            ("", NameProblem::Empty),
            ("  ", NameProblem::Empty),
            ("/prod/db name", NameProblem::Whitespace),
            ("/prod/db\r", NameProblem::Whitespace),
            ("/prod/db?x", NameProblem::Character),
            ("/prod/dé", NameProblem::Character),
            ("{\"host\":\"h\"}", NameProblem::Selector),
            // URL-like strings that avoid "://"
            ("postgresql:/wp:Canary-Pa55-n@db/wp", NameProblem::Selector),
            ("mysql:wp:Canary-Pa55-n@db/wp", NameProblem::Selector),
            ("wp:Canary-Pa55-n@db/wp", NameProblem::Selector),
            ("/wp:Canary-Pa55-n@db/wp", NameProblem::Selector),
            ("wp@db/wp", NameProblem::Character),
            ("prod/db", NameProblem::Hierarchy),
            ("/prod/db:", NameProblem::Selector),
            ("/prod/db:3:4", NameProblem::Selector),
            ("arn:aws:s3:::bucket/x", NameProblem::Selector),
            ("/prod/a@b", NameProblem::Character),
        ];
        for (name, problem) in table {
            assert_eq!(check(name), Err(problem), "{name:?}");
            assert!(!problem.to_string().contains("Canary"));
        }
        assert_eq!(check(&"/a".repeat(1025)), Err(NameProblem::TooLong));
    }

    #[test]
    fn notices_a_secret_reference_cut_at_an_ini_operator() {
        assert!(looks_cut_in_ini("/aws/reference/secretsmanager/rds").is_some());
        assert!(looks_cut_in_ini("/aws/reference/secretsmanager/").is_some());
        assert!(looks_cut_in_ini("/aws/reference/secretsmanager").is_some());
        assert!(looks_cut_in_ini("/aws/reference/secretsmanager/rds!db-1").is_none());
        assert!(looks_cut_in_ini("/aws/reference/secretsmanager/shop/db").is_none());
        assert!(looks_cut_in_ini("/prod/rds").is_none());
    }
}
