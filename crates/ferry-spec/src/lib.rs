//! The ferry.toml app spec: its types, a span-aware parser that reports every problem in
//! one pass, environment overlays, the production policy and the JSON schema.
//!
//! This crate is pure: no I/O, no async, no clock. The CLI reads the file and hands the
//! text in as a [`SourceFile`]:
//!
//! ```
//! let src = ferry_spec::SourceFile::new("ferry.toml", "app = \"hello\"\nimage = \"hello:1\"\n[web]\nport = 8080\n");
//! let doc = ferry_spec::parse(&src).expect("valid spec");
//! let spec = doc.resolve(None).expect("base resolves");
//! assert_eq!(spec.web.expect("web role").port, 8080);
//! ```

mod decode;
mod diagnostic;
mod document;
mod error;
mod names;
mod node;
mod policy;
mod schema;
mod source;
mod spec;
mod units;

pub use diagnostic::{Diagnostics, Problem, ProblemRecord};
pub use document::{Document, parse};
pub use error::SpecError;
pub use names::{AppName, EnvVarName, RoleName, VolumeMount};
pub use policy::policy;
pub use schema::json_schema;
pub use source::{Position, SourceFile};
pub use spec::*;
pub use units::{ByteSize, Duration, Weight};
