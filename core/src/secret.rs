//! Secrets: the `secrecy` crate's [`SecretString`].
//!
//! A password or a raw parameter value is a [`SecretString`]: its `Debug`
//! prints `[REDACTED]`, it has no `Display` (so `format!("{}", ...)` does not
//! compile, rather than building a DSN with a stand-in), it is zeroized when
//! dropped, and reading it takes an explicit [`ExposeSecret::expose_secret`],
//! called only where the value is handed to its consumer.

pub use secrecy::{ExposeSecret, SecretString};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_exposing_is_explicit() {
        let s = SecretString::from("Canary-Pa55-xyz".to_owned());
        assert!(!format!("{s:?}").contains("Canary"));
        assert_eq!(s.expose_secret(), "Canary-Pa55-xyz");
    }
}
