//! Checked names: the app and role names (DNS labels, since they become container, service
//! and host names), environment variable names, and volume mounts.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SpecError;

/// Checks the RFC 1035 label rules Kubernetes applies to service names.
fn check_dns_label(input: &str) -> Result<(), SpecError> {
    let err = |reason: &str| SpecError::InvalidName {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if input.is_empty() {
        return Err(err("a name cannot be empty"));
    }
    if input.len() > 63 {
        return Err(err("a name has at most 63 characters"));
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(err("use only lowercase letters, digits and '-'"));
    }
    if !input.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(err("a name starts with a lowercase letter"));
    }
    if input.ends_with('-') {
        return Err(err("a name cannot end with '-'"));
    }
    Ok(())
}

const DNS_LABEL_PATTERN: &str = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$";

macro_rules! dns_label_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = SpecError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check_dns_label(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = Cow::<str>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": "A DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters.",
                    "pattern": DNS_LABEL_PATTERN
                })
            }
        }
    };
}

dns_label_type!(
    /// The application's name: a DNS label (`^[a-z]([-a-z0-9]*[a-z0-9])?$`, at most 63
    /// characters), since it names containers, images, services and hosts.
    AppName
);

dns_label_type!(
    /// The name of a worker role or an accessory: a DNS label like [`AppName`].
    RoleName
);

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. Used for `env` keys and secret
/// names (secret values are never part of the spec).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvVarName(String);

impl EnvVarName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvVarName {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(Self(s.to_owned()))
        } else {
            Err(SpecError::InvalidEnvName(s.to_owned()))
        }
    }
}

impl fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EnvVarName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for EnvVarName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EnvVarName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EnvVarName {
    fn schema_name() -> Cow<'static, str> {
        "EnvVarName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An environment variable name.",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"
        })
    }
}

/// A named volume mounted into an accessory, written `"name:/absolute/path"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolumeMount {
    /// The volume's name (a DNS label).
    pub name: RoleName,
    /// Where it is mounted in the container (absolute).
    pub path: String,
}

impl FromStr for VolumeMount {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || SpecError::InvalidVolume(s.to_owned());
        let (name, path) = s.split_once(':').ok_or_else(invalid)?;
        let name: RoleName = name.parse().map_err(|_| invalid())?;
        if !path.starts_with('/') || path.contains(':') {
            return Err(invalid());
        }
        Ok(Self {
            name,
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for VolumeMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.path)
    }
}

impl Serialize for VolumeMount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VolumeMount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for VolumeMount {
    fn schema_name() -> Cow<'static, str> {
        "VolumeMount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A named volume and its mount path, \"name:/absolute/path\".",
            "pattern": "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?:/[^:]*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_dns_labels() {
        for ok in ["hello", "a", "web-2", &"a".repeat(63)] {
            assert!(ok.parse::<AppName>().is_ok(), "{ok}");
        }
        for bad in ["", "Hello", "2web", "web-", "we_b", "a.b", &"a".repeat(64)] {
            assert!(bad.parse::<AppName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_follow_shell_rules() {
        for ok in ["A", "_X", "DATABASE_URL", "a1"] {
            assert!(ok.parse::<EnvVarName>().is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "É"] {
            assert!(bad.parse::<EnvVarName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_need_name_and_absolute_path() {
        let v: VolumeMount = "pgdata:/var/lib/postgresql/data".parse().expect("valid");
        assert_eq!(v.name.as_str(), "pgdata");
        assert_eq!(v.to_string(), "pgdata:/var/lib/postgresql/data");
        for bad in ["pgdata", "pgdata:rel", "PG:/x", ":/x"] {
            assert!(bad.parse::<VolumeMount>().is_err(), "{bad}");
        }
    }
}
