//! ferry-engine (being written).
