//! The ferry.toml app spec: its types, a span-aware parser that reports every problem in
//! one pass, environment overlays, the production policy and the JSON schema.
//!
//! This crate is pure: no I/O, no async, no clock. The CLI reads the file and hands the
//! text in as a [`SourceFile`].

mod error;
mod names;
mod spec;
mod units;

pub use error::SpecError;
pub use names::{AppName, EnvVarName, RoleName, VolumeMount};
pub use spec::*;
pub use units::{ByteSize, Duration, Weight};
