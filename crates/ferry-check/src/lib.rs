//! ferry-check (being written).
