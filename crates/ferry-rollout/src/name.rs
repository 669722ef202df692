//! Validated names: revisions, replicas and analyses cannot be built from unchecked text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

const MAX_LEN: usize = 128;

fn check(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > MAX_LEN {
        return Err("it is longer than 128 characters");
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or a digit");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and wraps it: 1 to 128 ASCII letters, digits, `.`, `_`
            /// or `-`, starting with a letter or digit.
            pub fn new(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(why) => Err(Error::$variant { value, why }),
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A revision of an app: a release number, a git SHA or an image tag (`v3`, `41`,
    /// `3f9c2e1`).
    Revision,
    InvalidRevision
);
name_type!(
    /// One replica (container) of a revision, named by the daemon.
    ReplicaId,
    InvalidName
);
name_type!(
    /// The name of an `[analysis.<name>]` table of the spec.
    AnalysisName,
    InvalidName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_accept_release_names_and_shas() {
        for ok in ["v3", "41", "3f9c2e1", "2024.05.01-rc_1"] {
            assert!(Revision::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn revisions_reject_unchecked_text() {
        for bad in [
            "",
            "-v1",
            ".hidden",
            "v1 beta",
            "a/b",
            "ü",
            &"x".repeat(129),
        ] {
            assert!(Revision::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserializing_checks_too() {
        let err = serde_json::from_str::<Revision>("\"bad rev\"").unwrap_err();
        assert!(err.to_string().contains("invalid revision"), "{err}");
        let rev: Revision = serde_json::from_str("\"v2\"").unwrap();
        assert_eq!(rev.as_str(), "v2");
    }
}
