//! Finding, reading and parsing the project's ferry.toml (placeholder until spec lands).
